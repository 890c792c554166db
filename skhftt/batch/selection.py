"""Join scores back to the rows they score, and write the rows to keep or to remove.

A score output of an embedding shard lines up row for row with a parquet
file of metadata: ``metadata/metadata_<n>.parquet`` beside LAION's
``img_emb/img_emb_<n>.npy``, or the parquet shard itself (img2dataset,
clip-retrieval, Hugging Face parquet files). :func:`select_rows` streams
both side by side, ``batch_rows`` rows at a time, and writes the selected
rows with their scores, one file per shard, atomically. No shard's metadata
is held in memory, and none is read twice.

``keep=True`` writes the rows to keep; ``keep=False`` the rows to remove,
e.g. just their ``key`` or ``uid`` (``columns=``), the form of a DataComp
removal list. Rows that could not be scored are in neither. A scores folder
whose recorded run is incomplete is refused (see :mod:`skhftt.batch.record`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from skhftt.batch.formats import exact_chunks, open_parquet
from skhftt.batch.output import AtomicParquetWriter, output_path, read_manifest, remove_partials
from skhftt.batch.record import check_complete

__all__ = ["SelectionReport", "select_rows"]

SELECTION_FORMAT = "skhftt.selection"
_SCORE_COLUMNS = ("id", "row", "error")


@dataclass
class SelectionReport:
    """Outcome of :func:`select_rows`.

    Attributes
    ----------
    output_dir : pathlib.Path
        Where the selections are.
    written : list of str
        Shards whose selection this call wrote.
    skipped : list of str
        Shards whose selection was already complete, with the same options.
    n_rows : int
        Rows read by this call.
    n_selected : int
        Of those, rows written.
    n_errors : int
        Of those, rows that could not be scored (written to neither side).
    """

    output_dir: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    n_rows: int = 0
    n_selected: int = 0
    n_errors: int = 0

    def summary(self) -> str:
        """One line: what was selected."""
        return (
            f"selected {self.n_selected:,} of {self.n_rows:,} rows ({self.n_errors:,} with "
            f"errors, in neither) from {len(self.written)} shard(s) into "
            f"{str(self.output_dir)!r}; {len(self.skipped)} shard(s) already done"
        )


def _score_files(scores: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                 allow_incomplete: bool) -> list[Path]:
    items = [scores] if isinstance(scores, (str, os.PathLike)) else list(scores)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            warning = check_complete(path, allow_incomplete=allow_incomplete,
                                     name=f"scores {str(path)!r}",
                                     allow="allow_incomplete=True", rerun="score_shards")
            if warning is not None:
                warnings.warn(warning, UserWarning, stacklevel=3)
            files.extend(sorted(path.glob("*.parquet")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"scores {str(path)!r} not found.")
    if not files:
        raise ValueError(f"scores {scores!r} hold no score files (*.parquet of score_shards).")
    return files


def _check_options(keep: object, unwanted: object, threshold: object, batch_rows: object,
                   columns: object) -> None:
    if not isinstance(keep, bool):
        raise TypeError(f"keep must be True (rows to keep) or False (rows to remove); "
                        f"got {keep!r}.")
    if unwanted not in (None, "match", "mismatch"):
        raise ValueError(f"unwanted must be 'match', 'mismatch' or None; got {unwanted!r}.")
    if threshold is not None and not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite log-odds value or None; got {threshold!r}.")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"batch_rows must be an int >= 1; got {batch_rows!r}.")
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list of column names, not a single string: "
                        f"[{columns!r}].")


def _recorded_side(manifest: dict[str, Any], unwanted: str | None, path: Path) -> str:
    """The side removed from one score file: its recorded job, or ``unwanted`` if it agrees."""
    recorded = manifest.get("unwanted")
    if unwanted is not None and recorded is not None and unwanted != recorded:
        raise ValueError(
            f"unwanted={unwanted!r} contradicts the job recorded in {str(path)!r}: its "
            f"detector was fitted with unwanted={recorded!r}.")
    return unwanted or recorded or "mismatch"


@dataclass
class _Join:
    """A score file, the parquet file of its rows, and the columns of the selection."""

    scores: Any
    rows: Any
    manifest: dict[str, Any]
    metadata_columns: list[str]
    score_columns: list[str]
    schema: Any

    @classmethod
    def open(cls, path: Path, columns: Sequence[str] | None) -> _Join:
        import pyarrow as pa
        import pyarrow.parquet as pq

        manifest = read_manifest(path)
        if manifest is None:
            raise ValueError(f"{str(path)!r} is not a complete output of score_shards.")
        rows_file = manifest.get("rows_file")
        if rows_file is None:
            raise ValueError(
                f"{str(path)!r} scores a {manifest.get('kind')} shard, whose rows have no "
                "parquet file to join (LAION metadata, or a parquet shard); its ids are in "
                "the id column."
            )
        rows = open_parquet(rows_file)
        if rows.metadata.num_rows != manifest["n_rows"]:
            raise ValueError(
                f"{rows_file!r} holds {rows.metadata.num_rows} rows but {str(path)!r} scores "
                f"{manifest['n_rows']}; it changed since it was scored: score it again."
            )
        metadata = rows.schema_arrow
        wanted = metadata.names if columns is None else list(columns)
        missing = [name for name in wanted if name not in metadata.names]
        if missing:
            raise ValueError(f"{rows_file!r} has no column(s) {missing}; its columns are "
                             f"{metadata.names}.")
        scores = pq.ParquetFile(path)
        scored = [f for f in scores.schema_arrow if f.name not in _SCORE_COLUMNS]
        clash = [f.name for f in scored if f.name in wanted]
        if clash:
            raise ValueError(f"{rows_file!r} has column(s) {clash} named like the score "
                             "columns; choose the metadata columns with columns=.")
        schema = pa.schema([metadata.field(name) for name in wanted] + scored)
        return cls(scores, rows, manifest, wanted, [f.name for f in scored], schema)

    def removed(self, part: Any, unwanted: str, threshold: float | None) -> np.ndarray:
        """Which rows of a batch of scores are unwanted (rows with errors: False)."""
        if "concepts" in self.manifest:
            return part.column("remove").fill_null(False).to_numpy(zero_copy_only=False)
        if threshold is None:
            decisions = part.column("decision").fill_null(0).to_numpy(zero_copy_only=False)
            return decisions == (1 if unwanted == "match" else -1)
        scores = part.column("score").to_numpy(zero_copy_only=False)
        oriented = scores if unwanted == "match" else -scores
        with np.errstate(invalid="ignore"):  # NaN: a row with an error, in neither side
            return oriented > threshold

    def write(self, writer: AtomicParquetWriter, *, keep: bool, unwanted: str,
              threshold: float | None, batch_rows: int) -> tuple[int, int]:
        """Stream both files side by side into ``writer``; (rows read, rows with errors)."""
        import pyarrow as pa

        rows = exact_chunks(
            self.rows.iter_batches(batch_size=batch_rows, columns=self.metadata_columns),
            batch_rows,
        )
        scores = exact_chunks(
            self.scores.iter_batches(batch_size=batch_rows,
                                     columns=[*self.score_columns, "error"]),
            batch_rows,
        )
        n_rows = n_errors = 0
        for meta, part in zip(rows, scores, strict=True):
            failed = part.column("error").is_valid().to_numpy(zero_copy_only=False)
            removed = self.removed(part, unwanted, threshold)
            chosen = pa.array(~failed & (~removed if keep else removed))
            columns = [*meta.filter(chosen).columns,
                       *part.select(self.score_columns).filter(chosen).columns]
            writer.append(pa.Table.from_arrays(columns, schema=self.schema))
            n_rows += len(meta)
            n_errors += int(failed.sum())
        return n_rows, n_errors


def select_rows(
    scores: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    keep: bool = True,
    unwanted: Literal["match", "mismatch"] | None = None,
    threshold: float | None = None,
    columns: Sequence[str] | None = None,
    batch_rows: int = 4096,
    allow_incomplete: bool = False,
) -> SelectionReport:
    """Write the rows to keep (or to remove), joined to their metadata, one file per shard.

    Each score file of :func:`~skhftt.batch.score_shards` becomes
    ``<output_dir>/<shard>.parquet``: the selected rows of the parquet file
    its shard was read with (see the module documentation), the ``columns``
    asked for, then the score columns (``score`` and ``decision``, or a
    pair per concept with ``remove`` and ``triggered``). Files are written
    atomically; a rerun with the same options skips the shards already done.

    Parameters
    ----------
    scores : path or iterable of paths
        A folder of score outputs, or score files.
    output_dir : str or path-like
        Folder of the selections; created if needed.
    keep : bool, default=True
        True writes the rows to keep, False the rows to remove.
    unwanted : {"mismatch", "match"} or None, default=None
        For scores of one detector, which side is removed: inputs outside
        its task (out-of-distribution removal) or inputs it matches (when
        the task describes the unwanted content). None is the job the
        detector was fitted for, recorded in the scores (``"mismatch"`` for
        scores that record none); a value that contradicts a recorded job
        is refused. Scores of several concepts use their ``remove`` column.
    threshold : float, optional
        For scores of one detector, remove the rows whose oriented score
        (higher = more unwanted: ``-score`` for ``unwanted="mismatch"``,
        ``score`` for ``"match"``) is above this, instead of using the
        detector's decisions; e.g. :func:`skhftt.removal.threshold_for_fraction`
        of the oriented scores, to remove a share of the data (DataComp-style).
    columns : list of str, optional
        Columns of the metadata to write; all by default.
    batch_rows : int, default=4096
        Rows read at a time from each file, and rows per row group.
    allow_incomplete : bool, default=False
        Select from a folder whose recorded run (see
        :mod:`skhftt.batch.record`) has shards without a complete output, the
        scored ones alone, with a warning that says how many are missing. By
        default such a folder is refused.

    Returns
    -------
    SelectionReport

    Raises
    ------
    ValueError
        A file that is no complete score output, a folder whose recorded run
        misses shards (unless ``allow_incomplete``) or holds score files it
        does not record, scores of a shard without a parquet file of rows
        (images, tar), metadata that changed since scoring, unknown columns,
        or an ``unwanted`` that contradicts the recorded job.
    """
    _check_options(keep, unwanted, threshold, batch_rows, columns)
    files = _score_files(scores, allow_incomplete)
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    remove_partials(folder)
    report = SelectionReport(output_dir=folder)
    options = {"keep": keep, "unwanted": unwanted, "threshold": threshold,
               "columns": None if columns is None else list(columns)}
    for path in files:
        join = _Join.open(path, columns)
        if threshold is not None and "concepts" in join.manifest:
            raise ValueError(f"threshold applies to scores of one detector; {str(path)!r} "
                             "has several concepts, each with its own threshold.")
        side = _recorded_side(join.manifest, unwanted, path)
        identity = {"shard": join.manifest["shard"], "detector": join.manifest["detector"],
                    **options, "unwanted": side}
        target = output_path(folder, path.stem)
        done = read_manifest(target, file_format=SELECTION_FORMAT)
        if done is not None and done.get("selection") == identity:
            report.skipped.append(path.stem)
            continue
        manifest = {"selection": identity, "scores": str(path),
                    "rows_file": join.manifest["rows_file"]}
        with AtomicParquetWriter(target, join.schema, manifest, row_group_rows=batch_rows,
                                 file_format=SELECTION_FORMAT) as writer:
            n_rows, n_errors = join.write(writer, keep=keep, unwanted=side,
                                          threshold=threshold, batch_rows=batch_rows)
        report.written.append(path.stem)
        report.n_rows += n_rows
        report.n_errors += n_errors
        report.n_selected += writer.n_rows
    remove_partials(folder)
    return report
