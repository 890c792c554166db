from __future__ import annotations

import pickle

import numpy as np
import pytest
from _synthetic import make_task_world
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_curve
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from skhftt import HFTTDetector
from skhftt.embedding import Texts
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.evaluation.metrics import (
    HeldOutScorer,
    aupr_in,
    aupr_out,
    auroc,
    fpr_at_tpr,
    get_scorer,
    get_scorer_names,
    ood_metrics,
)

# 4 in-distribution scores and 4 out-of-distribution scores, by hand:
# in  = 0.9 0.8 0.6 0.3      out = 0.7 0.4 0.2 0.1
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
S = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1])


@pytest.mark.parametrize(
    ("tpr", "expected"),
    [
        # TPR >= 0.25 first at t = 0.9: no OOD above -> 0.
        (0.25, 0.0),
        # TPR >= 0.5 at t = 0.8 -> 0.
        (0.5, 0.0),
        # TPR >= 0.75 needs t = 0.6; OOD 0.7 is above -> 1/4.
        (0.75, 0.25),
        # TPR >= 0.95 needs all 4 in (t = 0.3); OOD 0.7 and 0.4 above -> 2/4.
        (0.95, 0.5),
        (1.0, 0.5),
    ],
)
def test_fpr_at_tpr_hand_computed(tpr, expected):
    assert fpr_at_tpr(Y, S, tpr=tpr) == expected


def test_fpr_at_tpr_ties_count_as_accepted():
    # An OOD sample tied with the threshold is accepted: 0.5 == 0.5.
    assert fpr_at_tpr([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1], tpr=1.0) == 0.5
    # A constant score keeps everything: FPR = 1 at any TPR.
    assert fpr_at_tpr([1, 0, 1, 0], [2.0, 2.0, 2.0, 2.0], tpr=0.5) == 1.0


def test_fpr_at_tpr_exact_fraction_is_reached():
    # 20 in-distribution samples: 95 % is exactly 19, which must count as reached.
    y = np.r_[np.ones(20), np.zeros(2)]
    scores = np.r_[np.arange(20, 0, -1), [1.5, 0.5]]  # in: 20..1; out: 1.5, 0.5
    # 19 kept means t = 2: the OOD 1.5 is below -> 0.
    assert fpr_at_tpr(y, scores) == 0.0
    assert fpr_at_tpr(y, scores, tpr=0.951) == 0.5


def test_fpr_at_tpr_agrees_with_first_roc_point_reaching_tpr():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=500)
    scores = np.round(rng.normal(size=500) + y, 1)  # rounding creates many ties
    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=False)
    for target in (0.5, 0.8, 0.95):
        assert fpr_at_tpr(y, scores, tpr=target) == pytest.approx(fpr[np.argmax(tpr >= target)])


def test_threshold_free_metrics_hand_computed():
    # Pairs (in, out) ordered correctly: in 0.9, 0.8 beat every out (8);
    # 0.6 beats 0.4, 0.2, 0.1 (3); 0.3 beats 0.2, 0.1 (2) -> 13 / 16.
    assert auroc(Y, S) == 13 / 16
    # Ranked by score: I I O I O I O O; precision at each in: 1, 1, 3/4, 4/6.
    assert aupr_in(Y, S) == pytest.approx((1 + 1 + 3 / 4 + 4 / 6) / 4)
    # Ranked by -score: O O I O I O I I; precision at each out: 1, 1, 3/4, 4/6.
    assert aupr_out(Y, S) == pytest.approx((1 + 1 + 3 / 4 + 4 / 6) / 4)


def test_label_forms_are_equivalent():
    expected = ood_metrics(Y, S)
    assert ood_metrics(np.where(Y == 1, 1, -1), S) == expected
    assert ood_metrics(Y.astype(bool), S) == expected
    assert ood_metrics(list(Y), list(S)) == expected
    assert set(expected) == {"fpr95", "auroc", "aupr_in", "aupr_out"}
    assert set(ood_metrics(Y, S, tpr=0.9)) == {"fpr90", "auroc", "aupr_in", "aupr_out"}


@pytest.mark.parametrize(
    ("y", "scores", "match"),
    [
        ([1, 2, 1], [0.1, 0.2, 0.3], r"values \[1, 2\]"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "both in-distribution"),
        ([1, 0], [0.1, np.nan], "NaN or infinite value.*index 1"),
        ([1, 0, 1], [0.1, 0.2], r"shape \(3,\), y_score \(2,\)"),
        (["in", "out"], [0.1, 0.2], "in-distribution labels"),
    ],
)
def test_bad_inputs_name_the_problem(y, scores, match):
    with pytest.raises(ValueError, match=match):
        ood_metrics(y, scores)


@pytest.mark.parametrize("tpr", [0, 1.5, -0.1, True])
def test_bad_tpr(tpr):
    with pytest.raises(ValueError, match="tpr must be a float in"):
        fpr_at_tpr(Y, S, tpr=tpr)


class _FixedScores(BaseEstimator):
    """A stand-in estimator whose decision_function returns its input column."""

    def decision_function(self, X):
        return np.asarray(X)[:, 0]


def test_scorers_by_name_sign_and_fallback():
    X = S[:, None]
    assert get_scorer("fpr95")(_FixedScores(), X, Y) == -0.5
    assert get_scorer("fpr75")(_FixedScores(), X, Y) == -0.25
    assert get_scorer("auroc")(_FixedScores(), X, Y) == 13 / 16
    assert get_scorer("aupr_out")(_FixedScores(), X, Y) == pytest.approx(aupr_out(Y, S))
    # scikit-learn's own names still work, as do callables.
    assert get_scorer("roc_auc")._response_method == ("decision_function", "predict_proba")
    assert get_scorer(len) is len
    assert get_scorer_names() == ["aupr_in", "aupr_out", "auroc", "fpr95"]
    with pytest.raises(ValueError, match="'fpr_95' is neither an skhftt metric"):
        get_scorer("fpr_95")


def test_scorers_in_cross_val_score_and_grid_search():
    data = make_task_world(n_world=300, seed=3)
    X = np.vstack([data["world"], data["prompts"]])
    y = np.r_[np.zeros(len(data["world"])), np.ones(len(data["prompts"]))].astype(int)
    det = HFTTDetector(encoder="precomputed", random_state=0)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(det, X, y, cv=cv, scoring=get_scorer("fpr95"))
    assert scores.shape == (3,) and (scores <= 0).all() and (scores >= -1).all()
    search = GridSearchCV(
        det,
        {"gamma": [0.0, 1.0]},
        scoring={name: get_scorer(name) for name in ("fpr95", "auroc")},
        refit="fpr95",
        cv=cv,
    ).fit(X, y)
    assert {"mean_test_fpr95", "mean_test_auroc"} <= set(search.cv_results_)


@pytest.fixture(scope="module")
def image_task():
    """Texts in PU form and a labelled held-out "image" set from the same space."""
    data = make_task_world(n_world=300, seed=4)
    X = np.vstack([data["world"], data["prompts"]])
    y = np.r_[np.zeros(len(data["world"])), np.ones(len(data["prompts"]))].astype(int)
    images = np.vstack([data["in_test"][:20], data["out_test"][:20]])
    y_images = np.r_[np.ones(20), -np.ones(20)]
    return X, y, images, y_images


def test_held_out_scorer_scores_the_fixed_set(image_task):
    X, y, images, y_images = image_task
    det = HFTTDetector(encoder="precomputed", random_state=0).fit(X, y)
    expected = ood_metrics(y_images, det.decision_function(images))
    # The fold passed in is ignored.
    assert HeldOutScorer(images, y_images)(det, X[:3], y[:3]) == -expected["fpr95"]
    assert HeldOutScorer(images, y_images, metric="auroc")(det) == expected["auroc"]
    several = HeldOutScorer(images, y_images, metric=["fpr95", "aupr_in"])(det)
    assert several == {"fpr95": -expected["fpr95"], "aupr_in": expected["aupr_in"]}

    def accuracy(y_true, scores):
        return float(np.mean((scores > 0) == (np.asarray(y_true) == 1)))

    assert HeldOutScorer(images, y_images, metric=accuracy)(det) == accuracy(
        y_images, det.decision_function(images)
    )


def test_held_out_scorer_in_grid_search(image_task):
    X, y, images, y_images = image_task
    scorer = HeldOutScorer(images, y_images, metric=["fpr95", "auroc"])
    search = GridSearchCV(
        HFTTDetector(encoder="precomputed", random_state=0),
        {"n_embeddings": [1, 10]},
        scoring=scorer,
        refit="auroc",
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    assert search.cv_results_["mean_test_auroc"].min() > 0.9
    assert search.best_estimator_.n_embeddings in (1, 10)
    assert pickle.loads(pickle.dumps(scorer)).metric == ["fpr95", "auroc"]


def test_held_out_scorer_embeds_images_once_per_encoder():
    encoder = HashingEncoder(dim=32)
    world = [f"a photo of a {w}" for w in ("car", "tree", "house", "road", "boat", "lamp")]
    det = HFTTDetector(encoder=encoder, random_state=0).fit(world, ["a red apple"])
    held_out = ["a red apple", "a green apple", "a fast car", "a tall tree"]
    scorer = HeldOutScorer(Texts(held_out), [1, 1, 0, 0], metric="auroc")
    before = encoder.n_texts_encoded
    first = scorer(det)
    encoded = encoder.n_texts_encoded - before
    assert scorer(det) == first and scorer(det) == first
    assert encoder.n_texts_encoded - before == encoded


@pytest.mark.parametrize(
    ("metric", "match"),
    [("fpr_at_95", "unknown metric 'fpr_at_95'"), ([], "metric is empty")],
)
def test_held_out_scorer_bad_metric(metric, match):
    with pytest.raises(ValueError, match=match):
        HeldOutScorer(np.eye(2), [1, 0], metric=metric)


def test_held_out_scorer_checks_labels():
    with pytest.raises(ValueError, match="both in-distribution"):
        HeldOutScorer(np.eye(2), [1, 1])
