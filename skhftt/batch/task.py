"""Score one shard into its output file: the unit of work, here or on a Dask worker.

A shard is read a block at a time, each block scored and appended to the
output, which is renamed into place once complete. A row whose score is not
finite (a detector with NaN parameters, say) gets an error, like a row that
could not be read: it is neither kept nor removed. Embeddings are read and
scored :data:`SCORE_ROWS` at a time whatever ``block_rows`` (the rows per
row group of the output): a block of that size is converted to float32 and
checked while it is still in the CPU's cache, and the head's logits for it
(16 MB for a head of 1,000 columns) are recycled by the memory allocator
from block to block instead of being mapped afresh.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from skhftt.batch.embeddings import Block, embedding_blocks
from skhftt.batch.images import image_blocks
from skhftt.batch.output import output_path
from skhftt.batch.scorers import Scorer
from skhftt.batch.shards import Shard

DEFAULT_BLOCK_ROWS = 32768
SCORE_ROWS = 4096


@dataclass(frozen=True)
class ShardResult:
    """What scoring one shard produced."""

    name: str
    n_rows: int
    n_errors: int


def _blocks(scorer: Scorer, shard: Shard, batch_size: int, num_workers: int,
            block_rows: int) -> Iterable[Block]:
    if shard.has_embeddings:
        return embedding_blocks(shard, dim=scorer.dim, block_rows=min(block_rows, SCORE_ROWS))
    return image_blocks(
        shard,
        scorer.encoder(),
        dim=scorer.dim,
        batch_size=batch_size,
        num_workers=num_workers,
        device=scorer.device(),
    )


def unscored_rows(scores: np.ndarray, errors: np.ndarray | None) -> np.ndarray | None:
    """``errors`` with an error for each row whose score is not finite and has none yet.

    Parameters
    ----------
    scores : ndarray of shape (n,) or (n, k)
        A block's scores, from :meth:`Scorer.scores`.
    errors : ndarray of shape (n,), object, or None
        The block's errors so far (rows that could not be read).
    """
    bad = ~np.isfinite(scores.reshape(len(scores), -1)).all(axis=1)
    if errors is not None:
        bad &= errors == None  # noqa: E711 (element-wise comparison)
    if not bad.any():
        return errors
    errors = np.empty(len(scores), dtype=object) if errors is None else errors.copy()
    for row in np.flatnonzero(bad):
        values = scores[row].ravel()
        errors[row] = (f"score is not finite ({values[~np.isfinite(values)][0]}): the "
                       "detector cannot decide on this row")
    return errors


def _rows_file(shard: Shard) -> str | None:
    """The parquet file whose rows are the shard's, in order (LAION metadata, the shard)."""
    if shard.kind == "npy":
        return shard.metadata
    return shard.path if shard.kind == "parquet" else None


def score_shard(
    scorer: Scorer,
    shard: Shard,
    output_dir: str | os.PathLike[str],
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    progress: Callable[[int], object] | None = None,
) -> ShardResult:
    """Score one shard into ``<output_dir>/<shard.name>.parquet``, atomically.

    Parameters
    ----------
    scorer : Scorer
        From :func:`~skhftt.batch.scorers.shard_scorer`; for embedding
        shards a model-free scorer suffices.
    shard : Shard
        From :func:`~skhftt.batch.discover_shards`.
    output_dir : str or path-like
        An existing folder.
    batch_size : int, default=256
        Images per batch (image shards).
    num_workers : int, default=0
        DataLoader processes decoding images; 0 decodes in this process.
    block_rows : int, default=32768
        Rows per row group of the output; embeddings are read and scored
        at most :data:`SCORE_ROWS` at a time.
    progress : callable, optional
        Called with the number of rows after each block.

    Returns
    -------
    ShardResult

    Raises
    ------
    ValueError
        The shard cannot be read (:attr:`Shard.error`, or found while reading
        it); nothing is written.
    """
    if shard.error is not None:
        raise ValueError(shard.error)
    manifest = {
        "shard": shard.fingerprint(),
        **scorer.manifest(),
        "source": shard.label or shard.path,
        "kind": shard.kind,
        "rows_file": _rows_file(shard),
    }
    blocks = _blocks(scorer, shard, batch_size, num_workers, block_rows)
    target = output_path(output_dir, shard.name)
    with scorer.writer(target, manifest, row_group_rows=block_rows) as writer:
        for block in blocks:
            scores = scorer.scores(block.embeddings)
            writer.write(block.ids, scores, unscored_rows(scores, block.errors))
            if progress is not None:
                progress(len(block))
    return ShardResult(shard.name, writer.n_rows, writer.n_errors)
