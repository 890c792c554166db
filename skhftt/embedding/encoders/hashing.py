"""A model-free encoder: hashed bags of words, for tests, examples and doctests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_TOKEN = re.compile(r"\w+")


class HashingEncoder:
    """Embed texts as the normalised sum of one random vector per word.

    Texts that share words get similar embeddings, so a detector fitted with
    this encoder behaves sensibly on word overlap; there is no model, no
    download and no randomness across runs (vectors are seeded by a hash of
    each word). Images are embedded from a hash of their pixels: distinct
    images get unrelated vectors. Use it to test pipelines, not to detect
    anything real.

    Parameters
    ----------
    dim : int, default=64
        Width of the embeddings.

    Attributes
    ----------
    identity : str
        ``"hashing:<dim>"``; the embeddings depend on nothing else, so they
        may be cached across processes (``stable_identity`` is True).
    n_texts_encoded : int
        How many texts reached :meth:`encode_text`; tests use it to check
        caching.

    Examples
    --------
    >>> from skhftt.embedding.encoders.hashing import HashingEncoder
    >>> encoder = HashingEncoder(dim=8)
    >>> encoder.encode_text(["a red apple", "a red apple"]).shape
    (2, 8)
    """

    stable_identity = True

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.identity = f"hashing:{dim}"
        self.n_texts_encoded = 0

    def __sklearn_clone__(self) -> HashingEncoder:
        return self

    def _vector(self, key: bytes) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    @staticmethod
    def _unit(rows: list[np.ndarray]) -> np.ndarray:
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    def encode_text(
        self, texts: Sequence[str], *, batch_size: int = 256, show_progress: bool = False
    ) -> np.ndarray:
        """Embed texts; float32 unit rows of width ``dim``."""
        self.n_texts_encoded += len(texts)
        rows = []
        for text in texts:
            words = _TOKEN.findall(text.lower()) or [text]
            rows.append(sum(self._vector(word.encode()) for word in words))
        return self._unit(rows)

    def encode_image(
        self, images: Sequence[Any], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Embed images from a hash of their RGB pixels; float32 unit rows."""
        return self._unit([
            self._vector(np.asarray(image.convert("RGB") if hasattr(image, "convert")
                                    else image).tobytes())
            for image in images
        ])
