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
    ``log P_in - log P_out`` (the detector's ``score_samples``); null for
    rows with an error.
decision : int8
    +1 when ``score - offset > 0`` (matches the task), else -1 (the
    detector's ``predict``); null for rows with an error.
error : string
    Why the row has no score (missing, empty, corrupt or truncated image,
    invalid embedding); null for scored rows.
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


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What an output file records about its making, or None if it is not a complete output.

    Returns
    -------
    dict or None
        Keys ``format``, ``format_version``, ``shard`` and ``detector``
        (digests), ``offset``, ``encoder``, ``source``, ``kind``,
        ``n_rows`` and ``n_errors``.
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
    return manifest if manifest.get("format") == FORMAT else None


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
    for path in Path(output_dir).glob(f".*.parquet{_PARTIAL}*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows, where folders cannot be opened
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ShardWriter:
    """Write one shard's rows to a temporary file, renamed into place on success.

    Parameters
    ----------
    target : path
        The final output file.
    manifest : dict
        Recorded in the footer, with ``n_rows`` and ``n_errors`` added.
    row_group_rows : int, default=32768
        Rows are buffered up to this many, then written as one row group.

    Use it as a context manager: leaving the block normally publishes the
    file; leaving it with an exception deletes the temporary file.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        manifest: dict[str, Any],
        *,
        row_group_rows: int = 32768,
    ) -> None:
        self.target = Path(target)
        self.manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
        self.row_group_rows = row_group_rows
        self.partial = self.target.with_name(
            f".{self.target.name}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self.n_rows = 0
        self.n_errors = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: Any = None

    def __enter__(self) -> ShardWriter:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self.partial, output_schema(), compression="zstd")
        return self

    def write(
        self,
        ids: pa.Array | None,
        scores: np.ndarray,
        offset: float,
        errors: np.ndarray | None,
    ) -> None:
        """Append rows: their ids, scores, and errors (None where a row is fine)."""
        import pyarrow as pa

        n = len(scores)
        failed = None if errors is None else errors != None  # noqa: E711
        decisions = np.where(scores - offset > 0, 1, -1).astype(np.int8)
        table = pa.Table.from_arrays(
            [
                pa.nulls(n, pa.string()) if ids is None else ids,
                pa.array(np.arange(self.n_rows, self.n_rows + n, dtype=np.int64)),
                pa.array(scores, type=pa.float64(), mask=failed),
                pa.array(decisions, type=pa.int8(), mask=failed),
                pa.nulls(n, pa.string()) if errors is None else pa.array(errors, pa.string()),
            ],
            schema=output_schema(),
        )
        self.n_rows += n
        self.n_errors += 0 if failed is None else int(failed.sum())
        self._pending.append(table)
        self._pending_rows += n
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
        with open(self.partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self.partial, self.target)
        _fsync_folder(self.target.parent)
