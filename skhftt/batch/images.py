"""Decode image shards with a torch DataLoader and embed them batch by batch.

DataLoader workers read and decode the images (with
:func:`skhftt.embedding.inputs.load_image`, so files, tar members, the
encoded images of parquet rows and in-memory images become RGB the same way
everywhere) while the main process embeds the previous batch. A file or row
that is missing, empty, truncated or not an image becomes an error for its
row; the batch goes on without it.

Images stored in arrow tables (a parquet file, a Hugging Face dataset) are
read a chunk of rows at a time (a parquet row group, a slice of a dataset):
each process holds one chunk, never the whole table.

An encoder may also offer ``pixel_transform()`` (a picklable callable from
an RGB PIL image to a ``(C, H, W)`` tensor) and ``encode_pixels(pixels)``
(embed a stacked ``(N, C, H, W)`` batch). The workers then preprocess too,
and on CUDA the batches travel through pinned memory. Otherwise the workers
hand over PIL images and ``encode_image`` preprocesses them. Either way the
encoder runs its forward pass under its own autocast (fp16 on CUDA by
default).
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from skhftt.batch.embeddings import Block
from skhftt.batch.formats import ID_COLUMNS, pick_column
from skhftt.batch.shards import Shard
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.images import IMAGE_EXTENSIONS, load_image

ARROW_CHUNK_ROWS = 1024


def _safe_text(text: str) -> str:
    """``text`` as valid UTF-8: undecodable bytes of a file name become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def describe(exc: BaseException) -> str:
    """An exception as one line: its type and message."""
    return f"{type(exc).__name__}: {exc}"


def is_permanent(exc: BaseException) -> bool:
    """Whether a rerun would fail the same way.

    Bad values and types (a shard of the wrong width, images for a text-only
    encoder, a missing package) fail again on every run; I/O errors, lost
    workers and memory pressure may not.
    """
    return isinstance(exc, (ValueError, TypeError, ImportError, NotImplementedError))


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


def _tar_key(name: str) -> tuple[str, str]:
    """Webdataset convention: key = path up to the first dot of the base name."""
    folder, base = posixpath.split(name)
    stem, _, extension = base.partition(".")
    return posixpath.join(folder, stem), extension.lower()


def tar_images(path: str) -> TarImages:
    """Index a webdataset ``.tar``: group members by key, pick each sample's image.

    Raises
    ------
    ValueError
        The file is not a readable (uncompressed) tar archive.
    """
    samples: dict[str, list[tarfile.TarInfo]] = {}
    try:
        with tarfile.open(path, mode="r:") as archive:
            for member in archive:
                if member.isfile():
                    samples.setdefault(_tar_key(member.name)[0], []).append(member)
    except tarfile.TarError as exc:
        raise ValueError(f"{path!r} is not a readable uncompressed tar archive: {exc}") from exc
    members: list[tuple[int, int, str] | str] = []
    for key, group in samples.items():
        image = next(
            (m for m in group if f".{_tar_key(m.name)[1]}" in IMAGE_EXTENSIONS), None
        )
        if image is None:
            found = ", ".join(sorted(_tar_key(m.name)[1] or "(none)" for m in group))
            members.append(f"sample {key!r} has no image member (extensions: {found})")
        else:
            members.append((image.offset_data, image.size, image.name))
    return TarImages(path, [_safe_text(key) for key in samples], members)


class ParquetChunks:
    """The row groups of a parquet file, read one at a time.

    The file is opened in the process that reads it (a DataLoader worker),
    not pickled to it.
    """

    def __init__(self, path: str) -> None:
        import pyarrow.parquet as pq

        self.path = path
        metadata = pq.read_metadata(path)
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        self.starts = [0, *np.cumsum(sizes, dtype=np.int64).tolist()]
        self._file: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}

    def read(self, index: int, columns: list[str]) -> Any:
        """Row group ``index``, these columns only, as a pyarrow table."""
        import pyarrow.parquet as pq

        if self._file is None:
            self._file = pq.ParquetFile(self.path)
        return self._file.read_row_group(index, columns=columns)


class DatasetChunks:
    """Rows ``first:first + count`` of a Hugging Face dataset, ``chunk_rows`` at a time.

    Slices of the dataset's arrow table: memory-mapped datasets are not
    copied, and nothing is decoded by ``datasets``.
    """

    def __init__(self, dataset: Any, first: int, count: int, chunk_rows: int) -> None:
        self.dataset = dataset
        self.first = first
        self.starts = [*range(0, count, chunk_rows), count]
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
    struct's ``path``.
    """

    def __init__(self, chunks: ParquetChunks | DatasetChunks, column: str,
                 id_column: str | None, label: str) -> None:
        self.chunks = chunks
        self.column = column
        self.id_column = id_column
        self.label = label
        self._chunk = -1
        self._values: Any = None
        self._ids: Any = None

    def __len__(self) -> int:
        return self.chunks.starts[-1]

    def _row(self, index: int) -> int:
        """Position of row ``index`` in its chunk, which is read if not held already."""
        chunk = bisect.bisect_right(self.chunks.starts, index) - 1
        if chunk != self._chunk:
            wanted = [self.column] if self.id_column is None else [self.column, self.id_column]
            table = self.chunks.read(chunk, wanted)
            self._values = table.column(0)
            self._ids = None if self.id_column is None else table.column(1)
            self._chunk = chunk
        return index - self.chunks.starts[chunk]

    def item_id(self, index: int) -> str | None:
        row = self._row(index)
        if self._ids is not None:
            value = self._ids[row].as_py()
            return None if value is None else str(value)
        value = self._values[row].as_py()
        return value.get("path") if isinstance(value, dict) else None

    def load(self, index: int) -> Any:
        value = self._values[self._row(index)].as_py()
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
        import pyarrow.parquet as pq

        chunks: ParquetChunks | DatasetChunks = ParquetChunks(shard.path)
        names = pq.read_schema(shard.path).names
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
        return FileImages(paths, [_safe_text(line) for line in lines])
    items = list(shard.items or ())
    return FileImages(
        [os.path.join(shard.path, item) for item in items],
        [_safe_text(os.path.join(shard.label, item)) for item in items],
    )


Sample = tuple[int, str | None, Any, str | None]


class DecodingDataset(torch.utils.data.Dataset):
    """Item ``i`` is ``(i, id, decoded image or pixels, None)`` or ``(i, id, None, error)``."""

    def __init__(self, source: FileImages | TarImages | ArrowImages,
                 transform: Callable | None) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Sample:
        name = None
        try:
            name = self.source.item_id(index)
            image = self.source.load(index)
            return index, name, image if self.transform is None else self.transform(image), None
        except Exception as exc:  # any failure is this item's, never the job's
            return index, name, None, describe(exc)


@dataclass
class ImageBatch:
    """A decoded batch: every item's id, the good items' inputs and the failed items' errors."""

    ids: list[str | None]
    rows: list[int]
    inputs: list[Any] | torch.Tensor
    failed: list[int]
    errors: list[str]

    def pin_memory(self) -> ImageBatch:
        """Pin a pixel tensor (the DataLoader calls this when ``pin_memory=True``)."""
        if isinstance(self.inputs, torch.Tensor):
            self.inputs = self.inputs.pin_memory()
        return self


def collate(samples: Sequence[Sample]) -> ImageBatch:
    """Keep decoded items and per-item errors apart; stack pixel tensors."""
    rows = [index for index, _, _, error in samples if error is None]
    inputs = [payload for _, _, payload, error in samples if error is None]
    if inputs and isinstance(inputs[0], torch.Tensor):
        inputs = torch.stack(inputs)
    return ImageBatch(
        ids=[name for _, name, _, _ in samples],
        rows=rows,
        inputs=inputs,
        failed=[index for index, _, _, error in samples if error is not None],
        errors=[error for _, _, _, error in samples if error is not None],
    )


def _pixel_path(encoder: Encoder) -> Callable | None:
    if hasattr(encoder, "pixel_transform") and hasattr(encoder, "encode_pixels"):
        return encoder.pixel_transform()
    return None


def _encode(encoder: Encoder, inputs: Any, batch_size: int, pixels: bool) -> np.ndarray:
    if pixels:
        return encoder.encode_pixels(inputs)
    return encoder.encode_image(inputs, batch_size=batch_size, show_progress=False)


def _encode_items(
    encoder: Encoder, batch: ImageBatch, batch_size: int, pixels: bool
) -> tuple[np.ndarray, dict[int, str]]:
    """Embed a batch; if it fails, embed item by item so only the bad items fail.

    When every item fails alone too, the fault is not the items' (a model
    or device error): it is raised.
    """
    try:
        return _encode(encoder, batch.inputs, batch_size, pixels), {}
    except Exception as batch_error:
        rows, errors = [], {}
        for position, row in enumerate(batch.rows):
            try:
                item = batch.inputs[position : position + 1]
                rows.append(_encode(encoder, item, 1, pixels))
            except Exception as exc:
                errors[row] = describe(exc)
        if not rows:
            raise batch_error
        return np.concatenate(rows), errors


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
    device: torch.device,
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
        DataLoader worker processes decoding images; 0 decodes in this
        process.
    device : torch.device
        The encoder's device; batches are pinned for a CUDA device.
    """
    _check_workers(num_workers)
    source = image_source(shard)
    transform = _pixel_path(encoder)
    loader = torch.utils.data.DataLoader(
        DecodingDataset(source, transform),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda" and transform is not None,
        prefetch_factor=4 if num_workers else None,
    )
    start = 0
    for batch in loader:
        n = len(batch.rows) + len(batch.failed)
        embeddings = np.zeros((n, dim), dtype=np.float32)
        errors = np.empty(n, dtype=object)
        for row, message in zip(batch.failed, batch.errors, strict=True):
            errors[row - start] = message
        if batch.rows:
            encoded, failed = _encode_items(encoder, batch, batch_size, transform is not None)
            good = [row for row in batch.rows if row not in failed]
            embeddings[np.asarray(good) - start] = encoded
            for row, message in failed.items():
                errors[row - start] = message
        yield Block(
            ids=_ids(batch.ids),
            embeddings=embeddings,
            errors=errors if (errors != None).any() else None,  # noqa: E711
        )
        start += n


def _ids(ids: list[str | None]) -> Any:
    import pyarrow as pa

    return pa.array(ids, type=pa.string())
