"""Checks shared by every entry point that takes embeddings or texts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "UNIT_TOLERANCE",
    "check_embeddings",
    "check_texts",
    "is_string_sequence",
    "row_norms",
    "scale_to_unit",
]

#: Rows whose L2 norm is within this of 1 are used as they are: encoders
#: return unit rows up to float32 rounding.
UNIT_TOLERANCE = 1e-4
# A float32 sum of squares is exact enough between these norms; outside them it
# underflows to 0 (a row of 1e-30 values) or overflows to inf (a row of 1e30).
_SAFE_NORMS = (1e-18, 1e18)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def row_norms(rows: np.ndarray) -> np.ndarray:
    """L2 norm of each float32 row, exact for every finite float32 value.

    The one rule of every entry point that takes embeddings, in memory or in
    shards: a row is refused if and only if its norm is not finite (it holds
    NaN or inf) or is 0 (it is all zeros); any other row, however small or
    large its values, is scaled to unit norm (:func:`scale_to_unit`).

    Parameters
    ----------
    rows : ndarray of shape (n, dim), float32

    Returns
    -------
    ndarray of shape (n,), float64
        Computed in float32, and again in float64 for the rows whose float32
        sum of squares would underflow or overflow (no float32 value
        overflows a float64 square).
    """
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows)).astype(np.float64)
    risky = ~((norms > _SAFE_NORMS[0]) & (norms < _SAFE_NORMS[1]))
    if risky.any():
        exact = rows[risky].astype(np.float64)
        norms[risky] = np.sqrt(np.einsum("ij,ij->i", exact, exact))
    return norms


def scale_to_unit(rows: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Divide, in place, the float32 rows further than :data:`UNIT_TOLERANCE` from unit norm.

    Rows within float32 rounding of unit norm are kept as they are, and each
    row is scaled on its own, so a row's embedding never depends on the rows
    beside it. ``norms`` (from :func:`row_norms`) must be finite and non-zero.
    """
    off = np.abs(norms - 1) > UNIT_TOLERANCE
    wide = norms > _FLOAT32_MAX  # values near float32's limit: divided in float64
    narrow = off & ~wide
    if narrow.all():
        rows /= norms.astype(np.float32)[:, None]
    elif narrow.any():
        rows[narrow] /= norms[narrow, None].astype(np.float32)
    if wide.any():
        rows[wide] = rows[wide] / norms[wide, None]
    return rows


def check_embeddings(X: object, *, dim: int | None = None, name: str = "X") -> np.ndarray:
    """Validate a 2-D array of embeddings and return unit float32 rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, dim)
        Embeddings. Any real dtype; converted to float32.
    dim : int, optional
        Expected width. ``None`` accepts any width.
    name : str
        How the argument is called in error messages.

    Returns
    -------
    ndarray of shape (n_samples, dim), float32, rows of unit L2 norm.
        ``X`` itself (no copy) when it already is float32 with unit rows;
        otherwise rows further than ``UNIT_TOLERANCE`` from unit norm are
        divided by their norm and the others kept as they are.

    Raises
    ------
    ValueError
        A row that holds NaN or inf, or is all zeros (the rule of
        :func:`row_norms`, which batch scoring applies row by row), or the
        wrong width.
    TypeError
        A non-numeric array.
    """
    array = np.asarray(X)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a numeric array of embeddings; got dtype {array.dtype}.")
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of embeddings (n_samples, dim); "
            f"got an array of shape {array.shape}."
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: expected at least one embedding.")
    if array.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={array.shape}) while a minimum of 1 is "
            "required: embeddings need a width."
        )
    if dim is not None and array.shape[1] != dim:
        raise ValueError(
            f"{name} has embeddings of width {array.shape[1]}, but the detector "
            f"works in a space of width {dim}."
        )
    array = array.astype(np.float32, copy=False)
    norms = row_norms(array)
    finite = np.isfinite(norms)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{name} contains NaN or infinite values in {bad.size} row(s), "
            f"first at row {bad[0]}."
        )
    if (norms == 0).any():
        bad = np.flatnonzero(norms == 0)
        raise ValueError(
            f"{name} contains {bad.size} all-zero row(s), first at row {bad[0]}; "
            "a zero vector has no direction in the embedding space."
        )
    if not (np.abs(norms - 1) > UNIT_TOLERANCE).any():
        return array
    return scale_to_unit(array.copy(), norms)


def check_texts(texts: Iterable[object], *, name: str, allow_empty: bool = False) -> list[str]:
    """``texts`` as a list of str, non-empty unless ``allow_empty``; names the first bad item."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of texts, not a single string: {texts!r:.80}.")
    result = list(texts)
    if not result and not allow_empty:
        raise ValueError(f"{name} is empty: expected at least one text.")
    for index, text in enumerate(result):
        if not isinstance(text, str):
            raise TypeError(
                f"{name} must contain only strings; item {index} is "
                f"{type(text).__name__} ({text!r:.80})."
            )
    return result


def is_string_sequence(value: object) -> bool:
    """True for a non-string sequence whose first item is a str."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        return False
    return len(value) > 0 and isinstance(value[0], str)
