"""One small detector of every kind, on precomputed embeddings, for the shared tests."""

from __future__ import annotations

import numpy as np
from _synthetic import make_task_world, unit

from skhftt.detectors import (
    CSPDetector,
    EnergyDetector,
    HFTTDetector,
    HFTTEnsembleDetector,
    KNNDetector,
    MahalanobisDetector,
    MaxLogitDetector,
    MCMDetector,
    MSPDetector,
    NegLabelDetector,
)

DIM = 16
CLASSES = {
    "HFTTDetector": HFTTDetector,
    "HFTTEnsembleDetector": HFTTEnsembleDetector,
    "MCMDetector": MCMDetector,
    "MaxLogitDetector": MaxLogitDetector,
    "EnergyDetector": EnergyDetector,
    "NegLabelDetector": NegLabelDetector,
    "CSPDetector": CSPDetector,
    "MSPDetector": MSPDetector,
    "MahalanobisDetector": MahalanobisDetector,
    "KNNDetector": KNNDetector,
}
KINDS = list(CLASSES)
IMAGE_FITTED = ["MSPDetector", "MahalanobisDetector", "KNNDetector"]
TEXT_FITTED = [kind for kind in KINDS if kind not in IMAGE_FITTED]
# A pool of candidate labels given as embeddings, as CSP takes them without an encoder
# (nested lists, so that parameters compare with ==).
POOL = {"noun": unit(np.random.default_rng(2).normal(size=(60, DIM))).tolist()}
# Small and quick; the rest are defaults.
PARAMS = {
    "HFTTDetector": {"n_embeddings": 3, "batch_size": 64, "random_state": 0},
    "HFTTEnsembleDetector": {"n_embeddings": 3, "batch_size": 64, "random_state": 0},
    "NegLabelDetector": {"n_negatives": 40, "n_groups": 4, "random_state": 0},
    "CSPDetector": {"candidates": POOL, "n_negatives": 30, "n_groups": 3, "random_state": 0},
    "KNNDetector": {"n_neighbors": 3},
}


def data() -> dict[str, np.ndarray]:
    """Task prompts, a world corpus, labelled in-distribution 'images', test rows."""
    task = make_task_world(n_classes=3, prompts_per_class=2, n_world=200, dim=DIM, seed=0)
    rng = np.random.default_rng(1)
    labels = np.repeat(np.array(["a", "b", "c"]), 20)
    codes = np.repeat(np.arange(3), 20)
    images = unit(task["centres"][codes] + 0.3 * rng.normal(size=(60, DIM)))
    return {**task, "images": images, "labels": labels,
            "test": np.vstack([task["in_test"][:20], task["out_test"][:20]])}


def make(kind: str, **params: object):
    """An unfitted detector of ``kind`` on precomputed embeddings."""
    return CLASSES[kind](**{"encoder": "precomputed", **PARAMS.get(kind, {}), **params})


def fit_arguments(kind: str, values: dict[str, np.ndarray]) -> tuple[object, object]:
    """``(X, y)`` that fit a detector of ``kind``."""
    if kind in TEXT_FITTED:
        return values["world"], values["prompts"]
    return values["images"], None if kind == "KNNDetector" else values["labels"]


def fitted(kind: str, values: dict[str, np.ndarray], **params: object):
    """A fitted detector of ``kind``."""
    return make(kind, **params).fit(*fit_arguments(kind, values))


def late_failing_fit(kind: str, values: dict[str, np.ndarray]) -> tuple[dict, object, object]:
    """``(params, X, y)`` on which ``fit`` fails once the inputs are embedded.

    The task is a new mapping, so that a half-done fit would show new
    ``task_names_``.
    """
    world, images = values["world"], values["images"]
    task = {"new class": values["prompts"][:2]}
    if kind in ("HFTTDetector", "HFTTEnsembleDetector"):
        return {"learning_rate_init": float("inf")}, world, task  # training diverges
    if kind == "NegLabelDetector":
        return {}, world[:10], task  # 40 negatives asked of 10 world texts
    if kind == "CSPDetector":
        return {"n_negatives": 61}, world, task  # more negatives than the 60 candidates
    if kind in TEXT_FITTED:  # nothing fails after embedding: an invalid task
        return {}, world, {"new class": np.full((2, DIM), np.nan)}
    if kind == "KNNDetector":
        return {}, images[:2], None  # fewer images than n_neighbors
    return {}, images, values["labels"][:5]  # one label short of every image
