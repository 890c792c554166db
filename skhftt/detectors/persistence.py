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
other value JSON. A new detector plugs in by declaring its attributes and
what each must look like (``_fitted_spec``, :mod:`skhftt.detectors.fitted`).

A file is validated whole when it is loaded: the header, every parameter
(against the detector's ``_parameter_constraints``), every fitted value and
array (names, dtypes, shapes, finiteness, ranges: ``_fitted_spec``), the
rules between them (``_check_fitted_state``) and a SHA-256 digest of the
arrays. Any fault is one ``ValueError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import reprlib
import stat
from collections.abc import Mapping
from importlib import metadata
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from sklearn.utils.validation import check_is_fitted

from skhftt._header import read_skhftt_header
from skhftt._sklearn_compat import validate_parameters
from skhftt.detectors.fitted import check_fitted_state

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
# The header of a file of format 2 (skhftt 0.2) or 3, and the JSON type of each entry.
_HEADER = {"format": str, "format_version": int, "kind": str, "skhftt_version": str,
           "params": dict, "fitted": dict}
_JSON_TYPES = {str: "a string", int: "an integer", dict: "an object"}
# Optional entries: the arrays' digest (since format 3), tensor renames (format 1, at load).
_OPTIONAL_HEADER = {"tensor_digest", "tensor_names"}
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
    """The fitted state from a file's tensors and JSON values (arrays of strings rebuilt)."""
    state: dict[str, Any] = dict(tensors)
    for name, value in values.items():
        if name in state:
            raise ValueError(f"{name} is both an array and a JSON value.")
        if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
            value = _string_array(name, value)
        state[name] = value
    return state


def _string_array(name: str, value: Mapping[str, Any]) -> np.ndarray:
    """An array of strings saved as JSON ``{"ndarray": [...], "dtype": "<U..."}``."""
    items, dtype = value["ndarray"], value["dtype"]
    try:
        kind = np.dtype(dtype).kind if isinstance(dtype, str) else None
    except TypeError:
        kind = None
    if kind != "U" or not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{name} must be a list of str with a string dtype; got "
                         f"{reprlib.repr(dict(value))}.")
    return np.asarray(items, dtype=dtype)


def _tensor_digest(tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the arrays of a file: names, dtypes, shapes and bytes, by name."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        hasher.update(json.dumps([name, array.dtype.str, array.shape]).encode())
        hasher.update(array.tobytes())
    return f"sha256:{hasher.hexdigest()}"


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
    state = detector._fitted_state()
    if set(state) != set(detector._fitted_spec):
        raise TypeError(
            f"{kind}._fitted_spec describes {sorted(detector._fitted_spec)} but its fitted "
            f"state is {sorted(state)}; declare what every saved attribute must look like."
        )
    tensors, values = _split_state(state)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "skhftt_version": metadata.version("skhftt"),
        "params": json_params(detector),
        "fitted": values,
        "tensor_digest": _tensor_digest(tensors),
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
    """The skhftt header of a detector file, checked entry by entry (format 1 converted)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"detector file {path!r} not found.")
    pickled = _not_safetensors(path)
    if pickled is not None:
        raise ValueError(pickled)
    config, _ = read_skhftt_header(path)
    if config.get("format") == _FORMAT_V1 and _is_int(config.get("format_version")) \
            and config["format_version"] == 1:
        config = _from_format_v1(path, config)
    if config.get("format") != FORMAT:
        raise ValueError(f"{path!r} holds {reprlib.repr(config.get('format'))}, not {FORMAT!r}.")
    version = config.get("format_version")
    if not _is_int(version) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"{path!r} is in format version {reprlib.repr(version)} (written by skhftt "
            f"{reprlib.repr(config.get('skhftt_version'))}); this skhftt reads format versions "
            f"1 to {FORMAT_VERSION}. Upgrade skhftt to read a later one."
        )
    for key, kind in _HEADER.items():
        if key not in config:
            raise ValueError(f"{path!r} is not a complete skhftt detector: its header has no "
                             f"{key!r}.")
        if not isinstance(config[key], kind):
            raise ValueError(f"{path!r} is not a valid skhftt detector: its header's {key!r} is "
                             f"{reprlib.repr(config[key])}, not {_JSON_TYPES[kind]}.")
    unknown = sorted(set(config) - set(_HEADER) - _OPTIONAL_HEADER)
    if unknown:
        raise ValueError(f"{path!r} is not a skhftt detector of format {version}: its header "
                         f"has {reprlib.repr(unknown[0])}, which that format does not have.")
    return config


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _from_format_v1(path: str, config: dict[str, Any]) -> dict[str, Any]:
    """A file of skhftt 0.1 as a config of this format (its tensors are renamed at load)."""
    if not (isinstance(config.get("params"), dict) and isinstance(config.get("fitted"), dict)
            and "temperature" in config):
        raise ValueError(f"{path!r} is not a complete skhftt 0.1 detector: its header needs "
                         "'params', 'fitted' and 'temperature'.")
    fitted = {**config["fitted"], "head_.temperature": config["temperature"]}
    fitted.setdefault("encoder_spec_", config["params"].get("encoder"))
    return {"format": FORMAT, "format_version": 1, "kind": "HFTTDetector",
            "skhftt_version": config.get("skhftt_version"), "params": config["params"],
            "fitted": fitted,
            "tensor_names": {"task_columns": "head_.task_columns",
                             "trainable_columns": "head_.trainable_columns"}}


def _read_tensors(path: str, config: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The file's arrays, checked against the header's digest and renamed as it says."""
    try:
        tensors = load_file(path)
    except (OSError, SafetensorError, ValueError, TypeError) as exc:
        raise ValueError(f"{path!r} is not a saved skhftt detector: its arrays cannot be read "
                         f"({exc}).") from exc
    expected = config.get("tensor_digest")
    if expected is not None and expected != _tensor_digest(tensors):
        raise ValueError(f"{path!r} was changed after skhftt wrote it: its arrays do not "
                         "match the digest in its header (a corrupt or edited file).")
    renamed = config.get("tensor_names", {})
    return {renamed.get(name, name): array for name, array in tensors.items()}


def load_detector(
    path: str | os.PathLike[str], *, encoder: object = None
) -> Any:
    """Read a detector written by :func:`save_detector`.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_detector`.
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
        A joblib/pickle file (load it with ``joblib.load``); a file that is
        no saved detector, of a newer format or of an unknown kind; a header
        entry, parameter, fitted value or array that is not what the kind
        holds, or arrays that do not match the header's digest (the message
        names the field); or a detector fitted with an encoder object and
        no ``encoder=``.
    """
    target = os.fspath(path)
    config = _read_config(target)
    kind = config["kind"]
    cls = _DETECTORS.get(kind)
    if cls is None:
        raise ValueError(
            f"{target!r} holds a {kind if kind.isidentifier() else reprlib.repr(kind)}, which "
            "this skhftt does not know (it "
            f"knows {', '.join(registered_kinds())}); upgrade skhftt."
        )
    tensors = _read_tensors(target, config)
    try:
        params = _params(cls, config)
    except ValueError as exc:
        raise ValueError(f"{target!r} is not a valid saved {kind}: {exc}") from exc
    if encoder is not None:
        params["encoder"] = encoder
    elif params.get("encoder") is None:
        raise ValueError(
            f"{target!r} was fitted with an encoder object "
            f"({reprlib.repr(config['fitted'].get('encoder_identity_'))}); pass encoder= with "
            "that object, or encoder='precomputed' to score embeddings."
        )
    detector = cls(**params)
    try:
        validate_parameters(detector)
        state = _join_state(tensors, config["fitted"])
        if config["format_version"] < 3:  # no digests before format 3
            state.setdefault("training_digests_", None)
        state = check_fitted_state(cls._fitted_spec, state)
        detector._check_fitted_state(state)
    except ValueError as exc:
        raise ValueError(f"{target!r} is not a valid saved {kind}: {exc}") from exc
    detector._set_fitted_state(state)
    return detector


def _params(cls: type, config: Mapping[str, Any]) -> dict[str, Any]:
    """The saved parameters, exactly the class's (formats 1 and 2 take defaults for the rest)."""
    params = dict(config["params"])
    expected = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - expected)
    if unknown:
        raise ValueError(
            f"it has parameters this skhftt's {cls.__name__} does not have "
            f"({reprlib.repr(unknown)}; written by skhftt "
            f"{reprlib.repr(config['skhftt_version'])}); upgrade skhftt."
        )
    missing = sorted(expected - set(params))
    if missing and config["format_version"] >= 3:
        raise ValueError(f"its params lack {missing[0]!r}.")
    return params
