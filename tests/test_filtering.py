from __future__ import annotations

import numpy as np
import pytest
from _synthetic import make_task_world, unit

from skhftt import HFTTDetector
from skhftt.removal.rules import RemovalRule, unwanted_scores
from skhftt.removal.thresholds import conformal_fdr


@pytest.fixture(scope="module")
def setup():
    data = make_task_world(seed=11, n_world=800)
    det = HFTTDetector(encoder="precomputed", random_state=0).fit(data["world"], data["prompts"])
    rng = np.random.default_rng(3)
    centres = data["centres"]

    def clean(n):
        return unit(centres[rng.integers(0, 4, n)] + 0.6 * rng.normal(size=(n, 32)) / 5.6)

    return det, clean, lambda n: unit(rng.normal(size=(n, 32)))


def test_orientation(setup):
    det, clean, ood = setup
    X = np.vstack([clean(5), ood(5)])
    np.testing.assert_allclose(unwanted_scores(det, X), -det.decision_function(X))
    np.testing.assert_allclose(unwanted_scores(det, X, unwanted="match"),
                               det.decision_function(X))


@pytest.mark.parametrize("unwanted", ["mismatch", "match"])
def test_probability_rule_matches_predict(setup, unwanted):
    det, clean, ood = setup
    X = np.vstack([clean(20), ood(20)])
    removed = RemovalRule(det, method="probability", unwanted=unwanted).remove(X)
    expected = det.predict(X) == (-1 if unwanted == "mismatch" else 1)
    np.testing.assert_array_equal(removed, expected)


def test_tpr_rule_keeps_the_share_of_clean_samples(setup):
    det, clean, _ = setup
    rule = RemovalRule(det, method="tpr", tpr=0.9).calibrate(clean(500))
    assert np.mean(~rule.remove(clean(2000))) == pytest.approx(0.9, abs=0.03)


def test_fraction_rule_removes_the_share(setup):
    det, clean, ood = setup
    X = np.vstack([clean(90), ood(10)])
    removed = RemovalRule(det, method="fraction", fraction=0.1).remove(X)
    assert removed.sum() == 10
    assert removed[90:].sum() >= 6  # most removals are the out-of-task samples


def test_fdr_rule_is_conformal_fdr_on_oriented_scores(setup):
    det, clean, ood = setup
    calibration, X = clean(400), np.vstack([clean(60), ood(20)])
    rule = RemovalRule(det, method="fdr", alpha=0.2).calibrate(calibration)
    expected = conformal_fdr(-det.decision_function(calibration), -det.decision_function(X), 0.2)
    np.testing.assert_array_equal(rule.remove(X), expected)
    assert rule.remove(X)[60:].mean() > 0.5


def test_errors_are_named(setup):
    det, _, ood = setup
    with pytest.raises(ValueError, match="method must be one of"):
        RemovalRule(det, method="magic")
    with pytest.raises(ValueError, match="unwanted must be 'match' or 'mismatch'; got 'in'"):
        RemovalRule(det, unwanted="in")
    with pytest.raises(ValueError, match=r"needs clean calibration samples: call calibrate"):
        RemovalRule(det, method="fdr").remove(ood(3))
