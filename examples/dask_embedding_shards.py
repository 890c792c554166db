"""Score embedding shards on a Dask cluster.

Precomputed image embeddings (as LAION or clip-retrieval write them) come in
``.npy`` shards. A detector fitted on embeddings (``encoder="precomputed"``)
needs only its small head to score them, so each shard becomes one task on a
Dask cluster, written to its own parquet file; rerunning skips shards
already done.

Everything here is synthetic: random unit vectors stand in for CLIP text
and image embeddings, so it runs in seconds on a ``LocalCluster``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from skhftt import HFTTDetector
from skhftt.batch import score_shards

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def main() -> None:
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    task = unit(rng.normal(size=(4, DIM)))
    world = unit(rng.normal(size=(2000, DIM)))
    detector = HFTTDetector(encoder="precomputed", random_state=0).fit(world, task)

    work = Path(tempfile.mkdtemp(prefix="skhftt-dask-"))
    for index in range(4):
        near = task[rng.integers(0, 4, 500)] + 0.3 * rng.normal(size=(500, DIM))
        far = rng.normal(size=(500, DIM))
        np.save(work / f"img_emb_{index}.npy", unit(np.vstack([near, far])).astype(np.float16))

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        report = score_shards(detector, sorted(work.glob("img_emb_*.npy")), work / "scores",
                              client=client)
        print(report.summary())
        again = score_shards(detector, sorted(work.glob("img_emb_*.npy")), work / "scores",
                             client=client)
        print("rerun:", again.summary())


if __name__ == "__main__":
    main()
