"""User inputs -> embeddings: the single entry point every scoring method uses."""

from __future__ import annotations

from os import PathLike

import numpy as np

from skhftt._validation import check_embeddings, check_texts, is_string_sequence
from skhftt.encoders.base import Encoder
from skhftt.encoders.cache import encode_texts


def to_embeddings(
    X: object,
    *,
    encoder: Encoder | None,
    dim: int | None,
    batch_size: int = 256,
    show_progress: bool = False,
    cache_dir: str | PathLike[str] | None = None,
    name: str = "X",
) -> np.ndarray:
    """Turn ``X`` into unit float32 embeddings of width ``dim``.

    ``encoder=None`` means precomputed mode: ``X`` must already be embeddings.
    """
    if encoder is None:
        if is_string_sequence(X):
            raise TypeError(
                f"{name} contains texts, but encoder='precomputed' expects a 2-D "
                "array of embeddings."
            )
        return check_embeddings(X, dim=dim, name=name)
    if is_string_sequence(X):
        texts = check_texts(X, name=name)
        embeddings = encode_texts(
            encoder, texts, batch_size=batch_size, show_progress=show_progress,
            cache_dir=cache_dir,
        )
        return check_embeddings(embeddings, dim=dim, name=f"embeddings of {name}")
    return check_embeddings(X, dim=dim, name=name)
