"""Removal thresholds a data team can defend.

Every function here takes scores oriented **higher = more unwanted** — for an
out-of-distribution job that is ``-detector.decision_function(X)``, for a
hateful-content job ``detector.decision_function(X)`` — and returns either a
threshold or a boolean removal mask.

* :func:`threshold_at_tpr` — keep a target share of clean calibration samples.
* :func:`threshold_for_fraction` — remove a fixed share of the data
  (DataComp-style filtering).
* :func:`conformal_pvalues` and :func:`conformal_fdr` — conformal selection
  with false-discovery-rate control: remove by Benjamini–Hochberg so that the
  expected share of clean samples among the removed ones is at most ``alpha``.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

__all__ = [
    "benjamini_hochberg",
    "conformal_fdr",
    "conformal_pvalues",
    "threshold_at_tpr",
    "threshold_for_fraction",
]


def _scores(values: object, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores; got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty: expected at least one score.")
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name} contains a non-finite score at index {bad}.")
    return array


def _fraction(value: object, name: str, *, closed_right: bool = False) -> float:
    upper_ok = value <= 1 if closed_right else value < 1
    if not isinstance(value, Real) or not (0 < value and upper_ok):
        interval = "(0, 1]" if closed_right else "(0, 1)"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}.")
    return float(value)


def threshold_at_tpr(clean_scores: object, tpr: float = 0.95) -> float:
    """Smallest threshold that keeps at least ``tpr`` of the clean samples.

    Samples with a score strictly above the threshold are removed.

    Parameters
    ----------
    clean_scores : array-like of shape (n,)
        Scores of clean calibration samples (higher = more unwanted).
    tpr : float, default=0.95
        Share of clean samples to keep, in (0, 1].

    Returns
    -------
    float
        The ``ceil(tpr * n)``-th smallest clean score.

    Examples
    --------
    >>> threshold_at_tpr([0.1, 0.2, 0.3, 0.4], tpr=0.75)
    0.3
    """
    scores = np.sort(_scores(clean_scores, "clean_scores"))
    rank = int(np.ceil(_fraction(tpr, "tpr", closed_right=True) * scores.size))
    return float(scores[rank - 1])


def threshold_for_fraction(scores: object, fraction: float) -> float:
    """Threshold above which ``fraction`` of ``scores`` lie (ties kept).

    Parameters
    ----------
    scores : array-like of shape (n,)
        Scores of the data to filter (higher = more unwanted).
    fraction : float
        Share to remove, in (0, 1).

    Returns
    -------
    float
        Removing ``scores > threshold`` removes ``floor(fraction * n)``
        samples, or fewer where ties straddle the threshold.

    Examples
    --------
    >>> threshold_for_fraction([5.0, 1.0, 3.0, 2.0], 0.5)
    2.0
    """
    ordered = np.sort(_scores(scores, "scores"))
    n_removed = int(np.floor(_fraction(fraction, "fraction") * ordered.size))
    return float(ordered[ordered.size - n_removed - 1])


def conformal_pvalues(calibration_scores: object, scores: object) -> np.ndarray:
    """Conformal p-values of new samples against clean calibration samples.

    ``p_j = (1 + #{i : c_i >= s_j}) / (n + 1)``. When the calibration samples
    and a clean new sample are exchangeable, its p-value is super-uniform:
    ``P(p_j <= t) <= t``. Ties count against removal, which keeps this true.

    Parameters
    ----------
    calibration_scores : array-like of shape (n,)
        Scores of clean samples not used to fit the detector.
    scores : array-like of shape (m,)
        Scores of the samples to test.

    Returns
    -------
    ndarray of shape (m,)
        Values in ``[1 / (n + 1), 1]``; small means unlike the clean samples.
    """
    calibration = np.sort(_scores(calibration_scores, "calibration_scores"))
    tested = _scores(scores, "scores")
    at_least = calibration.size - np.searchsorted(calibration, tested, side="left")
    return (1.0 + at_least) / (calibration.size + 1.0)


def benjamini_hochberg(pvalues: object, alpha: float) -> np.ndarray:
    """Boolean rejection mask of the Benjamini–Hochberg procedure at level alpha.

    Rejects the ``k`` smallest p-values, ``k`` the largest index with
    ``p_(k) <= alpha * k / m``.
    """
    p = _scores(pvalues, "pvalues")
    level = _fraction(alpha, "alpha")
    order = np.argsort(p, kind="stable")
    passing = np.flatnonzero(p[order] <= level * np.arange(1, p.size + 1) / p.size)
    rejected = np.zeros(p.size, dtype=bool)
    if passing.size:
        rejected[order[: passing[-1] + 1]] = True
    return rejected


def conformal_fdr(calibration_scores: object, scores: object, alpha: float) -> np.ndarray:
    """Which samples to remove so that the false-discovery rate is at most alpha.

    Computes conformal p-values of ``scores`` against clean
    ``calibration_scores`` and applies Benjamini–Hochberg. If the calibration
    samples are clean and exchangeable with the clean samples among
    ``scores``, the expected share of clean samples among those removed is at
    most ``alpha`` (Bates et al., 2023; Jin & Candès, 2023).

    Parameters
    ----------
    calibration_scores : array-like of shape (n,)
        Scores of clean samples, held out from anything used to fit or tune
        the detector (higher = more unwanted).
    scores : array-like of shape (m,)
        Scores of the samples to filter, same orientation.
    alpha : float
        Target false-discovery rate, in (0, 1).

    Returns
    -------
    ndarray of shape (m,), bool
        True for the samples to remove.

    Notes
    -----
    The guarantee holds in expectation over calibration and test draws; it
    needs the calibration set to be clean. With ``n`` calibration samples no
    p-value is below ``1 / (n + 1)``, so nothing can be removed unless
    ``alpha * k / m >= 1 / (n + 1)`` for some ``k``: use a calibration set of
    at least ``m / alpha`` samples for full power on ``m`` samples at a time,
    or filter in chunks.

    References
    ----------
    .. [1] S. Bates, E. Candès, L. Lei, Y. Romano, M. Sesia, "Testing for
       outliers with conformal p-values", Annals of Statistics, 2023.
    .. [2] Y. Jin, E. Candès, "Selection by prediction with conformal
       p-values", JMLR, 2023.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.normal(size=1000)
    >>> new = np.r_[rng.normal(size=95), rng.normal(loc=6.0, size=5)]
    >>> removed = conformal_fdr(clean, new, alpha=0.1)
    >>> int(removed[95:].sum()), int(removed[:95].sum())  # unwanted, clean removed
    (5, 2)
    """
    return benjamini_hochberg(conformal_pvalues(calibration_scores, scores), alpha)
