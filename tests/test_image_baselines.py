"""MSP, Mahalanobis and KNN against direct numpy evaluations of their formulas."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.linalg import pinvh
from sklearn import config_context
from sklearn.base import clone
from sklearn.covariance import ledoit_wolf_shrinkage, shrunk_covariance
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skhftt.detectors.image_fitted import (
    KNNDetector,
    MahalanobisDetector,
    MSPDetector,
    kth_neighbour_similarity,
)
from skhftt.evaluation.metrics import auroc
from skhftt.removal.thresholds import threshold_at_tpr
from skhftt.space.validation import check_embeddings

DETECTORS = [MSPDetector, MahalanobisDetector, KNNDetector]


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    """Three labelled classes of 'images' in 12 dimensions, and test rows in and out."""
    rng = np.random.default_rng(3)
    centres = _unit(rng.normal(size=(3, 12)))
    labels = np.repeat(np.array(["cat", "dog", "fox"]), 40)
    fit = _unit(np.repeat(centres, 40, axis=0) + 0.25 * rng.normal(size=(120, 12)))
    test_in = _unit(centres[rng.integers(0, 3, 30)] + 0.25 * rng.normal(size=(30, 12)))
    test_out = _unit(rng.normal(size=(30, 12)))
    return {"fit": fit.astype(np.float32), "labels": labels,
            "test": np.vstack([test_in, test_out]).astype(np.float32)}


def _fit(cls, data, **params):
    labels = None if cls is KNNDetector else data["labels"]
    return cls(encoder="precomputed", **params).fit(data["fit"], labels)


# ------------------------------------------------------------------- KNN


# Working memory (MiB) of a few query rows per chunk, and scikit-learn's default.
WORKING_MEMORY = [60 * 8 * 3 / 2**20, 1024]


@pytest.mark.parametrize("k", [1, 4, 37, 60])
@pytest.mark.parametrize("working_memory", WORKING_MEMORY)
def test_search_equals_the_full_matrix(k, working_memory):
    rng = np.random.default_rng(k)
    queries, references = _unit(rng.normal(size=(45, 9))), _unit(rng.normal(size=(60, 9)))
    expected = np.sort(queries @ references.T, axis=1)[:, -k]
    with config_context(working_memory=working_memory):
        found = kth_neighbour_similarity(queries, references, k)
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("working_memory", WORKING_MEMORY)
def test_search_with_ties_and_float32(working_memory):
    references = np.repeat(np.eye(4, dtype=np.float32), 3, axis=0)  # every row three times
    queries = np.eye(4, dtype=np.float32)[[0, 2]]
    for k, expected in ((1, 1.0), (3, 1.0), (4, 0.0)):
        with config_context(working_memory=working_memory):
            found = kth_neighbour_similarity(queries, references, k)
        assert found.dtype == np.float64
        np.testing.assert_array_equal(found, [expected, expected])


@pytest.mark.parametrize(
    ("k", "match"),
    [(0, "n_neighbors=0 must be between 1 and the 5"),
     (6, "n_neighbors=6 must be between 1 and the 5")],
)
def test_search_bad_arguments(k, match):
    with pytest.raises(ValueError, match=match):
        kth_neighbour_similarity(np.eye(5), np.eye(5), k)


@pytest.mark.parametrize("k", [1, 5, 120])
def test_knn_matches_its_formula(data, k):
    det = _fit(KNNDetector, data, n_neighbors=k)
    similarities = _unit(data["test"]) @ _unit(data["fit"]).T
    kth = np.sort(similarities, axis=1)[:, -k]
    scores = det.score_samples(data["test"])
    np.testing.assert_allclose(scores, -(1.0 - kth), atol=1e-6)
    # Sun et al.'s Euclidean distance between unit vectors, from the same score.
    distances = np.linalg.norm(data["test"][:, None] - data["fit"][None], axis=2)
    np.testing.assert_allclose(
        np.sqrt(-2 * np.minimum(scores, 0)), np.sort(distances, axis=1)[:, k - 1], atol=1e-3
    )
    assert det.reference_embeddings_.dtype == np.float32


def test_knn_needs_enough_images(data):
    with pytest.raises(ValueError, match="n_neighbors=121 exceeds the 120 in-distribution"):
        _fit(KNNDetector, data, n_neighbors=121)


# ----------------------------------------------------------- Mahalanobis


def _as_seen(X):
    """The rows exactly as every detector sees them: unit float32 (skhftt.embedding.inputs)."""
    return check_embeddings(X).astype(np.float64)


def _class_statistics(data):
    x = _as_seen(data["fit"])
    classes = np.unique(data["labels"])
    means = np.stack([x[data["labels"] == c].mean(axis=0) for c in classes])
    centred = x - means[np.searchsorted(classes, data["labels"])]
    return means, centred, centred.T @ centred / len(x)


def _mahalanobis_by_hand(X, means, precision):
    differences = _as_seen(X)[:, None, :] - means[None, :, :]
    return -np.einsum("ncd,de,nce->nc", differences, precision, differences).min(axis=1)


@pytest.mark.parametrize("shrinkage", ["auto", 0.0, 0.3, 1.0])
def test_mahalanobis_matches_its_formula(data, shrinkage):
    det = _fit(MahalanobisDetector, data, shrinkage=shrinkage)
    means, centred, empirical = _class_statistics(data)
    expected_shrinkage = (
        ledoit_wolf_shrinkage(centred, assume_centered=True) if shrinkage == "auto" else shrinkage
    )
    np.testing.assert_allclose(det.shrinkage_, expected_shrinkage, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(det.classes_, ["cat", "dog", "fox"])
    np.testing.assert_allclose(det.means_, means, atol=1e-12)
    np.testing.assert_allclose(
        det.covariance_, shrunk_covariance(empirical, expected_shrinkage), atol=1e-12
    )
    precision = pinvh(det.covariance_)
    np.testing.assert_allclose(det.precision_, precision, rtol=1e-8, atol=1e-8)
    expected = _mahalanobis_by_hand(data["test"], means, precision)
    np.testing.assert_allclose(det.score_samples(data["test"]), expected, rtol=1e-7, atol=1e-7)


def test_mahalanobis_with_fewer_images_than_dimensions(data):
    """Unshrunk, the covariance is singular: the pseudo-inverse drops its null space."""
    few = {"fit": data["fit"][::12], "labels": data["labels"][::12]}  # 10 images, 12 dims
    det = _fit(MahalanobisDetector, few, shrinkage=0.0)
    assert np.linalg.matrix_rank(det.covariance_) < 12
    means, _, _ = _class_statistics(few)
    precision = pinvh(det.covariance_)
    np.testing.assert_allclose(det.precision_, precision, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        det.score_samples(data["test"]), _mahalanobis_by_hand(data["test"], means, precision),
        rtol=1e-6, atol=1e-6,
    )
    assert np.isfinite(_fit(MahalanobisDetector, few).score_samples(data["test"])).all()


def test_mahalanobis_blocks_do_not_change_the_fit(data):
    whole = _fit(MahalanobisDetector, data)
    with config_context(working_memory=12 * 8 * 7 / 2**20):  # 7 images per block
        blocked = _fit(MahalanobisDetector, data)
    np.testing.assert_allclose(blocked.covariance_, whole.covariance_, atol=1e-13)
    np.testing.assert_allclose(blocked.shrinkage_, whole.shrinkage_, rtol=1e-10)


# ------------------------------------------------------------------- MSP


def test_msp_matches_its_formula(data):
    det = _fit(MSPDetector, data, C=2.0)
    logits = _unit(data["test"]) @ det.coef_.T.astype(np.float64) + det.intercept_
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    scores = det.score_samples(data["test"])
    np.testing.assert_allclose(np.exp(scores), softmax.max(axis=1), rtol=1e-6)
    probe = LogisticRegression(C=2.0, max_iter=1000).fit(data["fit"], data["labels"])
    np.testing.assert_allclose(np.exp(scores), probe.predict_proba(data["test"]).max(axis=1),
                               rtol=1e-4)
    np.testing.assert_array_equal(det.classes_, probe.classes_)
    assert det.n_iter_ >= 1


def test_msp_two_classes(data):
    keep = data["labels"] != "fox"
    det = MSPDetector(encoder="precomputed").fit(data["fit"][keep], data["labels"][keep])
    assert det.coef_.shape == (1, 12)
    z = _unit(data["test"]) @ det.coef_[0].astype(np.float64) + det.intercept_[0]
    expected = np.maximum(1 / (1 + np.exp(-z)), 1 / (1 + np.exp(z)))
    np.testing.assert_allclose(np.exp(det.score_samples(data["test"])), expected, rtol=1e-6)


def test_msp_log_scores_do_not_saturate(data):
    det = _fit(MSPDetector, data)
    det.coef_ = det.coef_ * 200.0  # a very confident classifier: probabilities round to 1
    scores = det.score_samples(data["test"][:30])
    assert np.isfinite(scores).all()
    assert (np.exp(scores) == 1.0).sum() > 5
    assert len(np.unique(scores)) == 30


def test_msp_needs_two_classes(data):
    with pytest.raises(ValueError, match=r"at least two classes.*'cat'"):
        MSPDetector(encoder="precomputed").fit(data["fit"][:5], data["labels"][:5])


# ---------------------------------------------------------------- shared


@pytest.mark.parametrize("cls", [MSPDetector, MahalanobisDetector])
def test_class_labels_are_required_and_checked(data, cls):
    with pytest.raises(ValueError, match="needs the class label of every"):
        cls(encoder="precomputed").fit(data["fit"])
    with pytest.raises(ValueError, match=r"y has shape \(3,\) but X has 120 images"):
        cls(encoder="precomputed").fit(data["fit"], ["a", "b", "c"])


@pytest.mark.parametrize(
    ("cls", "threshold"),
    [(MSPDetector, float(np.log(0.8))), (MahalanobisDetector, -20.0), (KNNDetector, -0.3)],
)
def test_threshold_is_a_cut_off_on_the_score(data, cls, threshold):
    det = _fit(cls, data, threshold=threshold)
    assert det.offset_ == threshold
    scores = det.score_samples(data["test"])
    np.testing.assert_allclose(det.decision_function(data["test"]), scores - threshold)
    np.testing.assert_array_equal(det.predict(data["test"]),
                                  np.where(scores >= threshold, 1, -1))
    assert not hasattr(det, "predict_proba")


def test_msp_threshold_of_log_one_half_is_a_largest_probability_of_one_half(data):
    det = _fit(MSPDetector, data, threshold=float(np.log(0.5)))
    assert det.offset_ == pytest.approx(np.log(0.5))
    largest = np.exp(det.score_samples(data["test"]))
    np.testing.assert_array_equal(det.predict(data["test"]) == 1, largest >= 0.5 - 1e-12)


@pytest.mark.parametrize("cls", DETECTORS)
def test_a_positive_threshold_is_refused(data, cls):
    with pytest.raises(ValueError, match=r"'threshold' parameter .* range \(-inf, 0\]"):
        _fit(cls, data, threshold=0.5)


@pytest.mark.parametrize("cls", DETECTORS)
def test_set_threshold_keeps_the_share_of_held_out_images_it_was_taken_for(data, cls):
    det = _fit(cls, data)
    held_out = data["test"][:30]  # in-distribution rows
    cut = -threshold_at_tpr(-det.score_samples(held_out), 0.9)
    assert det.set_threshold(cut) is det
    assert det.threshold == cut == det.offset_
    kept = det.predict(held_out) == 1
    assert kept.mean() >= 0.9
    assert kept[np.argmin(np.abs(det.score_samples(held_out) - cut))]  # the one at the cut


@pytest.mark.parametrize("cls", DETECTORS)
def test_unfitted_wrong_width_and_no_fit_predict(data, cls):
    with pytest.raises(NotFittedError):
        cls(encoder="precomputed").score_samples(data["test"])
    det = _fit(cls, data)
    assert det.n_features_in_ == 12 and det.embedding_dim_ == 12
    assert det.encoder_identity_ is None
    with pytest.raises(ValueError, match="width 8"):
        det.score_samples(np.ones((2, 8)))
    assert not hasattr(det, "fit_predict")


@pytest.mark.parametrize("cls", DETECTORS)
def test_separate_in_from_out_and_pickle(data, cls):
    det = _fit(cls, data)
    scores = det.score_samples(data["test"])
    # MSP is the weakest: a linear classifier is also confident far from its data.
    assert auroc(np.r_[np.ones(30), np.zeros(30)], scores) > (0.7 if cls is MSPDetector else 0.9)
    restored = pickle.loads(pickle.dumps(clone(det).fit(data["fit"], data["labels"])))
    np.testing.assert_allclose(restored.score_samples(data["test"]), scores, rtol=1e-6)


@pytest.mark.parametrize("cls", DETECTORS)
def test_fit_on_images_with_an_encoder(cls, tiny_clip, sample_arrays, tmp_path):
    from PIL import Image

    paths = []
    for name in ("china", "flower", "astronaut", "coffee"):
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(sample_arrays[name]).save(paths[-1])
    params = {"n_neighbors": 2} if cls is KNNDetector else {}
    det = cls(encoder=tiny_clip, **params).fit(paths, ["a", "a", "b", "b"])
    assert det.encoder_identity_ == tiny_clip.identity and det.embedding_dim_ == tiny_clip.dim
    scores = det.score_samples([Image.fromarray(sample_arrays["china"]), paths[3]])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    np.testing.assert_allclose(det.score_samples(det.embed(paths[:1])), scores[:1], rtol=1e-5)


@pytest.mark.parametrize(
    ("cls", "params"),
    [(MSPDetector, {"C": 0}), (MahalanobisDetector, {"shrinkage": 1.5}),
     (MahalanobisDetector, {"shrinkage": "oas"}), (KNNDetector, {"n_neighbors": 0})],
)
def test_parameter_validation(data, cls, params):
    with pytest.raises(ValueError, match=next(iter(params))):
        _fit(cls, data, **params)
