"""Decide which images to remove, with a rule a data team can defend.

:class:`RemovalRule` turns a fitted detector's scores into a removal mask by
one of five rules:

* ``"score"`` — a cut-off on ``score_samples`` (by default the detector's
  own, ``offset_``: the rule then removes what ``predict`` puts on the
  unwanted side);
* ``"probability"`` — the same with the cut-off given as a probability, for
  detectors with ``predict_proba`` (HFTT, NegLabel: ``P_in >= threshold``
  matches the task);
* ``"tpr"`` — keep a target share of clean calibration samples;
* ``"fraction"`` — remove a fixed share of the data being filtered
  (DataComp-style);
* ``"fdr"`` — conformal selection: remove by Benjamini–Hochberg on conformal
  p-values against clean calibration samples, so that the expected share of
  clean samples among those removed is at most ``alpha``.

Which side is unwanted is the detector's job, set when it was made
(``unwanted="mismatch"`` for out-of-distribution removal, ``"match"`` when the
task texts describe the unwanted content) and read from it here; a rule told
the opposite refuses. The rules work on scores oriented "higher = more
unwanted". An input exactly at a ``"score"`` or ``"probability"`` cut-off
matches the task (+1), as in ``predict``.
"""

from __future__ import annotations

from numbers import Real
from typing import Literal

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skhftt.detectors.base import JOBS, BaseTextDetector, check_job
from skhftt.removal.thresholds import conformal_fdr, threshold_at_tpr, threshold_for_fraction

__all__ = ["RemovalRule", "removal_mask", "unwanted_scores"]

_METHODS = ("score", "probability", "tpr", "fraction", "fdr")
_CUT_METHODS = ("score", "probability")


def _check_side(unwanted: object) -> None:
    if unwanted not in JOBS:
        raise ValueError(f"unwanted must be 'match' or 'mismatch'; got {unwanted!r}.")


def unwanted_scores(
    detector: BaseTextDetector, X: object, *,
    unwanted: Literal["match", "mismatch"] | None = None,
) -> np.ndarray:
    """The detector's decision function, signed so that higher = more unwanted.

    Parameters
    ----------
    detector : fitted detector
    X : images, texts or embeddings
    unwanted : {"mismatch", "match"} or None, default=None
        The detector's job (its ``unwanted`` parameter) when None: with
        ``"mismatch"`` inputs outside the task are unwanted (scores are
        ``-decision_function``), with ``"match"`` inputs matching the task
        are. A value that contradicts the detector's job is refused.

    Raises
    ------
    ValueError
        ``unwanted`` contradicts the detector's job.
    """
    side = check_job(detector, unwanted)
    decision = detector.decision_function(X)
    return decision if side == "match" else -decision


def removal_mask(
    scores: object,
    *,
    method: Literal["score", "probability", "tpr", "fraction", "fdr"],
    unwanted: Literal["match", "mismatch"],
    calibration_scores: object = None,
    alpha: float = 0.1,
    tpr: float = 0.95,
    fraction: float = 0.1,
) -> np.ndarray:
    """Apply one removal rule to oriented scores (higher = more unwanted).

    The model-free core of :class:`RemovalRule`, for scores already on disk
    (``skhftt filter``). For ``"score"`` and ``"probability"`` the scores are
    oriented decision values (``decision_function``, negated when
    ``unwanted="mismatch"``), so 0 is the detector's own threshold; the two
    names mean the same here. An input exactly at 0 matches the task (+1,
    as in ``predict``), hence it is removed when ``unwanted="match"`` and
    kept when ``unwanted="mismatch"``. ``"tpr"`` and ``"fdr"`` need
    ``calibration_scores`` of clean samples, oriented the same way.
    ``unwanted`` is the job of the detector that made the scores; it has no
    default, since scores on disk no longer carry their detector.

    Returns
    -------
    ndarray of shape (n_samples,), bool
        True for the inputs to remove.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")
    _check_side(unwanted)
    values = np.asarray(scores, dtype=np.float64)
    if method in _CUT_METHODS:
        return values >= 0 if unwanted == "match" else values > 0
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
        HFTT or any baseline.
    method : {"score", "probability", "tpr", "fraction", "fdr"}, default="fdr"
        See the module docstring. ``"probability"`` needs a detector with
        ``predict_proba``.
    unwanted : {"mismatch", "match"} or None, default=None
        Which side of the detector is removed: None takes the detector's
        job (its ``unwanted`` parameter). A value that contradicts it is
        refused rather than guessed at; to apply a detector to the other
        job, set that job on it (``detector.set_params(unwanted=...)``,
        which changes no score).
    threshold : float, optional
        The cut-off of ``method="score"`` (on ``score_samples``) or
        ``method="probability"`` (a probability in (0, 1); for HFTT ``P_in``,
        for NegLabel ``S``). None uses the detector's own threshold, so that
        the rule removes what ``predict`` puts on the unwanted side. A
        ``"score"`` cut-off reaches where a probability cannot: at
        ``T = 0.01`` an HFTT log-odds of 40 is a ``P_in`` that rounds to 1.
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

    Raises
    ------
    ValueError
        An unknown ``method`` or ``unwanted``; an ``unwanted`` that
        contradicts the detector's job; ``method="probability"`` for a
        detector without ``predict_proba``; a ``threshold`` out of range or
        given to a method that takes none.

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
        method: Literal["score", "probability", "tpr", "fraction", "fdr"] = "fdr",
        unwanted: Literal["match", "mismatch"] | None = None,
        threshold: float | None = None,
        alpha: float = 0.1,
        tpr: float = 0.95,
        fraction: float = 0.1,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")
        check_is_fitted(detector)
        side = check_job(detector, unwanted)
        if method == "probability" and not hasattr(detector, "predict_proba"):
            raise ValueError(
                f"method='probability' needs a detector with predict_proba, and a "
                f"{type(detector).__name__}'s scores are not probabilities: use "
                "method='score' with threshold= a cut-off on its score_samples (None: "
                f"its own, offset_={detector.offset_!r})."
            )
        if threshold is not None and method not in _CUT_METHODS:
            raise ValueError(
                f"threshold applies to method='score' or 'probability'; method={method!r} "
                "takes none."
            )
        if threshold is not None and not (isinstance(threshold, Real) and (
                np.isfinite(threshold) if method == "score" else 0 < threshold < 1)):
            expected = "a finite number" if method == "score" else "a probability in (0, 1)"
            raise ValueError(
                f"threshold for method={method!r} must be {expected}; got {threshold!r}."
            )
        self.detector = detector
        self.method = method
        self.unwanted = side
        self.threshold = threshold
        self.alpha = alpha
        self.tpr = tpr
        self.fraction = fraction

    def _cut(self) -> float:
        """The cut-off on ``score_samples``: at or above it an input matches the task."""
        if self.threshold is None:
            return float(self.detector.offset_)
        if self.method == "probability":
            return float(np.log(self.threshold) - np.log1p(-self.threshold))
        return float(self.threshold)

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
        """Removal mask for oriented scores (higher = more unwanted).

        Parameters
        ----------
        scores : ndarray of shape (n_samples,)
            :func:`unwanted_scores` of the inputs: the detector's
            ``decision_function``, signed by ``unwanted``.

        Returns
        -------
        ndarray of shape (n_samples,), bool
        """
        if self.method in ("tpr", "fdr") and not hasattr(self, "calibration_scores_"):
            raise ValueError(
                f"method={self.method!r} needs clean calibration samples: call "
                "calibrate(X_clean) first."
            )
        values = np.asarray(scores, dtype=np.float64)
        if self.method in _CUT_METHODS:
            # From the detector's own cut-off to this rule's, in oriented units.
            shift = self._cut() - float(self.detector.offset_)
            values = values - shift if self.unwanted == "match" else values + shift
        return removal_mask(
            values,
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
        if self.method in _CUT_METHODS:
            # Straight from score_samples, so that a sample exactly at the cut-off is exact.
            decision = self.detector.score_samples(X) - self._cut()
            return removal_mask(decision if self.unwanted == "match" else -decision,
                                method=self.method, unwanted=self.unwanted)
        return self.remove_scores(unwanted_scores(self.detector, X, unwanted=self.unwanted))
