"""The images of image shards, and their blocks of embeddings.

Each kind of image shard is a *source* of images known by position (files,
the samples of a webdataset ``.tar``, the encoded images of a parquet file or
a Hugging Face dataset), read by the one image pipeline of skhftt,
:func:`skhftt.embedding.pipeline.embed_images`: DataLoader worker processes
(or threads, with ``num_workers=0``) decode the images with
:func:`skhftt.embedding.images.load_image`, so that files, tar members, the
encoded images of parquet rows and in-memory images become RGB the same way
everywhere, while this process embeds the previous batch. A file or row that
is missing, empty, truncated or not an image becomes an error for its row;
the batch goes on without it.

Images stored in arrow tables (a parquet file, a Hugging Face dataset) are
read a chunk of rows at a time (a parquet row group, a slice of a dataset):
each process holds a chunk or two, never the whole table.

Ids are the paths, keys and id values as they are; they are written as
:func:`skhftt.batch.ids.encode_id` says.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import posixpath
import tarfile
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.utils import gen_batches

from skhftt.batch.embeddings import Block
from skhftt.batch.formats import ID_COLUMNS, open_parquet, pick_column, sample_key
from skhftt.batch.ids import encode_id
from skhftt.batch.shards import Shard
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.images import IMAGE_EXTENSIONS, load_image
from skhftt.embedding.pipeline import embed_images

ARROW_CHUNK_ROWS = 1024
# Links followed from one tar member before giving up (a loop, or a chain).
_MAX_LINKS = 32


class FileImages:
    """Image files; ``ids[i]`` names file ``paths[i]`` as the user gave it."""

    def __init__(self, paths: list[str], ids: list[str]) -> None:
        self.paths = paths
        self.ids = ids

    def __len__(self) -> int:
        return len(self.paths)

    def item_id(self, index: int) -> str:
        return self.ids[index]

    def load(self, index: int) -> Any:
        return load_image(self.paths[index], source=f"image file {self.ids[index]!r}")


class TarImages:
    """The samples of a webdataset ``.tar``: one per key, read by offset.

    ``members[i]`` is ``(offset, size, member name)`` of sample ``i``'s image,
    or a message saying why it has none.
    """

    def __init__(self, path: str, ids: list[str], members: list[tuple[int, int, str] | str]):
        self.path = path
        self.ids = ids
        self.members = members

    def __len__(self) -> int:
        return len(self.ids)

    def item_id(self, index: int) -> str:
        return self.ids[index]

    def load(self, index: int) -> Any:
        member = self.members[index]
        if isinstance(member, str):
            raise ValueError(member)
        offset, size, name = member
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
        source = f"tar member {name!r}"
        if len(data) != size:
            raise ValueError(f"{source} is truncated: {len(data)} of {size} bytes")
        return load_image(data, source=source)


def _link_target(member: tarfile.TarInfo) -> str | None:
    """The archive path a link member points to, or None if it points outside the archive."""
    if member.issym():
        target = posixpath.join(posixpath.dirname(member.name), member.linkname)
    else:  # a hard link names another member
        target = member.linkname
    target = posixpath.normpath(target)
    if posixpath.isabs(member.linkname) or target == ".." or target.startswith("../"):
        return None
    return target


def _locate(member: tarfile.TarInfo, by_name: dict[str, tarfile.TarInfo]
            ) -> tuple[int, int, str] | str:
    """``(offset, size, name)`` of the data of an image member, following links within
    the archive (never on disk); or why it has none."""
    name, current = member.name, member
    for _ in range(_MAX_LINKS):
        if current.isfile():
            return current.offset_data, current.size, name
        if not (current.issym() or current.islnk()):
            return f"tar member {name!r} is not a file (tar type {current.type!r})"
        target = _link_target(current)
        if target is None:
            return (f"tar member {name!r} links to {current.linkname!r}, outside the "
                    "archive: it is not followed")
        if target not in by_name:
            return (f"tar member {name!r} links to {current.linkname!r}, which the "
                    "archive does not hold")
        current = by_name[target]
    return f"tar member {name!r} is a chain of more than {_MAX_LINKS} links (a loop?)"


def tar_images(path: str) -> TarImages:
    """Index a webdataset ``.tar``: group members by key, pick each sample's image.

    Every member but folders belongs to a sample, so none is dropped: a link
    (hard or symbolic, as ``tar -h`` and GNU tar write duplicates) is read as
    the member it points to within the archive; a link out of the archive, a
    dangling link or a special file is an error for its sample.

    Raises
    ------
    ValueError
        The file is not a readable (uncompressed) tar archive.
    """
    samples: dict[str, list[tarfile.TarInfo]] = {}
    by_name: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(path, mode="r:") as archive:
            for member in archive:
                if not member.isdir():
                    by_name[posixpath.normpath(member.name)] = member
                    samples.setdefault(sample_key(member.name)[0], []).append(member)
    except tarfile.TarError as exc:
        raise ValueError(f"{path!r} is not a readable uncompressed tar archive: {exc}") from exc
    members: list[tuple[int, int, str] | str] = []
    for key, group in samples.items():
        image = next(
            (m for m in group if f".{sample_key(m.name)[1]}" in IMAGE_EXTENSIONS), None
        )
        if image is None:
            found = ", ".join(sorted(sample_key(m.name)[1] or "(none)" for m in group))
            members.append(f"sample {key!r} has no image member (extensions: {found})")
        else:
            members.append(_locate(image, by_name))
    return TarImages(path, list(samples), members)


class ParquetChunks:
    """The row groups of a parquet file, read one at a time.

    The file is opened in the process that reads it (a DataLoader worker),
    not pickled to it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        metadata = open_parquet(path).metadata
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        self.starts = [0, *np.cumsum(sizes, dtype=np.int64).tolist()]
        self._file: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}

    def read(self, index: int, columns: list[str]) -> Any:
        """Row group ``index``, these columns only, as a pyarrow table."""
        if self._file is None:
            self._file = open_parquet(self.path)
        return self._file.read_row_group(index, columns=columns)


class DatasetChunks:
    """Rows ``first:first + count`` of a Hugging Face dataset, ``chunk_rows`` at a time.

    Slices of the dataset's arrow table: memory-mapped datasets are not
    copied, and nothing is decoded by ``datasets``.
    """

    def __init__(self, dataset: Any, first: int, count: int, chunk_rows: int) -> None:
        self.dataset = dataset
        self.first = first
        self.starts = [part.start for part in gen_batches(count, chunk_rows)] + [count]
        self._rows: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_rows": None}

    def read(self, index: int, columns: list[str]) -> Any:
        """Chunk ``index``, these columns only, as a pyarrow table."""
        if self._rows is None:
            self._rows = self.dataset.with_format("arrow")
        start, stop = self.starts[index], self.starts[index + 1]
        return self._rows[self.first + start : self.first + stop].select(columns)


class ArrowImages:
    """Encoded images in a column of an arrow table, read one chunk of rows at a time.

    A value is the image's bytes (img2dataset's ``jpg`` column), or a struct
    of ``bytes`` and ``path`` (a Hugging Face ``Image``: the bytes, or else
    the file at ``path``). Ids come from the id column, or else from the
    struct's ``path``. Threads may read it at once: a chunk is read once,
    under a lock, and the chunks beside it are kept while threads finish them.
    """

    def __init__(self, chunks: ParquetChunks | DatasetChunks, column: str,
                 id_column: str | None, label: str) -> None:
        self.chunks = chunks
        self.column = column
        self.id_column = id_column
        self.label = label
        self._lock = threading.Lock()
        self._held: dict[int, tuple[Any, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_lock": None, "_held": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.chunks.starts[-1]

    def _row(self, index: int) -> tuple[Any, Any, int]:
        """The values and ids of row ``index``'s chunk, and its position in the chunk."""
        chunk = bisect.bisect_right(self.chunks.starts, index) - 1
        with self._lock:
            if chunk not in self._held:
                wanted = [self.column] if self.id_column is None else [self.column,
                                                                       self.id_column]
                table = self.chunks.read(chunk, wanted)
                self._held[chunk] = (table.column(0),
                                     None if self.id_column is None else table.column(1))
            values, ids = self._held[chunk]
        return values, ids, index - self.chunks.starts[chunk]

    def release(self, stop: int) -> None:
        """Drop the chunks of rows before ``stop``: they will not be asked for again."""
        with self._lock:
            self._held = {chunk: columns for chunk, columns in self._held.items()
                          if self.chunks.starts[chunk + 1] > stop}

    def item_id(self, index: int) -> str | None:
        values, ids, row = self._row(index)
        if ids is not None:
            value = ids[row].as_py()
            return None if value is None else str(value)
        value = values[row].as_py()
        return value.get("path") if isinstance(value, dict) else None

    def load(self, index: int) -> Any:
        values, _, row = self._row(index)
        value = values[row].as_py()
        source = f"row {index} of {self.label!r}"
        data = value.get("bytes") if isinstance(value, dict) else value
        if data is not None:
            return load_image(data, source=source)
        path = value.get("path") if isinstance(value, dict) else None
        if path is None:
            raise ValueError(f"{source} has no image (null)")
        return load_image(path, source=f"{source} (image file {path!r})")


def _arrow_images(shard: Shard) -> ArrowImages:
    """The images of a parquet or dataset shard of encoded images."""
    if shard.kind == "parquet":
        chunks: ParquetChunks | DatasetChunks = ParquetChunks(shard.path)
        names = open_parquet(shard.path).schema_arrow.names
        label = shard.label or shard.path
    else:
        chunks = DatasetChunks(shard.dataset, *shard.span, chunk_rows=ARROW_CHUNK_ROWS)
        names = list(shard.dataset.column_names)
        label = shard.label
    id_column = pick_column(names, shard.id_column, ID_COLUMNS, label, "id")
    return ArrowImages(chunks, shard.image_column, id_column, label)


def _list_lines(shard: Shard) -> list[str]:
    offset, count = shard.span
    lines: list[str] = []
    with open(shard.path, "rb") as handle:
        handle.seek(offset)
        while len(lines) < count:
            raw = handle.readline()
            if not raw:
                raise ValueError(f"list file {shard.label!r} changed while it was being scored.")
            if raw.strip():
                lines.append(os.fsdecode(raw.rstrip(b"\r\n")))
    return lines


def image_source(shard: Shard) -> FileImages | TarImages | ArrowImages:
    """The images of an ``images``, ``list``, ``tar``, ``parquet`` or ``dataset`` shard.

    Relative paths in a list file are relative to the folder of the list
    file; ids are the lines as written.
    """
    if shard.kind == "tar":
        return tar_images(shard.path)
    if shard.kind in ("parquet", "dataset"):
        return _arrow_images(shard)
    if shard.kind == "list":
        lines = _list_lines(shard)
        folder = os.path.dirname(shard.path)
        paths = [os.path.join(folder, os.path.expanduser(line)) for line in lines]
        return FileImages(paths, lines)
    items = list(shard.items or ())
    return FileImages(
        [os.path.join(shard.path, item) for item in items],
        [os.path.join(shard.label, item) for item in items],
    )


def _check_workers(num_workers: int) -> None:
    if num_workers and multiprocessing.current_process().daemon:
        raise ValueError(
            f"num_workers={num_workers} needs child processes, which this daemonic process "
            "(e.g. a Dask worker) cannot start: use num_workers=0, or start the Dask "
            "workers with the config distributed.worker.daemon = False."
        )


def image_blocks(
    shard: Shard,
    encoder: Encoder,
    *,
    dim: int,
    batch_size: int,
    num_workers: int,
    device: Any,
) -> Iterator[Block]:
    """Blocks of embedded images of an image shard, one per batch, in order.

    Parameters
    ----------
    shard : Shard
        A shard of images (``images``, ``list``, ``tar``, or ``parquet`` and
        ``dataset`` with an image column).
    encoder : Encoder
        Embeds the decoded images.
    dim : int
        Width of the embeddings.
    batch_size : int
        Images per batch.
    num_workers : int
        DataLoader worker processes decoding images; 0 decodes in threads
        of this process.
    device : torch.device
        The encoder's device; pixel batches are pinned for a CUDA device.
    """
    _check_workers(num_workers)
    for batch in embed_images(image_source(shard), encoder, batch_size=batch_size,
                              num_workers=num_workers, pin_memory=device.type == "cuda",
                              dim=dim):
        yield Block(ids=_ids(batch.ids), embeddings=batch.embeddings, errors=batch.errors)


def _ids(ids: list[str | None]) -> Any:
    import pyarrow as pa

    return pa.array([None if name is None else encode_id(name) for name in ids], pa.string())
