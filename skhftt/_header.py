"""The skhftt header of a detector file, read with the standard library alone.

A ``.safetensors`` file starts with an 8-byte little-endian length and a JSON
header of that length; a skhftt detector keeps its own JSON object (the
kind, the parameters, the fitted values) in that header's
``__metadata__["skhftt"]``. :func:`read_skhftt_header` is the one reader of
it: :func:`skhftt.load_detector` checks it entry by entry before any array
is read, and ``skhftt info`` summarises it without importing numpy.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

__all__ = ["read_skhftt_header"]

# A safetensors header larger than this is no detector's (they hold a few kB of JSON).
MAX_HEADER = 100 * 2**20


def _json_object(raw: str | bytes, path: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path!r} is not a saved skhftt detector: {what} is not JSON "
                         f"({type(exc).__name__}).") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{path!r} is not a saved skhftt detector: {what} is not a JSON "
                         "object.")
    return value


def read_skhftt_header(path: str) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """The skhftt JSON object of a ``.safetensors`` detector file, and its arrays' shapes.

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    config : dict
        The object saved under ``__metadata__["skhftt"]``, unchecked inside.
    shapes : dict of str to tuple of int
        The shape the safetensors header gives each array.

    Raises
    ------
    ValueError
        One line naming ``path``: the file is too short, its header length
        is impossible, its safetensors header or the skhftt header in it is
        not a JSON object, or it has no skhftt header.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path!r} is not a saved skhftt detector: it holds {size} bytes, "
                             "too few for a safetensors file.")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(size - 8, MAX_HEADER):
            raise ValueError(f"{path!r} is not a saved skhftt detector: its first bytes give "
                             f"a safetensors header of {length:,} bytes in a file of {size:,}.")
        raw = handle.read(length)
    header = _json_object(raw, path, "its safetensors header")
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("skhftt"), str):
        raise ValueError(f"{path!r} is a safetensors file but not a saved skhftt detector.")
    shapes = {key: tuple(entry["shape"]) for key, entry in header.items()
              if key != "__metadata__" and isinstance(entry, dict)
              and isinstance(entry.get("shape"), list)}
    return _json_object(metadata["skhftt"], path, "its header"), shapes
