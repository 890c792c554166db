"""Score shards on a Dask cluster: one task per shard, each writing its own output.

Use it through :func:`skhftt.batch.score_shards` with ``client=`` (a
``distributed.Client`` or a scheduler address), or ``skhftt score ...
--scheduler ADDRESS``.

* **Small, model-free payload.** The scorer is sent to every worker once
  (scattered, replicated). For embedding shards it is the fitted head and
  the offset only: numpy arrays of a few MB, no estimator, no encoder.
  Image shards also carry the detector, whose encoder is a spec (or a light
  handle) that each worker process loads once and keeps (the encoder
  registry caches models per process).
* **Nothing lost, nothing doubled.** A task writes its shard to a
  temporary file and renames it into place when complete. If a worker dies
  mid-shard, the scheduler runs the task again elsewhere; the new attempt
  writes the whole shard afresh, and the dead attempt's temporary file is
  removed when the job ends. Tasks that raise are retried ``retries``
  times; a shard that still fails is reported, and the rest of the job
  goes on.
* **Outputs on a shared file system.** Workers write to ``output_dir``
  directly, so it must be a path that every worker and the client see
  (NFS, Lustre, a mounted bucket).

Inside Dask worker processes (daemonic by default) the image DataLoader
cannot start child processes: keep ``num_workers=0`` there, and run one
Dask worker per GPU or per few cores instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from skhftt.batch.output import INSTALL_HINT
from skhftt.batch.scorers import Scorer
from skhftt.batch.shards import Shard
from skhftt.batch.task import ShardResult, score_shard
from skhftt.embedding.pipeline import describe

__all__ = ["score_on_dask"]


def _connect(client: Any) -> tuple[Any, bool]:
    """(client, whether this module opened it and must close it)."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(
            f"scoring on a Dask cluster needs dask.distributed: {INSTALL_HINT}"
        ) from exc

    if isinstance(client, Client):
        return client, False
    if isinstance(client, (str, os.PathLike)):
        try:
            return Client(os.fspath(client)), True
        except OSError as exc:
            raise ValueError(
                f"cannot reach a Dask scheduler at {os.fspath(client)!r}: {exc}"
            ) from exc
    raise TypeError(
        f"client must be a distributed.Client or a scheduler address; got "
        f"{type(client).__name__} ({client!r})."
    )


def _task(
    scorer: Scorer, shard: Shard, output_dir: str, options: dict[str, int]
) -> ShardResult:
    return score_shard(scorer, shard, output_dir, **options)


def _failure(future: Any) -> BaseException:
    try:
        return future.exception()
    except Exception as exc:  # a cancelled future has no exception of its own
        return RuntimeError(f"task {future.status}: {describe(exc)}")


def score_on_dask(
    scorer: Scorer,
    shards: Sequence[Shard],
    output_dir: str | os.PathLike[str],
    *,
    client: Any,
    retries: int = 2,
    options: dict[str, int] | None = None,
    progress: Any = None,
) -> Iterator[tuple[Shard, ShardResult | str]]:
    """Score shards as Dask tasks; yield each shard's result (or failure) as it completes.

    Parameters
    ----------
    scorer : Scorer
        The detector's scorer (:func:`~skhftt.batch.scorers.shard_scorer`).
        Only its model-free part is sent when every shard holds embeddings.
    shards : sequence of Shard
        Shards to score; each becomes one task.
    output_dir : str or path-like
        Folder on a file system every worker can write.
    client : distributed.Client or str
        A client, or the address of a scheduler to connect to (and
        disconnect from at the end).
    retries : int, default=2
        Extra attempts for a task that raises. A task whose worker dies is
        rescheduled by Dask itself (up to ``distributed.scheduler.
        allowed-failures`` times).
    options : dict, optional
        ``batch_size``, ``num_workers``, ``block_rows`` for
        :func:`~skhftt.batch.score_shard`.
    progress : callable, optional
        Called with the number of rows of each completed shard.

    Yields
    ------
    (Shard, ShardResult or str)
        The result, or the reason the shard failed.
    """
    from distributed import as_completed

    if not shards:
        return
    client, opened = _connect(client)
    try:
        payload = scorer.model_free() if all(s.has_embeddings for s in shards) else scorer
        [scattered] = client.scatter([payload], broadcast=True, hash=False)
        job = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                _task,
                scattered,
                shard,
                str(Path(output_dir).absolute()),
                options or {},
                key=f"skhftt-score-{shard.name}-{job}",
                retries=retries,
                pure=False,
            ): shard
            for shard in shards
        }
        for future in as_completed(futures):
            shard = futures.pop(future)
            if future.status == "finished":
                result = future.result()
                if progress is not None:
                    progress(result.n_rows)
                yield shard, result
            else:
                yield shard, _failure(future)
    finally:
        if opened:
            client.close()
