"""Turn an ``encoder=`` value into an encoder: spec strings, paths and objects.

Spec strings
------------
``"precomputed"``
    No model: every input is already an embedding (:func:`resolve_encoder`
    returns None).
``"<hub id>"`` or ``"<hub id>@<revision>"``
    A Hugging Face model loaded by sentence-transformers, e.g. the default
    ``"openai/clip-vit-base-patch16"`` or ``"google/siglip-base-patch16-224"``.
``"<directory>"``
    A local model directory (``save_pretrained`` / ``SentenceTransformer.save``
    output, or a Hub snapshot), loaded by sentence-transformers exactly like a
    Hub id. An existing directory always wins over a Hub id of the same name.
``"<backend>:<rest>"``
    An explicit backend: ``"sentence_transformers:<hub id or directory>"`` or
    ``"open_clip:<architecture>/<pretrained>"`` (e.g.
    ``"open_clip:ViT-B-16/openai"``), ``"open_clip:hf-hub:<repo id>"``, or
    ``"blip:<hub id or directory>"`` (e.g. ``"blip:Salesforce/blip-itm-base-coco"``).

Objects with ``identity``, ``dim``, ``encode_text`` and ``encode_image``
(the :class:`~skhftt.embedding.encoders.Encoder` protocol) are used as they are.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skhftt.embedding.encoders._hub import loading_progress, pretrained_identity
from skhftt.embedding.encoders._torch import clear_model_cache, loaded_models
from skhftt.embedding.encoders.base import Encoder

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_ENCODER",
    "PRECOMPUTED",
    "clear_cache",
    "known_forms",
    "list_backends",
    "loaded_models",
    "peek_identity",
    "resolve_encoder",
    "split_spec",
]

PRECOMPUTED = "precomputed"
DEFAULT_ENCODER = "openai/clip-vit-base-patch16"

# backend name -> (module, factory, install hint); modules are imported lazily.
_BACKENDS: dict[str, tuple[str, str, str]] = {
    "open_clip": (
        "skhftt.embedding.encoders.openclip",
        "open_clip_from_spec",
        'pip install "skhftt[openclip]"',
    ),
    "sentence_transformers": (
        "skhftt.embedding.encoders.sentence_transformer",
        "sentence_transformer_from_spec",
        "pip install sentence-transformers pillow",
    ),
    "blip": (
        "skhftt.embedding.encoders.blip",
        "blip_from_spec",
        'pip install "transformers>=4.30"',
    ),
}
_ALIASES = {
    "sentence-transformers": "sentence_transformers",
    "openclip": "open_clip",
    "open-clip": "open_clip",
}
_PREFIX = re.compile(r"^([A-Za-z][\w-]+):(.*)$", re.DOTALL)
_ENCODERS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.RLock()


def list_backends() -> list[str]:
    """Names of the encoder backends a spec string can ask for.

    Returns
    -------
    list of str
        ``["blip", "open_clip", "sentence_transformers"]``. A backend whose package is
        missing is still listed; using it raises an ImportError that says
        what to install.
    """
    return sorted(_BACKENDS)


def clear_cache() -> None:
    """Forget every encoder and model loaded by :func:`resolve_encoder`.

    Models are loaded once per process and (spec, device); call this after
    changing a model directory in place, or to free memory.
    :func:`loaded_models` lists what is loaded.
    """
    with _LOCK:
        _ENCODERS.clear()
        clear_model_cache()


def known_forms() -> str:
    """The accepted ``encoder=`` forms, for error messages."""
    return (
        f"known backends: {', '.join(list_backends())}; an encoder is 'precomputed', "
        "a Hugging Face model id (e.g. 'openai/clip-vit-base-patch16'), a local model "
        "directory, '<backend>:<model>' (e.g. 'open_clip:ViT-B-16/openai'), or an "
        "object with identity, dim, encode_text and encode_image"
    )


def split_spec(spec: str) -> tuple[str, str]:
    """Split a spec string into (backend, the backend's own model spec).

    Raises
    ------
    ValueError
        For an unknown ``"<backend>:"`` prefix or an empty spec.
    """
    if not spec.strip():
        raise ValueError(f"encoder={spec!r} is empty; {known_forms()}.")
    match = _PREFIX.match(spec)
    if match is not None and not Path(spec).expanduser().exists():
        prefix, rest = match.groups()
        backend = _ALIASES.get(prefix, prefix)
        if backend not in _BACKENDS:
            raise ValueError(
                f"encoder={spec!r} names an unknown backend {prefix!r}; {known_forms()}."
            )
        if not rest.strip():
            raise ValueError(f"encoder={spec!r} names backend {backend!r} but no model.")
        return backend, rest
    return "sentence_transformers", spec


def _check_protocol(encoder: Any) -> Any:
    module = type(encoder).__module__ or ""
    if module.startswith("sentence_transformers"):
        raise TypeError(
            f"encoder= got a {type(encoder).__name__} object; pass the model's name or "
            "directory instead (e.g. encoder='openai/clip-vit-base-patch16'), or "
            "SentenceTransformerEncoder(name) to set device or precision."
        )
    if not isinstance(encoder, Encoder):
        missing = [
            attribute
            for attribute in ("identity", "dim", "encode_text", "encode_image")
            if not hasattr(encoder, attribute)
        ]
        raise TypeError(
            f"encoder={encoder!r} (a {type(encoder).__name__}) lacks "
            f"{', '.join(missing)}; {known_forms()}."
        )
    if not isinstance(encoder.identity, str) or not encoder.identity:
        raise ValueError(f"encoder.identity must be a non-empty str; got {encoder.identity!r}.")
    if isinstance(encoder.dim, bool) or not isinstance(encoder.dim, int) or encoder.dim < 1:
        raise ValueError(f"encoder.dim must be a positive int; got {encoder.dim!r}.")
    return encoder


def resolve_encoder(
    spec: Any, *, device: str | torch.device = "auto", show_progress: bool = False
) -> Encoder | None:
    """Turn an ``encoder=`` value into an encoder, loading the model once per process.

    Parameters
    ----------
    spec : str, path-like or Encoder
        ``"precomputed"``, a spec string (see the module docs: a Hugging Face
        id, a local directory, ``"<backend>:<model>"``), or an object that
        satisfies :class:`~skhftt.embedding.encoders.Encoder`, returned unchanged.
    device : str or torch.device, default="auto"
        Where a model named by ``spec`` runs: ``"auto"`` (CUDA, then MPS,
        then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. Ignored
        for encoder objects.
    show_progress : bool, default=False
        Show the model loader's own progress bars (Transformers' "Loading
        weights"). Download progress bars show either way.

    Returns
    -------
    Encoder or None
        None for ``"precomputed"``. The same object for the same spec and
        resolved device within a process, so that GridSearchCV candidates
        share one model.

    Raises
    ------
    ValueError
        Unknown backend, malformed spec, missing directory, or no such
        model on the Hub.
    EncoderUnavailableError
        A Hub model that is not cached and the Hub is unreachable (raised
        within seconds).
    ImportError
        The backend's package is missing; the message says what to install.
    TypeError
        ``spec`` is neither a string, a path nor an encoder object.
    """
    if isinstance(spec, str) and spec == PRECOMPUTED:
        return None
    if not isinstance(spec, (str, os.PathLike)):
        return _check_protocol(spec)
    from skhftt.embedding.device import resolve_device

    text = os.fspath(spec)
    backend, rest = split_spec(text)
    resolved = resolve_device(device)
    path = Path(rest).expanduser()
    name = str(path.resolve()) if path.is_dir() else rest
    key = (backend, name, str(resolved))
    with _LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            module_name, factory, hint = _BACKENDS[backend]
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise ImportError(
                    f"The {backend} encoder backend cannot be imported: {hint}"
                ) from exc
            with loading_progress(show_progress):
                encoder = getattr(module, factory)(rest, device)
            _ENCODERS[key] = encoder
        return encoder


def peek_identity(spec: str | os.PathLike[str]) -> str | None:
    """The identity :func:`resolve_encoder` would give ``spec``, found without loading the model.

    A model directory is identified by a digest of its files, a Hugging Face
    id by the commit of its snapshot in the local cache; neither needs the
    model's library or weights. So a caller whose texts are all cached under
    that identity never loads the model.

    Parameters
    ----------
    spec : str or path-like
        A spec string (see the module docs) other than ``"precomputed"``.

    Returns
    -------
    str or None
        The identity, or None when only loading the model can tell it
        (open_clip specs, a Hub id not in the local cache).

    Raises
    ------
    ValueError
        Unknown backend or empty spec.
    """
    backend, rest = split_spec(os.fspath(spec))
    return None if backend == "open_clip" else pretrained_identity(backend, rest)
