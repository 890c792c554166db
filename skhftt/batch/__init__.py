"""Score millions of images or billions of embeddings into parquet files, shard by shard.

:func:`score_shards` is the entry point: it splits the inputs into shards
(:func:`discover_shards`), scores each into its own parquet file in bounded
memory, written atomically, and skips shards already scored, so that a
rerun of an interrupted job finishes it. With ``client=`` the shards run as
tasks on a Dask cluster (:mod:`skhftt.batch.distributed`).

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

from skhftt.batch.output import output_schema, read_manifest
from skhftt.batch.run import (
    ScoringError,
    ScoringReport,
    ShardResult,
    ShardScorer,
    score_shard,
    score_shards,
)
from skhftt.batch.shards import KINDS, Shard, discover_shards

__all__ = [
    "KINDS",
    "ScoringError",
    "ScoringReport",
    "Shard",
    "ShardResult",
    "ShardScorer",
    "discover_shards",
    "output_schema",
    "read_manifest",
    "score_on_dask",
    "score_shard",
    "score_shards",
]


def __getattr__(name: str):
    # Dask is an optional extra: import the Dask runner only when asked for.
    if name == "score_on_dask":
        from skhftt.batch.distributed import score_on_dask

        return score_on_dask
    raise AttributeError(f"module 'skhftt.batch' has no attribute {name!r}")
