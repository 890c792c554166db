"""NegLabelHFTTDetector and HFTTEnsembleDetector: formulas, the initialisation trap, state."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from _synthetic import make_task_world, unit
from scipy.special import logsumexp

from skhftt import HFTTDetector
from skhftt.corpora import WordNetLemmas
from skhftt.detectors import (
    HFTTEnsembleDetector,
    MCMDetector,
    NegLabelHFTTDetector,
    load_detector,
    zero_shot,
)
from skhftt.embedding.encoders.hashing import HashingEncoder


@pytest.fixture(scope="module")
def data():
    task = make_task_world(n_classes=4, prompts_per_class=3, n_world=400, dim=64, seed=11)
    rng = np.random.default_rng(2)
    # The pool holds near-copies of the world texts: the nearest negative of a
    # world text is at cosine ~1, as real lemma prompts are to world prompts.
    task["pool"] = unit(task["world"] + 0.02 * rng.normal(size=(400, 64)))
    task["test"] = np.vstack([task["in_test"][:30], task["out_test"][:30]])
    return task


def _classes(data):
    return {f"c{c}": data["prompts"][3 * c : 3 * c + 3] for c in range(4)}


def _hybrid(data, **params):
    params = {"encoder": "precomputed", "candidates": {"noun": data["pool"]},
              "n_negatives": 400, "random_state": 0, "device": "cpu", **params}
    return NegLabelHFTTDetector(**params).fit(data["world"], _classes(data))


def test_hybrid_score_is_one_softmax_over_task_negatives_and_trained_columns(data):
    det = _hybrid(data)
    x = unit(data["test"]).astype(np.float64)
    columns = unit(data["prompts"].reshape(4, 3, -1).mean(axis=1)).astype(np.float64)
    out = np.vstack([det.negative_columns_, det.trainable_columns_]).astype(np.float64)
    expected = logsumexp(x @ columns.T / 0.01, axis=1) - logsumexp(x @ out.T / 0.01, axis=1)
    np.testing.assert_allclose(det.score_samples(data["test"]), expected, rtol=1e-4, atol=1e-3)
    assert det.negative_columns_.shape == (400, 64) and det.trainable_columns_.shape == (10, 64)


def test_random_columns_beside_negatives_carry_nothing_and_world_started_ones_do(data):
    naive = _hybrid(data, init="normal")
    warm = _hybrid(data, init="hftt")
    world = _hybrid(data, init="world")
    # N(0, 1) columns sit at cosine ~0 while every world text has a negative at
    # cosine ~1: their share of the out-mass is ~e^-100, they get no gradient
    # and never move. Plain HFTT columns, at moderate cosines, fare no better
    # here; columns started at world texts carry mass and train.
    assert naive.trained_share_ < 1e-6 and warm.trained_share_ < 1e-6
    assert world.trained_share_ > 1e-3


def test_hybrid_is_deterministic(data):
    a, b = _hybrid(data), _hybrid(data)
    np.testing.assert_array_equal(a.trainable_columns_, b.trainable_columns_)
    assert not np.array_equal(a.trainable_columns_,
                              _hybrid(data, random_state=1).trainable_columns_)


def test_hybrid_with_wordnet_saves_without_pickle(data, monkeypatch, tmp_path):
    lemmas = WordNetLemmas(["dog", "violin", "granite", "meadow"], ["noun.animal"] * 4)
    monkeypatch.setattr(zero_shot, "wordnet_lemmas", lambda pos, **_: lemmas)
    encoder = HashingEncoder(dim=32)
    det = NegLabelHFTTDetector(encoder=encoder, n_negatives=0.5, n_embeddings=2,
                               random_state=0, cache_dir=False, device="cpu")
    det.fit(["a red fox", "a wooden chair", "the sea", "a tall tree"], ["cat", "bird"])
    assert all(label.startswith(("the nice ", "This is a ")) for label in det.negative_labels_)
    det.save(tmp_path / "hybrid.safetensors")
    joblib.dump(det, tmp_path / "hybrid.joblib")
    X = unit(np.random.default_rng(0).normal(size=(6, 32)))
    for loaded in (load_detector(tmp_path / "hybrid.safetensors", encoder=encoder),
                   joblib.load(tmp_path / "hybrid.joblib")):
        np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))


def test_hybrid_world_init_needs_enough_world_texts(data):
    with pytest.raises(ValueError, match="init='world'"):
        NegLabelHFTTDetector(encoder="precomputed", candidates={"noun": data["pool"]},
                             init="world", n_embeddings=5, n_negatives=3).fit(
            data["world"][:3], _classes(data))


def _ensemble(data, weight, **params):
    return HFTTEnsembleDetector(encoder="precomputed", mcm_weight=weight, random_state=0,
                                device="cpu", **params).fit(data["world"], _classes(data))


def test_ensemble_matches_its_formula(data):
    det = _ensemble(data, 0.3, calibration_size=100)
    hftt = HFTTDetector(encoder="precomputed", random_state=0, device="cpu").fit(
        data["world"], _classes(data))
    mcm = MCMDetector(encoder="precomputed").fit(None, _classes(data))
    np.testing.assert_array_equal(det.trainable_columns_, hftt.trainable_columns_)
    sample = data["world"][np.sort(np.random.default_rng(0).choice(400, 100, replace=False))]
    parts = []
    for member in (hftt, mcm):
        ref = member.score_samples(sample)
        q1, median, q3 = np.percentile(ref, [25, 50, 75])
        parts.append((member.score_samples(data["test"]) - median) / (q3 - q1))
    np.testing.assert_allclose(det.score_samples(data["test"]), 0.7 * parts[0] + 0.3 * parts[1],
                               rtol=1e-4, atol=1e-4)


def test_ensemble_weight_zero_ranks_as_hftt(data):
    det = _ensemble(data, 0.0)
    hftt = HFTTDetector(encoder="precomputed", random_state=0, device="cpu").fit(
        data["world"], _classes(data))
    np.testing.assert_array_equal(np.argsort(det.score_samples(data["test"]), kind="stable"),
                                  np.argsort(hftt.score_samples(data["test"]), kind="stable"))


def test_ensemble_of_one_task_column_is_hftt_alone(data):
    """MCM's softmax over a single column is always 1: no spread to calibrate on."""
    one = {"only": data["prompts"][:3]}
    det = HFTTEnsembleDetector(encoder="precomputed", random_state=0, device="cpu").fit(
        data["world"], one)
    hftt = HFTTDetector(encoder="precomputed", random_state=0, device="cpu").fit(
        data["world"], one)
    np.testing.assert_array_equal(np.argsort(det.score_samples(data["test"]), kind="stable"),
                                  np.argsort(hftt.score_samples(data["test"]), kind="stable"))
    assert det.calibration_[3] == 1.0 and np.isfinite(det.score_samples(data["test"])).all()


def test_ensemble_round_trips(data, tmp_path):
    det = _ensemble(data, 0.5)
    det.save(tmp_path / "ens.safetensors")
    joblib.dump(det, tmp_path / "ens.joblib")
    for loaded in (load_detector(tmp_path / "ens.safetensors"),
                   joblib.load(tmp_path / "ens.joblib")):
        np.testing.assert_array_equal(loaded.score_samples(data["test"]),
                                      det.score_samples(data["test"]))
    with pytest.raises(ValueError, match="mcm_weight"):
        HFTTEnsembleDetector(encoder="precomputed", mcm_weight=1.5).fit(
            data["world"], _classes(data))
