"""Pickle-free save and load of fitted detectors (safetensors + JSON).

Pickle runs code on load, so a detector shared between people should travel
in this format: its fitted arrays in a ``.safetensors`` file, everything
else (kind, parameters, fitted scalars and lists, versions) as JSON in the
file's metadata. joblib/pickle also work for files you produce and load
yourself.

The format is generic. Every public detector class is registered under its
class name (its *kind*) when it is defined, and names its fitted attributes
in ``_fitted_attributes``; ``_fitted_state()`` gives them as a flat mapping
of names to numpy arrays and JSON values, and ``_set_fitted_state(state)``
restores them. Numeric arrays become tensors, arrays of strings and every
other value JSON. A new detector plugs in by declaring its attributes.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from importlib import metadata
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "load_detector",
    "register_detector",
    "registered_kinds",
    "save_detector",
]

FORMAT = "skhftt.detector"
FORMAT_VERSION = 3
# skhftt 0.1 wrote HFTT detectors only, in this format.
_FORMAT_V1 = "skhftt.HFTTDetector"
_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
# First bytes of a pickle (protocol 2+) and of joblib's compressed files.
_PICKLE_MAGIC = (b"\x80", b"\x1f\x8b", b"x\x9c", b"x\x01", b"x\xda", b"BZh", b"\xfd7zXZ",
                 b"\x04\x22\x4d\x18")
_DETECTORS: dict[str, type] = {}


def register_detector(cls: type) -> type:
    """Make a detector class loadable by :func:`load_detector` under its class name.

    :class:`~skhftt.detectors.base.BaseTextDetector` registers every public
    subclass when it is defined; call this only for a class outside that
    hierarchy.

    Raises
    ------
    TypeError
        Another class is already registered under the same name.
    """
    known = _DETECTORS.setdefault(cls.__name__, cls)
    if known is not cls:
        raise TypeError(
            f"two detector classes are named {cls.__name__!r} ({known.__module__} and "
            f"{cls.__module__}); saved files name a detector by its class name, so "
            "rename one."
        )
    return cls


def registered_kinds() -> list[str]:
    """The detector kinds (class names) that :func:`load_detector` can build."""
    return sorted(_DETECTORS)


def _json_value(name: str, value: Any) -> Any:
    """``value`` in a form JSON can hold, failing with the parameter's name."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        return list(value)
    try:
        json.dumps(value)
    except TypeError as exc:
        raise TypeError(
            f"the {name!r} parameter ({type(value).__name__}) cannot be saved without "
            "pickle; set it to a plain value first, or save with joblib."
        ) from exc
    return value


def json_params(detector: Any) -> dict[str, Any]:
    params = {}
    for name, value in detector.get_params(deep=False).items():
        if name == "encoder" and not isinstance(value, (str, os.PathLike)):
            value = None  # an encoder object: given again at load
        elif name == "random_state" and not (value is None or isinstance(value, Integral)):
            value = None  # a RandomState has already been consumed by fit
        params[name] = _json_value(name, value)
    return params


def _split_state(state: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Numeric arrays (tensors) apart from everything else (JSON)."""
    tensors, values = {}, {}
    for name, value in state.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            tensors[name] = np.ascontiguousarray(value)
        elif isinstance(value, np.ndarray) and value.dtype.kind == "U":
            values[name] = {"ndarray": value.tolist(), "dtype": value.dtype.str}
        else:
            values[name] = _json_value(name, value)
    return tensors, values


def _join_state(tensors: Mapping[str, np.ndarray], values: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = dict(tensors)
    for name, value in values.items():
        if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
            value = np.asarray(value["ndarray"], dtype=value["dtype"])
        state[name] = value
    return state


def _write_atomically(tensors: dict[str, np.ndarray], metadata_: dict[str, str],
                      target: str) -> None:
    partial = f"{target}.partial-{os.getpid()}"
    try:
        # open() creates the file with the process umask; safetensors writes its
        # own with mode 0600, so the mode is copied back before the rename.
        with open(partial, "wb"):
            pass
        mode = stat.S_IMODE(os.stat(partial).st_mode)
        save_file(tensors, partial, metadata=metadata_)
        os.chmod(partial, mode)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def save_detector(detector: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted detector to ``path`` without pickle.

    Parameters
    ----------
    detector : fitted detector
        Any registered kind (every detector of :mod:`skhftt.detectors`).
    path : str or path-like
        Destination file, conventionally ending in ``.safetensors``. Written
        to a temporary name and renamed, so a crash never leaves half a
        file; the file gets the permissions of any file the process creates.

    Raises
    ------
    TypeError
        The detector's kind is not registered, or a parameter has no plain
        value to save.

    Notes
    -----
    A detector fitted with an encoder *object* stores only that encoder's
    identity; pass the object again to :func:`load_detector`. A
    ``random_state`` that is a ``RandomState`` is saved as None. A local
    model directory is also recorded as an absolute path
    (``encoder_spec_``), so the loaded detector finds it from any working
    directory.
    """
    check_is_fitted(detector)
    kind = type(detector).__name__
    if _DETECTORS.get(kind) is not type(detector):
        raise TypeError(
            f"{kind} is not a registered detector kind ({', '.join(registered_kinds())}); "
            "subclass skhftt.detectors.base.BaseTextDetector, or call register_detector."
        )
    tensors, values = _split_state(detector._fitted_state())
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "skhftt_version": metadata.version("skhftt"),
        "params": json_params(detector),
        "fitted": values,
    }
    _write_atomically(tensors, {"skhftt": json.dumps(config)}, os.fspath(path))


def _not_safetensors(path: str) -> str | None:
    """Why ``path`` is a pickle/joblib file rather than safetensors, or None."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head[8:9] == b"{":  # safetensors: an 8-byte header length, then JSON
        return None
    if path.lower().endswith(_PICKLE_SUFFIXES) or head.startswith(_PICKLE_MAGIC):
        return (
            f"{path!r} is a joblib/pickle file, not a pickle-free .safetensors detector: "
            "load it with joblib.load(path). Loading a pickle runs code, so do that only "
            "for files you trust."
        )
    return None


def _read_config(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"detector file {path!r} not found.")
    pickled = _not_safetensors(path)
    if pickled is not None:
        raise ValueError(pickled)
    try:
        with safe_open(path, framework="numpy") as handle:
            raw = (handle.metadata() or {}).get("skhftt")
    except (OSError, SafetensorError) as exc:
        raise ValueError(f"{path!r} is not a saved skhftt detector: {exc}") from exc
    if raw is None:
        raise ValueError(f"{path!r} is a safetensors file but not a saved skhftt detector.")
    config = json.loads(raw)
    if config.get("format") == _FORMAT_V1 and config.get("format_version") == 1:
        return _from_format_v1(config)
    if config.get("format") != FORMAT:
        raise ValueError(f"{path!r} holds {config.get('format')!r}, not {FORMAT!r}.")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written in format version {config['format_version']} by "
            f"skhftt {config.get('skhftt_version')}; this skhftt reads up to version "
            f"{FORMAT_VERSION}. Upgrade skhftt."
        )
    return config


def _from_format_v1(config: dict[str, Any]) -> dict[str, Any]:
    """A file of skhftt 0.1 as a version-2 config (its tensors are renamed at load)."""
    fitted = dict(config["fitted"])
    fitted["head_.temperature"] = config["temperature"]
    fitted.setdefault("encoder_spec_", config["params"]["encoder"])
    return {**config, "kind": "HFTTDetector", "fitted": fitted,
            "tensor_names": {"task_columns": "head_.task_columns",
                             "trainable_columns": "head_.trainable_columns"}}


def _check_widths(path: str, state: Mapping[str, Any]) -> None:
    """Every 2-D float array of a detector has one row per vector of the space."""
    dim = state.get("embedding_dim_")
    for name, value in state.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim == 2 \
                and value.shape[1] != dim:
            raise ValueError(
                f"{path!r} is inconsistent: {name} has shape {value.shape} but the "
                f"detector works in width {dim}."
            )


def load_detector(
    path: str | os.PathLike[str], *, encoder: object = None
) -> Any:
    """Read a detector written by :func:`save_detector`.

    Parameters
    ----------
    path : str or path-like
    encoder : str or Encoder, optional
        Overrides the saved encoder, e.g. a local directory holding the same
        model, an encoder object, or ``"precomputed"`` to score embeddings
        without any model. Scoring checks that the encoder's identity and
        width match those the detector was fitted with.

    Returns
    -------
    detector
        A fitted detector of the saved kind, whose scores equal the saved
        detector's exactly.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A joblib/pickle file (load it with ``joblib.load``), a file that is
        no saved detector, of a newer format, of an unknown kind, or
        inconsistent; or a detector fitted with an encoder object and no
        ``encoder=``.
    """
    target = os.fspath(path)
    config = _read_config(target)
    kind = config["kind"]
    cls = _DETECTORS.get(kind)
    if cls is None:
        raise ValueError(
            f"{target!r} holds a {kind}, which this skhftt does not know (it knows "
            f"{', '.join(registered_kinds())}); upgrade skhftt."
        )
    params = dict(config["params"])
    if encoder is not None:
        params["encoder"] = encoder
    elif params.get("encoder") is None:
        raise ValueError(
            f"{target!r} was fitted with an encoder object "
            f"({config['fitted'].get('encoder_identity_')!r}); pass encoder= with that "
            "object, or encoder='precomputed' to score embeddings."
        )
    renamed = config.get("tensor_names", {})
    tensors = {renamed.get(name, name): array for name, array in load_file(target).items()}
    state = _join_state(tensors, config["fitted"])
    # Written before format 3: no job (keep detectors, the default) and no digests.
    state.setdefault("training_digests_", None)
    _check_widths(target, state)
    try:
        detector = cls(**params)
    except TypeError as exc:
        raise ValueError(
            f"{target!r} was written by skhftt {config.get('skhftt_version')} with "
            f"parameters this {kind} does not have ({exc}); upgrade skhftt."
        ) from exc
    try:
        detector._set_fitted_state(state)
    except ValueError as exc:
        raise ValueError(f"{target!r} is inconsistent: {exc}") from exc
    return detector
