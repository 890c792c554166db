"""Read embedding shards (``.npy``, ``.parquet``, datasets) in blocks of rows.

Shards are read a block at a time, so memory stays bounded whatever their
size: a ``.npy`` file is read block by block at its offset (nothing else
of it is mapped or held) and each block converted from float16 to float32
on its own (converting a whole float16 array at once is slow and doubles
its footprint); a parquet file is read a batch at a time, a dataset a
slice at a time. A row that cannot be scored (null, non-finite, all zero,
wrong width) becomes an error for that row alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.utils import gen_batches

from skhftt.batch.formats import (
    ID_COLUMNS,
    NpyFile,
    embedding_column,
    exact_chunks,
    open_parquet,
    pick_column,
)
from skhftt.space.validation import row_norms, scale_to_unit

if TYPE_CHECKING:
    import pyarrow as pa

    from skhftt.batch.shards import Shard


@dataclass
class Block:
    """Consecutive rows of a shard, ready to score.

    Attributes
    ----------
    ids : pyarrow.Array of str or None
        Ids of the rows, or None when the shard has none.
    embeddings : ndarray of shape (n, dim), float32
        Unit rows; rows with an error hold zeros.
    errors : ndarray of shape (n,), object, or None
        An error message per row (None where the row is fine); None when
        every row is fine.
    """

    ids: pa.Array | None
    embeddings: np.ndarray
    errors: np.ndarray | None

    def __len__(self) -> int:
        return self.embeddings.shape[0]


_NON_FINITE_ROW = "embedding contains NaN or infinite values"
_ZERO_ROW = "embedding is all zeros: it has no direction"

# Torch runs an element-wise kernel of fewer elements than this in the calling
# thread (ATen's GRAIN_SIZE); larger ones wake its thread pool, whose threads
# then spin for a while, burning CPU the scoring needs.
_TORCH_SERIAL_ELEMENTS = 32767


def _half_to_float(source: np.ndarray, out: np.ndarray) -> None:
    """Convert float16 rows into ``out`` with torch's SIMD conversion, a few rows at a time.

    numpy converts float16 one value at a time: three times slower. Pieces
    below torch's grain size run in this thread, without its thread pool.
    """
    if not (source.flags.writeable and source.flags.c_contiguous):
        source = np.array(source)  # torch wants a writable array; a float16 copy is cheap
    rows = max(1, _TORCH_SERIAL_ELEMENTS // max(1, source.shape[1]))
    halves, floats = torch.from_numpy(source), torch.from_numpy(out)
    for piece in gen_batches(source.shape[0], rows) if len(source) else ():
        floats[piece].copy_(halves[piece])


def to_float32(raw: np.ndarray, *, out: np.ndarray | None = None,
               overwrite: bool = False) -> np.ndarray:
    """A block of embeddings as float32.

    Parameters
    ----------
    raw : ndarray of shape (n, dim)
        Any float dtype.
    out : ndarray of shape (n, dim), float32, optional
        Where to write the result (a buffer reused from block to block);
        by default a new array.
    overwrite : bool, default=False
        Whether a writable float32 ``raw`` may be returned as it is.
    """
    if raw.dtype == np.float32 and (out is raw or (overwrite and raw.flags.writeable)):
        return raw
    out = np.empty(raw.shape, dtype=np.float32) if out is None else out
    if raw.dtype == np.float16:
        _half_to_float(raw, out)
    else:
        np.copyto(out, raw, casting="same_kind")
    return out


def unit_block(
    raw: np.ndarray,
    errors: np.ndarray | None = None,
    *,
    overwrite: bool = False,
    out: np.ndarray | None = None,
) -> Block:
    """Unit rows of a float block; rows that cannot be normalised become errors.

    The rule is :func:`skhftt.space.validation.row_norms`', the detectors'
    own: a row holding NaN or inf, or all zeros, is an error; any other row,
    however small or large its values, is scaled to unit norm (rows within
    float32 rounding of 1 are used as they are).

    Parameters
    ----------
    raw : ndarray of shape (n, dim)
        Any float dtype; converted to float32.
    errors : ndarray of shape (n,), object, optional
        Errors already known (e.g. null rows), kept as they are.
    overwrite : bool, default=False
        Whether a float32 ``raw`` may be normalised in place.
    out : ndarray of shape (n, dim), float32, optional
        Where to write the unit rows; by default a new array (or ``raw``).

    The norms are taken of the converted block, which is still in the CPU's
    cache when the block is small (see :data:`skhftt.batch.task.SCORE_ROWS`).
    """
    block = to_float32(raw, out=out, overwrite=overwrite)
    norms = row_norms(block)
    bad = ~np.isfinite(norms) | (norms == 0)
    if errors is not None:
        bad |= errors != None  # noqa: E711 (element-wise comparison)
    if bad.any():
        errors = np.empty(len(block), dtype=object) if errors is None else errors
        for row in np.flatnonzero(bad):
            if errors[row] is None:
                errors[row] = (_ZERO_ROW if norms[row] == 0 else _NON_FINITE_ROW)
        block[bad] = 0
        norms[bad] = 1
    scale_to_unit(block, norms)
    return Block(ids=None, embeddings=block, errors=errors if bad.any() else None)


def _check_width(width: int, dim: int, path: str) -> None:
    if width != dim:
        raise ValueError(
            f"{path!r} has embeddings of width {width}, but the detector works in a space "
            f"of width {dim}."
        )


def _list_matrix(column: pa.Array, dim: int, path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, dim) matrix of a list column, with an error per null or wrong-width row."""
    import pyarrow as pa

    n = len(column)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
        _check_width(width, dim, path)
        values = column.values.slice(column.offset * width, n * width)
        matrix = values.to_numpy(zero_copy_only=False).reshape(n, width)
        lengths = np.full(n, width)
    else:
        offsets = column.offsets.to_numpy()
        lengths = np.diff(offsets)
        flat = column.values.to_numpy(zero_copy_only=False)
        good = valid & (lengths == dim)
        matrix = np.zeros((n, dim), dtype=flat.dtype)
        matrix[good] = flat[offsets[:-1][good, None] + np.arange(dim)]
    bad = ~valid | (lengths != dim)
    if not bad.any():
        return matrix, None
    errors = np.empty(n, dtype=object)
    for row in np.flatnonzero(bad):
        errors[row] = (
            "embedding is missing (null)" if not valid[row]
            else f"embedding has width {lengths[row]}, expected {dim}"
        )
    matrix[bad] = 0
    return matrix, errors


def _string_ids(column: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _columns(schema: pa.Schema, shard: Shard, where: str) -> tuple[str, str | None]:
    """The embedding column of a table, and its id column if any."""
    embedding = embedding_column(schema, shard.embedding_column, where)
    return embedding, pick_column(schema.names, shard.id_column, ID_COLUMNS, where, "id")


def _one_chunk(column: Any) -> pa.Array:
    """A column of a table (a chunked array) or of a record batch, as one array."""
    return column.combine_chunks() if hasattr(column, "combine_chunks") else column


def _table_block(table: Any, columns: tuple[str, str | None], dim: int, where: str) -> Block:
    embedding, id_column = columns
    matrix, errors = _list_matrix(_one_chunk(table.column(embedding)), dim, where)
    block = unit_block(matrix, errors)
    if id_column is not None:
        block.ids = _string_ids(_one_chunk(table.column(id_column)))
    return block


def _parquet_blocks(shard: Shard, dim: int, block_rows: int) -> Iterator[Block]:
    handle = open_parquet(shard.path)
    columns = _columns(handle.schema_arrow, shard, shard.path)
    wanted = [name for name in columns if name is not None]
    for batch in handle.iter_batches(batch_size=block_rows, columns=wanted):
        yield _table_block(batch, columns, dim, shard.path)


def _dataset_blocks(shard: Shard, dim: int, block_rows: int) -> Iterator[Block]:
    """Blocks of a dataset's rows, sliced from its arrow table (nothing is decoded)."""
    columns = _columns(shard.dataset.features.arrow_schema, shard, shard.label)
    rows = shard.dataset.with_format("arrow", columns=[name for name in columns if name])
    first, count = shard.span
    for block in gen_batches(count, block_rows):
        yield _table_block(rows[first + block.start : first + block.stop], columns, dim,
                           shard.label)


def _metadata_ids(shard: Shard, n_rows: int, block_rows: int) -> Iterator[pa.Array | None]:
    """Ids of an ``.npy`` shard's rows, block by block, from its LAION metadata parquet."""
    if shard.metadata is None:
        while True:
            yield None
    handle = open_parquet(shard.metadata)
    names = handle.schema_arrow.names
    column = pick_column(names, shard.id_column, ID_COLUMNS, shard.metadata, "id")
    if column is None:
        while True:
            yield None
    if handle.metadata.num_rows != n_rows:
        raise ValueError(
            f"{shard.metadata!r} describes {handle.metadata.num_rows} rows but "
            f"{shard.path!r} holds {n_rows} embeddings; they must match row for row."
        )
    batches = handle.iter_batches(batch_size=block_rows, columns=[column])
    yield from exact_chunks((_string_ids(batch.column(0)) for batch in batches), block_rows)


def _npy_blocks(shard: Shard, dim: int, block_rows: int) -> Iterator[Block]:
    array = NpyFile.open(shard.path)
    _check_width(array.shape[1], dim, shard.path)
    ids = _metadata_ids(shard, array.shape[0], block_rows)
    raw = np.empty((min(block_rows, array.shape[0]), dim), dtype=array.dtype)
    unit = raw if array.dtype == np.float32 else np.empty(raw.shape, dtype=np.float32)
    for block in gen_batches(array.shape[0], block_rows) if array.shape[0] else ():
        rows = array.read(block.start, block.stop, out=raw)
        block = unit_block(rows, out=unit[: len(rows)], overwrite=True)
        block.ids = next(ids)
        yield block


def embedding_blocks(shard: Shard, *, dim: int, block_rows: int) -> Iterator[Block]:
    """Blocks of at most ``block_rows`` unit rows of an embedding shard, in order.

    The rows of an ``.npy`` shard's blocks are read into buffers refilled
    block after block: a block is valid until the next one is read.

    Raises
    ------
    ValueError
        A shard that cannot be read as a whole: not an array of floats,
        wrong width, no embedding column, ids that do not match the rows.
    """
    readers = {"npy": _npy_blocks, "parquet": _parquet_blocks, "dataset": _dataset_blocks}
    return readers[shard.kind](shard, dim, block_rows)
