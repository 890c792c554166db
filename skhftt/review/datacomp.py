"""DataComp subset files: the kept uids as a sorted array of 128-bit integers.

DataComp's resharder reads a subset file with ``numpy.load(path,
mmap_mode="r")``, checks that its dtype is ``numpy.dtype("u8,u8")`` (a
structured array of pairs of unsigned 64-bit integers: the high and the low
half of each uid) and finds each sample's uid in it by binary search, so the
pairs must be in lexicographic order (mlfoundations/datacomp, README
"Selecting samples in the filtering track", and ``resharder.py``). A uid is
the 32 hexadecimal digits of the ``uid`` column of the pool's parquet files.

Ids of other datasets (paths, webdataset keys) are no uids: they are written
as a sorted array of strings instead, and the writer says which form it
wrote.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["UID_DTYPE", "read_uids", "uid_array", "write_uids"]

UID_DTYPE = np.dtype("u8,u8")
"""The dtype of a DataComp subset file: (high 64 bits, low 64 bits) of each uid."""

_UID_DIGITS = 32
_CHUNK = 1 << 18  # ids converted at a time: 32 MB of fixed-width text
_NIBBLES = np.full(128, 255, dtype=np.uint8)
for _digit in "0123456789abcdefABCDEF":
    _NIBBLES[ord(_digit)] = int(_digit, 16)
_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)


def _pairs(ids: Sequence[str]) -> np.ndarray | None:
    """The (high, low) halves of a chunk of 32-hex-digit uids; None if one is not a uid."""
    if any(len(uid) != _UID_DIGITS for uid in ids):
        return None
    codes = np.asarray(ids, dtype=f"<U{_UID_DIGITS}").view(np.uint32).reshape(-1, _UID_DIGITS)
    if (codes >= len(_NIBBLES)).any():
        return None
    nibbles = _NIBBLES[codes]
    if (nibbles == 255).any():
        return None
    bits = nibbles.astype(np.uint64) << np.concatenate([_SHIFTS, _SHIFTS])
    pairs = np.empty(len(codes), dtype=UID_DTYPE)
    pairs["f0"] = bits[:, :16].sum(axis=1)  # disjoint bits: the sum is the bitwise or
    pairs["f1"] = bits[:, 16:].sum(axis=1)
    return pairs


def uid_array(ids: Sequence[str]) -> np.ndarray | None:
    """The ids as a sorted DataComp subset array, or None unless every id is a uid.

    Parameters
    ----------
    ids : sequence of str
        Ids such as ``"139e4a9b22a614771f06c700a8ebe150"`` (32 hexadecimal
        digits, either case).

    Returns
    -------
    ndarray of dtype ``UID_DTYPE`` and shape (len(ids),), or None
        Sorted lexicographically (high half, then low half); duplicates are
        kept, as the ids are. None when some id is not a uid, or there is
        none.
    """
    parts = []
    for start in range(0, len(ids), _CHUNK):
        pairs = _pairs(ids[start : start + _CHUNK])
        if pairs is None:
            return None
        parts.append(pairs)
    if not parts:
        return None
    uids = np.concatenate(parts)
    uids.sort()
    return uids


def write_uids(path: str | os.PathLike[str], ids: Sequence[str]) -> str:
    """Write ids to a ``.npy`` file in the form pipelines read; returns the form written.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file.
    ids : sequence of str
        The ids to write (e.g. those kept).

    Returns
    -------
    {"datacomp", "strings"}
        ``"datacomp"``: every id is a uid, and the file is a DataComp subset
        file (see :func:`uid_array`); ``"strings"``: the ids as a sorted
        array of strings (dtype ``<U...``), as they are.
    """
    uids = uid_array(ids)
    np.save(path, np.array(sorted(ids), dtype=str) if uids is None else uids)
    return "strings" if uids is None else "datacomp"


def read_uids(path: str | os.PathLike[str]) -> list[str]:
    """The ids of a file of :func:`write_uids`, as strings (uids as 32 lowercase hex digits).

    Raises
    ------
    ValueError
        A file of another dtype.
    """
    array = np.load(path, mmap_mode="r")
    if array.dtype == UID_DTYPE:
        return [f"{int(high):016x}{int(low):016x}" for high, low in array.tolist()]
    if array.dtype.kind != "U":
        raise ValueError(f"{os.fspath(path)!r} holds a {array.dtype} array; expected "
                         f"DataComp uids ({UID_DTYPE}) or strings.")
    return array.tolist()
