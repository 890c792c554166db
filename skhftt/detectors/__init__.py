"""Detectors: estimators that score images against a task described in text.

* :class:`HFTTDetector` -- HFTT, columns trained from text (the paper's method).
* Zero-shot, text only: :class:`MCMDetector`, :class:`MaxLogitDetector`,
  :class:`EnergyDetector` (:mod:`~skhftt.detectors.similarity`);
  :class:`NegLabelDetector`, :class:`CSPDetector`
  (:mod:`~skhftt.detectors.negative_labels`).
* Fitted on in-distribution images: :class:`MSPDetector`,
  :class:`MahalanobisDetector`, :class:`KNNDetector`.
* :class:`HFTTEnsembleDetector` -- HFTT blended with MCM, both calibrated on
  the world texts.
* :class:`MultiConceptDetector` -- several detectors in one encoder pass.
* :func:`save_detector` / :func:`load_detector` -- pickle-free persistence,
  every file validated whole at load (:mod:`~skhftt.detectors.fitted`).
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
from skhftt.detectors.negative_labels import CSPDetector, NegLabelDetector
from skhftt.detectors.persistence import load_detector, save_detector
from skhftt.detectors.similarity import EnergyDetector, MaxLogitDetector, MCMDetector

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
