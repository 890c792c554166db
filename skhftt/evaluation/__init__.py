"""Measuring detectors: OOD metrics and scorers, plots, synthetic image defects.

* :func:`ood_metrics`, :func:`auroc`, :func:`fpr_at_tpr`, ... and scorers for
  :class:`~sklearn.model_selection.GridSearchCV` (:func:`get_scorer`,
  :class:`HeldOutScorer`).
* :func:`select_detector` -- text-only model selection: detector kind and
  hyperparameters chosen on held-out texts, never on images.
* :func:`plot_roc`, :class:`ScoreHistogramDisplay` (needs matplotlib).
* :func:`corrupt_image`, :func:`make_corruption_set` -- labelled check sets
  for low-quality detectors.
"""

from __future__ import annotations

from skhftt.evaluation.corruptions import CORRUPTIONS, corrupt_image, make_corruption_set
from skhftt.evaluation.metrics import (
    HeldOutScorer,
    aupr_in,
    aupr_out,
    auroc,
    fpr_at_tpr,
    get_scorer,
    get_scorer_names,
    ood_metrics,
)
from skhftt.evaluation.plotting import ScoreHistogramDisplay, plot_roc
from skhftt.evaluation.selection import (
    SelectionResult,
    ensemble_grid,
    select_detector,
    temperature_grid,
)

__all__ = [
    "CORRUPTIONS",
    "HeldOutScorer",
    "ScoreHistogramDisplay",
    "SelectionResult",
    "aupr_in",
    "aupr_out",
    "auroc",
    "corrupt_image",
    "ensemble_grid",
    "fpr_at_tpr",
    "get_scorer",
    "get_scorer_names",
    "make_corruption_set",
    "ood_metrics",
    "plot_roc",
    "select_detector",
    "temperature_grid",
]
