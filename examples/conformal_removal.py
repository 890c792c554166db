"""Remove unwanted images with a false-discovery-rate guarantee (conformal selection).

:class:`skhftt.removal.rules.RemovalRule` with ``method="fdr"`` compares each
image's score with the scores of clean calibration images (held out from
fitting and tuning) and removes by Benjamini-Hochberg on conformal p-values:
in expectation, at most ``alpha`` of the removed images are clean ones. The
other rules make no such promise: the detector's probability threshold, a
target share of clean images kept (``"tpr"``), or a fixed share removed
(``"fraction"``).

To run offline in seconds and to know the truth, the embeddings are synthetic
and precomputed (``encoder="precomputed"``): the dataset's classes are
clusters, its images sit near their class (offset by a common "modality gap"
direction, as CLIP images sit apart from texts), and the unwanted images are
other directions, a few of them close to the dataset. The script prints what
each rule removes in one batch, then the false-discovery proportion of the
FDR rule averaged over many batches: the observed FDR.
"""

from __future__ import annotations

import argparse

import numpy as np

from skhftt import HFTTDetector
from skhftt.removal.rules import RemovalRule

DIM, N_CLASSES, N_PROMPTS, N_TOPICS = 48, 5, 6, 40


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class SyntheticSpace:
    """The dataset's classes, other topics, texts and images, with known labels."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.classes = unit(self.rng.normal(size=(N_CLASSES, DIM)))
        self.topics = unit(self.rng.normal(size=(N_TOPICS, DIM)))
        self.gap = 0.5 * unit(self.rng.normal(size=(1, DIM)))

    def around(self, centres: np.ndarray, spread: float) -> np.ndarray:
        return unit(centres + spread * self.rng.normal(size=centres.shape) / np.sqrt(DIM))

    def pick(self, centres: np.ndarray, n: int) -> np.ndarray:
        return centres[self.rng.integers(0, len(centres), n)]

    def task_prompts(self) -> np.ndarray:
        return self.around(np.repeat(self.classes, N_PROMPTS, axis=0), 0.5)

    def world(self, n: int) -> np.ndarray:
        """Unlabelled world texts: other topics, and 5 % about the dataset's classes."""
        n_related = n // 20
        return np.vstack([self.around(self.pick(self.topics, n - n_related), 0.8),
                          self.around(self.pick(self.classes, n_related), 0.6)])

    def clean_images(self, n: int) -> np.ndarray:
        return unit(self.around(self.pick(self.classes, n), 1.0) + self.gap)

    def unwanted_images(self, n: int) -> np.ndarray:
        """Other topics; half of them share part of a class's direction (hard cases)."""
        mix = np.where(np.arange(n) < n // 2, 0.3, 0.0)[:, None]
        centres = self.pick(self.topics, n) + mix * self.pick(self.classes, n)
        return unit(self.around(centres, 1.0) + self.gap)


def summary(name: str, removed: np.ndarray, is_unwanted: np.ndarray) -> str:
    false = int((removed & ~is_unwanted).sum())
    fdp = false / max(int(removed.sum()), 1)
    power = (removed & is_unwanted).sum() / is_unwanted.sum()
    return (f"{name:12s} {int(removed.sum()):8d} {false:8d} {fdp:8.3f} {power:8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.1, help="target false-discovery rate")
    parser.add_argument("--batches", type=int, default=300,
                        help="batches over which the observed FDR is averaged")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    space = SyntheticSpace(args.seed)
    detector = HFTTDetector(encoder="precomputed", random_state=args.seed)
    detector.fit(space.world(4000), space.task_prompts())

    def batch(n_clean: int = 900, n_unwanted: int = 100) -> tuple[np.ndarray, np.ndarray]:
        X = np.vstack([space.clean_images(n_clean), space.unwanted_images(n_unwanted)])
        return X, np.r_[np.zeros(n_clean, bool), np.ones(n_unwanted, bool)]

    calibration = space.clean_images(2000)  # clean, never used to fit or tune
    X, is_unwanted = batch()
    print(f"one batch: {len(X)} images, {int(is_unwanted.sum())} unwanted; "
          f"{len(calibration)} clean calibration images\n")
    print(f"{'rule':12s} {'removed':>8s} {'clean':>8s} {'FDP':>8s} {'power':>8s}")
    rules = {
        "probability": RemovalRule(detector, method="probability"),
        "tpr=0.95": RemovalRule(detector, method="tpr", tpr=0.95),
        "fraction=0.1": RemovalRule(detector, method="fraction", fraction=0.1),
        f"fdr={args.alpha:g}": RemovalRule(detector, method="fdr", alpha=args.alpha),
    }
    for name, rule in rules.items():
        print(summary(name, rule.calibrate(calibration).remove(X), is_unwanted))

    fdr_rule = rules[f"fdr={args.alpha:g}"]
    proportions = []
    for _ in range(args.batches):
        X, is_unwanted = batch()
        removed = fdr_rule.calibrate(space.clean_images(2000)).remove(X)
        proportions.append((removed & ~is_unwanted).sum() / max(removed.sum(), 1))
    proportions = np.asarray(proportions)
    bound = args.alpha * (~is_unwanted).mean()
    error = proportions.std(ddof=1) / np.sqrt(len(proportions))
    print(f"\nobserved FDR over {args.batches} batches: {proportions.mean():.3f} "
          f"+/- {error:.3f} (standard error)")
    print(f"guarantee: at most alpha * share of clean images = {bound:.3f}, in expectation; "
          f"single batches vary (worst here {proportions.max():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
