"""The rows a review shows, read back from the inputs that were scored: thumbnails and text.

Only the rows shown are read, file by file: an image file, a tar member, the
encoded image of a parquet row or of a Hugging Face dataset row (decoded as
scoring decoded it, with :mod:`skhftt.batch.images`), shrunk to a small JPEG
that the page embeds as a ``data:`` URI; for embedding shards, which hold no
pixels, the caption and URL of the row in its metadata (LAION's
``metadata/*.parquet``, the parquet shard itself, the dataset's columns).
Each row also names its original (a ``file://`` link or a URL) and keeps
what an explanation of its score needs (its image or its embedding) until
:func:`read_rows` hands it on.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skhftt.review.scores import ScoreFiles, take_rows

__all__ = ["CAPTION_COLUMNS", "URL_COLUMNS", "Shown", "read_rows"]

CAPTION_COLUMNS = ("caption", "text", "TEXT", "title", "alt")
URL_COLUMNS = ("url", "URL", "image_url")
THUMBNAIL_PIXELS = 128


@dataclass
class Shown:
    """What the page shows of one row.

    Attributes
    ----------
    name : str
        The row's id.
    image : str or None
        The thumbnail as a ``data:image/jpeg;base64,...`` URI.
    href : str or None
        The original: a ``file://`` URI or a URL.
    where : str or None
        Where the original is, in words (a path, a tar member).
    caption, url : str or None
        From the row's metadata, for rows without pixels.
    note : str or None
        Why there is no thumbnail (an input that cannot be read now).
    explanation : dict
        Per detector, what dominated the row's score (see
        :mod:`skhftt.review.explanations`).
    """

    name: str = ""
    image: str | None = None
    href: str | None = None
    where: str | None = None
    caption: str | None = None
    url: str | None = None
    note: str | None = None
    explanation: dict[str | None, str] | None = None


def thumbnail(image: Any, pixels: int = THUMBNAIL_PIXELS) -> str:
    """A PIL image as a small JPEG ``data:`` URI, at most ``pixels`` on its longer side."""
    small = image.copy()
    small.thumbnail((pixels, pixels))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _first(names: Sequence[str], wanted: Sequence[str]) -> str | None:
    return next((name for name in wanted if name in names), None)


def _dataset_rows(dataset: Any, rows: Sequence[int], columns: list[str]) -> dict[str, list]:
    return dataset.with_format("arrow", columns=columns)[list(rows)].to_pydict()


class _Rows:
    """One score file's input, read row by row: its images, or its embeddings and metadata."""

    def __init__(self, manifest: dict[str, Any], path: Path, file_of: Callable,
                 datasets: dict[str, Any], files: ScoreFiles) -> None:
        self.manifest = manifest
        self.kind = manifest.get("kind")
        self.source = manifest.get("source") or ""
        self.file_of = file_of
        self.images: Any = None
        self.table: Any = None  # a parquet path or a dataset, with the rows' metadata
        self.first = 0  # the shard's first row in ``table``
        self.embeddings: Any = None
        self.embedding_column: str | None = None
        if self.kind == "tar":
            from skhftt.batch.images import tar_images

            self.images = tar_images(os.path.abspath(self.source))
        elif self.kind == "dataset":
            self._dataset(datasets, files, path)
        elif self.kind in ("parquet", "npy"):
            self._file()

    def _dataset(self, datasets: dict[str, Any], files: ScoreFiles, path: Path) -> None:
        from skhftt.batch.images import ArrowImages, DatasetChunks

        if self.source not in datasets:
            raise ValueError(f"the scores of dataset {self.source!r} need that dataset to show "
                             "its rows: pass it (--dataset DIR, saved with save_to_disk)")
        dataset = datasets[self.source]
        self.table = dataset
        earlier = sorted((p.stem, m["n_rows"]) for p, m in zip(files.paths, files.manifests,
                                                                strict=True)
                         if m.get("source") == self.source and p.stem < path.stem)
        self.first = sum(size for _, size in earlier)
        self._columns(dataset.features.arrow_schema, self.source, lambda column: ArrowImages(
            DatasetChunks(dataset, self.first, self.manifest["n_rows"], 1024), column, None,
            self.source))

    def _file(self) -> None:
        import pyarrow.parquet as pq

        from skhftt.batch.formats import NpyFile
        from skhftt.batch.images import ArrowImages, ParquetChunks

        source = os.path.abspath(self.source)
        if self.kind == "npy":
            self.embeddings = NpyFile.open(source)
            self.table = self.manifest.get("rows_file")
            return
        self.table = source
        self._columns(pq.read_schema(source), source, lambda column: ArrowImages(
            ParquetChunks(source), column, None, source))

    def _columns(self, schema: Any, where: str, images: Callable[[str], Any]) -> None:
        from skhftt.batch.formats import embedding_column, holds_images, image_column

        if holds_images(schema, embedding_column=None, image_column=None):
            self.images = images(image_column(schema, None, where))
        else:
            self.embedding_column = embedding_column(schema, None, where)

    def _metadata(self, rows: Sequence[int]) -> dict[str, list]:
        """Caption, URL and embedding columns of some rows of the metadata table."""
        if self.table is None:
            return {}
        if isinstance(self.table, str):
            import pyarrow.parquet as pq

            names = pq.read_schema(self.table).names
        else:
            names = list(self.table.column_names)
        wanted = [name for name in (_first(names, CAPTION_COLUMNS), _first(names, URL_COLUMNS),
                                    self.embedding_column) if name]
        if not wanted:
            return {}
        at = [self.first + row for row in rows]
        if isinstance(self.table, str):
            return take_rows(self.table, at, wanted)
        return _dataset_rows(self.table, at, wanted)

    def read(self, rows: Sequence[int], ids: Sequence[str | None]) -> list[tuple[Shown, Any]]:
        """What to show of each row, and its image or unit embedding (None if unreadable)."""
        metadata = self._metadata(rows)
        names = list(metadata)
        caption = _first(names, CAPTION_COLUMNS)
        url = _first(names, URL_COLUMNS)
        read = []
        for position, (row, name) in enumerate(zip(rows, ids, strict=True)):
            shown = Shown(name=name, caption=metadata[caption][position] if caption else None,
                          url=metadata[url][position] if url else None)
            shown.href = shown.url
            try:
                item = self._item(row, name, shown, metadata, position)
            except Exception as exc:  # a row that cannot be read now is shown without pixels
                shown.note = f"cannot be read now: {type(exc).__name__}: {exc}"
                item = None
            read.append((shown, item))
        return read

    def _item(self, row: int, name: str | None, shown: Shown, metadata: dict[str, list],
              position: int) -> Any:
        from skhftt.embedding.images import load_image

        if self.kind in ("images", "list"):
            path = self.file_of(name, self.manifest)
            shown.where, shown.href = path, Path(path).as_uri()
            image = load_image(path)
        elif self.images is not None:
            # ArrowImages.load reads its held chunk before item_id moves to the row's chunk.
            self.images.item_id(row)
            image = self.images.load(row)
            if self.kind == "tar":
                member = self.images.members[row]
                shown.where = f"{member[2]} in {self.images.path}"
                shown.href = Path(self.images.path).as_uri()
        else:
            vector = (self.embeddings.read(row, row + 1)[0] if self.embeddings is not None
                      else np.asarray(metadata[self.embedding_column][position]))
            vector = np.asarray(vector, dtype=np.float32)
            return vector / np.linalg.norm(vector)
        shown.image = thumbnail(image)
        return image


def read_rows(files: ScoreFiles, rows: Sequence[int], *, file_of: Callable,
              datasets: dict[str, Any] | None = None,
              explain: Callable[[list[Any]], list[dict[str | None, str]]] | None = None,
              ) -> dict[int, Shown]:
    """What to show of table rows, read file by file.

    Parameters
    ----------
    files : ScoreFiles
        The score files the rows are numbered in.
    rows : sequence of int
        Table rows.
    file_of : callable
        ``(id, footer) -> image file path`` for rows of image files and list
        files (``skhftt filter`` resolves ids so).
    datasets : dict, optional
        Label -> ``datasets.Dataset``, for scores of Hugging Face datasets.
    explain : callable, optional
        Called with the images or unit embeddings of a file's rows (None for
        a row that cannot be read) and returning each row's explanation.

    Returns
    -------
    dict
        Row -> :class:`Shown`. A row whose input cannot be read is shown
        with a note instead of a thumbnail; so are all rows of an input
        that is gone.
    """
    wanted = np.unique(np.asarray(rows, dtype=np.int64))
    places = files.locate(wanted)
    ids = files.ids(wanted)
    shown: dict[int, Shown] = {}
    for k in sorted({k for k, _ in places}):
        mine = [i for i, (file, _) in enumerate(places) if file == k]
        local = [places[i][1] for i in mine]
        try:
            source = _Rows(files.manifests[k], files.paths[k], file_of, datasets or {}, files)
            read = source.read(local, [ids[i] for i in mine])
        except Exception as exc:  # the whole input is gone or unreadable: say so on each row
            read = [(Shown(name=ids[i], note=f"cannot be read now: {type(exc).__name__}: {exc}"),
                     None) for i in mine]
        notes = explain([item for _, item in read]) if explain is not None else None
        for position, (i, (item, _)) in enumerate(zip(mine, read, strict=True)):
            item.explanation = None if notes is None else notes[position]
            shown[int(wanted[i])] = item
    return shown
