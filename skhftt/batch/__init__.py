"""Score millions of images or billions of embeddings into parquet files, shard by shard.

:func:`score_shards` is the entry point: it splits the inputs into shards
(:func:`discover_shards`), scores each into its own parquet file in bounded
memory, written atomically, and skips shards already scored, so that a
rerun of an interrupted job finishes it. With ``client=`` the shards run as
tasks on a Dask cluster (:mod:`skhftt.batch.distributed`).
:func:`select_rows` joins the scores back to the rows' metadata (LAION,
clip-retrieval, img2dataset parquet files) and writes the rows to keep or to
remove.

The modules, from the bottom up: :mod:`~skhftt.batch.formats` (what files
hold), :mod:`~skhftt.batch.ids` (how ids are written), :mod:`~skhftt.batch.shards`
(discovery), the readers :mod:`~skhftt.batch.embeddings` and
:mod:`~skhftt.batch.images`, :mod:`~skhftt.batch.output` (the writers),
:mod:`~skhftt.batch.record` (what a run was asked for),
:mod:`~skhftt.batch.scorers` (one :class:`Scorer` per kind of detector),
:mod:`~skhftt.batch.task` (one shard), :mod:`~skhftt.batch.run` (the run
loop), :mod:`~skhftt.batch.distributed` (Dask), :mod:`~skhftt.batch.selection`
and :mod:`~skhftt.batch.lists` (keep and remove lists, files placed).

Examples
--------
>>> import numpy as np, tempfile, pyarrow.parquet as pq
>>> from skhftt import HFTTDetector
>>> from skhftt.batch import score_shards
>>> rng = np.random.default_rng(0)
>>> det = HFTTDetector(encoder="precomputed", random_state=0).fit(
...     rng.normal(size=(200, 8)), rng.normal(size=(3, 8)))
>>> folder = tempfile.mkdtemp()
>>> np.save(f"{folder}/part_0.npy", rng.normal(size=(5, 8)).astype(np.float16))
>>> report = score_shards(det, f"{folder}/part_0.npy", f"{folder}/scores")
>>> report.written, report.n_rows
(['part_0'], 5)
>>> pq.read_table(f"{folder}/scores/part_0.parquet").column_names
['id', 'row', 'score', 'decision', 'error']
"""

from __future__ import annotations

from skhftt.batch.ids import decode_id, encode_id
from skhftt.batch.output import output_schema, read_manifest
from skhftt.batch.record import RUN_FILE, foreign_outputs, missing_outputs
from skhftt.batch.run import ScoringError, ScoringReport, score_shards
from skhftt.batch.scorers import ConceptScorer, Scorer, ShardScorer, shard_scorer
from skhftt.batch.selection import SelectionReport, select_rows
from skhftt.batch.shards import KINDS, Shard, discover_shards
from skhftt.batch.task import ShardResult, score_shard

__all__ = [
    "KINDS",
    "RUN_FILE",
    "ConceptScorer",
    "Scorer",
    "ScoringError",
    "ScoringReport",
    "SelectionReport",
    "Shard",
    "ShardResult",
    "ShardScorer",
    "decode_id",
    "discover_shards",
    "encode_id",
    "foreign_outputs",
    "missing_outputs",
    "output_schema",
    "read_manifest",
    "score_on_dask",
    "score_shard",
    "score_shards",
    "select_rows",
    "shard_scorer",
]


def __getattr__(name: str):
    # Dask is an optional extra: import the Dask runner only when asked for.
    if name == "score_on_dask":
        from skhftt.batch.distributed import score_on_dask

        return score_on_dask
    raise AttributeError(f"module 'skhftt.batch' has no attribute {name!r}")
