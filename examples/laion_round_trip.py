"""The LAION / clip-retrieval round trip: score the embeddings, keep the rows, join the metadata.

LAION (and clip-retrieval's ``clip-retrieval inference``) publish image
embeddings as ``img_emb/img_emb_<n>.npy`` (float16) beside
``metadata/metadata_<n>.parquet``, whose rows (``url``, ``caption``,
``key``, ...) match the embeddings row for row. This example builds a small
folder of exactly that shape, then:

1. scores every shard with ``score_shards`` (one parquet file of scores per
   shard; the ids are the metadata's ``key``);
2. writes the rows to keep, joined back to their metadata, with
   ``select_rows`` -- streamed side by side, a batch of rows at a time, so
   no shard's metadata is ever held in memory whole;
3. writes, DataComp-style, the keys of the 10 % most unwanted rows (a
   threshold on the scores of the whole dataset) as a removal list;
4. runs again, and finds every shard already done.

The embeddings are synthetic (points near the task's directions, and random
ones), so it runs in seconds without any model.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from skhftt import HFTTDetector
from skhftt.batch import score_shards, select_rows
from skhftt.removal import threshold_for_fraction

DIM = 32
SHARDS = 3
ROWS = 2000


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def write_laion_folder(root: Path, task: np.ndarray, rng: np.random.Generator) -> None:
    """``img_emb/img_emb_<n>.npy`` + ``metadata/metadata_<n>.parquet``, as LAION has them."""
    (root / "img_emb").mkdir(parents=True)
    (root / "metadata").mkdir()
    for shard in range(SHARDS):
        near = task[rng.integers(0, len(task), ROWS // 2)] + 0.25 * rng.normal(
            size=(ROWS // 2, DIM))
        far = rng.normal(size=(ROWS - ROWS // 2, DIM))
        order = rng.permutation(ROWS)
        embeddings = unit(np.vstack([near, far]))[order].astype(np.float16)
        np.save(root / "img_emb" / f"img_emb_{shard}.npy", embeddings)
        keys = [f"{shard:05d}{row:04d}" for row in range(ROWS)]
        kind = np.where(order < ROWS // 2, "a dog", "something else")
        metadata = pa.table({
            "url": [f"https://images.example.com/{key}.jpg" for key in keys],
            "caption": [f"{what}, picture {key}" for what, key in zip(kind, keys, strict=True)],
            "key": keys,
        })
        pq.write_table(metadata, root / "metadata" / f"metadata_{shard}.parquet",
                       row_group_size=500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, help="where to build it (default: a temp dir)")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="skhftt-laion-"))

    rng = np.random.default_rng(0)
    task = unit(rng.normal(size=(4, DIM)))  # stands for the embeddings of dog prompts
    detector = HFTTDetector(encoder="precomputed", random_state=0).fit(
        unit(rng.normal(size=(2000, DIM))), task)
    write_laion_folder(work / "laion", task, rng)

    scored = score_shards(detector, work / "laion", work / "scores")
    print(scored.summary())

    kept = select_rows(work / "scores", work / "kept", columns=["key", "url", "caption"])
    print("keep:", kept.summary())
    table = ds.dataset(work / "kept", format="parquet").to_table()
    dogs = sum(caption.startswith("a dog") for caption in table.column("caption").to_pylist())
    print(f"kept rows: {table.num_rows:,} with columns {table.column_names}; "
          f"{dogs:,} of them captioned 'a dog'")

    # DataComp-style: remove a fixed share of the whole dataset, the most unwanted.
    scores = ds.dataset(sorted((work / "scores").glob("*.parquet")),  # not skhftt-run.json
                        format="parquet").to_table(columns=["score"])
    oriented = -scores.column("score").to_numpy()  # higher = more unwanted (outside the task)
    cut = threshold_for_fraction(oriented, 0.1)
    removal = select_rows(work / "scores", work / "removed", keep=False, threshold=cut,
                          columns=["key"])
    print("remove:", removal.summary())
    keys = ds.dataset(work / "removed", format="parquet").to_table(columns=["key"])
    uids = np.sort(keys.column("key").to_numpy(zero_copy_only=False).astype(str))
    np.save(work / "removed_keys.npy", uids)
    print(f"removal list: {len(uids):,} keys in {work / 'removed_keys.npy'}")

    again = score_shards(detector, work / "laion", work / "scores")
    print("rerun:", again.summary())
    print("rerun keep:", select_rows(work / "scores", work / "kept",
                                     columns=["key", "url", "caption"]).summary())


if __name__ == "__main__":
    main()
