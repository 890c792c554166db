"""Per-shard parquet outputs, written atomically, and how a rerun recognises them.

Each shard's results go to ``<output_dir>/<shard name>.parquet``. Rows are
appended to a hidden temporary file in the same folder (row group by row
group, so memory stays bounded) and the file is renamed to its final name
only once complete, so a final name always holds a complete file. The
footer records what produced it (a digest of the shard's inputs and of the
detector); a rerun skips a shard whose output carries the same digests and
scores the others again. Temporary files of an interrupted run are removed
by the next one.

Columns
-------
id : string
    The image path (as given, or as written in the list file), the
    webdataset key, or the id column of an embedding shard; null when an
    embedding shard has no ids.
row : int64
    Position of the item in its shard, from 0.
score : float64
    The detector's ``score_samples``, higher = more like the task: for HFTT,
    NegLabel and CSP the log-odds ``log P_in - log P_out``, for the other
    detectors their own score (MCM's maximum softmax probability, the
    ensemble's standardised blend, ...). The footer says which, in words
    (``score`` in the detector description, see
    :func:`skhftt.batch.scorers.describe`); null for rows with an error.
decision : int8
    +1 when ``score - offset >= 0`` (matches the task), else -1 (the
    detector's ``predict``); null for rows with an error.
error : string
    Why the row has no score (missing, empty, corrupt or truncated image,
    invalid embedding); null for scored rows.

Outputs of several concepts at once have a score and a decision column per
concept instead (see :class:`ConceptShardWriter`).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

INSTALL_HINT = 'pip install "skhftt[scale]"'
FORMAT = "skhftt.scores"
FORMAT_VERSION = 1
_METADATA_KEY = b"skhftt"
_PARTIAL = ".partial-"


def output_schema() -> pa.Schema:
    """The schema of every output file (see the module documentation)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("row", pa.int64()),
            ("score", pa.float64()),
            ("decision", pa.int8()),
            ("error", pa.string()),
        ]
    )


def output_path(output_dir: str | os.PathLike[str], name: str) -> Path:
    """Where the shard called ``name`` is written."""
    return Path(output_dir) / f"{name}.parquet"


def read_manifest(path: str | os.PathLike[str], *,
                  file_format: str = FORMAT) -> dict[str, Any] | None:
    """What an output file records about its making, or None if it is not a complete output.

    Parameters
    ----------
    path : str or path-like
        An output file.
    file_format : str, default="skhftt.scores"
        The kind of output expected.

    Returns
    -------
    dict or None
        Keys ``format``, ``format_version``, ``shard`` and ``detector``
        (digests), ``offset``, ``encoder``, ``source``, ``kind``,
        ``rows_file`` (the parquet file whose rows are the shard's, row for
        row: LAION metadata, the parquet shard itself; else None),
        ``n_rows`` and ``n_errors``; outputs of several concepts also
        ``concepts`` (each one's ``name``, ``unwanted`` and ``offset``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_metadata(path).metadata or {}).get(_METADATA_KEY)
    except (OSError, pa.ArrowException):
        return None
    if raw is None:
        return None
    manifest = json.loads(raw)
    return manifest if manifest.get("format") == file_format else None


def is_done(path: str | os.PathLike[str], *, shard: str, detector: str) -> bool:
    """True when ``path`` is a complete output of this shard scored by this detector."""
    manifest = read_manifest(path)
    return (
        manifest is not None
        and manifest.get("shard") == shard
        and manifest.get("detector") == detector
    )


def remove_partials(output_dir: str | os.PathLike[str]) -> int:
    """Delete temporary files left by interrupted runs; returns how many."""
    removed = 0
    for path in Path(output_dir).glob(f".*{_PARTIAL}*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def partial_path(target: Path) -> Path:
    """The hidden temporary name ``target`` is written under before it is renamed."""
    return target.with_name(f".{target.name}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def publish(partial: Path, target: Path) -> None:
    """Flush a complete temporary file to disk and rename it to ``target``, atomically."""
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    try:
        descriptor = os.open(target.parent, os.O_RDONLY)
    except OSError:  # e.g. Windows, where folders cannot be opened
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class AtomicParquetWriter:
    """Write a parquet file under a temporary name, renamed into place on success.

    Rows are buffered up to ``row_group_rows``, then written as one row
    group, so memory stays bounded. Use it as a context manager: leaving the
    block normally publishes the file with ``manifest`` (plus ``n_rows``
    and ``n_errors``) in its footer; leaving it with an exception deletes
    the temporary file.

    Parameters
    ----------
    target : path
        The final file.
    schema : pyarrow.Schema
        Its columns.
    manifest : dict
        Recorded in the footer.
    row_group_rows : int, default=32768
        Rows per row group.
    file_format : str, default="skhftt.scores"
        The ``format`` recorded in the footer: what kind of file it is.
    dictionary : bool or list of str, default=True
        Columns to dictionary-encode (pyarrow's ``use_dictionary``).
    """

    def __init__(self, target: str | os.PathLike[str], schema: pa.Schema,
                 manifest: dict[str, Any], *, row_group_rows: int = 32768,
                 file_format: str = FORMAT, dictionary: bool | list[str] = True) -> None:
        self.target = Path(target)
        self.schema = schema
        self.dictionary = dictionary
        self.manifest = {"format": file_format, "format_version": FORMAT_VERSION, **manifest}
        self.row_group_rows = row_group_rows
        self.partial = partial_path(self.target)
        self.n_rows = 0
        self.n_errors = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: Any = None

    def __enter__(self) -> AtomicParquetWriter:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self.partial, self.schema, compression="zstd",
                                        use_dictionary=self.dictionary)
        return self

    def append(self, table: pa.Table, n_errors: int = 0) -> None:
        """Append rows (a table of :attr:`schema`), ``n_errors`` of them with an error."""
        self._pending.append(table)
        self.n_rows += table.num_rows
        self.n_errors += n_errors
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            table = pa.concat_tables(self._pending).combine_chunks()
            self._writer.write_table(table, row_group_size=max(len(table), 1))
            self._pending, self._pending_rows = [], 0

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._writer.close()
            self.partial.unlink(missing_ok=True)
            return
        self._flush()
        manifest = {**self.manifest, "n_rows": self.n_rows, "n_errors": self.n_errors}
        self._writer.add_key_value_metadata({_METADATA_KEY.decode(): json.dumps(manifest)})
        self._writer.close()
        publish(self.partial, self.target)


# Errors repeat; ids (paths, keys) and scores do not, and trying a dictionary
# on them doubles the time to write a row group.
_DICTIONARY = ["error"]


def _failed(errors: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, bool) if errors is None else errors != None  # noqa: E711


def _errors(errors: np.ndarray | None, n: int) -> pa.Array:
    """Error messages as strings; a file name's undecodable bytes as ``\\udcXX`` escapes."""
    import pyarrow as pa

    if errors is None:
        return pa.nulls(n, pa.string())
    return pa.array([None if error is None else
                     error.encode("utf-8", "backslashreplace").decode("utf-8")
                     for error in errors], pa.string())


def _row_numbers(first: int, n: int) -> pa.Array:
    import pyarrow as pa

    return pa.array(np.arange(first, first + n, dtype=np.int64))


class ShardWriter(AtomicParquetWriter):
    """One shard's scores by one detector (the columns of :func:`output_schema`).

    Parameters
    ----------
    target : path
        The final output file.
    manifest : dict
        Recorded in the footer, with ``n_rows`` and ``n_errors`` added.
    offset : float
        ``decision = +1`` where ``score - offset >= 0``.
    row_group_rows : int, default=32768
        Rows per row group.
    """

    def __init__(self, target: str | os.PathLike[str], manifest: dict[str, Any], *,
                 offset: float, row_group_rows: int = 32768) -> None:
        super().__init__(target, output_schema(), manifest, row_group_rows=row_group_rows,
                         dictionary=_DICTIONARY)
        self.offset = offset

    def write(self, ids: pa.Array | None, scores: np.ndarray,
              errors: np.ndarray | None) -> None:
        """Append rows: their ids, scores, and errors (None where a row is fine)."""
        import pyarrow as pa

        n = len(scores)
        failed = None if errors is None else _failed(errors, n)
        decisions = np.where(scores - self.offset >= 0, 1, -1).astype(np.int8)
        table = pa.Table.from_arrays(
            [
                pa.nulls(n, pa.string()) if ids is None else ids,
                _row_numbers(self.n_rows, n),
                pa.array(scores, type=pa.float64(), mask=failed),
                pa.array(decisions, type=pa.int8(), mask=failed),
                _errors(errors, n),
            ],
            schema=self.schema,
        )
        self.append(table, 0 if failed is None else int(failed.sum()))


def concept_schema(names: list[str]) -> pa.Schema:
    """The columns of the outputs of several concepts (see :class:`ConceptShardWriter`)."""
    import pyarrow as pa

    per_concept = [
        field
        for name in names
        for field in ((f"{name}_score", pa.float64()), (f"{name}_decision", pa.int8()))
    ]
    return pa.schema([
        ("id", pa.string()), ("row", pa.int64()), *per_concept, ("remove", pa.bool_()),
        ("triggered", pa.list_(pa.string())), ("error", pa.string()),
    ])


class ConceptShardWriter(AtomicParquetWriter):
    """One shard's scores by several concepts at once.

    The output has columns ``id``, ``row``, then ``<name>_score`` (float64,
    that concept's ``score_samples``, described in the footer) and
    ``<name>_decision`` (int8, +1 matches that concept's task) for each
    concept, ``remove`` (bool: some concept flags the row as unwanted),
    ``triggered`` (list of the names of the concepts that flag it) and
    ``error``; scores, decisions, ``remove`` and ``triggered`` are null for
    rows with an error.

    Parameters
    ----------
    target : path
        The final output file.
    manifest : dict
        Recorded in the footer.
    concepts : MultiConceptDetector
        The concepts, their thresholds and unwanted sides.
    row_group_rows : int, default=32768
        Rows per row group.
    """

    def __init__(self, target: str | os.PathLike[str], manifest: dict[str, Any],
                 concepts: Any, *, row_group_rows: int = 32768) -> None:
        super().__init__(target, concept_schema(concepts.names), manifest,
                         row_group_rows=row_group_rows, dictionary=_DICTIONARY)
        self.concepts = concepts

    def write(self, ids: pa.Array | None, scores: np.ndarray,
              errors: np.ndarray | None) -> None:
        """Append rows: their ids, ``(n, n_concepts)`` scores, and errors."""
        import pyarrow as pa

        n = len(scores)
        failed = _failed(errors, n)
        report = self.concepts.report(np.nan_to_num(scores))
        columns: list[Any] = [
            pa.nulls(n, pa.string()) if ids is None else ids,
            _row_numbers(self.n_rows, n),
        ]
        for j, concept in enumerate(self.concepts.concepts.values()):
            decisions = np.where(scores[:, j] >= concept.offset, 1, -1).astype(np.int8)
            columns += [pa.array(scores[:, j], pa.float64(), mask=failed),
                        pa.array(decisions, pa.int8(), mask=failed)]
        triggered = [None if bad else names for bad, names in zip(failed, report.triggered,
                                                                    strict=True)]
        columns += [
            pa.array(report.remove, pa.bool_(), mask=failed),
            pa.array(triggered, pa.list_(pa.string())),
            _errors(errors, n),
        ]
        self.append(pa.Table.from_arrays(columns, schema=self.schema), int(failed.sum()))
