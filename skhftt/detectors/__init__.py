"""Detectors: estimators that score images against a task described in text.

* :class:`HFTTDetector` -- HFTT, columns trained from text (the paper's method).
* Zero-shot, text only: :class:`MCMDetector`, :class:`MaxLogitDetector`,
  :class:`EnergyDetector`, :class:`NegLabelDetector`, :class:`CSPDetector`.
* Fitted on in-distribution images: :class:`MSPDetector`,
  :class:`MahalanobisDetector`, :class:`KNNDetector`.
* :class:`HFTTEnsembleDetector` -- HFTT blended with MCM, both calibrated on
  the world texts.
* :class:`MultiConceptDetector` -- several detectors in one encoder pass.
* :func:`save_detector` / :func:`load_detector` -- pickle-free persistence.
"""

from __future__ import annotations

from skhftt.detectors.composite import Concept, ConceptReport, MultiConceptDetector
from skhftt.detectors.ensemble import HFTTEnsembleDetector
from skhftt.detectors.hftt import HFTTDetector
from skhftt.detectors.image_fitted import (
    KNNDetector,
    MahalanobisDetector,
    MSPDetector,
    kth_neighbour_similarity,
)
from skhftt.detectors.persistence import load_detector, save_detector
from skhftt.detectors.zero_shot import (
    CSPDetector,
    EnergyDetector,
    MaxLogitDetector,
    MCMDetector,
    NegLabelDetector,
)

__all__ = [
    "CSPDetector",
    "Concept",
    "ConceptReport",
    "EnergyDetector",
    "HFTTDetector",
    "HFTTEnsembleDetector",
    "KNNDetector",
    "MCMDetector",
    "MSPDetector",
    "MahalanobisDetector",
    "MaxLogitDetector",
    "MultiConceptDetector",
    "NegLabelDetector",
    "kth_neighbour_similarity",
    "load_detector",
    "save_detector",
]
