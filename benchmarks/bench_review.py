"""Time and memory to build a review page of a scores folder of ten million rows.

Data: a LAION-style folder (``img_emb/img_emb_<n>.npy``, float16 embeddings
of width 16, and ``metadata/metadata_<n>.parquet`` with ``key``, ``url`` and
``caption``), ``--rows`` rows in ``--shards`` shards, scored by ``skhftt
score`` with a precomputed HFTT detector saved as ``.safetensors``: real score
outputs, one per shard. Setup is not timed.

Each side runs as its own process, so that its peak resident memory is its
own (``VmHWM``), started the same way:

* **review**: ``skhftt review SCORES -o OUT --method fraction --fraction 0.1``,
  the page (counts, histogram, 4 grids of 24 rows and their captions read
  from the metadata, explanations of the rows shown) and its manifest;
* **read**: the floor, a process that imports the same stack and reads the
  ``score`` and ``error`` columns of the folder with pyarrow;
* **filter**: ``skhftt filter`` with the same rule, which also writes the
  keep/remove lists of every row.

Last line: ``rows=<n> review_s=<s> review_peak_mb=<MB> read_s=<s>
review_over_read=<ratio> filter_s=<s>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skhftt import HFTTDetector
from skhftt.batch import score_shards
from skhftt.detectors.persistence import save_detector

DIM = 16
# Each child reports its own peak resident memory (VmHWM: reset by exec, unlike the
# ru_maxrss of a child, which starts from its parent's).
PEAK = """
import atexit, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write(f"peak_kb={line.split()[1]}\\n")
atexit.register(peak)
"""
COMMAND = PEAK + """
from skhftt.cli import main
sys.exit(main(sys.argv[1:]))
"""
READ = PEAK + """
import glob
import pyarrow.dataset as ds
import skhftt.cli.review, skhftt.review, skhftt.batch  # the same imports as the review
files = sorted(glob.glob(sys.argv[1] + "/*.parquet"))  # not the run record beside them
table = ds.dataset(files, format="parquet").to_table(columns=["score", "error"])
"""


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def write_laion(folder: Path, rows: int, shards: int, seed: int = 0) -> None:
    """A LAION-style folder of ``rows`` float16 embeddings with their metadata."""
    rng = np.random.default_rng(seed)
    (folder / "img_emb").mkdir(parents=True)
    (folder / "metadata").mkdir()
    per = rows // shards
    for shard in range(shards):
        start = shard * per
        count = rows - start if shard == shards - 1 else per
        embeddings = np.empty((count, DIM), np.float16)
        for block in range(0, count, 1 << 20):
            part = rng.normal(size=(min(1 << 20, count - block), DIM))
            embeddings[block : block + len(part)] = _unit(part)
        np.save(folder / "img_emb" / f"img_emb_{shard}.npy", embeddings)
        keys = pa.array(np.char.zfill(np.arange(start, start + count).astype(str), 9))
        pq.write_table(pa.table({
            "key": keys,
            "url": pa.compute.binary_join_element_wise("https://example.org/", keys, ".jpg", ""),
            "caption": pa.compute.binary_join_element_wise("a synthetic picture number ", keys,
                                                           ""),
        }), folder / "metadata" / f"metadata_{shard}.parquet")


def _run(code: str, *argv: str) -> tuple[float, float]:
    """Wall seconds and peak resident MB of a child process running ``code``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    peak_kb = int(done.stderr.rsplit("peak_kb=", 1)[1].split()[0])
    return seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--work-dir", help="keep the data here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_review_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, load {os.getloadavg()}")

    if not (work / "scores").is_dir():
        started = time.perf_counter()
        rng = np.random.default_rng(1)
        detector = HFTTDetector(encoder="precomputed", random_state=0).fit(
            _unit(rng.normal(size=(2000, DIM))), _unit(rng.normal(size=(4, DIM))))
        save_detector(detector, work / "det.safetensors")
        write_laion(work / "laion", args.rows, args.shards)
        score_shards(detector, work / "laion", work / "scores")
        print(f"setup (not timed): {time.perf_counter() - started:.1f} s in {str(work)!r}")
    rows = sum(pq.read_metadata(path).num_rows for path in (work / "scores").glob("*.parquet"))

    rule = ["--method", "fraction", "--fraction", "0.1"]
    shutil.rmtree(work / "review", ignore_errors=True)
    review_s, review_mb = _run(COMMAND, "review", str(work / "scores"), "-o",
                               str(work / "review"), *rule)
    read_s, read_mb = _run(READ, str(work / "scores"))
    shutil.rmtree(work / "lists", ignore_errors=True)
    filter_s, filter_mb = _run(COMMAND, "filter", str(work / "scores"), "-o",
                               str(work / "lists"), *rule)
    page = (work / "review" / "index.html").stat().st_size
    print(f"review: {review_s:.1f} s, peak {review_mb:,.0f} MB, page {page / 1e6:.2f} MB")
    print(f"read (floor): {read_s:.1f} s, peak {read_mb:,.0f} MB")
    print(f"filter: {filter_s:.1f} s, peak {filter_mb:,.0f} MB")
    print(f"load after: {os.getloadavg()}")
    print(f"rows={rows} review_s={review_s:.1f} review_peak_mb={review_mb:.0f} "
          f"read_s={read_s:.1f} review_over_read={review_s / read_s:.2f} "
          f"filter_s={filter_s:.1f}")
    if args.work_dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
