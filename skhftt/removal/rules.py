"""Decide which images to remove, with a rule a data team can defend.

:class:`RemovalRule` turns a fitted detector's scores into a removal mask by
one of four rules:

* ``"probability"`` — the detector's own threshold (``predict``);
* ``"tpr"`` — keep a target share of clean calibration samples;
* ``"fraction"`` — remove a fixed share of the data being filtered
  (DataComp-style);
* ``"fdr"`` — conformal selection: remove by Benjamini–Hochberg on conformal
  p-values against clean calibration samples, so that the expected share of
  clean samples among those removed is at most ``alpha``.

Which side is unwanted is the caller's choice (``unwanted="mismatch"`` for
out-of-distribution removal, ``"match"`` when the task texts describe the
unwanted content); the rules work on scores oriented "higher = more unwanted".
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skhftt.detectors.base import BaseTextDetector
from skhftt.removal.thresholds import conformal_fdr, threshold_at_tpr, threshold_for_fraction

__all__ = ["RemovalRule", "removal_mask", "unwanted_scores"]

_METHODS = ("probability", "tpr", "fraction", "fdr")
_SIDES = ("match", "mismatch")


def unwanted_scores(
    detector: BaseTextDetector, X: object, *, unwanted: Literal["match", "mismatch"] = "mismatch"
) -> np.ndarray:
    """The detector's decision function, signed so that higher = more unwanted.

    Parameters
    ----------
    detector : fitted detector
    X : images, texts or embeddings
    unwanted : {"mismatch", "match"}, default="mismatch"
        ``"mismatch"``: inputs outside the task are unwanted (scores are
        ``-decision_function``); ``"match"``: inputs matching the task are.
    """
    if unwanted not in _SIDES:
        raise ValueError(f"unwanted must be 'match' or 'mismatch'; got {unwanted!r}.")
    decision = detector.decision_function(X)
    return decision if unwanted == "match" else -decision


def removal_mask(
    scores: object,
    *,
    method: Literal["probability", "tpr", "fraction", "fdr"],
    unwanted: Literal["match", "mismatch"] = "mismatch",
    calibration_scores: object = None,
    alpha: float = 0.1,
    tpr: float = 0.95,
    fraction: float = 0.1,
) -> np.ndarray:
    """Apply one removal rule to oriented scores (higher = more unwanted).

    The model-free core of :class:`RemovalRule`, for scores already on disk
    (``skhftt filter``). ``scores`` for ``"probability"`` are the oriented
    decision values, so 0 is the detector's own threshold; an input exactly
    at it is +1 (matches the task), hence removed only when ``unwanted`` is
    ``"mismatch"``. ``"tpr"`` and ``"fdr"`` need ``calibration_scores`` of
    clean samples, oriented the same way.

    Returns
    -------
    ndarray of shape (n_samples,), bool
        True for the inputs to remove.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")
    values = np.asarray(scores, dtype=np.float64)
    if method == "probability":
        return values > 0 if unwanted == "match" else values >= 0
    if method == "fraction":
        return values > threshold_for_fraction(values, fraction)
    if calibration_scores is None:
        raise ValueError(f"method={method!r} needs the scores of clean calibration samples.")
    if method == "tpr":
        return values > threshold_at_tpr(calibration_scores, tpr)
    return conformal_fdr(calibration_scores, values, alpha)


class RemovalRule:
    """A removal rule on top of a fitted detector.

    Parameters
    ----------
    detector : fitted detector
        HFTT or any baseline with ``decision_function``.
    method : {"probability", "tpr", "fraction", "fdr"}, default="fdr"
        See the module docstring.
    unwanted : {"mismatch", "match"}, default="mismatch"
        Which side of the detector is removed.
    alpha : float, default=0.1
        Target false-discovery rate for ``method="fdr"``.
    tpr : float, default=0.95
        Share of clean calibration samples kept for ``method="tpr"``.
    fraction : float, default=0.1
        Share of the filtered data removed for ``method="fraction"``.

    Attributes
    ----------
    calibration_scores_ : ndarray
        Oriented scores of the clean calibration samples (``"tpr"``, ``"fdr"``).
    threshold_ : float
        Oriented-score threshold (``"tpr"``): above it an input is removed.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt import HFTTDetector
    >>> from skhftt.removal.rules import RemovalRule
    >>> rng = np.random.default_rng(0)
    >>> task, world = rng.normal(size=(4, 32)), rng.normal(size=(800, 32))
    >>> det = HFTTDetector(encoder="precomputed", random_state=0).fit(world, task)
    >>> clean = task[rng.integers(0, 4, 400)] + 0.3 * rng.normal(size=(400, 32))
    >>> rule = RemovalRule(det, method="fdr", alpha=0.1).calibrate(clean)
    >>> new = np.vstack([task + 0.3 * rng.normal(size=(4, 32)), rng.normal(size=(4, 32))])
    >>> rule.remove(new)
    array([False, False, False, False,  True,  True,  True,  True])
    """

    def __init__(
        self,
        detector: BaseTextDetector,
        *,
        method: Literal["probability", "tpr", "fraction", "fdr"] = "fdr",
        unwanted: Literal["match", "mismatch"] = "mismatch",
        alpha: float = 0.1,
        tpr: float = 0.95,
        fraction: float = 0.1,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")
        if unwanted not in _SIDES:
            raise ValueError(f"unwanted must be 'match' or 'mismatch'; got {unwanted!r}.")
        check_is_fitted(detector)
        self.detector = detector
        self.method = method
        self.unwanted = unwanted
        self.alpha = alpha
        self.tpr = tpr
        self.fraction = fraction

    def calibrate(self, X_clean: object) -> RemovalRule:
        """Score clean samples (held out from fitting and tuning).

        Parameters
        ----------
        X_clean : images, texts or embeddings
            Samples known to be clean (wanted).

        Returns
        -------
        self : RemovalRule
        """
        self.calibration_scores_ = unwanted_scores(self.detector, X_clean,
                                                   unwanted=self.unwanted)
        if self.method == "tpr":
            self.threshold_ = threshold_at_tpr(self.calibration_scores_, self.tpr)
        return self

    def remove_scores(self, scores: np.ndarray) -> np.ndarray:
        """Removal mask for oriented scores (higher = more unwanted)."""
        if self.method in ("tpr", "fdr") and not hasattr(self, "calibration_scores_"):
            raise ValueError(
                f"method={self.method!r} needs clean calibration samples: call "
                "calibrate(X_clean) first."
            )
        return removal_mask(
            scores,
            method=self.method,
            unwanted=self.unwanted,
            calibration_scores=getattr(self, "calibration_scores_", None),
            alpha=self.alpha,
            tpr=self.tpr,
            fraction=self.fraction,
        )

    def remove(self, X: object) -> np.ndarray:
        """Boolean mask: True for the inputs to remove.

        Parameters
        ----------
        X : images, texts or embeddings

        Returns
        -------
        ndarray of shape (n_samples,), bool
        """
        return self.remove_scores(unwanted_scores(self.detector, X, unwanted=self.unwanted))
