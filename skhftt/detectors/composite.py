"""Several concepts in one pass: encode each image once, apply every detector.

A data team rarely removes one kind of image. :class:`MultiConceptDetector`
combines fitted detectors of any kind (say, out-of-distribution vs ImageNet
with CSP, hateful content with HFTT, low quality with the ensemble), each
with its own job (which side of its task is unwanted) and its own
threshold, and scores every input with one encoder pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skhftt.detectors.base import BaseTextDetector, check_job
from skhftt.detectors.persistence import load_detector, save_detector
from skhftt.embedding.encoders.base import Encoder

__all__ = ["Concept", "ConceptReport", "MultiConceptDetector"]

MANIFEST = "concepts.json"


@dataclass(frozen=True)
class Concept:
    """One fitted detector and how to act on it.

    Parameters
    ----------
    detector : fitted detector
        Any fitted detector of :mod:`skhftt.detectors`.
    unwanted : {"match", "mismatch"} or None, default=None
        Which side of the detector's task is unwanted: None (and, after
        construction, always) the detector's own job, its ``unwanted``
        parameter. A value that contradicts it is refused.
    threshold : float, optional
        The cut-off in the detector's ``threshold`` units (a probability for
        HFTT, NegLabel and CSP, a score for the others): an input matches
        the concept's task where it would be +1 for ``set_threshold(
        threshold)``. Defaults to the detector's own (its ``offset_``).
    score_threshold : float, optional
        The cut-off on ``score_samples`` itself, for cuts beyond what a
        probability can hold (at T = 0.01 HFTT log-odds of 40 are a
        probability that rounds to 1). Give one of ``threshold`` and
        ``score_threshold`` at most.

    Raises
    ------
    ValueError
        Both thresholds, or an ``unwanted`` that contradicts the detector's job.
    """

    detector: BaseTextDetector
    unwanted: Literal["match", "mismatch"] | None = None
    threshold: float | None = None
    score_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and self.score_threshold is not None:
            raise ValueError("give a concept's threshold or its score_threshold, not both.")
        object.__setattr__(self, "unwanted", check_job(self.detector, self.unwanted))

    @property
    def offset(self) -> float:
        """The cut-off on ``score_samples`` that this concept applies."""
        if self.score_threshold is not None:
            return float(self.score_threshold)
        if self.threshold is None:
            return float(self.detector.offset_)
        return self.detector._offset_of(self.threshold)


@dataclass
class ConceptReport:
    """Scores and decisions of a :class:`MultiConceptDetector`.

    Attributes
    ----------
    names : list of str
        Concept names, in column order.
    scores : ndarray of shape (n, n_concepts)
        Each concept's ``score_samples``.
    unwanted : ndarray of shape (n, n_concepts), bool
        Whether each concept flags each input: an input matches a concept
        when its score is at least the concept's offset, and is flagged when
        that is the concept's unwanted side.
    remove : ndarray of shape (n,), bool
        Whether any concept flags the input.
    triggered : list of list of str
        The concepts that flagged each input.
    """

    names: list[str]
    scores: np.ndarray
    unwanted: np.ndarray
    remove: np.ndarray = field(init=False)
    triggered: list[list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.remove = self.unwanted.any(axis=1)
        self.triggered = [[self.names[j] for j in np.flatnonzero(row)] for row in self.unwanted]


class MultiConceptDetector:
    """Apply several fitted detectors at once, sharing one encoder pass.

    Parameters
    ----------
    concepts : mapping of str to Concept or fitted detector
        Concept name -> :class:`Concept` (a bare detector means
        ``Concept(detector)``: its own job and threshold). The detectors may
        be of any kind (HFTT, CSP, the ensemble, ...), fitted in one
        embedding space.

    Raises
    ------
    ValueError
        No concept, or detectors fitted in different embedding spaces
        (different encoder identities or widths): their scores would not
        describe the same image embedding.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt import HFTTDetector
    >>> from skhftt.detectors import MCMDetector, MultiConceptDetector
    >>> rng = np.random.default_rng(0)
    >>> world = rng.normal(size=(500, 32))
    >>> animals, weapons = rng.normal(size=(3, 32)), rng.normal(size=(2, 32))
    >>> keep = MCMDetector(encoder="precomputed", threshold=0.4).fit(None, animals)
    >>> harm = HFTTDetector(encoder="precomputed", unwanted="match",
    ...                     random_state=0).fit(world, weapons)
    >>> both = MultiConceptDetector({"ood": keep, "weapons": harm})
    >>> both.score(np.vstack([animals[0], weapons[0]])).triggered
    [[], ['ood', 'weapons']]
    """

    def __init__(self, concepts: Mapping[str, Concept | BaseTextDetector]) -> None:
        if not concepts:
            raise ValueError("concepts is empty: expected at least one named detector.")
        self.concepts = {
            str(name): value if isinstance(value, Concept) else Concept(value)
            for name, value in concepts.items()
        }
        for concept in self.concepts.values():
            check_is_fitted(concept.detector)
        self._check_same_space()

    def _check_same_space(self) -> None:
        names = list(self.concepts)
        first = self.concepts[names[0]].detector
        for name in names[1:]:
            other = self.concepts[name].detector
            if (other.encoder_identity_, other.embedding_dim_) != (
                first.encoder_identity_, first.embedding_dim_
            ):
                raise ValueError(
                    f"concepts {names[0]!r} and {name!r} were fitted in different "
                    f"embedding spaces ({first.encoder_identity_!r}, width "
                    f"{first.embedding_dim_} vs {other.encoder_identity_!r}, width "
                    f"{other.embedding_dim_}); they cannot score the same embeddings."
                )

    @property
    def names(self) -> list[str]:
        """Concept names, in column order."""
        return list(self.concepts)

    @property
    def detector(self) -> BaseTextDetector:
        """The detector whose encoder embeds inputs for every concept."""
        return next(iter(self.concepts.values())).detector

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Every concept's ``score_samples`` of unit embeddings, without any encoder.

        Returns
        -------
        ndarray of shape (n, n_concepts), float64
        """
        return np.column_stack([
            concept.detector._score_embeddings(embeddings)
            for concept in self.concepts.values()
        ]).reshape(len(embeddings), len(self.concepts))

    def report(self, scores: np.ndarray) -> ConceptReport:
        """Decisions for a matrix of scores from :meth:`scores`."""
        concepts = list(self.concepts.values())
        offsets = np.array([c.offset for c in concepts])
        matches = scores >= offsets
        unwanted_if_match = np.array([c.unwanted == "match" for c in concepts])
        return ConceptReport(self.names, scores, matches == unwanted_if_match)

    def score(self, X: object) -> ConceptReport:
        """Embed ``X`` once and apply every concept.

        Parameters
        ----------
        X : images, texts or embeddings
            Anything the first detector's ``embed`` accepts.

        Returns
        -------
        ConceptReport
        """
        return self.report(self.scores(self.detector.embed(X)))

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Save without pickle: one ``.safetensors`` per concept and a manifest."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        manifest = []
        for index, (name, concept) in enumerate(self.concepts.items()):
            filename = f"concept_{index}.safetensors"
            save_detector(concept.detector, target / filename)
            manifest.append({"name": name, "file": filename, "unwanted": concept.unwanted,
                             "threshold": concept.threshold,
                             "score_threshold": concept.score_threshold})
        partial = target / f"{MANIFEST}.partial-{os.getpid()}"
        partial.write_text(json.dumps({"concepts": manifest}, indent=2))
        os.replace(partial, target / MANIFEST)

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], *, encoder: str | Encoder | None = None
    ) -> MultiConceptDetector:
        """Load a detector written by :meth:`save`.

        Parameters
        ----------
        directory : str or path-like
        encoder : str or Encoder, optional
            Overrides every concept's saved encoder (see
            :func:`skhftt.detectors.persistence.load_detector`).
        """
        source = Path(directory)
        manifest_path = source / MANIFEST
        if not manifest_path.is_file():
            raise ValueError(f"{str(source)!r} holds no {MANIFEST}: not a saved multi-concept "
                             "detector.")
        concepts = {}
        for entry in json.loads(manifest_path.read_text())["concepts"]:
            detector = load_detector(source / entry["file"], encoder=encoder)
            # Saved before jobs were recorded in detectors: the manifest held the side.
            detector.set_params(unwanted=entry["unwanted"])
            concepts[entry["name"]] = Concept(
                detector, entry["unwanted"], entry["threshold"],
                entry.get("score_threshold", entry.get("log_odds_threshold")))
        return cls(concepts)
