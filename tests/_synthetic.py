"""Synthetic unit embeddings with a known task, shared by the tests."""

from __future__ import annotations

import numpy as np


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def make_task_world(
    *,
    n_classes: int = 4,
    prompts_per_class: int = 3,
    n_world: int = 600,
    dim: int = 32,
    contamination: float = 0.05,
    noise: float = 0.15,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Task prompts clustered around class centres; an unlabelled world corpus.

    Returns ``centres`` (C, d), ``prompts`` (C * p, d) grouped by class,
    ``world`` (n, d) with a ``contamination`` share of task-like rows,
    ``in_test`` (near the centres) and ``out_test`` (random directions).
    """
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(n_classes, dim)))

    def near_centres(n: int) -> np.ndarray:
        picks = centres[rng.integers(0, n_classes, size=n)]
        return unit(picks + noise * rng.normal(size=(n, dim)) / np.sqrt(dim) * 4)

    prompts = unit(
        np.repeat(centres, prompts_per_class, axis=0)
        + noise * rng.normal(size=(n_classes * prompts_per_class, dim)) / np.sqrt(dim) * 4
    )
    n_task_like = int(contamination * n_world)
    world = np.vstack([unit(rng.normal(size=(n_world - n_task_like, dim))),
                       near_centres(n_task_like)])
    return {
        "centres": centres,
        "prompts": prompts,
        "world": world[rng.permutation(n_world)],
        "in_test": near_centres(50),
        "out_test": unit(rng.normal(size=(50, dim))),
    }
