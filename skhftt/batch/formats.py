"""What the files of a shard hold: ``.npy`` headers and the columns of arrow tables.

Discovery (:mod:`skhftt.batch.shards`) and the readers share these rules, so
a file is classified once and the same way whether it is listed or read.

An arrow table (a parquet file, a Hugging Face ``datasets.Dataset``) holds
either **embeddings**, a column of lists of floats, or **encoded images**:

* a column that the table's Hugging Face metadata declares an ``Image``
  feature (stored as a struct of ``bytes`` and ``path``);
* without that metadata, a binary column (img2dataset writes the image
  bytes to a column named after the format, ``jpg`` by default) or a struct
  with a binary ``bytes`` field.

Embeddings win when a table has both: they need no encoder.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

ID_COLUMNS = ("id", "key", "image_path", "url")
EMBEDDING_COLUMNS = ("embedding", "embeddings", "img_emb", "image_embedding", "clip_embedding")
IMAGE_COLUMNS = ("image", "img", "jpg", "jpeg", "png", "webp")

Part = TypeVar("Part")


def sample_key(name: str) -> tuple[str, str]:
    """Webdataset convention: ``(key, extension)`` of a member or file name.

    The key is the path up to the first dot of the base name, leading dots
    (hidden files) included, so that ``.a.png`` and ``.b.png`` stay two
    samples; the extension is the rest, lower-cased.

    Examples
    --------
    >>> sample_key("shard/000017.seg.PNG"), sample_key("x/.hidden.jpg")
    (('shard/000017', 'seg.png'), ('x/.hidden', 'jpg'))
    """
    folder, base = posixpath.split(name)
    stem = base.lstrip(".")
    dots = len(base) - len(stem)
    stem, _, extension = stem.partition(".")
    return posixpath.join(folder, base[:dots] + stem), extension.lower()


def open_parquet(path: str) -> Any:
    """``pyarrow.parquet.ParquetFile(path)``, with an error that names the file.

    Raises
    ------
    ValueError
        The file is not a readable parquet file (empty, truncated, garbage).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path!r} is not a readable parquet file: {exc}") from exc


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

    def read(self, start: int, stop: int, *, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop``, as a new array or read into the first rows of ``out``.

        Parameters
        ----------
        start, stop : int
            The rows; ``stop`` may pass the end.
        out : ndarray of this file's dtype and width, optional
            A C-contiguous buffer of at least ``stop - start`` rows, refilled
            block after block (a fresh array of a few MB is mapped and
            page-faulted afresh at every block).

        Raises
        ------
        ValueError
            The file ends before its header says.
        """
        n, dim = min(stop, self.shape[0]) - start, self.shape[1]
        rows = np.empty((n, dim), self.dtype) if out is None else out[:n]
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start * dim * self.dtype.itemsize)
            read = handle.readinto(rows.reshape(-1).view(np.uint8))
        if read != rows.nbytes:
            raise ValueError(
                f"{self.path!r} is truncated: its header promises {self.shape[0]} rows, "
                f"but the data end within row {start + read // (dim * self.dtype.itemsize)}."
            )
        return rows


def is_float_list(field: pa.Field) -> bool:
    """Whether a column holds lists of floats (embeddings)."""
    import pyarrow as pa

    kind = field.type
    return (
        (pa.types.is_list(kind) or pa.types.is_large_list(kind)
         or pa.types.is_fixed_size_list(kind))
        and pa.types.is_floating(kind.value_type)
    )


def _is_binary(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _declared_images(schema: pa.Schema) -> list[str] | None:
    """Columns the Hugging Face metadata declares images; None without such metadata."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if raw is None:
        return None
    try:
        features = json.loads(raw)["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return None
    return [
        name for name, feature in features.items()
        if isinstance(feature, dict) and feature.get("_type") == "Image"
    ]


def image_candidates(schema: pa.Schema) -> list[str]:
    """Columns that hold encoded images (see the module documentation)."""
    import pyarrow as pa

    declared = _declared_images(schema)
    if declared is not None:
        return [name for name in declared if name in schema.names]

    def holds_bytes(kind: pa.DataType) -> bool:
        if _is_binary(kind):
            return True
        return (
            pa.types.is_struct(kind)
            and kind.get_field_index("bytes") >= 0
            and _is_binary(kind.field("bytes").type)
        )

    return [field.name for field in schema if holds_bytes(field.type)]


def pick_column(names: Sequence[str], requested: str | None, preferred: tuple[str, ...],
                path: str, what: str) -> str | None:
    """``requested`` if ``names`` has it (else raise), or the first ``preferred`` present."""
    if requested is not None:
        if requested not in names:
            raise ValueError(
                f"{path!r} has no {what} column {requested!r}; its columns are {list(names)}."
            )
        return requested
    return next((name for name in preferred if name in names), None)


def _only_column(candidates: list[str], requested: str | None, preferred: tuple[str, ...],
                 path: str, what: str, holding: str, option: str) -> str:
    if requested is not None:
        if requested not in candidates:
            raise ValueError(
                f"{path!r} has no {what} column {requested!r} holding {holding}; "
                f"such columns: {candidates or 'none'}."
            )
        return requested
    if len(candidates) == 1:
        return candidates[0]
    chosen = pick_column(candidates, None, preferred, path, what)
    if chosen is None:
        found = f"several ({', '.join(candidates)})" if candidates else "no"
        raise ValueError(
            f"{path!r} has {found} columns of {holding}; name the {what} column ({option})."
        )
    return chosen


def embedding_column(schema: pa.Schema, requested: str | None, path: str) -> str:
    """The column of embeddings: ``requested``, the only float-list column, or a usual name.

    Raises
    ------
    ValueError
        No such column, or several and none requested.
    """
    candidates = [field.name for field in schema if is_float_list(field)]
    if not candidates and requested is None:
        raise ValueError(
            f"{path!r} holds neither embeddings (a column of float lists) nor encoded images "
            f"(a binary column, or a struct of bytes and path); its columns are {schema.names}."
        )
    return _only_column(candidates, requested, EMBEDDING_COLUMNS, path, "embedding",
                        "float lists", "embedding_column=, --embedding-column")


def image_column(schema: pa.Schema, requested: str | None, path: str) -> str:
    """The column of encoded images: ``requested``, the only one, or a usual name.

    Raises
    ------
    ValueError
        No such column, or several and none requested.
    """
    return _only_column(image_candidates(schema), requested, IMAGE_COLUMNS, path, "image",
                        "encoded images", "image_column=, --image-column")


def holds_images(schema: pa.Schema, *, embedding_column: str | None,
                 image_column: str | None) -> bool:
    """Whether a table is read as encoded images rather than embeddings.

    A requested column decides (the embedding column, when both are
    requested and the table has it); otherwise a table is images when it
    has a column of encoded images and none of float lists.
    """
    if embedding_column is not None and (
        image_column is None or embedding_column in schema.names
    ):
        return False
    if image_column is not None:
        return True
    if any(is_float_list(field) for field in schema):
        return False
    return bool(image_candidates(schema))


def exact_chunks(parts: Iterable[Part], size: int) -> Iterator[Part]:
    """Re-cut a stream of arrow arrays or tables into pieces of exactly ``size`` rows.

    The last piece may be shorter. A parquet reader may end a batch early
    at a row-group boundary; two files read side by side (embeddings and
    their metadata, scores and their rows) must still line up.
    """
    pending: list = []
    count = 0
    for part in parts:
        pending.append(part)
        count += len(part)
        while count >= size:
            merged = _concat(pending)
            yield merged.slice(0, size)
            pending, count = [merged.slice(size)], count - size
    if count:
        yield _concat(pending)


def _concat(parts: list) -> Any:
    import pyarrow as pa

    if isinstance(parts[0], pa.Array):
        return pa.concat_arrays(parts)
    return pa.concat_tables(
        [pa.Table.from_batches([part]) if isinstance(part, pa.RecordBatch) else part
         for part in parts]
    )
