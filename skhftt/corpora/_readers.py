"""Read user corpora from iterables, text files and table columns."""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterable
from os import PathLike, fspath
from pathlib import Path
from typing import IO, Literal

from skhftt.corpora._world import apply_template

FileFormat = Literal["txt", "csv", "tsv", "parquet"]

_SUFFIX_FORMATS: dict[str, FileFormat] = {
    "": "txt",
    ".txt": "txt",
    ".text": "txt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def dedupe_texts(texts: Iterable[str]) -> list[str]:
    """Drop repeated texts, keeping the first occurrence of each, in order.

    Examples
    --------
    >>> dedupe_texts(["cat", "dog", "cat", "bird", "dog"])
    ['cat', 'dog', 'bird']
    """
    return list(dict.fromkeys(texts))


def read_texts(
    source: str | PathLike[str] | Iterable[object],
    *,
    column: str | int | None = None,
    template: str | None = None,
    dedupe: bool = True,
    format: FileFormat | None = None,
    encoding: str = "utf-8",
) -> list[str]:
    """Read a corpus of texts from an iterable, a text file or a table column.

    Parameters
    ----------
    source : path-like or iterable
        One of

        * an iterable of str (list, tuple, generator, numpy array, pandas
          Series, ...);
        * a table with named columns (pandas DataFrame, pyarrow Table) plus
          ``column``;
        * a path (str or :class:`os.PathLike`) to a text file with one text per
          line (``.txt``, ``.text`` or no suffix), a ``.csv`` / ``.tsv`` file
          with a header row, or a ``.parquet`` file (needs pyarrow). A
          trailing ``.gz`` is decompressed. A str is always a path, never a
          text: a missing file is an error.
    column : str or int, optional
        Column of a table or CSV/TSV/parquet file (a name, or a position for
        CSV/TSV). May be omitted when the table has exactly one column.
    template : str, optional
        Prompt with one ``{}`` slot that each text fills, e.g.
        ``"This is a photo of a {}."``. ``None`` keeps the texts as they are.
    dedupe : bool, default=True
        Drop repeated texts, keeping the first occurrence, in order.
    format : {"txt", "csv", "tsv", "parquet"}, optional
        File format; by default it follows the file suffix.
    encoding : str, default="utf-8"
        Encoding of text and CSV/TSV files.

    Returns
    -------
    list of str
        The texts with surrounding whitespace stripped. Empty texts and missing
        values (None, NaN) are skipped.

    Raises
    ------
    FileNotFoundError
        ``source`` is a str or path that names no file.
    TypeError
        An item is neither a str nor a missing value.
    ValueError
        The corpus is empty, the column is unknown or ambiguous, or the file
        format is not supported.

    Examples
    --------
    >>> read_texts(["cat", " dog ", "", "cat"])
    ['cat', 'dog']
    >>> read_texts(["cat", "dog"], template="This is a photo of a {}.")
    ['This is a photo of a cat.', 'This is a photo of a dog.']
    """
    if isinstance(source, bytes):
        raise TypeError("source must be a path or an iterable of str, not bytes.")
    if isinstance(source, (str, PathLike)):
        name = fspath(source)
        raw = _read_file(Path(name), column=column, format=format, encoding=encoding)
    else:
        name = type(source).__name__
        raw = _table_column(source, column) if _is_table(source) else source
        if column is not None and not _is_table(source):
            raise ValueError(
                f"column={column!r} was given, but the source ({name}) has no "
                "columns; pass a table, a CSV/TSV/parquet path, or no column."
            )
    texts = _clean(raw, name=name)
    if dedupe:
        texts = dedupe_texts(texts)
    if not texts:
        raise ValueError(f"The corpus read from {name!r} is empty: no non-blank texts.")
    if template is not None:
        texts = apply_template(texts, template)
    return texts


def _clean(items: Iterable[object], *, name: str) -> list[str]:
    texts = []
    for index, item in enumerate(items):
        if item is None or (isinstance(item, float) and math.isnan(item)):
            continue
        if not isinstance(item, str):
            raise TypeError(
                f"Texts read from {name!r} must be str; item {index} is "
                f"{type(item).__name__} ({item!r})."
            )
        text = item.strip()
        if text:
            texts.append(text)
    return texts


def _is_table(source: object) -> bool:
    return hasattr(source, "columns") or hasattr(source, "column_names")


def _table_column(table: object, column: str | int | None) -> Iterable[object]:
    if hasattr(table, "column_names"):
        names = list(table.column_names)
    else:
        names = list(table.columns)
    position = _pick_column(names, column, name=type(table).__name__)
    values = table[names[position]]
    return values.to_pylist() if hasattr(values, "to_pylist") else values


def _pick_column(names: list[object], column: object, *, name: str) -> int:
    """Position of ``column`` (a column name, else a position) among ``names``."""
    shown = [str(label) for label in names[:10]]
    if column is None:
        if len(names) != 1:
            raise ValueError(
                f"{name} has {len(names)} columns {shown!r}; pass column= to "
                "choose the one holding the texts."
            )
        return 0
    if column in names:
        return names.index(column)
    if isinstance(column, int) and not isinstance(column, bool):
        if not -len(names) <= column < len(names):
            raise ValueError(
                f"column={column} is out of range: {name} has {len(names)} columns {shown!r}."
            )
        return column % len(names)
    raise ValueError(f"column={column!r} is not a column of {name}; columns are {shown!r}.")


def _file_format(path: Path, format: FileFormat | None) -> tuple[FileFormat, bool]:
    compressed = path.suffix == ".gz"
    stem = path.with_suffix("") if compressed else path
    if format is not None:
        if format not in ("txt", "csv", "tsv", "parquet"):
            raise ValueError(
                f"format={format!r} is not supported; expected 'txt', 'csv', 'tsv' or 'parquet'."
            )
        return format, compressed
    suffix = stem.suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        raise ValueError(
            f"Cannot tell the format of {fspath(path)!r} from its suffix "
            f"{suffix!r}; expected .txt, .csv, .tsv or .parquet (optionally "
            ".gz), or pass format=."
        )
    return _SUFFIX_FORMATS[suffix], compressed


def _read_file(
    path: Path, *, column: str | int | None, format: FileFormat | None, encoding: str
) -> list[object]:
    if not path.is_file():
        raise FileNotFoundError(
            f"No such file: {fspath(path)!r}. A str source is read as a path; "
            "to pass texts, pass a list of str."
        )
    kind, compressed = _file_format(path, format)
    if kind == "parquet":
        if compressed:
            raise ValueError(
                f"Parquet files are compressed internally; {fspath(path)!r} must not be gzipped."
            )
        return _read_parquet(path, column)
    with _open_text(path, compressed, encoding) as handle:
        if kind == "txt":
            if column is not None:
                raise ValueError(
                    f"column={column!r} was given, but {fspath(path)!r} is a text "
                    "file with one text per line."
                )
            return [line.rstrip("\r\n") for line in handle]
        return _read_delimited(handle, column, "\t" if kind == "tsv" else ",", path)


def _open_text(path: Path, compressed: bool, encoding: str) -> IO[str]:
    if compressed:
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def _read_delimited(
    handle: IO[str], column: str | int | None, delimiter: str, path: Path
) -> list[object]:
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{fspath(path)!r} is empty: expected a header row.")
    position = _pick_column(list(header), column, name=repr(fspath(path)))
    return [row[position] for row in reader if position < len(row)]


def _read_parquet(path: Path, column: str | int | None) -> list[object]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            f"Reading {fspath(path)!r} needs pyarrow: pip install pyarrow "
            '(or pip install "skhftt[scale]").'
        ) from exc
    parquet = pq.ParquetFile(path)
    names = list(parquet.schema_arrow.names)
    position = _pick_column(names, column, name=repr(fspath(path)))
    values: list[object] = []
    for batch in parquet.iter_batches(columns=[names[position]]):
        values.extend(batch.column(0).to_pylist())
    return values
