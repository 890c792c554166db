"""Peak memory of embedding the default world corpus at width 768.

Encodes the bundled world corpus (292,073 prompts) with a fake 768-d encoder
(random unit rows, no model, so that only skhftt's own memory is measured)
through ``skhftt.embedding.cache.encode_texts``, once per cache mode, each in
a fresh process:

* ``memory``: the in-process cache (the default);
* ``disk``: an on-disk cache in a temporary folder (memory-mapped shards);
* ``memory+validate``: the in-process cache followed by the detector's input
  check (``skhftt.space.validation.check_embeddings``), as ``fit`` runs it today.

For each it reports the size of the float32 matrix, the peak of
Python-tracked allocations during the call (tracemalloc, which sees numpy
buffers), and the growth of the process's peak resident set (ru_maxrss).

Usage::

    python benchmarks/bench_corpus_memory.py [--n-words N] [--dim 768]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np

GB = 1e9
MODES = ("memory", "disk", "memory+validate")


class RandomEncoder:
    """768-d fake encoder: random unit rows seeded by each batch's first text."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.identity = f"bench-random:{dim}"

    def encode_text(
        self, texts: Sequence[str], *, batch_size: int = 256, show_progress: bool = False
    ) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(texts[0].encode(), digest_size=8).digest())
        rows = np.random.default_rng(seed).standard_normal((len(texts), self.dim), dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(mode: str, n_words: int | None, dim: int) -> dict[str, object]:
    from skhftt.corpora import load_world_corpus
    from skhftt.embedding.cache import encode_texts
    from skhftt.space.validation import check_embeddings

    texts = load_world_corpus(n_words)
    encoder = RandomEncoder(dim)
    with tempfile.TemporaryDirectory() as folder:
        rss_before = peak_rss_bytes()
        tracemalloc.start()
        start = time.perf_counter()
        embeddings = encode_texts(encoder, texts, cache_dir=folder if mode == "disk" else None)
        if mode == "memory+validate":
            embeddings = check_embeddings(embeddings)
        seconds = time.perf_counter() - start
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_growth = peak_rss_bytes() - rss_before
    return {
        "mode": mode,
        "n_texts": len(texts),
        "dim": dim,
        "dtype": str(embeddings.dtype),
        "matrix_bytes": int(embeddings.nbytes),
        "traced_peak_bytes": int(traced_peak),
        "rss_peak_growth_bytes": int(rss_growth),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-words", type=int, default=None)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode is not None:
        print(json.dumps(measure(args.mode, args.n_words, args.dim)))
        return
    print(f"{'mode':<16} {'texts':>8} {'matrix GB':>10} {'traced peak GB':>15} "
          f"{'RSS growth GB':>14} {'s':>6}")  # fmt: skip
    for mode in MODES:
        command = [sys.executable, __file__, "--mode", mode, "--dim", str(args.dim)]
        if args.n_words is not None:
            command += ["--n-words", str(args.n_words)]
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        row = json.loads(output.stdout.strip().splitlines()[-1])
        print(
            f"{row['mode']:<16} {row['n_texts']:>8} {row['matrix_bytes'] / GB:>10.3f} "
            f"{row['traced_peak_bytes'] / GB:>15.3f} "
            f"{row['rss_peak_growth_bytes'] / GB:>14.3f} {row['seconds']:>6}"
        )
        if mode == "memory":
            summary = row
    print(
        f"dtype={summary['dtype']} matrix_gb={summary['matrix_bytes'] / GB:.3f} "
        f"peak_gb={summary['traced_peak_bytes'] / GB:.3f} "
        f"within_1gb={summary['traced_peak_bytes'] <= GB}"
    )


if __name__ == "__main__":
    main()
