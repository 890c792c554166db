"""Score outputs read column by column: millions of rows as numpy arrays, ids on demand.

A review needs every row's score and error flag (to count, rank and draw the
histogram) but the ids and errors of a few hundred rows only (those shown).
:class:`ScoreFiles` reads the numeric columns of a folder of ``skhftt
score`` outputs into arrays, in the order of the files, and fetches the
other columns for given rows from the files that hold them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skhftt.batch import read_manifest

__all__ = ["ScoreFiles", "take_rows"]


def take_rows(path: str | os.PathLike[str], rows: Sequence[int], columns: list[str]
              ) -> dict[str, list]:
    """``columns`` of some rows of a parquet file, in the order given, reading only their row
    groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    wanted = np.asarray(rows, dtype=np.int64)
    groups = np.searchsorted(starts, wanted, side="right") - 1
    parts, order = [], []
    for group in np.unique(groups):
        mine = np.flatnonzero(groups == group)
        table = handle.read_row_group(int(group), columns=columns)
        parts.append(table.take(pa.array(wanted[mine] - starts[group])))
        order.append(mine)
    if not parts:
        return {name: [] for name in columns}
    table = pa.concat_tables(parts).take(pa.array(np.argsort(np.concatenate(order))))
    return table.to_pydict()


@dataclass
class ScoreFiles:
    """Score output files read as one table: their footers, and their rows in order.

    Attributes
    ----------
    paths : list of pathlib.Path
        The files, in the order their rows are numbered.
    manifests : list of dict
        Each file's footer (:func:`skhftt.batch.read_manifest`).
    starts : ndarray of shape (len(paths) + 1,)
        Row ``i`` of the table is row ``i - starts[k]`` of file ``k``, for
        ``starts[k] <= i < starts[k + 1]``.
    """

    paths: list[Path]
    manifests: list[dict[str, Any]]
    starts: np.ndarray

    @classmethod
    def open(cls, paths: Sequence[str | os.PathLike[str]], flag: str = "scores") -> ScoreFiles:
        """Read the footers of score outputs.

        Raises
        ------
        ValueError
            A file that is no complete ``skhftt score`` output; ``flag``
            names where it came from.
        """
        manifests = []
        for path in paths:
            manifest = read_manifest(path)
            if manifest is None:
                raise ValueError(f"{flag}: {os.fspath(path)!r} is not a complete 'skhftt score' "
                                 "output.")
            manifests.append(manifest)
        sizes = [manifest["n_rows"] for manifest in manifests]
        return cls([Path(path) for path in paths], manifests,
                   np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]))

    def __len__(self) -> int:
        return int(self.starts[-1])

    def spans(self) -> Iterator[tuple[int, Path, dict[str, Any], slice]]:
        """Each file's index, path and footer, and the slice of the table its rows fill."""
        for index, (path, manifest) in enumerate(zip(self.paths, self.manifests, strict=True)):
            yield index, path, manifest, slice(int(self.starts[index]),
                                               int(self.starts[index + 1]))

    def column(self, name: str, *, null: Any = np.nan, file: int | None = None) -> np.ndarray:
        """A numeric or boolean column of every file (or of one), ``null`` for missing values."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        paths = self.paths if file is None else [self.paths[file]]
        parts = [pc.fill_null(pq.read_table(path, columns=[name]).column(0), null).to_numpy()
                 for path in paths]
        return np.concatenate(parts) if parts else np.empty(0)

    def failed(self) -> np.ndarray:
        """Whether each row has an error (and no score)."""
        import pyarrow.parquet as pq

        parts = [pq.read_table(path, columns=["error"]).column(0).is_valid().to_numpy(
            zero_copy_only=False) for path in self.paths]
        return np.concatenate(parts) if parts else np.empty(0, dtype=bool)

    def locate(self, rows: Sequence[int]) -> list[tuple[int, int]]:
        """``(file index, row in that file)`` of table rows."""
        files = np.searchsorted(self.starts, rows, side="right") - 1
        return [(int(k), int(row - self.starts[k])) for k, row in zip(files, rows, strict=True)]

    def values(self, rows: Sequence[int], name: str) -> list[Any]:
        """Column ``name`` of the given table rows, reading only the row groups that hold them."""
        places = self.locate(rows)
        found: dict[tuple[int, int], Any] = {}
        for k in sorted({k for k, _ in places}):
            local = sorted({row for file, row in places if file == k})
            found.update(((k, row), value) for row, value in zip(
                local, take_rows(self.paths[k], local, [name])[name], strict=True))
        return [found[place] for place in places]

    def ids(self, rows: Sequence[int] | None = None) -> list[str]:
        """The ids of table rows (of every row by default), as written.

        A row without one is named ``<shard>:<row>``.
        """
        from skhftt.batch import encode_id

        if rows is None:
            import pyarrow.parquet as pq

            return [name if name is not None else encode_id(f"{path.stem}:{row}")
                    for path in self.paths for row, name in enumerate(
                        pq.read_table(path, columns=["id"]).column(0).to_pylist())]
        return [name if name is not None else encode_id(f"{self.paths[k].stem}:{row}")
                for name, (k, row) in zip(self.values(rows, "id"), self.locate(rows),
                                          strict=True)]
