"""What a fitted detector learned, and why it scored an input as it did.

* :func:`nearest_texts` — for each trainable column, the texts closest to it:
  what the detector learned "outside the task" looks like.
* :func:`explain_scores` — for each input, the column (a task item or a
  learned one) that holds the most softmax mass, and how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skhftt.detectors.ensemble import HFTTEnsembleDetector
from skhftt.detectors.hftt import HFTTDetector
from skhftt.embedding.cache import encode_texts
from skhftt.embedding.images import load_image
from skhftt.space.head import HFTTHead
from skhftt.space.validation import check_embeddings, check_texts

__all__ = [
    "EXPLAINABLE",
    "ScoreExplanation",
    "explain_scores",
    "learned_column_names",
    "nearest_texts",
]

EXPLAINABLE = (HFTTDetector, HFTTEnsembleDetector)
"""The detector kinds with learned columns, which these functions explain."""
Explainable = HFTTDetector | HFTTEnsembleDetector


def learned_column_names(detector: Explainable) -> list[str]:
    """Names of the trainable columns: ``learned_0``, ``learned_1``, …"""
    return [f"learned_{index}" for index in range(detector.trainable_columns_.shape[0])]


def nearest_texts(
    detector: Explainable,
    texts: Sequence[str],
    *,
    embeddings: np.ndarray | None = None,
    k: int = 10,
) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` texts nearest to each trainable column, by cosine similarity.

    Parameters
    ----------
    detector : HFTTDetector or HFTTEnsembleDetector
        A fitted detector.
    texts : sequence of str
        Candidate texts, typically the world corpus the detector was fitted on.
    embeddings : ndarray of shape (len(texts), dim), optional
        Their embeddings; required when the detector is ``"precomputed"``,
        otherwise computed (and cached) with the detector's encoder.
    k : int, default=10
        Texts per column.

    Returns
    -------
    dict
        ``learned_i`` -> list of ``(text, cosine)``, most similar first.
    """
    _check_hftt(detector, "nearest_texts")
    candidates = check_texts(texts, name="texts")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    if embeddings is None:
        encoder = detector._scoring_encoder()
        if encoder is None:
            raise ValueError(
                "a precomputed detector has no encoder: pass the texts' embeddings "
                "as embeddings=."
            )
        embeddings = encode_texts(encoder, candidates, batch_size=detector.encode_batch_size,
                                  cache_dir=detector.cache_dir)
    vectors = check_embeddings(embeddings, dim=detector.embedding_dim_, name="embeddings")
    if vectors.shape[0] != len(candidates):
        raise ValueError(
            f"embeddings has {vectors.shape[0]} rows for {len(candidates)} texts."
        )
    similarity = vectors @ detector.trainable_columns_.T
    top = min(k, len(candidates))
    result = {}
    for name, column in zip(learned_column_names(detector), similarity.T, strict=True):
        best = np.argsort(-column, kind="stable")[:top]
        result[name] = [(candidates[i], float(column[i])) for i in best]
    return result


@dataclass
class ScoreExplanation:
    """Per-input account of a detector's scores.

    Attributes
    ----------
    scores : ndarray of shape (n,)
        ``score_samples`` (HFTT's log-odds; an ensemble's blended score); NaN
        for inputs that could not be read.
    column : list of str or None
        The column holding the most softmax mass: a task name or
        ``learned_i``; None for inputs that could not be read.
    is_task_column : ndarray of shape (n,), bool
        Whether that column is a task column.
    share : ndarray of shape (n,)
        Its softmax probability; NaN for inputs that could not be read.
    errors : list of str or None
        Why an input could not be read (``on_error="record"``); None for the
        inputs explained.
    """

    scores: np.ndarray
    column: list[str | None]
    is_task_column: np.ndarray
    share: np.ndarray
    errors: list[str | None]


def _check_hftt(detector: object, who: str) -> None:
    if not isinstance(detector, EXPLAINABLE):
        raise TypeError(
            f"{who} explains the task and learned columns of an HFTTDetector or "
            f"HFTTEnsembleDetector; got a {type(detector).__name__}, which has no "
            "learned columns."
        )
    check_is_fitted(detector)


def _head(detector: Explainable) -> HFTTHead:
    """The softmax head over task and learned columns (an ensemble's HFTT member's)."""
    if isinstance(detector, HFTTDetector):
        return detector.head_
    return HFTTHead(detector.task_columns_, detector.trainable_columns_,
                    float(detector.temperature))


def _decode(items: Sequence[object]) -> tuple[list[object], list[str | None]]:
    """Decode image inputs one by one: the images read, and each input's error or None."""
    images, errors = [], []
    for item in items:
        image = load_image(item, errors="return")
        if isinstance(image, Exception):
            errors.append(f"{type(image).__name__}: {image}")
        else:
            images.append(image)
            errors.append(None)
    return images, errors


def _explain_embeddings(detector: Explainable, embeddings: np.ndarray) -> ScoreExplanation:
    head = _head(detector)
    logits = head.logits(embeddings)
    # An ensemble's score is its blend; the columns explain its HFTT member.
    scores = (head.log_odds_of_logits(logits) if isinstance(detector, HFTTDetector)
              else detector.score_samples(embeddings))
    logits = logits.astype(np.float64)
    best = logits.argmax(axis=1)
    peak = logits[np.arange(len(best)), best]
    names = list(detector.task_names_) + learned_column_names(detector)
    return ScoreExplanation(
        scores=scores,
        column=[names[i] for i in best],
        is_task_column=best < head.n_task_columns,
        share=1.0 / np.exp(logits - peak[:, None]).sum(axis=1),
        errors=[None] * len(best),
    )


def _explain_readable(detector: Explainable, items: Sequence[object]) -> ScoreExplanation:
    """Explain the items that decode; the others get their error and no score."""
    images, errors = _decode(items)
    readable = np.array([error is None for error in errors], dtype=bool)
    embeddings = (detector.embed(images) if images
                  else np.empty((0, detector.embedding_dim_), np.float32))
    explained = _explain_embeddings(detector, embeddings)
    scores, share = np.full(len(items), np.nan), np.full(len(items), np.nan)
    scores[readable], share[readable] = explained.scores, explained.share
    is_task = np.zeros(len(items), dtype=bool)
    is_task[readable] = explained.is_task_column
    columns = iter(explained.column)
    return ScoreExplanation(
        scores=scores,
        column=[next(columns) if ok else None for ok in readable],
        is_task_column=is_task,
        share=share,
        errors=errors,
    )


def explain_scores(
    detector: Explainable,
    X: object,
    *,
    on_error: Literal["raise", "record"] = "raise",
) -> ScoreExplanation:
    """Which column dominated each input's score.

    Parameters
    ----------
    detector : HFTTDetector or HFTTEnsembleDetector
        A fitted detector.
    X : images, texts or embeddings
        Anything ``detector.embed`` accepts.
    on_error : {"raise", "record"}, default="raise"
        What an image that cannot be read does: ``"raise"`` stops with its
        error; ``"record"`` (for a sequence of image inputs) explains the
        others and records why in ``errors``, as batch scoring does. Images
        are then decoded ``detector.encode_batch_size`` at a time.

    Returns
    -------
    ScoreExplanation

    Raises
    ------
    TypeError
        ``detector`` is neither an HFTTDetector nor an HFTTEnsembleDetector.
    """
    _check_hftt(detector, "explain_scores")
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record'; got {on_error!r}.")
    if on_error == "raise" or hasattr(X, "shape"):
        return _explain_embeddings(detector, detector.embed(X))
    items = list(X)
    size = detector.encode_batch_size
    starts = range(0, len(items), size) or [0]
    parts = [_explain_readable(detector, items[start:start + size]) for start in starts]
    return ScoreExplanation(
        scores=np.concatenate([part.scores for part in parts]),
        column=[column for part in parts for column in part.column],
        is_task_column=np.concatenate([part.is_task_column for part in parts]),
        share=np.concatenate([part.share for part in parts]),
        errors=[error for part in parts for error in part.errors],
    )
