"""The encoder protocol: what the detector needs from a joint embedding model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """A model that maps texts and images into one L2-normalised space.

    Every backend (sentence-transformers, open_clip, a user's own object)
    satisfies this protocol. Outputs are float32 arrays of shape ``(n, dim)``
    whose rows have unit L2 norm.

    Attributes
    ----------
    identity : str
        A stable string naming the model and its revision, e.g.
        ``"sentence_transformers:openai/clip-vit-base-patch16@<revision>"``.
        Used as the key of the text-embedding cache and stored in fitted
        detectors, so that a detector is never applied in another space.
    dim : int
        Width of the embeddings.

    Notes
    -----
    Optional extras that skhftt uses when present:

    * ``__sklearn_clone__`` returning ``self``, so that ``sklearn.base.clone``
      (GridSearchCV, cross-validation) shares the model instead of
      deep-copying it once per candidate;
    * ``pixel_transform()`` (a picklable callable from an RGB PIL image to a
      ``(C, H, W)`` tensor, or None) with ``encode_pixels(pixels)`` (embed a
      stacked batch), so that preprocessing runs in worker threads or
      DataLoader processes while the model runs;
    * ``stable_identity`` set to True when ``identity`` changes whenever the
      embeddings would (it pins a revision or a content digest), so that
      text embeddings may be kept in the persistent user cache and reused by
      later processes. Encoders without it are cached on disk only when a
      ``cache_dir`` is given explicitly.
    """

    identity: str
    dim: int

    def encode_text(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 256,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed texts; returns float32 ``(len(texts), dim)`` unit rows."""
        ...

    def encode_image(
        self,
        images: Sequence[Any],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed decoded images (PIL images); returns float32 unit rows."""
        ...
