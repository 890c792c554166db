from __future__ import annotations

import copy

import numpy as np
import pytest
from _synthetic import make_task_world, unit

from skhftt import HFTTDetector
from skhftt.detectors import KNNDetector, MCMDetector
from skhftt.removal.rules import RemovalRule, removal_mask, unwanted_scores
from skhftt.removal.thresholds import conformal_fdr


def job(detector, unwanted):
    """A copy of a fitted detector made for the job ``unwanted`` (same scores)."""
    return copy.deepcopy(detector).set_params(unwanted=unwanted)


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
    np.testing.assert_allclose(unwanted_scores(job(det, "match"), X),
                               det.decision_function(X))


@pytest.mark.parametrize("method", ["probability", "score"])
@pytest.mark.parametrize("unwanted", ["mismatch", "match"])
def test_the_detector_own_threshold_removes_what_predict_puts_on_the_unwanted_side(
        setup, method, unwanted):
    det, clean, ood = setup
    X = np.vstack([clean(20), ood(20)])
    rule = RemovalRule(job(det, unwanted), method=method)
    expected = det.predict(X) == (-1 if unwanted == "mismatch" else 1)
    np.testing.assert_array_equal(rule.remove(X), expected)
    np.testing.assert_array_equal(rule.remove_scores(unwanted_scores(rule.detector, X)),
                                  expected)
    assert 0 < expected.sum() < len(X)


@pytest.mark.parametrize("unwanted", ["mismatch", "match"])
def test_probability_rule_applies_its_own_probability(setup, unwanted):
    det, clean, ood = setup
    X = np.vstack([clean(20), ood(20)])
    rule = RemovalRule(job(det, unwanted), method="probability", threshold=0.999)
    matches = det.predict_proba(X)[:, 1] >= 0.999
    expected = matches if unwanted == "match" else ~matches
    np.testing.assert_array_equal(rule.remove(X), expected)
    np.testing.assert_array_equal(rule.remove_scores(unwanted_scores(rule.detector, X)),
                                  expected)
    assert (expected != (det.predict(X) == (1 if unwanted == "match" else -1))).any()


@pytest.mark.parametrize("unwanted", ["mismatch", "match"])
def test_score_rule_cuts_score_samples_and_an_input_at_the_cut_matches(setup, unwanted):
    det, clean, ood = setup
    X = np.vstack([clean(20), ood(20)])
    scores = det.score_samples(X)
    cut = float(scores[7])
    removed = RemovalRule(job(det, unwanted), method="score", threshold=cut).remove(X)
    matches = scores >= cut
    np.testing.assert_array_equal(removed, matches if unwanted == "match" else ~matches)
    assert removed[7] == (unwanted == "match")


def test_score_rule_reaches_log_odds_no_probability_can_hold(setup):
    det, _, _ = setup
    X = det.head_.task_columns  # the task's own columns: log-odds of 30 to 60
    scores = det.score_samples(X)
    assert (det.predict_proba(X)[scores > 37, 1] == 1.0).all()  # rounded: all tie
    removed = RemovalRule(job(det, "match"), method="score", threshold=45.0).remove(X)
    np.testing.assert_array_equal(removed, scores >= 45.0)
    assert 0 < removed.sum() < len(X)


def test_probability_rule_needs_predict_proba(setup):
    det, _, _ = setup
    zero_shot = MCMDetector(encoder="precomputed").fit(None, det.head_.task_columns)
    with pytest.raises(ValueError, match=r"method='probability' needs a detector with "
                                         r"predict_proba.*MCMDetector.*method='score'"):
        RemovalRule(zero_shot, method="probability")
    X = det.head_.task_columns
    rule = RemovalRule(job(zero_shot, "match"), method="score", threshold=0.3)
    np.testing.assert_array_equal(rule.remove(X), zero_shot.score_samples(X) >= 0.3)


def test_a_rule_follows_the_detector_threshold(setup):
    _, clean, _ = setup
    references = clean(30)
    knn = KNNDetector(encoder="precomputed", n_neighbors=2).fit(references)
    rule = RemovalRule(knn, method="score")
    X = clean(40)
    knn.set_threshold(float(np.median(knn.score_samples(X))))
    np.testing.assert_array_equal(rule.remove(X), knn.predict(X) == -1)
    assert 0 < rule.remove(X).sum() < len(X)


def test_removal_mask_at_the_threshold_follows_predict():
    values = np.array([-1.0, 0.0, 1.0])  # oriented decision values
    for method in ("score", "probability"):
        np.testing.assert_array_equal(
            removal_mask(values, method=method, unwanted="match"), [False, True, True])
        # mismatch: values are -decision; 0 is decision 0, which predict calls +1.
        np.testing.assert_array_equal(
            removal_mask(values, method=method, unwanted="mismatch"), [False, False, True])


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
    with pytest.raises(ValueError, match="unwanted must be 'mismatch' or 'match'; got 'in'"):
        RemovalRule(det, unwanted="in")
    with pytest.raises(ValueError, match=r"needs clean calibration samples: call calibrate"):
        RemovalRule(det, method="fdr").remove(ood(3))
    with pytest.raises(ValueError, match="threshold applies to method='score' or"):
        RemovalRule(det, method="fdr", threshold=0.5)
    with pytest.raises(ValueError, match=r"a probability in \(0, 1\); got 1.5"):
        RemovalRule(det, method="probability", threshold=1.5)
    with pytest.raises(ValueError, match="a finite number; got nan"):
        RemovalRule(det, method="score", threshold=float("nan"))
    with pytest.raises(ValueError, match="unwanted must be"):
        removal_mask([0.0], method="score", unwanted="in")


@pytest.mark.parametrize("unwanted", ["mismatch", "match"])
def test_every_default_removes_the_side_of_the_detector_job(unwanted):
    data = make_task_world(seed=5, n_world=600)
    det = HFTTDetector(encoder="precomputed", unwanted=unwanted, random_state=0).fit(
        data["world"], data["prompts"])
    X = np.vstack([data["in_test"], data["out_test"]])
    matches, scores = det.predict(X) == 1, det.score_samples(X)
    assert 0 < matches.sum() < len(X)
    # A remove job takes away what matches its task; a keep job what does not.
    for method in ("probability", "score"):
        np.testing.assert_array_equal(RemovalRule(det, method=method).remove(X),
                                      matches if unwanted == "match" else ~matches)
    removed = RemovalRule(det, method="fraction", fraction=0.5).remove(X)
    assert removed.sum() == len(X) // 2
    higher, lower = (removed, ~removed) if unwanted == "match" else (~removed, removed)
    assert scores[higher].min() >= scores[lower].max()


@pytest.mark.parametrize("unwanted", ["mismatch", "match"])
def test_a_side_that_contradicts_the_job_is_refused_naming_both(setup, unwanted):
    det = job(setup[0], unwanted)
    other = "match" if unwanted == "mismatch" else "mismatch"
    message = rf"unwanted='{other}' contradicts .* unwanted='{unwanted}'"
    with pytest.raises(ValueError, match=message):
        RemovalRule(det, method="fraction", unwanted=other)
    with pytest.raises(ValueError, match=message):
        unwanted_scores(det, det.head_.task_columns, unwanted=other)
    assert RemovalRule(det, method="fraction", unwanted=unwanted).unwanted == unwanted
    # The job changes what is removed, never the scores.
    np.testing.assert_array_equal(det.score_samples(det.head_.task_columns),
                                  setup[0].score_samples(det.head_.task_columns))
