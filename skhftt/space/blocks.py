"""Bounded-memory passes over the rows of a matrix, block by block.

scikit-learn is imported on first use: checking embeddings happens on paths
(reading a detector file's header) that import no scientific stack.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["chunk_rows", "map_row_blocks"]


def chunk_rows(row_bytes: int) -> int:
    """Rows per block whose intermediates fit in scikit-learn's ``working_memory``.

    The rule of scikit-learn's own chunked computations (its private
    ``get_chunk_n_rows``): the budget is :func:`sklearn.get_config`'s
    ``working_memory`` (MiB, 1024 by default, set with
    :func:`sklearn.set_config`), and at least one row.

    Parameters
    ----------
    row_bytes : int
        The memory one row's intermediates take.

    Returns
    -------
    int
        Rows per block, at least 1.
    """
    from sklearn import get_config

    return max(1, int(get_config()["working_memory"] * 2**20) // max(row_bytes, 1))


def map_row_blocks(
    function: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, block_rows: int
) -> np.ndarray:
    """``function`` of each block of at most ``block_rows`` rows, as one float64 vector.

    Parameters
    ----------
    function : callable
        Maps a block of rows to one value per row.
    rows : ndarray of shape (n, ...)
    block_rows : int
        Rows per block (see :func:`chunk_rows`), so that ``function``'s
        intermediates stay bounded whatever ``n``.

    Returns
    -------
    ndarray of shape (n,), float64
    """
    from sklearn.utils import gen_batches

    result = np.empty(rows.shape[0], dtype=np.float64)
    for block in gen_batches(rows.shape[0], block_rows):
        result[block] = function(rows[block])
    return result
