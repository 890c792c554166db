from __future__ import annotations

import pickle

import numpy as np
import pytest
from _synthetic import make_task_world
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skhftt import HFTTDetector
from skhftt.detectors import (
    EnergyDetector,
    MaxLogitDetector,
    MCMDetector,
    NegLabelDetector,
)
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.embedding.inputs import Texts
from skhftt.evaluation.metrics import auroc

BASELINES = [MCMDetector, MaxLogitDetector, EnergyDetector, NegLabelDetector]


@pytest.fixture(scope="module")
def data():
    return make_task_world(seed=5)


@pytest.fixture(scope="module")
def X_test(data):
    return np.vstack([data["in_test"], data["out_test"]])


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _cosines(data, X):
    """Direct cosine similarities of the test rows to the class-mean task columns."""
    columns = _unit(data["prompts"].reshape(4, 3, -1).mean(axis=1))
    return _unit(X) @ columns.T


def _classes(data):
    return {f"class {c}": data["prompts"][3 * c : 3 * c + 3] for c in range(4)}


@pytest.mark.parametrize("temperature", [1.0, 0.1])
def test_mcm_matches_its_formula(data, X_test, temperature):
    det = MCMDetector(encoder="precomputed", temperature=temperature).fit(None, _classes(data))
    logits = _cosines(data, X_test) / temperature
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(det.score_samples(X_test), softmax.max(axis=1), rtol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.01])
def test_max_logit_matches_its_formula(data, X_test, temperature):
    det = MaxLogitDetector(encoder="precomputed", temperature=temperature)
    det.fit(None, _classes(data))
    expected = _cosines(data, X_test).max(axis=1) / temperature
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.05])
def test_energy_matches_its_formula(data, X_test, temperature):
    det = EnergyDetector(encoder="precomputed", temperature=temperature).fit(None, _classes(data))
    expected = temperature * np.log(np.exp(_cosines(data, X_test) / temperature).sum(axis=1))
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=1e-5)


def _neglabel_by_hand(data, X, negatives, n_groups, temperature):
    """The NegLabel score S, straight from the paper's formula, in float64."""
    positive = np.exp(_cosines(data, X) / temperature).sum(axis=1)
    negative = np.exp(_unit(X) @ _unit(negatives).T / temperature)
    groups = np.array_split(np.arange(len(negatives)), n_groups)
    return np.mean(
        [positive / (positive + negative[:, group].sum(axis=1)) for group in groups], axis=0
    )


@pytest.mark.parametrize("n_groups", [1, 3])
def test_neglabel_matches_its_formula(data, X_test, n_groups):
    det = NegLabelDetector(
        encoder="precomputed", n_negatives=60, n_groups=n_groups, temperature=0.2,
        random_state=0,
    ).fit(data["world"], _classes(data))
    # Mining: 95th percentile of each world text's similarity to the 4 task
    # columns; the 60 lowest are the negatives.
    closeness = np.percentile(_cosines(data, data["world"]), 95, axis=1)
    assert set(det.negative_indices_) == set(np.argsort(closeness)[:60])
    np.testing.assert_allclose(det.negative_columns_, data["world"][det.negative_indices_],
                               rtol=1e-6)
    expected = _neglabel_by_hand(data, X_test, det.negative_columns_, n_groups, 0.2)
    np.testing.assert_allclose(expit(det.score_samples(X_test)), expected, rtol=1e-6)


def test_neglabel_log_odds_do_not_saturate(data, X_test):
    det = NegLabelDetector(encoder="precomputed", n_negatives=0.1, n_groups=5, random_state=0)
    det.fit(data["world"], _classes(data))
    scores = det.score_samples(X_test)
    assert np.isfinite(scores).all()
    # At T = 0.01 S itself rounds to 1.0 for most in-distribution rows; the
    # log-odds still rank them.
    assert (expit(scores[:50]) == 1.0).sum() > 10
    assert len(np.unique(scores[:50])) == 50
    assert det.offset_ == 0.0
    np.testing.assert_array_equal(det.predict(X_test), np.where(scores >= 0, 1, -1))


def test_neglabel_threshold_is_a_value_of_s_and_predict_proba_gives_s(data, X_test):
    det = NegLabelDetector(encoder="precomputed", n_negatives=60, n_groups=3, temperature=0.2,
                           threshold=0.7, random_state=0).fit(data["world"], _classes(data))
    expected = _neglabel_by_hand(data, X_test, det.negative_columns_, 3, 0.2)
    proba = det.predict_proba(X_test)
    np.testing.assert_allclose(proba[:, 1], expected, rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert det.offset_ == pytest.approx(np.log(0.7 / 0.3))
    np.testing.assert_array_equal(det.predict(X_test) == 1, proba[:, 1] >= 0.7)
    assert 0 < (det.predict(X_test) == 1).sum() < len(X_test)


def test_neglabel_grouping_is_seeded(data):
    def fit(seed, n_groups=4):
        return NegLabelDetector(
            encoder="precomputed", n_negatives=40, n_groups=n_groups, random_state=seed
        ).fit(data["world"], data["prompts"])

    np.testing.assert_array_equal(fit(0).negative_indices_, fit(0).negative_indices_)
    assert not np.array_equal(fit(0).negative_indices_, fit(1).negative_indices_)
    # Without grouping the order is by distance, farthest first, whatever the seed.
    np.testing.assert_array_equal(fit(0, 1).negative_indices_, fit(1, 1).negative_indices_)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_negatives": 601}, "n_negatives=601 exceeds the 600 texts"),
        ({"n_negatives": 10, "n_groups": 11}, "n_groups=11 is larger than the 10"),
        ({"n_negatives": 1.5}, "n_negatives"),
        ({"percentile": 101}, "percentile"),
    ],
)
def test_neglabel_bad_parameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        NegLabelDetector(encoder="precomputed", **params).fit(data["world"], data["prompts"])


def test_neglabel_precomputed_needs_a_world(data):
    with pytest.raises(ValueError, match="no bundled world corpus"):
        NegLabelDetector(encoder="precomputed").fit(None, data["prompts"])


@pytest.mark.parametrize("cls", [MCMDetector, MaxLogitDetector, EnergyDetector])
def test_similarity_baselines_offset_is_threshold(data, X_test, cls):
    det = cls(encoder="precomputed", threshold=0.3).fit(None, data["prompts"])
    assert det.offset_ == 0.3
    scores = det.score_samples(X_test)
    np.testing.assert_allclose(det.decision_function(X_test), scores - 0.3)
    np.testing.assert_array_equal(det.predict(X_test), np.where(scores >= 0.3, 1, -1))
    assert not hasattr(det, "predict_proba")
    with pytest.raises(AttributeError) as info:
        det.predict_proba(X_test)
    assert "no predict_proba: its scores are not" in str(info.value.__cause__)


@pytest.mark.parametrize("cls", [MCMDetector, MaxLogitDetector, EnergyDetector])
def test_an_input_exactly_at_the_threshold_matches_the_task(data, X_test, cls):
    det = cls(encoder="precomputed").fit(None, data["prompts"])
    scores = det.score_samples(X_test)
    det.set_threshold(float(scores[3]))
    assert det.decision_function(X_test)[3] == 0.0
    predicted = det.predict(X_test)
    assert predicted[3] == 1
    np.testing.assert_array_equal(predicted, np.where(scores >= scores[3], 1, -1))


def _fit(cls, X, y, **params):
    extra = {"n_negatives": 0.5, "n_groups": 2, "random_state": 0}
    if cls is not NegLabelDetector:
        extra = {}
    return cls(**extra, **params).fit(X, y)


@pytest.mark.parametrize("cls", BASELINES)
def test_pu_labels_equal_explicit_form(data, X_test, cls):
    X = np.vstack([data["world"], data["prompts"]])
    y = np.r_[np.zeros(len(data["world"])), np.ones(len(data["prompts"]))].astype(int)
    pu = _fit(cls, X, y, encoder="precomputed")
    explicit = clone(pu).fit(data["world"], data["prompts"])
    np.testing.assert_array_equal(pu.score_samples(X_test), explicit.score_samples(X_test))
    assert pu.n_features_in_ == 32 and pu.encoder_identity_ is None


@pytest.mark.parametrize("cls", BASELINES)
def test_texts_with_an_encoder(cls):
    encoder = HashingEncoder(dim=48)
    world = [f"a photo of a {w}" for w in "car tree house road boat lamp chair dog".split()]
    det = _fit(cls, world, ["apple", "banana"], encoder=encoder, templates=["a ripe {}"])
    assert det.task_names_ == ["apple", "banana"]
    assert det.encoder_identity_ == "hashing:48"
    scores = det.score_samples(Texts(["a ripe apple", "a fast train"]))
    assert scores[0] > scores[1]
    restored = pickle.loads(pickle.dumps(det))
    np.testing.assert_allclose(restored.score_samples(det.embed(Texts(["a ripe apple"]))),
                               scores[:1], rtol=1e-6)


@pytest.mark.parametrize("cls", [MCMDetector, MaxLogitDetector, EnergyDetector])
def test_zero_shot_baselines_embed_world_texts_only_to_set_the_automatic_cut(cls,
                                                                             counting_encoder):
    det = cls(encoder=counting_encoder, threshold=0.5).fit(["never embedded"], ["a task text"])
    assert "never embedded" not in counting_encoder.counts()
    assert det.task_columns_.shape == (1, counting_encoder.dim)
    world = [f"world text {i}" for i in range(6000)]
    cls(encoder=counting_encoder).fit(world, ["a task text"])
    embedded = [text for text in counting_encoder.counts() if text.startswith("world text")]
    assert len(embedded) == 5000  # a sample, not the corpus


@pytest.mark.parametrize("cls", BASELINES)
def test_unfitted_and_wrong_width(cls, data):
    with pytest.raises(NotFittedError):
        cls(encoder="precomputed").score_samples(data["in_test"])
    det = _fit(cls, data["world"], data["prompts"], encoder="precomputed")
    with pytest.raises(ValueError, match="width 8"):
        det.score_samples(np.ones((2, 8)))
    assert not hasattr(det, "fit_predict")


def test_one_comparison_loop_with_hftt(data, X_test):
    y = np.r_[np.ones(50), np.zeros(50)]
    detectors = {
        "HFTT": HFTTDetector(encoder="precomputed", random_state=0),
        "MCM": MCMDetector(encoder="precomputed"),
        "MaxLogit": MaxLogitDetector(encoder="precomputed"),
        "Energy": EnergyDetector(encoder="precomputed"),
        "NegLabel": NegLabelDetector(encoder="precomputed", n_negatives=0.2, n_groups=10,
                                     random_state=0),
    }
    results = {
        name: auroc(y, clone(det).fit(data["world"], _classes(data)).decision_function(X_test))
        for name, det in detectors.items()
    }
    assert min(results.values()) > 0.9, results
