"""What scoring needs from a fitted detector, one implementation per kind of detector.

The run loop (:mod:`skhftt.batch.run`) sees a :class:`Scorer` only: the width
of the space, the encoder and device for image shards, the log-odds of a
block of unit embeddings, a digest that identifies it for resumption, what
the outputs record about it (offsets, encoder) and the writer of its
outputs. :class:`ShardScorer` scores with one detector's head;
:class:`ConceptScorer` with every concept of a
:class:`~skhftt.detectors.composite.MultiConceptDetector` at once.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import joblib
import numpy as np

from skhftt.batch.output import ConceptShardWriter, ShardWriter
from skhftt.detectors.base import PRECOMPUTED
from skhftt.embedding.device import resolve_device
from skhftt.embedding.encoders.base import Encoder

__all__ = ["ConceptScorer", "Scorer", "ShardScorer", "shard_scorer"]


@runtime_checkable
class Scorer(Protocol):
    """What the run loop needs from a fitted detector.

    Scorers are picklable: Dask sends them to its workers.
    """

    @property
    def dim(self) -> int:
        """Width of the embedding space."""
        ...

    @property
    def fingerprint(self) -> str:
        """Digest of everything that changes the scores and decisions; recorded in outputs."""
        ...

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """The detector's ``score_samples`` of a block of unit float32 embeddings.

        ``(n,)``, or ``(n, k)`` for ``k`` concepts.
        """
        ...

    def manifest(self) -> dict[str, Any]:
        """What each output records about the scorer: ``detector`` (the
        fingerprint), ``offset``, ``encoder``, and what :func:`describe`
        says of the detector (its kind, job, score, parameters, ...)."""
        ...

    def writer(self, target: str | os.PathLike[str], manifest: dict[str, Any], *,
               row_group_rows: int) -> ShardWriter:
        """The writer of one output file, which turns scores into decisions."""
        ...

    def check_encoder(self) -> None:
        """Raise ``ValueError`` unless the scorer can embed images."""
        ...

    def encoder(self) -> Encoder:
        """The encoder of image shards, loaded once per process."""
        ...

    def device(self) -> Any:
        """The device the encoder runs on."""
        ...

    def model_free(self) -> Scorer:
        """This scorer without what only images need: all that embedding shards need."""
        ...


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as ``"sha256:<hex>"``."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


def describe(detector: Any, *, source: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What a score output records about the detector that wrote it.

    Parameters
    ----------
    detector : fitted detector
    source : str or path-like, optional
        The file the detector was loaded from.

    Returns
    -------
    dict
        ``detector_kind`` (its class name), ``unwanted`` (its job),
        ``score`` (what the ``score`` column is, in words),
        ``threshold_kind`` (``"log_odds"``: ``threshold`` is a probability,
        ``"score"``: a cut-off on the score), ``detector_params`` (its
        parameters, as saved), ``training_digests`` (what it was fitted
        on), ``task`` (its task names), ``detector_file`` and
        ``detector_sha256`` (None without ``source``).
    """
    from skhftt.detectors.persistence import json_params

    try:
        params = json_params(detector)
    except TypeError:  # e.g. candidate embeddings given as arrays: named, not recorded
        params = {name: value if isinstance(value, (str, int, float, bool, type(None)))
                  else f"<{type(value).__name__}>"
                  for name, value in detector.get_params(deep=False).items()}
    return {
        "detector_kind": type(detector).__name__,
        "unwanted": getattr(detector, "unwanted", "mismatch"),
        "score": type(detector)._score_description,
        "threshold_kind": type(detector)._threshold_kind,
        "detector_params": params,
        "training_digests": getattr(detector, "training_digests_", None),
        "task": [str(name) for name in getattr(detector, "task_names_", [])],
        "detector_file": None if source is None else os.path.abspath(source),
        "detector_sha256": None if source is None else file_sha256(source),
    }


def _digest_head(head: Any, offset: float, identity: str | None, unwanted: str) -> str:
    digest = hashlib.sha256()
    for item in dataclasses.fields(head):
        value = getattr(head, item.name)
        digest.update(item.name.encode())
        if isinstance(value, np.ndarray):
            digest.update(f"{value.dtype}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        else:
            digest.update(repr(value).encode())
    digest.update(repr((float(offset), identity, unwanted)).encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class DetectorHead:
    """A fitted detector without an HFTT ``head_``, scoring blocks of embeddings.

    The zero-shot and image-fitted detectors score embeddings with their own
    ``score_samples``; the block's "log-odds" are then those scores, and the
    decision is ``score - offset_`` as the detector's own ``decision_function``.
    """

    detector: Any

    @property
    def kind(self) -> str:
        """The detector's class name."""
        return type(self.detector).__name__

    @property
    def dim(self) -> int:
        """Width of the embedding space."""
        return int(self.detector.embedding_dim_)

    def log_odds(self, embeddings: np.ndarray) -> np.ndarray:
        """The detector's ``score_samples`` of unit embeddings, float64 ``(n,)``.

        Scored without the encoder, so embedding shards need no model.
        Rows of zeros stand for inputs that failed to read (their errors are
        recorded beside them); they are not scored and get NaN.
        """
        scores = np.full(embeddings.shape[0], np.nan)
        readable = embeddings.any(axis=1)
        if readable.any():
            scores[readable] = self.detector._score_embeddings(embeddings[readable])
        return scores


class _DetectorEncoder:
    """Encoder access through a fitted detector, shared by the scorers (``self.detector``)."""

    detector: Any

    def check_encoder(self) -> None:
        """Raise unless the scorer can embed images (without loading any model).

        Raises
        ------
        ValueError
            The scorer has no detector, or its detector has no encoder
            (``encoder="precomputed"``): it can score embeddings only.
        """
        encoder = None if self.detector is None else self.detector.encoder
        if encoder is None or (isinstance(encoder, str) and encoder == PRECOMPUTED):
            raise ValueError(
                "image inputs need an encoder, but this detector has encoder='precomputed': "
                "score embedding shards, or give the detector the encoder it was fitted "
                "with (load_detector(path, encoder=...), --encoder)."
            )

    def encoder(self) -> Encoder:
        """The detector's encoder, loaded once per process and checked against the fit."""
        self.check_encoder()
        return self.detector._scoring_encoder()

    def device(self) -> Any:
        """The device the encoder runs on."""
        return resolve_device(getattr(self.detector, "device", "cpu"))

    def _identity(self) -> str | None:
        return None if self.detector is None else self.detector.encoder_identity_


def _with_device(detector: Any, device: str | None) -> Any:
    if device is None:
        return detector
    detector = copy.copy(detector)  # the caller's detector keeps its device
    detector.device = device
    return detector


@dataclass(frozen=True)
class ShardScorer(_DetectorEncoder):
    """Scores with one detector's head: one ``score`` and ``decision`` column.

    Build it with :meth:`from_detector`. The head is numpy only, so a
    scorer without ``detector`` (see :meth:`model_free`) is kilobytes to a
    few MB and scores embeddings anywhere.

    Parameters
    ----------
    head : HFTTHead
        Scores unit embeddings (``log_odds``).
    offset : float
        ``decision = +1`` where ``score - offset >= 0``.
    fingerprint : str
        Digest of the head, offset and encoder identity; outputs record it
        so that a rerun with another detector scores every shard again.
    detector : HFTTDetector, optional
        The fitted detector, used only to resolve and check its encoder for
        image shards.
    description : dict
        :func:`describe` of the detector, recorded in every output.
    """

    head: Any
    offset: float
    fingerprint: str
    detector: Any = None
    description: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_detector(cls, detector: Any, *, device: str | None = None,
                      source: str | os.PathLike[str] | None = None) -> ShardScorer:
        """The scorer of a fitted detector.

        Parameters
        ----------
        detector : fitted detector
            A fitted detector of any kind.
        device : str, optional
            Run its encoder here instead of on ``detector.device``.
        source : str or path-like, optional
            The file the detector was loaded from, recorded with its SHA-256.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(detector)
        description = describe(detector, source=source)
        head = getattr(detector, "head_", None)
        detector = _with_device(detector, device)
        identity = detector.encoder_identity_
        offset = float(detector.offset_)
        if head is None or not hasattr(head, "log_odds"):
            head = DetectorHead(detector)
            fingerprint = joblib.hash((head.kind, detector, offset, identity))
        else:
            fingerprint = _digest_head(head, offset, identity, description["unwanted"])
        return cls(head, offset, fingerprint, detector, description)

    @property
    def dim(self) -> int:
        """Width of the embedding space."""
        return int(self.head.dim)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """The detector's ``score_samples`` per row, float64 ``(n,)``."""
        return self.head.log_odds(embeddings)

    def manifest(self) -> dict[str, Any]:
        """``detector`` (the fingerprint), ``offset``, ``encoder`` and the description."""
        return {"detector": self.fingerprint, "offset": self.offset,
                "encoder": self._identity(), **self.description}

    def writer(self, target: str | os.PathLike[str], manifest: dict[str, Any], *,
               row_group_rows: int) -> ShardWriter:
        """A :class:`~skhftt.batch.output.ShardWriter` deciding with this offset."""
        return ShardWriter(target, manifest, offset=self.offset, row_group_rows=row_group_rows)

    def model_free(self) -> ShardScorer:
        """This scorer without the detector: all that embedding shards need."""
        return dataclasses.replace(self, detector=None)


@dataclass(frozen=True)
class ConceptScorer(_DetectorEncoder):
    """Scores every concept of a multi-concept detector in one pass over each block.

    Each input is embedded once, by the first concept's encoder, and every
    concept's head is applied to that embedding in one GEMM. The outputs
    get one score and decision column per concept, plus ``remove`` and
    ``triggered`` (see :class:`~skhftt.batch.output.ConceptShardWriter`).

    Parameters
    ----------
    concepts : MultiConceptDetector
        Fitted detectors of one embedding space, with their thresholds and
        unwanted sides.
    fingerprint : str
        Digest of every concept's detector, offset, side and name.
    detector : fitted detector, optional
        The detector whose encoder embeds images for every concept.
    descriptions : list of dict
        :func:`describe` of each concept's detector, in order.
    """

    concepts: Any
    fingerprint: str
    detector: Any = None
    descriptions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_concepts(cls, concepts: Any, *, device: str | None = None,
                      sources: dict[str, str] | None = None) -> ConceptScorer:
        """The scorer of a :class:`~skhftt.detectors.composite.MultiConceptDetector`.

        Parameters
        ----------
        concepts : MultiConceptDetector
        device : str, optional
            Run the shared encoder here instead of on its ``device``.
        sources : dict, optional
            Concept name -> the file its detector was loaded from.
        """
        digest = hashlib.sha256()
        descriptions = []
        for name, concept in concepts.concepts.items():
            part = ShardScorer.from_detector(concept.detector,
                                             source=(sources or {}).get(name))
            digest.update(repr((name, part.fingerprint, concept.unwanted,
                                concept.offset)).encode())
            descriptions.append(part.description)
        return cls(concepts, digest.hexdigest()[:32], _with_device(concepts.detector, device),
                   descriptions)

    @property
    def dim(self) -> int:
        """Width of the embedding space."""
        return int(self.concepts.detector.embedding_dim_)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Every concept's score, float64 ``(n, n_concepts)``; NaN for rows of zeros.

        Rows of zeros stand for inputs that failed to read (their errors are
        recorded beside them).
        """
        scores = np.full((embeddings.shape[0], len(self.concepts.concepts)), np.nan)
        readable = embeddings.any(axis=1)
        if readable.any():
            scores[readable] = self.concepts.scores(embeddings[readable])
        return scores

    def manifest(self) -> dict[str, Any]:
        """``detector``, ``encoder``, and each concept's ``name``, ``offset`` and description.

        ``offset`` is NaN: each concept has its own.
        """
        described = [{"name": name, "offset": concept.offset, **description,
                      "unwanted": concept.unwanted}
                     for (name, concept), description in zip(
                         self.concepts.concepts.items(), self.descriptions, strict=True)]
        return {"detector": self.fingerprint, "offset": float("nan"),
                "encoder": self._identity(), "concepts": described}

    def writer(self, target: str | os.PathLike[str], manifest: dict[str, Any], *,
               row_group_rows: int) -> ConceptShardWriter:
        """A :class:`~skhftt.batch.output.ConceptShardWriter` of these concepts."""
        return ConceptShardWriter(target, manifest, self.concepts, row_group_rows=row_group_rows)

    def model_free(self) -> ConceptScorer:
        """This scorer without the encoder's detector (the concepts' heads stay)."""
        return dataclasses.replace(self, detector=None)


def shard_scorer(detector: Any, *, device: str | None = None) -> Scorer:
    """The scorer of a fitted detector, a multi-concept detector, or a scorer as it is.

    Parameters
    ----------
    detector : HFTTDetector, MultiConceptDetector or Scorer
    device : str, optional
        Run the encoder here instead of on the detector's ``device``.
    """
    from skhftt.detectors.composite import MultiConceptDetector

    if isinstance(detector, MultiConceptDetector):
        return ConceptScorer.from_concepts(detector, device=device)
    if isinstance(detector, Scorer):
        return detector
    return ShardScorer.from_detector(detector, device=device)
