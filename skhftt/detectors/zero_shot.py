"""Former home of the zero-shot detectors, kept so that old imports still work.

Deprecated: import the detectors from :mod:`skhftt.detectors`, the negative
mining from :mod:`skhftt.detectors.negative_labels` and the WordNet pools from
:mod:`skhftt.corpora`.
"""

from __future__ import annotations

import warnings

from skhftt.corpora import (
    CSP_ADJECTIVE_TEMPLATES,
    CSP_EXCLUDED_CATEGORIES,
    CSP_NOUN_TEMPLATES,
    CSP_SUPERCLASSES,
    NEGLABEL_ADJECTIVE_TEMPLATE,
    NEGLABEL_NOUN_TEMPLATE,
    csp_pool,
    neglabel_pool,
)
from skhftt.detectors.negative_labels import (
    CandidatePart,
    CSPDetector,
    NegLabelDetector,
    grouped_log_odds,
    mine_negatives,
    negative_counts,
)
from skhftt.detectors.similarity import (
    EnergyDetector,
    MaxLogitDetector,
    MCMDetector,
    mcm_scores,
)

__all__ = [
    "CSP_ADJECTIVE_TEMPLATES",
    "CSP_EXCLUDED_CATEGORIES",
    "CSP_NOUN_TEMPLATES",
    "CSP_SUPERCLASSES",
    "NEGLABEL_ADJECTIVE_TEMPLATE",
    "NEGLABEL_NOUN_TEMPLATE",
    "CSPDetector",
    "CandidatePart",
    "EnergyDetector",
    "MCMDetector",
    "MaxLogitDetector",
    "NegLabelDetector",
    "csp_pool",
    "grouped_log_odds",
    "mcm_scores",
    "mine_negatives",
    "negative_counts",
    "neglabel_pool",
]

warnings.warn(
    "skhftt.detectors.zero_shot is deprecated: import MCMDetector, MaxLogitDetector, "
    "EnergyDetector, NegLabelDetector and CSPDetector from skhftt.detectors, negative "
    "mining from skhftt.detectors.negative_labels, and neglabel_pool, csp_pool and the "
    "CSP_*/NEGLABEL_* constants from skhftt.corpora.",
    FutureWarning,
    stacklevel=2,
)
