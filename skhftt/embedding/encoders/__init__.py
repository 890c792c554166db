"""Encoders: models that embed texts and images into one joint space.

:func:`resolve_encoder` turns an ``encoder=`` value (``"precomputed"``, a
Hugging Face id, a local directory, ``"open_clip:ViT-B-16/openai"`` or an
object satisfying :class:`Encoder`) into an encoder; see
:mod:`skhftt.embedding.encoders.registry` for the spec grammar. Importing
this package imports no model library: each backend (torch,
sentence-transformers, Transformers, open_clip) is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from skhftt.embedding.encoders._hub import EncoderUnavailableError
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import (
    DEFAULT_ENCODER,
    PRECOMPUTED,
    clear_cache,
    list_backends,
    loaded_models,
    resolve_encoder,
)

__all__ = [
    "DEFAULT_ENCODER",
    "PRECOMPUTED",
    "BlipEncoder",
    "Encoder",
    "EncoderUnavailableError",
    "OpenCLIPEncoder",
    "SentenceTransformerEncoder",
    "clear_cache",
    "list_backends",
    "loaded_models",
    "resolve_encoder",
]

_BACKEND_CLASSES = {
    "BlipEncoder": "skhftt.embedding.encoders.blip",
    "OpenCLIPEncoder": "skhftt.embedding.encoders.openclip",
    "SentenceTransformerEncoder": "skhftt.embedding.encoders.sentence_transformer",
}


def __getattr__(name: str) -> Any:
    if name in _BACKEND_CLASSES:
        return getattr(importlib.import_module(_BACKEND_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
