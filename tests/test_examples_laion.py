"""examples/laion_round_trip.py runs offline, and what it writes is the right join."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "laion_round_trip.py"


def test_laion_round_trip(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--work-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "scored 6,000 rows (0 with errors) in 3 shard(s)" in out
    assert "remove: selected 600 of 6,000 rows" in out
    assert "rerun: scored 0 rows (0 with errors) in 0 shard(s)" in out
    assert "rerun keep: selected 0 of 0 rows" in out and "3 shard(s) already done" in out

    for shard in range(3):
        metadata = pq.read_table(tmp_path / "laion" / "metadata" / f"metadata_{shard}.parquet")
        scores = pq.read_table(tmp_path / "scores" / f"img_emb_{shard}.parquet")
        assert scores.column("id").equals(metadata.column("key"))
        kept = pq.read_table(tmp_path / "kept" / f"img_emb_{shard}.parquet")
        wanted = np.asarray(scores.column("decision")) == 1
        expected = metadata.select(["key", "url", "caption"]).filter(pa.array(wanted))
        assert kept.select(["key", "url", "caption"]).equals(expected)
        assert kept.column("score").equals(scores.column("score").filter(pa.array(wanted)))

    everything = ds.dataset(sorted((tmp_path / "scores").glob("*.parquet")),
                            format="parquet").to_table()
    lowest = np.argsort(np.asarray(everything.column("score")))[:600]
    removed = np.load(tmp_path / "removed_keys.npy")
    assert removed.tolist() == sorted(everything.column("id").take(pa.array(lowest)).to_pylist())
