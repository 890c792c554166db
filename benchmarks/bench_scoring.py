"""Throughput of streaming scoring of precomputed embeddings, in process and on Dask.

Data: ``benchmarks/_realistic.py`` -- embeddings with the cosine structure of
real all-MiniLM-L6-v2 text embeddings (d = 384; the cosine quantiles of real
vs synthetic pairs are printed first). A detector with a 1,010-column head
(``--task`` = 1,000 classes of ``--prompts`` prompts, + K = 10) is fitted on
20,000 world rows; ``--n`` other world rows, drawn from the same model, are
written as ``.npy`` shards of ``--shard-rows`` rows, once as float32 and
once as float16 (the form LAION publishes). Random unit vectors would hide
costs: every cosine is about 0, so at T = 0.01 the logits never spread; the
quantiles of the logits' spread are printed.

* **skhftt**: the streaming path, shard on disk -> parquet file (read,
  convert, check, score, write): ``score_shard`` for each shard, as
  ``score_shards`` runs it, for the float32 and the float16 shards. The
  shards were just written, so they are read from the page cache.
* **bare**: in the same process, a numpy matmul of the same rows, already in
  memory as float32, against the same (d x 1,010) matrix, then a softmax
  and the sum of the K trainable columns, in blocks of 8,192 rows. No file
  I/O, no conversion, no validation, nothing written: the floor.
* **dask**: ``score_shards(client=...)`` of the float32 shards on a
  ``LocalCluster`` with ``--workers`` single-threaded worker processes
  (start-up excluded), against ``score_shards`` in this process, job by job.

Other jobs on a shared machine make wall-clock timings swing by 2x within
seconds, so the sides of each ratio alternate shard by shard (job by job for
Dask), ``--repeats`` times, and each ratio is the median over repeats.
``efficiency`` and ``fp16_efficiency`` compare the CPU time of this process
(all its threads), which other jobs disturb much less than wall-clock time;
the wall-clock ratios are printed too. Rates are wall-clock, best repeat.

Peak memory is sampled (resident set size, every 10 ms) during a first
end-to-end ``score_shards`` run of the float32 shards, and in each Dask
worker throughout.

Last line: ``embeddings_per_s=<skhftt, float32> efficiency=<bare / skhftt,
float32 shards> fp16_efficiency=<bare / skhftt, float16 shards>
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

import _realistic
import numpy as np
import psutil
import torch

from skhftt import HFTTDetector
from skhftt.batch import ShardScorer, discover_shards, score_shard, score_shards

N_FIT_WORLD = 20_000
POOL_ROWS = 100_000


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


def write_shards(folder: Path, pool: np.ndarray, n: int, shard_rows: int) -> None:
    """``n`` rows in shards of ``shard_rows``, each a fresh draw from ``pool``, as
    ``float32/img_emb_<i>.npy`` and ``float16/img_emb_<i>.npy``."""
    rng = np.random.default_rng(1)
    for dtype in ("float32", "float16"):
        (folder / dtype).mkdir(parents=True)
    for index, start in enumerate(range(0, n, shard_rows)):
        rows = pool[rng.choice(len(pool), min(shard_rows, n - start), replace=False)]
        for dtype in ("float32", "float16"):
            np.save(folder / dtype / f"img_emb_{index}.npy", rows.astype(dtype))


def logit_spread(det: HFTTDetector, rows: np.ndarray) -> str:
    """Quantiles of each row's largest minus smallest logit, and the share of exp
    arguments (after subtracting the row's largest logit) that give subnormal floats."""
    logits = det.head_.logits(rows)
    spread = logits.max(axis=1) - logits.min(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    subnormal = float(((shifted < -87.34) & (shifted > -103.98)).mean())
    quantiles = np.quantile(spread, [0.05, 0.5, 0.95])
    return (f"logit spread per row (max - min), 5/50/95 %: "
            f"{' '.join(f'{q:.1f}' for q in quantiles)}; exp arguments giving subnormal "
            f"float32: {subnormal:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--task", type=int, default=1000, help="task classes (columns)")
    parser.add_argument("--prompts", type=int, default=10, help="prompts per class")
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask comparison")
    parser.add_argument("--cache-dir", help="where _realistic caches its data")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    pool_rows = min(POOL_ROWS, args.shard_rows)
    data = _realistic.realistic_embeddings(args.task, args.prompts, N_FIT_WORLD + pool_rows,
                                           seed=1, cache_dir=args.cache_dir)
    print("\n".join(_realistic.cosine_report(data, cache_dir=args.cache_dir)))
    det = HFTTDetector(encoder="precomputed", n_embeddings=10, random_state=0)
    det.fit(data.world[:N_FIT_WORLD], _realistic.task_mapping(data))
    pool = data.world[N_FIT_WORLD:]
    columns = det.head_.n_task_columns + det.head_.trainable_columns.shape[0]
    print(f"head: {columns} columns x d={pool.shape[1]}; {args.n:,} embeddings in shards of "
          f"{args.shard_rows:,} drawn from {len(pool):,} world rows")
    print(logit_spread(det, pool[:10_000]))

    folder = Path(tempfile.mkdtemp(prefix="bench_scoring_"))
    try:
        write_shards(folder, pool, args.n, args.shard_rows)
        size_mb = sum(p.stat().st_size for p in (folder / "float32").iterdir()) / 2**20
        baseline = psutil.Process().memory_info().rss
        with PeakRSS() as peak:
            first_s = seconds(job(det, folder / "float32", folder / "out"))
        print(f"skhftt end to end, first run: {args.n / first_s:,.0f} emb/s, {size_mb:,.0f} MB "
              f"of float32 .npy -> parquet; peak RSS {peak.peak / 2**20:,.0f} MB "
              f"(+{(peak.peak - baseline) / 2**20:,.0f} MB over the {baseline / 2**20:,.0f} MB "
              "before scoring)")
        times = per_shard_times(det, folder, folder / "out", args.repeats)
        dask = None if args.no_dask else dask_times(det, folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    bare_s, bare_cpu = times["bare"].T
    print(f"bare numpy: {args.n / min(bare_s):,.0f} emb/s, in memory, no I/O "
          f"(seconds {fmt(bare_s)}; CPU seconds {fmt(bare_cpu)})")
    efficiencies = {}
    for dtype in ("float32", "float16"):
        wall, cpu = times[dtype].T
        efficiencies[dtype] = float(np.median(bare_cpu / cpu))
        print(f"skhftt streaming, {dtype} shards: {args.n / min(wall):,.0f} emb/s (best repeat; "
              f"seconds {fmt(wall)}; CPU seconds {fmt(cpu)}); skhftt / bare: CPU time "
              f"{efficiencies[dtype]:.2f}, wall clock {float(np.median(bare_s / wall)):.2f} "
              "(medians over repeats)")
    rate = args.n / min(times["float32"][:, 0])
    last = (f"embeddings_per_s={rate:.0f} efficiency={efficiencies['float32']:.2f} "
            f"fp16_efficiency={efficiencies['float16']:.2f}")
    if dask is not None:
        here, there, worker_peak = dask
        print(f"score_shards in process: {args.n / min(here):,.0f} emb/s (seconds {fmt(here)})")
        print(f"dask: {args.n / min(there):,.0f} emb/s on {args.workers} worker processes x 1 "
              f"thread (seconds {fmt(there)}); worker peak RSS {worker_peak / 2**20:,.0f} MB")
        last += f" dask_efficiency={float(np.median(np.divide(here, there))):.2f}"
    print(last)


def fmt(values) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def job(det, shards: Path, out: Path, client=None):
    """``score_shards`` of every shard into a fresh ``out``."""

    def run() -> None:
        shutil.rmtree(out, ignore_errors=True)
        score_shards(det, shards, out, client=client)

    return run


def per_shard_times(det, folder: Path, out: Path, repeats: int) -> dict[str, np.ndarray]:
    """(wall, CPU) seconds per repeat of bare and skhftt (float32, float16 shards),
    alternating shard by shard."""
    scorer = ShardScorer.from_detector(det)
    columns_t = det.head_._scaled_columns_t()
    n_task = det.head_.n_task_columns
    out.mkdir(exist_ok=True)
    shards = {dtype: discover_shards(folder / dtype) for dtype in ("float32", "float16")}
    times = {"bare": [], "float32": [], "float16": []}
    for _ in range(repeats):
        total = {name: np.zeros(2) for name in times}
        for single, half in zip(shards["float32"], shards["float16"], strict=True):
            embeddings = np.load(single.path)
            total["bare"] += timed(bare_scores, embeddings, columns_t, n_task)
            total["float32"] += timed(score_shard, scorer, single, out)
            total["float16"] += timed(score_shard, scorer, half, out)
        for name, value in total.items():
            times[name].append(value)
    return {name: np.array(values) for name, values in times.items()}


def dask_times(det, folder: Path, args) -> tuple[list[float], list[float], int]:
    """Job seconds in process and on a LocalCluster, alternating; the workers' peak RSS."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.run(start_worker_sampler)
        here, there = [], []
        for _ in range(args.repeats):
            here.append(seconds(job(det, folder / "float32", folder / "out")))
            there.append(seconds(job(det, folder / "float32", folder / "out", client)))
        worker_peak = max(client.run(stop_worker_sampler).values())
    return here, there, worker_peak


if __name__ == "__main__":
    main()
