"""Pickle-free save and load of fitted detectors (safetensors + JSON).

Pickle runs code on load, so a detector shared between people should travel
in this format: the arrays in a ``.safetensors`` file, everything else as
JSON in its metadata, with a format version. joblib/pickle also work for
files you produce and load yourself.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from skhftt.detectors.hftt import HFTTDetector
from skhftt.embedding.encoders.base import Encoder
from skhftt.space.head import HFTTHead

__all__ = ["FORMAT", "FORMAT_VERSION", "load_detector", "save_detector"]

FORMAT = "skhftt.HFTTDetector"
FORMAT_VERSION = 1
_FITTED_SCALARS = (
    "task_names_", "embedding_dim_", "encoder_identity_", "offset_", "n_iter_",
    "loss_curve_", "history_", "device_",
)


def _json_params(detector: HFTTDetector) -> dict[str, Any]:
    params = detector.get_params(deep=False)
    if isinstance(params["encoder"], os.PathLike):
        params["encoder"] = os.fspath(params["encoder"])
    elif not isinstance(params["encoder"], str):
        params["encoder"] = None
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None
    if params["cache_dir"] is not None:
        params["cache_dir"] = os.fspath(params["cache_dir"])
    if params["templates"] is not None:
        params["templates"] = list(params["templates"])
    return params


def save_detector(detector: HFTTDetector, path: str | os.PathLike[str]) -> None:
    """Write a fitted detector to ``path`` without pickle.

    Parameters
    ----------
    detector : HFTTDetector
        A fitted detector.
    path : str or path-like
        Destination file, conventionally ending in ``.safetensors``. Written
        to a temporary name and renamed, so a crash never leaves half a file.

    Notes
    -----
    A detector fitted with an encoder *object* stores only that encoder's
    identity; pass the object again to :func:`load_detector`.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(detector)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skhftt_version": metadata.version("skhftt"),
        "params": _json_params(detector),
        "fitted": {name: getattr(detector, name) for name in _FITTED_SCALARS},
        "temperature": detector.head_.temperature,
        "precomputed_n_features_in": hasattr(detector, "n_features_in_"),
    }
    tensors = {
        "task_columns": np.ascontiguousarray(detector.head_.task_columns, np.float32),
        "trainable_columns": np.ascontiguousarray(detector.head_.trainable_columns, np.float32),
    }
    target = os.fspath(path)
    partial = f"{target}.partial-{os.getpid()}"
    save_file(tensors, partial, metadata={"skhftt": json.dumps(config)})
    os.replace(partial, target)


def _read_config(path: str) -> dict[str, Any]:
    try:
        with safe_open(path, framework="numpy") as handle:
            raw = (handle.metadata() or {}).get("skhftt")
    except (OSError, SafetensorError) as exc:
        raise ValueError(f"{path!r} is not a saved skhftt detector: {exc}") from exc
    if raw is None:
        raise ValueError(f"{path!r} is a safetensors file but not a saved skhftt detector.")
    config = json.loads(raw)
    if config.get("format") != FORMAT:
        raise ValueError(f"{path!r} holds {config.get('format')!r}, not {FORMAT!r}.")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written in format version {config['format_version']} by "
            f"skhftt {config.get('skhftt_version')}; this skhftt reads up to version "
            f"{FORMAT_VERSION}. Upgrade skhftt."
        )
    return config


def load_detector(
    path: str | os.PathLike[str], *, encoder: str | Encoder | None = None
) -> HFTTDetector:
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
    HFTTDetector
    """
    target = os.fspath(path)
    config = _read_config(target)
    params = config["params"]
    fitted = config["fitted"]
    if encoder is not None:
        params["encoder"] = encoder
    elif params["encoder"] is None:
        raise ValueError(
            f"{target!r} was fitted with an encoder object "
            f"({fitted['encoder_identity_']!r}); pass encoder= with that object, or "
            "encoder='precomputed' to score embeddings."
        )
    arrays = load_file(target)
    task, trainable = arrays["task_columns"], arrays["trainable_columns"]
    dim = fitted["embedding_dim_"]
    if task.ndim != 2 or trainable.ndim != 2 or {task.shape[1], trainable.shape[1]} != {dim}:
        raise ValueError(
            f"{target!r} is inconsistent: task columns {task.shape} and trainable "
            f"columns {trainable.shape} do not both have width {dim}."
        )
    if len(fitted["task_names_"]) != task.shape[0]:
        raise ValueError(
            f"{target!r} is inconsistent: {len(fitted['task_names_'])} task names "
            f"for {task.shape[0]} task columns."
        )
    detector = HFTTDetector(**params)
    detector.head_ = HFTTHead(task, trainable, float(config["temperature"]))
    for name, value in fitted.items():
        setattr(detector, name, value)
    if config["precomputed_n_features_in"]:
        detector.n_features_in_ = dim
    return detector
