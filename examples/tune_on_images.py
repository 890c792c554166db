"""Tune HFTT on a small labelled image set while cross-validating on texts.

``GridSearchCV`` splits the texts (the PU form ``fit(texts, y)``: y = 1 for
task texts, 0 for world texts) and :class:`skhftt.evaluation.metrics.HeldOutScorer`
scores every fitted candidate on the same held-out labelled images, so the
hyperparameters are chosen by image-side FPR@95. A separate test set of
images reports the result.

To run offline in seconds, the embeddings are synthetic and precomputed
(``encoder="precomputed"``): task prompts cluster around class directions,
the world corpus is mostly unrelated, and images sit near the texts they
depict, shifted by a common "modality gap" direction as CLIP images are.
With a real model, embed the texts and images once with the encoder and
pass the arrays the same way.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skhftt import HFTTDetector
from skhftt.evaluation.metrics import HeldOutScorer, ood_metrics

DIM, N_CLASSES, PROMPTS_PER_CLASS, N_WORLD = 64, 6, 8, 3000


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def make_data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    centres = unit(rng.normal(size=(N_CLASSES, DIM)))
    prompts = unit(np.repeat(centres, PROMPTS_PER_CLASS, axis=0)
                   + 0.08 * rng.normal(size=(N_CLASSES * PROMPTS_PER_CLASS, DIM)))
    n_like = N_WORLD // 20  # the world corpus is unlabelled: some texts fit the task
    world = unit(np.vstack([
        rng.normal(size=(N_WORLD - n_like, DIM)),
        centres[rng.integers(0, N_CLASSES, n_like)] + 0.1 * rng.normal(size=(n_like, DIM)),
    ]))
    gap = 0.6 * unit(rng.normal(size=(1, DIM)))

    def images(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        near = centres[rng.integers(0, N_CLASSES, n_in)] + 0.16 * rng.normal(size=(n_in, DIM))
        far = unit(rng.normal(size=(n_out, DIM))) + 0.2 * centres[rng.integers(0, N_CLASSES, n_out)]
        X = unit(np.vstack([near, far]) + gap)
        return X, np.r_[np.ones(n_in), -np.ones(n_out)]

    X_val, y_val = images(40, 40)
    X_test, y_test = images(500, 500)
    return {"prompts": prompts, "world": world, "X_val": X_val, "y_val": y_val,
            "X_test": X_test, "y_test": y_test}


def main() -> None:
    data = make_data(np.random.default_rng(0))
    texts = np.vstack([data["world"], data["prompts"]])
    y_texts = np.r_[np.zeros(len(data["world"])), np.ones(len(data["prompts"]))]

    search = GridSearchCV(
        HFTTDetector(encoder="precomputed", random_state=0),
        {"n_embeddings": [1, 5, 10, 20], "gamma": [0.0, 1.0, 2.0]},
        scoring=HeldOutScorer(data["X_val"], data["y_val"], metric=["fpr95", "auroc"]),
        refit="fpr95",
        # Stratified and shuffled, so that every fold has task texts.
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(texts, y_texts)
    print("best on the validation images:", search.best_params_,
          f"FPR95 = {-search.best_score_:.3f}")

    default = HFTTDetector(encoder="precomputed", random_state=0).fit(texts, y_texts)
    for name, detector in (("default", default), ("tuned", search.best_estimator_)):
        metrics = ood_metrics(data["y_test"], detector.decision_function(data["X_test"]))
        print(f"{name:8s} on the test images: FPR95 = {metrics['fpr95']:.3f}, "
              f"AUROC = {metrics['auroc']:.3f}")


if __name__ == "__main__":
    main()
