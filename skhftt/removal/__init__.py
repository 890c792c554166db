"""From scores to the images to remove: thresholds, removal rules, explanations.

* :class:`RemovalRule` -- which images to remove, by a probability or score
  threshold, a target TPR on clean data, a fraction, or conformal selection
  with false-discovery-rate control.
* :mod:`skhftt.removal.thresholds` -- the threshold functions behind it.
* :func:`explain_scores`, :func:`nearest_texts` -- why an image scored as it did.
"""

from __future__ import annotations

from skhftt.removal.explain import (
    ScoreExplanation,
    explain_scores,
    learned_column_names,
    nearest_texts,
)
from skhftt.removal.rules import RemovalRule, removal_mask, unwanted_scores
from skhftt.removal.thresholds import (
    benjamini_hochberg,
    conformal_fdr,
    conformal_pvalues,
    threshold_at_tpr,
    threshold_for_fraction,
)

__all__ = [
    "RemovalRule",
    "ScoreExplanation",
    "benjamini_hochberg",
    "conformal_fdr",
    "conformal_pvalues",
    "explain_scores",
    "learned_column_names",
    "nearest_texts",
    "removal_mask",
    "threshold_at_tpr",
    "threshold_for_fraction",
    "unwanted_scores",
]
