"""The fitted HFTT head: fixed task columns, trained columns, temperature.

Numpy only, so that a fitted detector scores precomputed embeddings on a
machine without torch models or GPUs, and travels to workers in kilobytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skhftt.space.blocks import map_row_blocks

__all__ = ["MIN_TEMPERATURE", "HFTTHead", "logsumexp_rows"]

MIN_TEMPERATURE = float(np.finfo(np.float32).tiny)
"""The smallest temperature: cosines divided by less overflow float32 logits (1.2e-38)."""

_DEFAULT_BLOCK_ROWS = 8192
# e^8 above the smallest normal float, as in skhftt.space.objective.
_FLOOR_MARGIN = 8.0


def logsumexp_rows(logits: np.ndarray) -> np.ndarray:
    """Numerically stable ``log(sum(exp(logits), axis=1))``.

    Logits more than 79 (float32; 700 in float64) below their row's maximum
    are raised to that floor before ``exp``: at T = 0.01 real cosines put
    many logits further down, where ``exp`` would give subnormal floats,
    which are slow on many x86 CPUs. Next to the maximum's term of 1 the
    raised terms (``e^-79`` at most) are far below float resolution, so the
    result is unchanged.
    """
    peak = logits.max(axis=1)
    shifted = logits - peak[:, None]
    floor = np.log(np.finfo(shifted.dtype).tiny) + _FLOOR_MARGIN
    return np.log(np.exp(np.maximum(shifted, floor, out=shifted)).sum(axis=1)) + peak


@dataclass(frozen=True)
class HFTTHead:
    """Scores L2-normalised embeddings against ``[W, V] / T``.

    Parameters
    ----------
    task_columns : ndarray of shape (C, d)
        Fixed task ("in-distribution") columns W, unit rows.
    trainable_columns : ndarray of shape (K, d)
        Trained columns V, unit rows.
    temperature : float
        Softmax temperature T.
    """

    task_columns: np.ndarray
    trainable_columns: np.ndarray
    temperature: float

    @property
    def dim(self) -> int:
        """Width of the embedding space."""
        return int(self.task_columns.shape[1])

    @property
    def n_task_columns(self) -> int:
        """Number of task columns C."""
        return int(self.task_columns.shape[0])

    def _scaled_columns_t(self) -> np.ndarray:
        """``[W, V]^T / T`` as a contiguous float32 (d, C + K) matrix."""
        columns = np.concatenate([self.task_columns, self.trainable_columns])
        return np.ascontiguousarray((columns / np.float32(self.temperature)).T, np.float32)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """``[x W^T, x V^T] / T`` for a block of embeddings, float32 (n, C + K)."""
        return embeddings.astype(np.float32, copy=False) @ self._scaled_columns_t()

    def log_odds_of_logits(self, logits: np.ndarray) -> np.ndarray:
        """``log P_in - log P_out`` from logits as :meth:`logits` returns them."""
        n_task = self.n_task_columns
        return logsumexp_rows(logits[:, :n_task]) - logsumexp_rows(logits[:, n_task:])

    def log_odds(
        self, embeddings: np.ndarray, *, block_rows: int = _DEFAULT_BLOCK_ROWS
    ) -> np.ndarray:
        """``log P_in - log P_out`` per row, streamed in blocks of rows.

        The log-odds never saturate, unlike ``P_in`` which rounds to exactly
        1.0 at T = 0.01 for inputs that clearly match the task; ranking by it
        keeps AUROC and thresholds exact.

        Returns
        -------
        ndarray of shape (n,), float64
        """
        scaled_t = self._scaled_columns_t()
        return map_row_blocks(
            lambda block: self.log_odds_of_logits(block.astype(np.float32, copy=False) @ scaled_t),
            embeddings, block_rows,
        )
