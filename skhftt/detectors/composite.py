"""Several concepts in one pass: encode each image once, apply every head.

A data team rarely removes one kind of image. :class:`MultiConceptDetector`
combines fitted detectors (say, out-of-distribution vs ImageNet, hateful
content, low quality), each with its own threshold and its own idea of which
side is unwanted, and scores every input with one encoder pass and one matrix
product over all heads.
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

from skhftt.detectors.base import BaseTextDetector
from skhftt.detectors.persistence import load_detector, save_detector
from skhftt.embedding.encoders.base import Encoder
from skhftt.space.head import logsumexp_rows

__all__ = ["Concept", "ConceptReport", "MultiConceptDetector"]

MANIFEST = "concepts.json"


@dataclass(frozen=True)
class Concept:
    """One fitted detector and how to act on it.

    Parameters
    ----------
    detector : HFTTDetector
        A fitted detector with an HFTT head (``head_``).
    unwanted : {"match", "mismatch"}
        ``"match"``: inputs that match the task texts are unwanted (hateful
        content described by the task). ``"mismatch"``: inputs outside the
        task are unwanted (out-of-distribution removal).
    threshold : float, optional
        Probability ``P_in`` from which an input counts as matching
        (``P_in >= threshold``, as the detector's ``predict``); defaults to
        the detector's own (its ``offset_``).
    log_odds_threshold : float, optional
        The same threshold as log-odds, for thresholds beyond what a float
        probability can hold (at T = 0.01, log-odds of 40 are a probability
        that rounds to 1). Give one of ``threshold`` and
        ``log_odds_threshold`` at most.
    """

    detector: BaseTextDetector
    unwanted: Literal["match", "mismatch"] = "mismatch"
    threshold: float | None = None
    log_odds_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and self.log_odds_threshold is not None:
            raise ValueError("give a concept's threshold or its log_odds_threshold, not both.")

    @property
    def offset(self) -> float:
        """The threshold on the log-odds that this concept applies."""
        if self.log_odds_threshold is not None:
            return float(self.log_odds_threshold)
        if self.threshold is None:
            return float(self.detector.offset_)
        return float(np.log(self.threshold) - np.log1p(-self.threshold))


@dataclass
class ConceptReport:
    """Scores and decisions of a :class:`MultiConceptDetector`.

    Attributes
    ----------
    names : list of str
        Concept names, in column order.
    scores : ndarray of shape (n, n_concepts)
        Each concept's log-odds ``log P_in - log P_out``.
    unwanted : ndarray of shape (n, n_concepts), bool
        Whether each concept flags each input: an input matches a concept
        when its log-odds are at least the concept's offset.
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
    concepts : mapping of str to Concept or fitted HFTTDetector
        Concept name -> :class:`Concept` (a bare detector means
        ``Concept(detector)``: inputs outside its task are unwanted).

    Raises
    ------
    ValueError
        If the detectors were fitted in different embedding spaces (different
        encoder identities or widths): their scores would not describe the
        same image embedding.
    TypeError
        A detector without an HFTT head.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt import HFTTDetector
    >>> from skhftt.detectors.composite import Concept, MultiConceptDetector
    >>> rng = np.random.default_rng(0)
    >>> world = rng.normal(size=(500, 32))
    >>> animals, weapons = rng.normal(size=(3, 32)), rng.normal(size=(2, 32))
    >>> keep = HFTTDetector(encoder="precomputed", random_state=0).fit(world, animals)
    >>> harm = HFTTDetector(encoder="precomputed", random_state=0).fit(world, weapons)
    >>> both = MultiConceptDetector({"ood": Concept(keep, "mismatch"),
    ...                              "weapons": Concept(harm, "match")})
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
        for name, concept in self.concepts.items():
            if concept.unwanted not in ("match", "mismatch"):
                raise ValueError(
                    f"concept {name!r}: unwanted must be 'match' or 'mismatch'; got "
                    f"{concept.unwanted!r}."
                )
            check_is_fitted(concept.detector)
            if not hasattr(concept.detector, "head_"):
                raise TypeError(
                    f"concept {name!r}: a {type(concept.detector).__name__} has no HFTT "
                    "head (head_); MultiConceptDetector combines HFTTDetectors."
                )
        self._check_same_space()
        self._columns_t, self._segments = self._stack_heads()

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

    def _stack_heads(self) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """All heads' ``[W, V] / T`` side by side, and (start, n_task, n_total) each."""
        blocks, segments, start = [], [], 0
        for concept in self.concepts.values():
            head = concept.detector.head_
            columns = np.concatenate([head.task_columns, head.trainable_columns])
            blocks.append(columns / np.float32(head.temperature))
            segments.append((start, head.n_task_columns, columns.shape[0]))
            start += columns.shape[0]
        return np.ascontiguousarray(np.concatenate(blocks).T, np.float32), segments

    @property
    def names(self) -> list[str]:
        """Concept names, in column order."""
        return list(self.concepts)

    @property
    def detector(self) -> BaseTextDetector:
        """The detector whose encoder embeds inputs for every concept."""
        return next(iter(self.concepts.values())).detector

    def log_odds(self, embeddings: np.ndarray, *, block_rows: int = 8192) -> np.ndarray:
        """Every concept's log-odds for unit embeddings, one GEMM per block.

        Returns
        -------
        ndarray of shape (n, n_concepts), float64
        """
        scores = np.empty((embeddings.shape[0], len(self._segments)), dtype=np.float64)
        for row in range(0, embeddings.shape[0], block_rows):
            logits = embeddings[row : row + block_rows].astype(np.float32) @ self._columns_t
            for j, (start, n_task, n_total) in enumerate(self._segments):
                scores[row : row + logits.shape[0], j] = logsumexp_rows(
                    logits[:, start : start + n_task]
                ) - logsumexp_rows(logits[:, start + n_task : start + n_total])
        return scores

    def report(self, scores: np.ndarray) -> ConceptReport:
        """Decisions for a matrix of log-odds from :meth:`log_odds`."""
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
            Anything ``HFTTDetector.embed`` accepts.

        Returns
        -------
        ConceptReport
        """
        return self.report(self.log_odds(self.detector.embed(X)))

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
                             "log_odds_threshold": concept.log_odds_threshold})
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
        entries = json.loads(manifest_path.read_text())["concepts"]
        return cls({
            entry["name"]: Concept(load_detector(source / entry["file"], encoder=encoder),
                                   entry["unwanted"], entry["threshold"],
                                   entry.get("log_odds_threshold"))
            for entry in entries
        })
