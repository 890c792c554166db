"""What a fitted detector learned, and why it scored an input as it did.

* :func:`nearest_texts` — for each trainable column, the texts closest to it:
  what the detector learned "outside the task" looks like.
* :func:`explain_scores` — for each input, the column (a task item or a
  learned one) that holds the most softmax mass, and how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skhftt.detectors.hftt import HFTTDetector
from skhftt.embedding.cache import encode_texts
from skhftt.space.validation import check_embeddings, check_texts

__all__ = ["ScoreExplanation", "explain_scores", "learned_column_names", "nearest_texts"]


def learned_column_names(detector: HFTTDetector) -> list[str]:
    """Names of the trainable columns: ``learned_0``, ``learned_1``, …"""
    return [f"learned_{index}" for index in range(detector.trainable_columns_.shape[0])]


def nearest_texts(
    detector: HFTTDetector,
    texts: Sequence[str],
    *,
    embeddings: np.ndarray | None = None,
    k: int = 10,
) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` texts nearest to each trainable column, by cosine similarity.

    Parameters
    ----------
    detector : HFTTDetector
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
    check_is_fitted(detector)
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
        The log-odds, as ``score_samples`` returns them.
    column : list of str
        The column holding the most softmax mass: a task name or ``learned_i``.
    is_task_column : ndarray of shape (n,), bool
        Whether that column is a task column.
    share : ndarray of shape (n,)
        Its softmax probability.
    """

    scores: np.ndarray
    column: list[str]
    is_task_column: np.ndarray
    share: np.ndarray


def explain_scores(detector: HFTTDetector, X: object) -> ScoreExplanation:
    """Which column dominated each input's score.

    Parameters
    ----------
    detector : HFTTDetector
        A fitted detector.
    X : images, texts or embeddings
        Anything ``detector.embed`` accepts.

    Returns
    -------
    ScoreExplanation
    """
    embeddings = detector.embed(X)
    logits = detector.head_.logits(embeddings)
    scores = detector.head_.log_odds_of_logits(logits)
    logits = logits.astype(np.float64)
    best = logits.argmax(axis=1)
    peak = logits[np.arange(len(best)), best]
    share = 1.0 / np.exp(logits - peak[:, None]).sum(axis=1)
    names = list(detector.task_names_) + learned_column_names(detector)
    return ScoreExplanation(
        scores=scores,
        column=[names[i] for i in best],
        is_task_column=best < detector.head_.n_task_columns,
        share=share,
    )
