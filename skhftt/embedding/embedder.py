"""How a detector embeds its inputs: encoder, device, batch size, cache and space checks.

A detector keeps only a description of its encoder (its ``encoder``,
``device``, ``encode_batch_size``, ``cache_dir`` and ``verbose``
parameters). :class:`Embedder` turns that description into embeddings: it
resolves the encoder spec, embeds texts and images through
:func:`skhftt.embedding.inputs.to_embeddings`, records at fit the space the
detector was fitted in (:class:`EmbeddingSpace`: the encoder's identity, the
width and a spec that resolves from any working directory) and, when
scoring, refuses an encoder of another space.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from skhftt.embedding.cache import known_encoder
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import (
    PRECOMPUTED,
    peek_identity,
    resolve_encoder,
    split_spec,
)
from skhftt.embedding.inputs import Texts, to_embeddings

if TYPE_CHECKING:
    import torch

__all__ = ["Embedder", "EmbeddingSpace", "embeds_images", "resolvable_spec", "spec_kind"]


@dataclass(frozen=True)
class EmbeddingSpace:
    """The embedding space a detector was fitted in.

    Attributes
    ----------
    identity : str or None
        The encoder's identity (model and revision); None for
        ``encoder="precomputed"``.
    dim : int
        Width of the embeddings.
    spec : str or None
        The encoder spec as :func:`resolvable_spec` writes it (a local
        directory as an absolute path), ``"precomputed"``, or None for an
        encoder object.
    """

    identity: str | None
    dim: int
    spec: str | None


def _local_part(spec: str) -> tuple[str, str, str]:
    """Split a spec string into (backend prefix, model part, "@revision" suffix)."""
    _, rest = split_spec(spec)
    prefix = spec[: len(spec) - len(rest)]
    if not Path(rest).expanduser().is_dir() and "@" in rest:
        base, revision = rest.rsplit("@", 1)
        if Path(base).expanduser().is_dir():
            return prefix, base, f"@{revision}"
    return prefix, rest, ""


def resolvable_spec(encoder: object) -> str | None:
    """The ``encoder=`` value as a spec string that resolves from any working directory.

    Parameters
    ----------
    encoder : str, path-like or Encoder
        An ``encoder=`` value.

    Returns
    -------
    str or None
        The spec with a local model directory replaced by its absolute path
        (a backend prefix and an ``@revision`` suffix are kept); Hub ids and
        ``"precomputed"`` unchanged; None for an encoder object, which has
        no spec.

    Examples
    --------
    >>> from skhftt.embedding.embedder import resolvable_spec
    >>> resolvable_spec("openai/clip-vit-base-patch16")
    'openai/clip-vit-base-patch16'
    """
    if not isinstance(encoder, (str, os.PathLike)):
        return None
    spec = os.fspath(encoder)
    if spec == PRECOMPUTED:
        return spec
    prefix, model, revision = _local_part(spec)
    path = Path(model).expanduser()
    if not path.is_dir():
        return spec
    return f"{prefix}{path.resolve()}{revision}"


def spec_kind(spec: str | None) -> Literal["precomputed", "local", "hub", "object"]:
    """Where the model of a recorded spec (:attr:`EmbeddingSpace.spec`) comes from.

    Returns
    -------
    {"precomputed", "local", "hub", "object"}
        ``"local"`` for a model directory (recorded as an absolute path),
        ``"hub"`` for a name the backend looks up (a Hugging Face id, an
        open_clip pretrained tag), ``"object"`` when the detector was fitted
        with an encoder object (``spec`` is None).
    """
    if spec is None:
        return "object"
    if spec == PRECOMPUTED:
        return "precomputed"
    _, model, _ = _local_part(spec)
    return "local" if Path(model).expanduser().is_absolute() else "hub"


def embeds_images(encoder: Encoder) -> bool:
    """Whether ``encoder`` has an image tower.

    An encoder (or else the model it wraps, as sentence-transformers models
    do) may declare ``modalities``, a collection of ``"text"``, ``"image"``,
    ...; without that declaration it is assumed to embed images.
    """
    modalities = getattr(encoder, "modalities", None)
    if modalities is None:
        modalities = getattr(getattr(encoder, "model", None), "modalities", None)
    return modalities is None or "image" in modalities


class _LazyEncoder:
    """An encoder whose identity, width and modalities are known before its model loads.

    The model is loaded (``load()``) on the first call that needs it; a
    text-only model refuses images with an error that names it. It pickles
    as its loader (unloaded) or as its model (loaded).
    """

    def __init__(
        self, identity: str, dim: int, modalities: tuple[str, ...],
        load: Callable[[], Encoder] | None, *, stable_identity: bool = True,
    ) -> None:
        self.identity = identity
        self.dim = dim
        self.modalities = modalities
        # The persistent cache keeps embeddings only of encoders that vouch for them.
        self.stable_identity = stable_identity
        self._load = load
        self._model: Encoder | None = None

    @classmethod
    def of(cls, encoder: Encoder) -> _LazyEncoder:
        """Wrap an encoder already at hand."""
        modalities = ("text", "image") if embeds_images(encoder) else ("text",)
        lazy = cls(str(encoder.identity), int(encoder.dim), modalities, None,
                   stable_identity=bool(getattr(encoder, "stable_identity", False)))
        lazy._model = encoder
        return lazy

    def _encoder(self) -> Encoder:
        if self._model is None:
            encoder = self._load()
            if str(encoder.identity) != self.identity:
                raise ValueError(
                    f"encoder {self.identity!r} loads as {encoder.identity!r}: its model "
                    "files changed while in use."
                )
            self._model = encoder
        return self._model

    def __getattr__(self, name: str) -> Any:
        # Anything else (pixel_transform, encode_pixels, model, ...) is the model's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._encoder(), name)

    def encode_text(
        self, texts: Sequence[str], *, batch_size: int = 256, show_progress: bool = False
    ) -> np.ndarray:
        return self._encoder().encode_text(texts, batch_size=batch_size,
                                           show_progress=show_progress)

    def encode_image(self, images: Sequence[Any], **kwargs: Any) -> np.ndarray:
        if "image" not in self.modalities:
            raise ValueError(
                f"encoder {self.identity!r} embeds texts only (it has no image tower), so it "
                "cannot embed images: fit the detector with a joint text-image model (CLIP, "
                "SigLIP), or pass precomputed image embeddings."
            )
        return self._encoder().encode_image(images, **kwargs)


def _suffix_of(path: str, ending: str) -> bool:
    """Whether the path ``ending`` (relative, without ``.``/``..``) ends ``path``."""
    parts = [part for part in Path(ending).parts if part not in (".", "..")]
    return bool(parts) and list(Path(path).parts[-len(parts):]) == parts


class Embedder:
    """Embeds a detector's inputs with its encoder, device, batch size and cache.

    Parameters
    ----------
    encoder : str, path-like or Encoder
        The detector's ``encoder=``: ``"precomputed"``, a spec string (see
        :mod:`skhftt.embedding.encoders.registry`) or an encoder object.
    device : str, default="auto"
        Where a model named by ``encoder`` runs, and the device
        :meth:`torch_device` resolves.
    batch_size : int, default=256
        Inputs per encoder call.
    cache_dir : None, False, str or path-like, default=None
        Text-embedding cache: None is the persistent user cache
        (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path that
        directory, False the in-process cache only.
    show_progress : bool or None, default=None
        True shows progress bars while loading and embedding; None reports
        only long encodes (one line on stderr, see
        :mod:`skhftt.embedding.progress`); False is silent.
    fitted_spec : str, optional
        :attr:`EmbeddingSpace.spec` recorded at fit. When scoring, a relative
        model directory that named a directory at fit but names none from
        the current working directory is found again through it.

    Raises
    ------
    ValueError
        ``cache_dir=True``, which names no cache.
    """

    def __init__(
        self,
        encoder: str | os.PathLike[str] | Encoder,
        *,
        device: str = "auto",
        batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        show_progress: bool | None = None,
        fitted_spec: str | None = None,
    ) -> None:
        if cache_dir is True:
            raise ValueError(
                "cache_dir=True names no cache: pass None (the persistent user cache, "
                "SKHFTT_CACHE_DIR or ~/.cache/skhftt), a directory, or False (in-process "
                "cache only)."
            )
        self.encoder = self._spec_for_scoring(encoder, fitted_spec)
        self.device = device
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.show_progress = show_progress
        self._loaded: Encoder | Literal[False] | None = None

    @staticmethod
    def _spec_for_scoring(encoder: object, fitted_spec: str | None) -> object:
        if fitted_spec is None or spec_kind(fitted_spec) != "local":
            return encoder
        if not isinstance(encoder, (str, os.PathLike)) or os.fspath(encoder) == PRECOMPUTED:
            return encoder
        _, model, _ = _local_part(os.fspath(encoder))
        _, fitted_model, _ = _local_part(fitted_spec)
        if Path(model).expanduser().is_dir() or not _suffix_of(fitted_model, model):
            return encoder
        return fitted_spec

    def load(self) -> Encoder | None:
        """The encoder; a named model is loaded only when something must be encoded.

        A named model whose identity is known without loading it
        (:func:`~skhftt.embedding.encoders.registry.peek_identity`) and whose
        width the text-embedding cache recorded comes back unloaded: a fit
        whose texts are all cached never loads it. Otherwise the model is
        loaded, once per process and device.

        Returns
        -------
        Encoder or None
            None for ``encoder="precomputed"``. An encoder without an image
            tower refuses images with a ValueError that names it.
        """
        if self._loaded is None:
            self._loaded = self._resolve()
        return self._loaded or None

    def _resolve(self) -> Encoder | Literal[False]:
        spec = self.encoder
        if not isinstance(spec, (str, os.PathLike)):
            return _LazyEncoder.of(resolve_encoder(spec))
        if os.fspath(spec) == PRECOMPUTED:
            return False
        load = functools.partial(resolve_encoder, spec, device=self.device,
                                 show_progress=bool(self.show_progress))
        identity = peek_identity(spec)
        known = None if identity is None else known_encoder(identity, cache_dir=self.cache_dir)
        if known is None:
            return _LazyEncoder.of(load())
        dim, modalities = known
        return _LazyEncoder(identity, dim, modalities, load)

    def torch_device(self) -> torch.device:
        """The resolved ``device``.

        Raises
        ------
        ValueError
            An unknown or unavailable device.
        """
        # torch is imported only here, so reading a detector's spec stays light.
        from skhftt.embedding.device import resolve_device

        return resolve_device(self.device)

    def space(self, dim: int) -> EmbeddingSpace:
        """The space of embeddings of width ``dim`` made by this encoder (recorded at fit)."""
        encoder = self.load()
        identity = None if encoder is None else str(encoder.identity)
        return EmbeddingSpace(identity, int(dim), resolvable_spec(self.encoder))

    def warn_if_text_only(self, detector: str, *, stacklevel: int = 2) -> None:
        """Warn that a detector fitted on texts with a text-only encoder cannot score images.

        Parameters
        ----------
        detector : str
            The detector's name, for the message.
        stacklevel : int, default=2
            As for :func:`warnings.warn`, counted from the caller.
        """
        encoder = self.load()
        if encoder is not None and not embeds_images(encoder):
            warnings.warn(
                f"encoder {encoder.identity!r} embeds texts only (it has no image tower): "
                f"this {detector} can score texts (wrapped in skhftt.embedding.Texts) and "
                "precomputed embeddings, but not images. Use a joint text-image model "
                "(CLIP, SigLIP) to score images.",
                UserWarning,
                stacklevel=stacklevel + 1,
            )

    def checked(self, space: EmbeddingSpace) -> Encoder | None:
        """The encoder, once it is known to embed into ``space``.

        Returns
        -------
        Encoder or None
            None when precomputed. A text-only encoder comes wrapped so that
            asking it for images raises a ValueError that names it.

        Raises
        ------
        ValueError
            The encoder's identity or width differs from the fitted space's.
        """
        encoder = self.load()
        if encoder is None:
            return None
        identity = str(encoder.identity)
        if space.identity is not None and identity != space.identity:
            raise ValueError(
                f"this detector was fitted in the space of {space.identity!r} but its "
                f"encoder is now {identity!r}; embeddings of different models are not "
                "comparable."
            )
        if int(encoder.dim) != space.dim:
            raise ValueError(
                f"encoder {identity!r} embeds into width {encoder.dim}, but the detector "
                f"works in width {space.dim}."
            )
        return encoder

    def embed(
        self,
        X: object,
        *,
        space: EmbeddingSpace | None = None,
        name: str = "X",
    ) -> np.ndarray:
        """Embed ``X`` (images, texts or precomputed embeddings) into unit rows.

        Parameters
        ----------
        X : object
            Anything :func:`skhftt.embedding.inputs.to_embeddings` accepts.
        space : EmbeddingSpace, optional
            The fitted space, when scoring: the encoder is checked against
            it (:meth:`checked`) and embeddings must have its width. None at
            fit: any width.
        name : str, default="X"
            How ``X`` is called in error messages.

        Returns
        -------
        ndarray of shape (n_samples, dim), float32
        """
        encoder = self.load() if space is None else self.checked(space)
        return to_embeddings(
            X,
            encoder=encoder,
            dim=None if space is None else space.dim,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
            cache_dir=self.cache_dir,
            name=name,
        )

    def embed_texts(self, texts: Sequence[str], *, name: str) -> np.ndarray:
        """Embed texts as texts, whatever they look like (the texts of ``fit``)."""
        return self.embed(Texts(texts), name=name)
