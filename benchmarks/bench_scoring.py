"""Throughput of streaming scoring of precomputed embeddings, in process and on Dask.

Writes ``--n`` random unit embeddings (d = 512 by default) as ``.npy`` shards
of ``--shard-rows`` rows, fits a detector with a 1,010-column head (1,000
task columns + K = 10), and measures:

* **skhftt**: the streaming path, shard on disk -> parquet file (read,
  convert, normalise, score, write): ``score_shard`` for each shard, as
  ``score_shards`` runs it. The shards were just written, so they are read
  from the page cache, not the disk.
* **bare**: in the same process, a numpy matmul of the same shard, already
  in memory as float32, against the same (d x 1,010) matrix, then a softmax
  and the sum of the K trainable columns, in blocks of 8,192 rows. No file
  I/O, no validation, nothing written: the floor.
* **dask**: ``score_shards(client=...)`` on a ``LocalCluster`` with
  ``--workers`` single-threaded worker processes (start-up excluded), against
  ``score_shards`` in this process, job by job.

Other jobs on a shared machine make wall-clock timings swing by 2x within
seconds, so the two sides of each ratio alternate shard by shard (job by job
for Dask), ``--repeats`` times, and each ratio is the median over repeats.
``efficiency`` compares the CPU time of this process (all its threads), which
other jobs disturb much less than wall-clock time; the wall-clock ratio is
printed too. Rates are wall-clock, best repeat.

Peak memory is sampled (resident set size, every 10 ms) during a first
end-to-end ``score_shards`` run, before anything else is loaded, and in each
Dask worker throughout.

Last line: ``embeddings_per_s=<skhftt> efficiency=<skhftt / bare>
dask_efficiency=<dask / skhftt in process>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from skhftt import HFTTDetector
from skhftt.batch import ShardScorer, discover_shards, score_shard, score_shards


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


class PeakRSS:
    """Sample this process's resident memory in a thread; ``peak`` in bytes."""

    def __init__(self, every_s: float = 0.01) -> None:
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_worker_sampler(dask_worker) -> None:
    """Run in each Dask worker (``client.run``): sample its memory until stopped."""
    dask_worker.bench_peak = PeakRSS().__enter__()


def stop_worker_sampler(dask_worker) -> int:
    dask_worker.bench_peak.__exit__(None, None, None)
    return dask_worker.bench_peak.peak


def seconds(function, *args) -> float:
    """Wall-clock seconds of ``function(*args)``."""
    return timed(function, *args)[0]


def timed(function, *args) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process, all threads) of ``function(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def bare_scores(embeddings: np.ndarray, columns_t: np.ndarray, n_task: int,
                block_rows: int = 8192) -> np.ndarray:
    """Matmul + softmax + P_out per row: the least work that gives the same answer."""
    out = np.empty(embeddings.shape[0], dtype=np.float32)
    for start in range(0, embeddings.shape[0], block_rows):
        logits = embeddings[start : start + block_rows] @ columns_t
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        probabilities = logits / logits.sum(axis=1, keepdims=True)
        out[start : start + block_rows] = probabilities[:, n_task:].sum(axis=1)
    return out


def write_shards(folder: Path, n: int, dim: int, shard_rows: int, dtype: str) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for index, start in enumerate(range(0, n, shard_rows)):
        path = folder / f"img_emb_{index}.npy"
        np.save(path, unit_rows(rng, min(shard_rows, n - start), dim).astype(dtype))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--task", type=int, default=1000)
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    rng = np.random.default_rng(0)
    det = HFTTDetector(encoder="precomputed", n_embeddings=10, random_state=0)
    det.fit(unit_rows(rng, 20_000, args.dim), unit_rows(rng, args.task, args.dim))
    columns = det.head_.n_task_columns + det.head_.trainable_columns.shape[0]
    print(f"head: {columns} columns x d={args.dim}; {args.n:,} {args.dtype} embeddings in "
          f"shards of {args.shard_rows:,}")

    folder = Path(tempfile.mkdtemp(prefix="bench_scoring_"))
    shards = folder / "img_emb"
    shards.mkdir()
    paths = write_shards(shards, args.n, args.dim, args.shard_rows, args.dtype)
    size_mb = sum(path.stat().st_size for path in paths) / 2**20

    baseline = psutil.Process().memory_info().rss
    with PeakRSS() as peak:
        first_s = seconds(job(det, shards, folder / "out"))
    print(f"skhftt end to end, first run: {args.n / first_s:,.0f} emb/s, {size_mb:,.0f} MB "
          f"of .npy -> parquet; peak RSS {peak.peak / 2**20:,.0f} MB "
          f"(+{(peak.peak - baseline) / 2**20:,.0f} MB over the {baseline / 2**20:,.0f} MB "
          "before scoring)")
    try:
        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            client.run(start_worker_sampler)
            shard_times = per_shard_times(det, shards, folder / "out", args.repeats)
            job_times = {"here": [], "dask": []}
            for _ in range(args.repeats):
                job_times["here"].append(seconds(job(det, shards, folder / "out")))
                job_times["dask"].append(seconds(job(det, shards, folder / "out", client)))
            worker_peak = max(client.run(stop_worker_sampler).values())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    (skhftt_s, skhftt_cpu), (bare_s, bare_cpu) = shard_times["skhftt"].T, shard_times["bare"].T
    rate = args.n / min(skhftt_s)
    efficiency = float(np.median(bare_cpu / skhftt_cpu))
    dask_efficiency = float(np.median(np.divide(job_times["here"], job_times["dask"])))
    print(f"skhftt streaming: {rate:,.0f} emb/s (best repeat; seconds {fmt(skhftt_s)}; "
          f"CPU seconds {fmt(skhftt_cpu)})")
    print(f"bare numpy: {args.n / min(bare_s):,.0f} emb/s, in memory, no I/O "
          f"(seconds {fmt(bare_s)}; CPU seconds {fmt(bare_cpu)})")
    print(f"skhftt / bare: CPU time {efficiency:.2f}, wall clock "
          f"{float(np.median(bare_s / skhftt_s)):.2f} (medians over repeats)")
    print(f"score_shards in process: {args.n / min(job_times['here']):,.0f} emb/s "
          f"(seconds {fmt(job_times['here'])})")
    print(f"dask: {args.n / min(job_times['dask']):,.0f} emb/s on {args.workers} worker "
          f"processes x 1 thread (seconds {fmt(job_times['dask'])}); worker peak RSS "
          f"{worker_peak / 2**20:,.0f} MB")
    print(f"embeddings_per_s={rate:.0f} efficiency={efficiency:.2f} "
          f"dask_efficiency={dask_efficiency:.2f}")


def fmt(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def job(det, shards: Path, out: Path, client=None):
    """``score_shards`` of every shard into a fresh ``out``."""

    def run() -> None:
        shutil.rmtree(out, ignore_errors=True)
        score_shards(det, shards, out, client=client)

    return run


def per_shard_times(det, shards: Path, out: Path, repeats: int) -> dict[str, np.ndarray]:
    """(wall, CPU) seconds per repeat of skhftt and bare, alternating shard by shard."""
    scorer = ShardScorer.from_detector(det)
    columns_t = det.head_._scaled_columns_t()
    n_task = det.head_.n_task_columns
    out.mkdir(exist_ok=True)
    times = {"skhftt": [], "bare": []}
    for _ in range(repeats):
        total = {"skhftt": np.zeros(2), "bare": np.zeros(2)}
        for shard in discover_shards(shards):
            embeddings = np.load(shard.path).astype(np.float32)
            total["bare"] += timed(bare_scores, embeddings, columns_t, n_task)
            total["skhftt"] += timed(score_shard, scorer, shard, out)
        for name, value in total.items():
            times[name].append(value)
    return {name: np.array(values) for name, values in times.items()}


if __name__ == "__main__":
    main()
