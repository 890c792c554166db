"""Encoders: models that embed texts and images into one joint space.

:func:`resolve_encoder` turns an ``encoder=`` value (``"precomputed"``, a
Hugging Face id, a local directory, ``"open_clip:ViT-B-16/openai"`` or an
object satisfying :class:`Encoder`) into an encoder; see
:mod:`skhftt.embedding.encoders.registry` for the spec grammar.
"""

from __future__ import annotations

from skhftt.embedding.encoders._hub import EncoderUnavailableError
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.blip import BlipEncoder
from skhftt.embedding.encoders.openclip import OpenCLIPEncoder
from skhftt.embedding.encoders.registry import (
    DEFAULT_ENCODER,
    PRECOMPUTED,
    clear_cache,
    list_backends,
    resolve_encoder,
)
from skhftt.embedding.encoders.sentence_transformer import SentenceTransformerEncoder

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
    "resolve_encoder",
]
