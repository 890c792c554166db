"""Read embedding shards (``.npy``, ``.parquet``) in blocks of rows.

Shards are read a block at a time, so memory stays bounded whatever their
size: a ``.npy`` file is read block by block at its offset (nothing else
of it is mapped or held) and each block converted from float16 to float32
on its own (converting a whole float16 array at once is slow and doubles
its footprint); a parquet file is read a batch at a time.
A row that cannot be scored (null, non-finite, all zero, wrong width)
becomes an error for that row alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from skhftt.space.validation import UNIT_TOLERANCE

if TYPE_CHECKING:
    import pyarrow as pa

    from skhftt.batch.shards import Shard

ID_COLUMNS = ("id", "key", "image_path", "url")
EMBEDDING_COLUMNS = ("embedding", "embeddings", "img_emb", "image_embedding", "clip_embedding")


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


@dataclass(frozen=True)
class NpyFile:
    """The header of a 2-D float ``.npy`` file: where its rows are and how to read them."""

    path: str
    shape: tuple[int, int]
    dtype: np.dtype
    offset: int

    @classmethod
    def open(cls, path: str) -> NpyFile:
        """Read and check the header of ``path``.

        Raises
        ------
        ValueError
            Not a ``.npy`` file, or not a C-order 2-D float array.
        """
        with open(path, "rb") as handle:
            try:
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(handle)
            except ValueError as exc:
                raise ValueError(f"{path!r} is not a readable .npy file: {exc}") from exc
            offset = handle.tell()
        if len(shape) != 2 or fortran or dtype.kind != "f" or dtype.hasobject:
            layout = "Fortran-order " if fortran else ""
            raise ValueError(
                f"{path!r} holds a {layout}{dtype} array of shape {shape}; expected a "
                "C-order 2-D float array of embeddings (rows, dim)."
            )
        return cls(path, (int(shape[0]), int(shape[1])), dtype, offset)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a new array."""
        n, dim = min(stop, self.shape[0]) - start, self.shape[1]
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start * dim * self.dtype.itemsize)
            rows = np.fromfile(handle, dtype=self.dtype, count=n * dim)
        if rows.size != n * dim:
            raise ValueError(
                f"{self.path!r} is truncated: its header promises {self.shape[0]} rows, "
                f"but the data end within row {start + rows.size // dim}."
            )
        return rows.reshape(n, dim)


def to_float32(raw: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """A block of embeddings as float32, copied unless ``overwrite`` allows reusing ``raw``.

    float16 is converted by torch, whose conversion is vectorised: numpy's
    converts one value at a time, several times slower than scoring needs.
    """
    if raw.dtype != np.float16:
        return raw.astype(np.float32, copy=not (overwrite and raw.flags.writeable))
    source = np.asarray(raw)
    if not (source.flags.writeable and source.flags.c_contiguous):
        source = np.array(source)  # torch wants a writable array; a float16 copy is cheap
    converted = np.empty(source.shape, dtype=np.float32)
    torch.from_numpy(converted).copy_(torch.from_numpy(source))
    return converted


def _row_error(row: np.ndarray, norm: float) -> str:
    if not np.isfinite(row).all():
        return "embedding contains NaN or infinite values"
    if norm == 0:
        return "embedding is all zeros: it has no direction"
    return "embedding is too large to normalise in float32"


def unit_block(
    raw: np.ndarray, errors: np.ndarray | None = None, *, overwrite: bool = False
) -> Block:
    """Unit rows of a float block; rows that cannot be normalised become errors.

    Rows whose norm is within float32 rounding of 1 (the tolerance of
    :func:`skhftt.space.validation.check_embeddings`) are used as they are, as the
    detector's own scoring does; the others are divided by their norm.

    Parameters
    ----------
    raw : ndarray of shape (n, dim)
        Any float dtype; converted to float32.
    errors : ndarray of shape (n,), object, optional
        Errors already known (e.g. null rows), kept as they are.
    overwrite : bool, default=False
        Whether a float32 ``raw`` may be normalised in place.
    """
    block = to_float32(raw, overwrite=overwrite)
    norms = np.sqrt(np.einsum("ij,ij->i", block, block))
    bad = ~np.isfinite(norms) | (norms == 0)
    if errors is not None:
        bad |= errors != None  # noqa: E711 (element-wise comparison)
    if bad.any():
        errors = np.empty(len(block), dtype=object) if errors is None else errors
        for row in np.flatnonzero(bad):
            if errors[row] is None:
                errors[row] = _row_error(block[row], norms[row])
        block[bad] = 0
        norms[bad] = 1
    off = np.abs(norms - 1) > UNIT_TOLERANCE
    if off.all():
        block /= norms[:, None]
    elif off.any():
        block[off] /= norms[off, None]
    return Block(ids=None, embeddings=block, errors=errors if bad.any() else None)


def _check_width(width: int, dim: int, path: str) -> None:
    if width != dim:
        raise ValueError(
            f"{path!r} has embeddings of width {width}, but the detector works in a space "
            f"of width {dim}."
        )


def _pick_column(names: list[str], requested: str | None, preferred: tuple[str, ...],
                 path: str, what: str) -> str | None:
    if requested is not None:
        if requested not in names:
            raise ValueError(
                f"{path!r} has no {what} column {requested!r}; its columns are {names}."
            )
        return requested
    return next((name for name in preferred if name in names), None)


def _embedding_column(schema: pa.Schema, requested: str | None, path: str) -> str:
    import pyarrow as pa

    def is_float_list(field: pa.Field) -> bool:
        kind = field.type
        return (
            (pa.types.is_list(kind) or pa.types.is_large_list(kind)
             or pa.types.is_fixed_size_list(kind))
            and pa.types.is_floating(kind.value_type)
        )

    candidates = [field.name for field in schema if is_float_list(field)]
    if requested is not None:
        if requested not in candidates:
            raise ValueError(
                f"{path!r} has no embedding column {requested!r} holding lists of floats; "
                f"such columns: {candidates or 'none'}."
            )
        return requested
    if len(candidates) == 1:
        return candidates[0]
    chosen = _pick_column(candidates, None, EMBEDDING_COLUMNS, path, "embedding")
    if chosen is None:
        found = f"several ({', '.join(candidates)})" if candidates else "no"
        raise ValueError(
            f"{path!r} has {found} columns of float lists; name the embedding column "
            "(embedding_column=, --embedding-column)."
        )
    return chosen


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


def _parquet_blocks(shard: Shard, dim: int, block_rows: int) -> Iterator[Block]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(shard.path)
    schema = handle.schema_arrow
    embedding = _embedding_column(schema, shard.embedding_column, shard.path)
    id_column = _pick_column(schema.names, shard.id_column, ID_COLUMNS, shard.path, "id")
    columns = [embedding] if id_column is None else [embedding, id_column]
    for batch in handle.iter_batches(batch_size=block_rows, columns=columns):
        matrix, errors = _list_matrix(batch.column(embedding), dim, shard.path)
        block = unit_block(matrix, errors)
        if id_column is not None:
            block.ids = _string_ids(batch.column(id_column))
        yield block


def _metadata_ids(shard: Shard, n_rows: int, block_rows: int) -> Iterator[pa.Array | None]:
    """Ids of an ``.npy`` shard's rows, block by block, from its LAION metadata parquet."""
    if shard.metadata is None:
        while True:
            yield None
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(shard.metadata)
    names = handle.schema_arrow.names
    column = _pick_column(names, shard.id_column, ID_COLUMNS, shard.metadata, "id")
    if column is None:
        while True:
            yield None
    if handle.metadata.num_rows != n_rows:
        raise ValueError(
            f"{shard.metadata!r} describes {handle.metadata.num_rows} rows but "
            f"{shard.path!r} holds {n_rows} embeddings; they must match row for row."
        )
    batches = handle.iter_batches(batch_size=block_rows, columns=[column])
    yield from _exact_chunks((_string_ids(batch.column(0)) for batch in batches), block_rows)


def _exact_chunks(arrays: Iterator[pa.Array], size: int) -> Iterator[pa.Array]:
    """Re-cut a stream of arrays into arrays of exactly ``size`` items (the last may be shorter).

    A parquet reader may end a batch early at a row-group boundary; the ids
    of an ``.npy`` shard must still line up with its blocks.
    """
    import pyarrow as pa

    pending: list[pa.Array] = []
    count = 0
    for array in arrays:
        pending.append(array)
        count += len(array)
        while count >= size:
            merged = pa.concat_arrays(pending)
            yield merged.slice(0, size)
            pending, count = [merged.slice(size)], count - size
    if count:
        yield pa.concat_arrays(pending)


def _npy_blocks(shard: Shard, dim: int, block_rows: int) -> Iterator[Block]:
    array = NpyFile.open(shard.path)
    _check_width(array.shape[1], dim, shard.path)
    ids = _metadata_ids(shard, array.shape[0], block_rows)
    for start in range(0, array.shape[0], block_rows):
        block = unit_block(array.read(start, start + block_rows), overwrite=True)
        block.ids = next(ids)
        yield block


def embedding_blocks(shard: Shard, *, dim: int, block_rows: int) -> Iterator[Block]:
    """Blocks of at most ``block_rows`` unit rows of an embedding shard, in order.

    Raises
    ------
    ValueError
        A shard that cannot be read as a whole: not an array of floats,
        wrong width, no embedding column, ids that do not match the rows.
    """
    reader: Any = _npy_blocks if shard.kind == "npy" else _parquet_blocks
    return reader(shard, dim, block_rows)
