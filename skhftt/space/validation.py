"""Checks shared by every entry point that takes embeddings or texts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from skhftt.space.blocks import map_row_blocks

__all__ = ["UNIT_TOLERANCE", "check_embeddings", "check_texts", "is_string_sequence"]

_BLOCK_ROWS = 16384
#: Rows whose L2 norm is within this of 1 are used as they are: encoders
#: return unit rows up to float32 rounding.
UNIT_TOLERANCE = 1e-4


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
    # Row norms in blocks: a full-size temporary of a 300,000 x 768 matrix
    # would double the peak memory of a fit.
    norms = map_row_blocks(
        lambda block: np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64)),
        array, _BLOCK_ROWS,
    )
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
    # Per row, so that a row's embedding never depends on the rows beside it.
    off_unit = np.abs(norms - 1.0) > UNIT_TOLERANCE
    if not off_unit.any():
        return array
    result = array.copy()
    result[off_unit] /= norms[off_unit, None].astype(np.float32)
    return result


def check_texts(texts: Iterable[object], *, name: str) -> list[str]:
    """Return ``texts`` as a non-empty list of str, naming the first bad item."""
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of texts, not a single string: {texts!r}.")
    result = list(texts)
    if not result:
        raise ValueError(f"{name} is empty: expected at least one text.")
    for index, text in enumerate(result):
        if not isinstance(text, str):
            raise TypeError(
                f"{name} must contain only strings; item {index} is "
                f"{type(text).__name__} ({text!r})."
            )
    return result


def is_string_sequence(value: object) -> bool:
    """True for a non-string sequence whose first item is a str."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        return False
    return len(value) > 0 and isinstance(value[0], str)
