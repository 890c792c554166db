"""Score millions of images or billions of embeddings into parquet files, shard by shard.

:func:`score_shards` is the entry point: it splits the inputs into shards
(:func:`discover_shards`), scores each into its own parquet file in bounded
memory, written atomically, and skips shards already scored, so that a
rerun of an interrupted job finishes it. With ``client=`` the shards run as
tasks on a Dask cluster (:mod:`skhftt.distributed`).

Examples
--------
>>> import numpy as np, tempfile, pyarrow.parquet as pq
>>> from skhftt import HFTTDetector
>>> from skhftt.scoring import score_shards
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

from skhftt.scoring.output import output_schema, read_manifest
from skhftt.scoring.runner import (
    ScoringError,
    ScoringReport,
    ShardResult,
    ShardScorer,
    score_shard,
    score_shards,
)
from skhftt.scoring.shards import KINDS, Shard, discover_shards

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
    "score_shard",
    "score_shards",
]
