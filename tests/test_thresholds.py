from __future__ import annotations

import numpy as np
import pytest

from skhftt.removal.thresholds import (
    benjamini_hochberg,
    conformal_fdr,
    conformal_pvalues,
    threshold_at_tpr,
    threshold_for_fraction,
)


def test_conformal_pvalues_by_hand():
    calibration = [1.0, 2.0, 3.0, 4.0]
    # #{c >= s}: 4, 2 (3 and 4; tie counts), 0 -> (1 + k) / 5
    np.testing.assert_allclose(conformal_pvalues(calibration, [0.0, 3.0, 9.0]),
                               [5 / 5, 3 / 5, 1 / 5])


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.2, 0.5]
    # sorted: 0.01 <= .1*1/5=.02 yes; .03 <= .04 yes; .04 <= .06 yes; .2 <= .08 no; .5 <= .1 no
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.1), [True, True, True, False, False])
    # step-up: a later passing rank rejects all smaller p-values
    np.testing.assert_array_equal(benjamini_hochberg([0.03, 0.035], 0.05), [True, True])
    assert not benjamini_hochberg([0.5, 0.9], 0.05).any()


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_conformal_fdr_controls_false_discoveries(alpha):
    """Observed FDR over 400 repetitions stays within alpha + 0.02."""
    rng = np.random.default_rng(int(alpha * 100))
    n_cal, n_clean, n_bad, reps = 1000, 180, 20, 400
    fdp, power = [], []
    for _ in range(reps):
        calibration = rng.normal(size=n_cal)
        scores = np.r_[rng.normal(size=n_clean), rng.normal(loc=3.0, size=n_bad)]
        removed = conformal_fdr(calibration, scores, alpha)
        false = removed[:n_clean].sum()
        fdp.append(false / max(removed.sum(), 1))
        power.append(removed[n_clean:].mean())
    fdr, mean_power = float(np.mean(fdp)), float(np.mean(power))
    print(f"alpha={alpha}: observed FDR={fdr:.4f}, power={mean_power:.3f}")
    assert fdr <= alpha + 0.02
    assert mean_power > 0.3  # the shifted samples are found, not just nothing removed


def test_conformal_fdr_removes_nothing_without_evidence():
    rng = np.random.default_rng(0)
    removed = conformal_fdr(rng.normal(size=50), rng.normal(size=500), alpha=0.05)
    assert removed.sum() <= 2


def test_threshold_at_tpr_keeps_the_share():
    rng = np.random.default_rng(1)
    clean = rng.normal(size=1001)
    threshold = threshold_at_tpr(clean, 0.95)
    assert np.mean(clean <= threshold) >= 0.95
    assert np.mean(clean < threshold) < 0.95
    assert threshold_at_tpr([3.0, 1.0, 2.0], tpr=1.0) == 3.0


def test_threshold_for_fraction_removes_the_share():
    scores = np.arange(100.0)
    threshold = threshold_for_fraction(scores, 0.1)
    assert (scores > threshold).sum() == 10


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: conformal_fdr([1.0], [1.0], 0.0), r"alpha must be a number in \(0, 1\); got 0.0"),
        (lambda: conformal_fdr([1.0], [1.0], 1.5), "alpha must be"),
        (lambda: conformal_fdr([], [1.0], 0.1), "calibration_scores is empty"),
        (lambda: conformal_fdr([1.0, np.nan], [1.0], 0.1), "non-finite score at index 1"),
        (lambda: conformal_fdr([[1.0]], [1.0], 0.1), "1-D array"),
        (lambda: threshold_at_tpr([1.0], 0.0), r"tpr must be a number in \(0, 1\]"),
        (lambda: threshold_for_fraction([1.0], 1.0), "fraction must be"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
