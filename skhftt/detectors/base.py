"""What every text-fitted detector shares: inputs, task, encoder, score chain.

:class:`BaseTextDetector` turns the accepted forms of ``fit(X, y)`` into
embeddings and task columns, resolves the encoder, and implements the
scikit-learn novelty-detector chain on top of a subclass's
``score_samples``. HFTT and the zero-shot baselines differ only in the head
they fit on those embeddings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from skhftt._sklearn_compat import HasMethods, Interval
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import PRECOMPUTED
from skhftt.embedding.inputs import Texts, to_embeddings
from skhftt.space.task import TaskItems, parse_task, task_columns
from skhftt.space.validation import check_embeddings, check_texts, is_string_sequence

__all__ = ["BaseTextDetector", "FitData"]


def _pu_labels(y: object) -> np.ndarray | None:
    """``y`` as a boolean vector when it is meant as 0/1 PU labels, else None."""
    if is_string_sequence(y) or y is None or isinstance(y, dict):
        return None
    array = np.asarray(y)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "biuf":
        return None
    values = np.unique(array)
    if not np.isin(values, [0, 1]).all():
        raise ValueError(
            "y must be PU labels with values 0 (world text) and 1 (task text); "
            f"got values {values[:10].tolist()}."
        )
    return array.astype(bool)


def _fit_predict_unavailable(detector: BaseTextDetector) -> bool:
    raise AttributeError(
        f"{type(detector).__name__} has no fit_predict: it is fitted on texts and "
        "predicts on images, so fit(X).predict(X) has no meaning. Use "
        "fit(texts, in_texts).predict(images)."
    )


@dataclass
class FitData:
    """Embedded training data handed to a subclass's fit.

    Attributes
    ----------
    task_embeddings : ndarray of shape (m, d)
        Every task prompt, unit rows.
    task_columns : ndarray of shape (C, d)
        One unit column per task item.
    task : TaskItems
        Names and prompt-to-column ownership.
    world_embeddings : ndarray of shape (n, d) or None
        The world corpus, unit rows; None when the detector needs none.
    encoder : Encoder or None
        The resolved encoder; None in precomputed mode.
    """

    task_embeddings: np.ndarray
    task_columns: np.ndarray
    task: TaskItems
    world_embeddings: np.ndarray | None
    encoder: Encoder | None


class BaseTextDetector(OutlierMixin, BaseEstimator):
    """Shared machinery of detectors fitted on texts and applied to images.

    Subclasses define ``fit`` (calling :meth:`_fit_data`) and
    ``score_samples`` (higher = more like the task), and set ``offset_``.
    """

    _parameter_constraints: ClassVar[dict] = {
        "encoder": [str, os.PathLike, HasMethods(["encode_text", "encode_image"])],
        "templates": [None, list, tuple],
        "encode_batch_size": [Interval(Integral, 1, None, closed="left")],
        "cache_dir": [None, str, os.PathLike],
        "device": [str],
        "verbose": ["verbose"],
    }

    # ---------------------------------------------------------------- fit

    def _fit_data(self, X: object, y: object, *, need_world: bool) -> FitData:
        """Parse and embed ``fit``'s arguments; set the shared fitted attributes."""
        encoder = self._resolve_encoder()
        labels = _pu_labels(y)
        if labels is not None:
            world, task = self._split_pu(X, labels)
        elif y is None:
            raise ValueError(
                f"{type(self).__name__}.fit needs the task: pass in_texts as the "
                "second argument (texts, a mapping class -> prompts, or task "
                "embeddings), or 0/1 PU labels y."
            )
        else:
            world, task = X, parse_task(y, templates=self.templates)

        task_embeddings = self._embed_task(task, encoder)
        dim = task_embeddings.shape[1]
        world_embeddings = self._embed_world(world, encoder, dim=dim) if need_world else None
        self.task_names_ = list(task.names)
        self._set_space(encoder, dim)
        return FitData(
            task_embeddings=task_embeddings,
            task_columns=task_columns(task_embeddings, task.owners, len(task.names)),
            task=task,
            world_embeddings=world_embeddings,
            encoder=encoder,
        )

    def _set_space(self, encoder: Encoder | None, dim: int) -> None:
        """Record the embedding space fitted in: width, encoder identity."""
        self.embedding_dim_ = int(dim)
        self.encoder_identity_ = None if encoder is None else str(encoder.identity)
        if encoder is None:
            self.n_features_in_ = self.embedding_dim_

    def _resolve_encoder(self) -> Encoder | None:
        from skhftt.embedding.encoders import resolve_encoder

        return resolve_encoder(self.encoder, device=self.device)

    def _split_pu(self, X: object, labels: np.ndarray) -> tuple[object, TaskItems]:
        if X is None:
            raise ValueError("PU labels y need the texts X they label; got X=None.")
        items = X if is_string_sequence(X) else np.asarray(X)
        if len(items) != len(labels):
            raise ValueError(
                f"X has {len(items)} samples but the PU labels y have {len(labels)}."
            )
        for label, what in ((True, "task"), (False, "world")):
            if not (labels == label).any():
                raise ValueError(
                    f"the PU labels y mark no {what} text (no {int(label)}s); "
                    "both 1 (task) and 0 (world) are needed."
                )
        if isinstance(items, np.ndarray):
            return items[~labels], parse_task(items[labels], templates=self.templates)
        task = [text for text, label in zip(items, labels, strict=True) if label]
        world = [text for text, label in zip(items, labels, strict=True) if not label]
        return world, parse_task(task, templates=self.templates)

    def _encode_fit_texts(self, texts: list[str], encoder: Encoder | None, name: str):
        # Texts() keeps fit's texts texts, whatever the path rule of inputs says.
        return to_embeddings(
            Texts(texts),
            encoder=encoder,
            dim=None,
            batch_size=self.encode_batch_size,
            show_progress=self.verbose >= 1,
            cache_dir=self.cache_dir,
            name=name,
        )

    def _embed_task(self, task: TaskItems, encoder: Encoder | None) -> np.ndarray:
        if task.are_texts:
            return self._encode_fit_texts(task.prompts, encoder, "in_texts")
        return check_embeddings(np.concatenate(task.prompts), name="in_texts")

    def _embed_world(self, world: object, encoder: Encoder | None, *, dim: int) -> np.ndarray:
        if world is None:
            if encoder is None:
                raise ValueError(
                    "encoder='precomputed' has no bundled world corpus: pass the "
                    "world corpus embeddings as X."
                )
            from skhftt.corpora import load_world_corpus

            world = load_world_corpus()
        if is_string_sequence(world) or (isinstance(world, Sequence) and not world):
            texts = check_texts(world, name="the world corpus X")
            embeddings = self._encode_fit_texts(texts, encoder, "the world corpus X")
        else:
            embeddings = check_embeddings(world, name="the world corpus X")
        if embeddings.shape[1] != dim:
            raise ValueError(
                f"the world corpus X has embeddings of width {embeddings.shape[1]} "
                f"but the task embeddings have width {dim}."
            )
        return embeddings

    # ------------------------------------------------------------ scoring

    def _scoring_encoder(self) -> Encoder | None:
        encoder = self._resolve_encoder()
        if encoder is None:
            return None
        identity = str(encoder.identity)
        if self.encoder_identity_ is not None and identity != self.encoder_identity_:
            raise ValueError(
                f"this detector was fitted in the space of {self.encoder_identity_!r} "
                f"but its encoder is now {identity!r}; embeddings of different models "
                "are not comparable."
            )
        if int(encoder.dim) != self.embedding_dim_:
            raise ValueError(
                f"encoder {identity!r} embeds into width {encoder.dim}, but the "
                f"detector works in width {self.embedding_dim_}."
            )
        return encoder

    def embed(self, X: object) -> np.ndarray:
        """Embed inputs into the detector's space.

        Parameters
        ----------
        X : images, texts or embeddings
            Anything :func:`skhftt.embedding.inputs.to_embeddings` accepts: image
            paths, PIL images, arrays, tensors, texts, or a 2-D array of
            precomputed embeddings of width ``embedding_dim_``.

        Returns
        -------
        ndarray of shape (n_samples, embedding_dim_)
            Unit float32 rows.
        """
        check_is_fitted(self)
        return to_embeddings(
            X,
            encoder=self._scoring_encoder(),
            dim=self.embedding_dim_,
            batch_size=self.encode_batch_size,
            show_progress=self.verbose >= 1,
            cache_dir=self.cache_dir,
        )

    def decision_function(self, X: object) -> np.ndarray:
        """``score_samples(X) - offset_``: positive for the task (+1).

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: object) -> np.ndarray:
        """+1 for inputs that match the task, -1 for the others.

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int
        """
        return np.where(self.decision_function(X) > 0, 1, -1)

    @available_if(_fit_predict_unavailable)
    def fit_predict(self, X: object, y: object = None) -> np.ndarray:
        """Not available: these detectors are fitted on texts and applied to images."""
        return self.fit(X, y).predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        precomputed = isinstance(self.encoder, str) and self.encoder == PRECOMPUTED
        tags.input_tags.two_d_array = precomputed
        tags.input_tags.string = not precomputed
        return tags
