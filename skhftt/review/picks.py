"""Which rows a review shows: a few hundred of millions, chosen in one pass over the scores.

For a detector's decision: the most unwanted rows, the borderline band (the
least unwanted rows removed and the most unwanted rows kept, where a
reviewer's eye is worth most), a seeded random sample of the rows kept, and
the rows with an error. Each row comes with its rank: 1 for the most
unwanted scored row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Grid", "decision_grids", "error_grid", "ranks", "sample_grid"]


@dataclass
class Grid:
    """Rows shown together.

    Attributes
    ----------
    key : str
        ``"top"``, ``"border-removed"``, ``"border-kept"``, ``"kept"``,
        ``"removed"`` or ``"errors"``.
    title : str
        What the rows are, in words.
    rows : ndarray of int
        Table rows, in the order shown.
    total : int
        How many rows the grid draws from.
    """

    key: str
    title: str
    rows: np.ndarray
    total: int


def _extreme(rows: np.ndarray, values: np.ndarray, n: int, *, largest: bool) -> np.ndarray:
    """The ``n`` rows with the largest (or smallest) values, most extreme first."""
    if len(rows) > n:
        cut = np.argpartition(-values if largest else values, n - 1)[:n]
        rows, values = rows[cut], values[cut]
    order = np.argsort(-values if largest else values, kind="stable")
    return rows[order]


def ranks(ordered: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The rank of each value among the scored rows: 1 + how many are more unwanted.

    Parameters
    ----------
    ordered : ndarray
        The oriented scores of the scored rows, sorted ascending.
    values : ndarray
        Oriented scores of the rows to rank.
    """
    return len(ordered) - np.searchsorted(ordered, values, side="right") + 1


def sample_grid(key: str, title: str, mask: np.ndarray, n: int, seed: int) -> Grid:
    """A seeded random sample of ``n`` of the rows of ``mask``, in table order."""
    rows = np.flatnonzero(mask)
    if len(rows) > n:
        rows = np.sort(rows[np.random.default_rng(seed).choice(len(rows), n, replace=False)])
    return Grid(key, title, rows, int(mask.sum()))


def error_grid(failed: np.ndarray, n: int) -> Grid:
    """The first ``n`` rows with an error."""
    rows = np.flatnonzero(failed)
    return Grid("errors", "Rows with an error (neither kept nor removed)", rows[:n], len(rows))


def decision_grids(oriented: np.ndarray, remove: np.ndarray, failed: np.ndarray, *, n: int,
                   seed: int) -> list[Grid]:
    """The grids of one detector's decision (see the module documentation).

    Parameters
    ----------
    oriented : ndarray of shape (n_rows,)
        Higher = more unwanted; NaN for rows with an error.
    remove, failed : ndarray of shape (n_rows,), bool
        The rows removed, and those with an error.
    n : int
        Rows per grid (each side of the cut, for the borderline band).
    seed : int
        Seed of the sample of kept rows.
    """
    scored = np.flatnonzero(~failed)
    removed = np.flatnonzero(remove)
    kept = np.flatnonzero(~remove & ~failed)
    return [
        Grid("top", "Most unwanted", _extreme(scored, oriented[scored], n, largest=True),
             len(scored)),
        Grid("border-removed", "Borderline: removed, closest to the cut",
             _extreme(removed, oriented[removed], n, largest=False)[::-1], len(removed)),
        Grid("border-kept", "Borderline: kept, closest to the cut",
             _extreme(kept, oriented[kept], n, largest=True), len(kept)),
        sample_grid("kept", "A random sample of the rows kept", ~remove & ~failed, n, seed),
    ]
