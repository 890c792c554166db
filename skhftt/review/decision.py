"""A removal decision as the review and its record see it: per detector, scores, removals, cut.

:class:`Decision` holds what a rule decided about every row of a scores
folder: the rows removed and the rows with an error, and one :class:`Part`
per detector whose cut-off took part (one, or one per concept of composite
scores), with the rows' oriented scores (higher = more unwanted) where they
were read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skhftt.review.cuts import Cut
from skhftt.review.scores import ScoreFiles

__all__ = ["Decision", "Part", "concept_description", "orient"]


def orient(scores: np.ndarray, offset: float, side: str) -> np.ndarray:
    """Scores as oriented decision values: higher = more unwanted (NaN stays NaN)."""
    decision = np.asarray(scores, dtype=np.float64) - offset
    return decision if side == "match" else -decision


def concept_description(files: ScoreFiles, concept: str | None) -> dict[str, Any]:
    """What the first file records of the detector (or ``concept``) that scored it.

    ``offset`` is None when the files were scored with different offsets.
    """
    described = [manifest if concept is None else
                 next(c for c in manifest["concepts"] if c["name"] == concept)
                 for manifest in files.manifests]
    offsets = {float(item["offset"]) for item in described}
    return {**described[0], "offset": offsets.pop() if len(offsets) == 1 else None}


@dataclass
class Part:
    """One detector's share of a decision.

    Attributes
    ----------
    concept : str or None
        The concept of composite scores, or None for one detector's scores.
    described : dict
        What the score files record of the detector (kind, job, file,
        digests, offset; see :func:`concept_description`).
    cut : Cut
        Its resolved cut-off.
    oriented : ndarray of shape (n_rows,) or None
        Oriented scores of every row (NaN for rows with an error), when read.
    """

    concept: str | None
    described: dict[str, Any]
    cut: Cut
    oriented: np.ndarray | None = None

    def removed(self) -> np.ndarray:
        """The rows this part's cut removes (needs :attr:`oriented`)."""
        return self.cut.apply(self.oriented)


@dataclass
class Decision:
    """What a removal rule (or a plan) decided about every row of a scores folder.

    Attributes
    ----------
    rule : dict
        The rule and its parameters: ``method`` and, as they apply,
        ``fraction``, ``tpr``, ``alpha``, ``unwanted``, ``concept`` and
        ``plan`` (the plan file applied, with its SHA-256).
    parts : list of Part
        One per detector (or concept) with its cut-off.
    remove, failed : ndarray of shape (n_rows,), bool
        The rows removed, and the rows with an error (neither kept nor
        removed).
    calibration : dict or None
        The clean samples of ``tpr`` and ``fdr``: ``path``, ``rows`` and
        ``fingerprint`` (SHA-256 of their oriented scores).
    """

    rule: dict[str, Any]
    parts: list[Part]
    remove: np.ndarray
    failed: np.ndarray
    calibration: dict[str, Any] | None = field(default=None)

    @property
    def keep(self) -> np.ndarray:
        """The rows kept: neither removed nor failed."""
        return ~self.remove & ~self.failed

    def counts(self) -> dict[str, int]:
        """``rows``, ``kept``, ``removed`` and ``errors``."""
        return {"rows": len(self.remove), "kept": int(self.keep.sum()),
                "removed": int(self.remove.sum()), "errors": int(self.failed.sum())}
