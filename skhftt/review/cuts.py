"""The cut-off a removal rule resolved to, stated so that it can be read and applied again.

Every rule of :mod:`skhftt.removal.rules` removes a prefix of the rows
ranked by their oriented score (higher = more unwanted): all rows above a
cut-off. :func:`resolve_cut` finds that cut-off for the rule that made a
decision, checks that it reproduces the decision row for row, and returns
it as a :class:`Cut`: a threshold on oriented scores, and the same
threshold on the detector's own score, which is what a person reads and
what a removal plan applies to new scores without recalibrating.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from skhftt.removal.thresholds import threshold_at_tpr, threshold_for_fraction

__all__ = ["Cut", "resolve_cut"]


@dataclass(frozen=True)
class Cut:
    """Remove the rows whose oriented score is above ``threshold`` (or at it, if ``inclusive``).

    Parameters
    ----------
    threshold : float
        On oriented scores: ``score - offset`` for ``side="match"``,
        ``offset - score`` for ``side="mismatch"``.
    inclusive : bool
        Whether a row exactly at the threshold is removed.
    side : {"match", "mismatch"}
        The side the detector removes (its job).
    offset : float or None
        The detector's offset, which relates oriented scores to its score;
        None when the scores come from several detectors.
    """

    threshold: float
    inclusive: bool
    side: str
    offset: float | None

    @classmethod
    def own(cls, side: str, offset: float | None) -> Cut:
        """The detector's own threshold: what its ``predict`` puts on the unwanted side.

        A row exactly at the offset matches the task (+1), so it is removed
        when the detector removes matches.
        """
        return cls(0.0, side == "match", side, offset)

    def apply(self, oriented: np.ndarray) -> np.ndarray:
        """Removal mask of oriented scores; NaN (a row with an error) is never removed."""
        values = np.asarray(oriented, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return values >= self.threshold if self.inclusive else values > self.threshold

    @property
    def score(self) -> float | None:
        """The same cut-off on the detector's score (None without an offset)."""
        if self.offset is None:
            return None
        if self.side == "match":
            return self.offset + self.threshold
        return self.offset - self.threshold

    def words(self) -> str:
        """What the cut removes, e.g. ``"score < -1.2345"``."""
        if self.score is None:
            sign = ">=" if self.inclusive else ">"
            return f"oriented score {sign} {self.threshold:.6g}"
        if self.side == "match":
            return f"score {'>=' if self.inclusive else '>'} {self.score:.6g}"
        return f"score {'<=' if self.inclusive else '<'} {self.score:.6g}"

    def to_dict(self) -> dict[str, Any]:
        """The cut as JSON-ready values, with ``score`` and ``removes`` for the reader."""
        return {**asdict(self), "score": self.score, "removes": self.words()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Cut:
        """The cut :meth:`to_dict` wrote.

        Raises
        ------
        ValueError
            A side other than ``"match"`` or ``"mismatch"``.
        """
        if values["side"] not in ("match", "mismatch"):
            raise ValueError(f"a cut's side must be 'match' or 'mismatch'; got {values['side']!r}.")
        return cls(float(values["threshold"]), bool(values["inclusive"]), str(values["side"]),
                   None if values["offset"] is None else float(values["offset"]))


def _fdr_threshold(oriented: np.ndarray, remove: np.ndarray, calibration: np.ndarray) -> float:
    """The cut-off behind a conformal selection: its least unwanted removal's p-value.

    A row is removed when at most ``K`` clean scores are at least its own,
    ``K`` that count for the least unwanted row removed; that is, when its
    score is above the ``K + 1``-th largest clean score.
    """
    if not remove.any():
        return float(oriented.max())
    least = oriented[remove].min()
    above = int(np.count_nonzero(calibration >= least))
    return float(np.sort(calibration)[::-1][above])


def resolve_cut(method: str, oriented: np.ndarray, remove: np.ndarray, *, side: str,
                offset: float | None, calibration: np.ndarray | None = None,
                fraction: float = 0.1, tpr: float = 0.95) -> Cut:
    """The cut-off of a decision made by a removal rule on oriented scores.

    Parameters
    ----------
    method : {"probability", "score", "fraction", "tpr", "fdr"}
        The rule that decided (see :func:`skhftt.removal.rules.removal_mask`).
    oriented : ndarray of shape (n,)
        The scored rows' oriented scores (higher = more unwanted).
    remove : ndarray of shape (n,), bool
        What the rule removed of them.
    side : {"match", "mismatch"}
        The detector's job.
    offset : float or None
        The detector's offset (None for scores of several detectors).
    calibration : ndarray, optional
        Oriented scores of the clean samples (``"tpr"``, ``"fdr"``).
    fraction, tpr : float
        The rule's parameters.

    Returns
    -------
    Cut
        For ``"probability"`` the detector's own threshold; ``"fraction"``
        the largest score kept; ``"tpr"`` the clean score below which the
        share ``tpr`` of clean samples lies; ``"fdr"`` the largest clean
        score below the least unwanted row removed (the highest score when
        nothing was removed), so that a new row is removed when its
        conformal p-value is at most those of the rows removed here.

    Raises
    ------
    RuntimeError
        The cut does not reproduce ``remove`` (a defect: please report it).
    """
    if method in ("probability", "score"):
        cut = Cut.own(side, offset)
    elif method == "fraction":
        cut = Cut(threshold_for_fraction(oriented, fraction), False, side, offset)
    elif method == "tpr":
        cut = Cut(threshold_at_tpr(calibration, tpr), False, side, offset)
    else:
        cut = Cut(_fdr_threshold(oriented, remove, calibration), False, side, offset)
    if not np.array_equal(cut.apply(oriented), remove):
        raise RuntimeError(f"the {method} rule's cut-off ({cut.words()}) does not reproduce "
                           "its decision; this is a defect of skhftt.")
    return cut
