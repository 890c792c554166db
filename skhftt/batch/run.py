"""Score many shards into parquet files: the run loop, here or on a Dask cluster, and its report.

:func:`score_shards` finds the shards, skips those already scored, scores
the others one after the other (or as Dask tasks, see
:mod:`skhftt.batch.distributed`) and reports what was written, skipped and
failed. It sees the detector through its :class:`~skhftt.batch.scorers.Scorer`
only, whatever kind of detector it is.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skhftt.batch.output import is_done, output_path, remove_partials
from skhftt.batch.record import record_run
from skhftt.batch.scorers import Scorer, ShardScorer, shard_scorer
from skhftt.batch.shards import DEFAULT_SHARD_SIZE, Shard, discover_shards
from skhftt.batch.task import DEFAULT_BLOCK_ROWS, ShardResult, score_shard
from skhftt.embedding.embedder import embeds_images
from skhftt.embedding.pipeline import describe

__all__ = [
    "ScoringError",
    "ScoringReport",
    "ShardResult",
    "ShardScorer",
    "score_shard",
    "score_shards",
]


@dataclass
class ScoringReport:
    """Outcome of :func:`score_shards`.

    Attributes
    ----------
    output_dir : pathlib.Path
        Where the outputs are.
    written : list of str
        Shards scored by this run.
    skipped : list of str
        Shards whose output was already complete (same inputs, same detector).
    failed : dict of str to str
        Shards that could not be scored, with the reason; their outputs are
        not written, and a rerun tries them again.
    permanent : set of str
        Of the failed shards, those whose error a rerun cannot fix (bad
        values or types rather than I/O or lost workers).
    n_rows : int
        Rows written by this run.
    n_errors : int
        Of those, rows with an error and no score.
    """

    output_dir: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    permanent: set[str] = field(default_factory=set)
    n_rows: int = 0
    n_errors: int = 0

    def add(self, result: ShardResult) -> None:
        """Count a finished shard."""
        self.written.append(result.name)
        self.n_rows += result.n_rows
        self.n_errors += result.n_errors

    def summary(self) -> str:
        """One line: what was scored, skipped and failed."""
        text = (
            f"scored {self.n_rows:,} rows ({self.n_errors:,} with errors) in "
            f"{len(self.written)} shard(s) into {str(self.output_dir)!r}; "
            f"{len(self.skipped)} shard(s) already done"
        )
        if self.failed:
            text += f"; {len(self.failed)} shard(s) failed"
        return text


class ScoringError(RuntimeError):
    """Some shards could not be scored; the others were written.

    Attributes
    ----------
    report : ScoringReport
        The outcome, with the failed shards and their reasons.
    """

    def __init__(self, report: ScoringReport) -> None:
        self.report = report
        reasons = "; ".join(f"{name}: {why}" for name, why in list(report.failed.items())[:3])
        more = len(report.failed) - 3
        if more > 0:
            reasons += f"; and {more} more"
        retryable = len(report.failed) - len(report.permanent)
        if not retryable:
            advice = ("A rerun cannot help: these errors come from the inputs or the "
                      "detector, not from chance; fix them, then rerun (finished shards "
                      "are kept).")
        elif report.permanent:
            advice = (f"{len(report.permanent)} of them failed for reasons a rerun cannot fix; "
                      f"rerun to retry the other {retryable} (finished shards are kept).")
        else:
            advice = "Rerun to retry them; finished shards are kept."
        super().__init__(
            f"{len(report.failed)} shard(s) failed ({reasons}). {report.summary()}. {advice}"
        )

    @property
    def permanent(self) -> bool:
        """True when every failure is one a rerun cannot fix."""
        return set(self.report.failed) == self.report.permanent


def is_permanent(exc: BaseException) -> bool:
    """Whether a rerun would fail the same way.

    Bad values and types (a shard of the wrong width, images for a text-only
    encoder, a missing package) fail again on every run; I/O errors, lost
    workers and memory pressure may not.
    """
    return isinstance(exc, (ValueError, TypeError, ImportError, NotImplementedError))


def _progress_bar(shards: Sequence[Shard], verbose: int) -> Any:
    from tqdm.auto import tqdm

    counts = [shard.n_items for shard in shards]
    kinds = {shard.has_embeddings for shard in shards}
    unit = "item" if len(kinds) != 1 else ("emb" if kinds == {True} else "img")
    return tqdm(
        total=None if None in counts else sum(counts),
        unit=unit,
        unit_scale=True,
        desc="Scoring",
        disable=not verbose,
        postfix={"shards": f"0/{len(shards)}"},
    )


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (
            value == 0 and name != "num_workers"
        ):
            least = 0 if name == "num_workers" else 1
            raise ValueError(f"{name} must be an int >= {least}; got {value!r}.")


def score_shards(
    detector: Any,
    inputs: str | os.PathLike[str] | Any | Iterable[str | os.PathLike[str] | Any]
    | Sequence[Shard],
    output_dir: str | os.PathLike[str],
    *,
    kind: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    embedding_column: str | None = None,
    id_column: str | None = None,
    image_column: str | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    device: str | None = None,
    client: Any = None,
    retries: int = 2,
    verbose: int = 0,
) -> ScoringReport:
    """Score images or embeddings, shard by shard, into parquet files in bounded memory.

    Every shard of the inputs (see :mod:`skhftt.batch.shards`) becomes
    ``<output_dir>/<shard name>.parquet`` with columns ``id``, ``row``,
    ``score``, ``decision`` and ``error`` (see :mod:`skhftt.batch.output`).
    Outputs are written atomically; shards already scored by the same
    detector from the same inputs are skipped, so rerunning an interrupted
    job finishes it. An image that cannot be read, and a row whose score is
    not finite, become rows with an error and no score. Before any shard is
    scored, ``<output_dir>/skhftt-run.json`` records the run: the detector
    and every shard asked for (see :mod:`skhftt.batch.record`), so that
    nothing decides on an incomplete run.

    Parameters
    ----------
    detector : HFTTDetector, MultiConceptDetector or Scorer
        A fitted detector. Image inputs need its encoder; embedding inputs
        only its head. A :class:`~skhftt.detectors.composite.MultiConceptDetector`
        embeds each input once and writes one score and decision column per
        concept, plus ``remove`` and ``triggered`` (see
        :class:`~skhftt.batch.output.ConceptShardWriter`).
    inputs : path, datasets.Dataset, iterable of them, or list of Shard
        Folders, list files, ``.tar``, ``.npy`` and ``.parquet`` shards
        (of embeddings or of encoded images), image files, Hugging Face
        datasets with an ``Image`` or an embedding column; or shards from
        :func:`discover_shards`.
    output_dir : str or path-like
        Folder of the outputs; created if needed.
    kind, shard_size, embedding_column, id_column, image_column
        How to read the inputs; see :func:`discover_shards`.
    batch_size : int, default=256
        Images per encoder batch.
    num_workers : int, default=0
        DataLoader processes decoding images (per Dask worker, when
        ``client`` is given).
    block_rows : int, default=32768
        Rows per row group of the outputs.
    device : str, optional
        Device of the encoder instead of the detector's ``device``.
    client : distributed.Client or str, optional
        A Dask client or scheduler address: score one shard per task on
        the cluster (see :mod:`skhftt.batch.distributed`). None scores in this
        process.
    retries : int, default=2
        With ``client``: times a failing shard task is retried.
    verbose : int, default=0
        1 or more shows a progress bar (items/s and ETA).

    Returns
    -------
    ScoringReport

    Raises
    ------
    ScoringError
        After all other shards were scored, if some could not be.
    ValueError, FileNotFoundError
        Bad inputs or options, found before anything is scored.
    """
    _check_positive(batch_size=batch_size, num_workers=num_workers, block_rows=block_rows)
    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError("score_shards writes parquet files with pyarrow, which skhftt "
                          "installs; reinstall it: pip install \"pyarrow>=14\"")
    scorer = shard_scorer(detector, device=device)
    if isinstance(inputs, (list, tuple)) and inputs and all(
        isinstance(item, Shard) for item in inputs
    ):
        shards = list(inputs)
    else:
        shards = discover_shards(
            inputs, kind=kind, shard_size=shard_size, embedding_column=embedding_column,
            id_column=id_column, image_column=image_column,
        )
    folder = Path(output_dir)
    _check_no_overwrite(shards, folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_partials(folder)
    report = ScoringReport(output_dir=folder)
    todo = []
    for shard in shards:
        target = output_path(folder, shard.name)
        if is_done(target, shard=shard.fingerprint(), detector=scorer.fingerprint):
            report.skipped.append(shard.name)
        else:
            todo.append(shard)
    if any(not shard.has_embeddings for shard in todo):
        scorer.check_encoder()
        scorer.device()
        if client is None and not embeds_images(scorer.encoder()):
            # Every image shard would fail alike: say it once, before any work.
            raise ValueError(
                f"the detector's encoder {scorer.encoder().identity!r} embeds texts only, so "
                "it cannot score images; fit the detector with a joint text-image model "
                "(CLIP, SigLIP), or score embedding shards."
            )
    record_run(folder, scorer.fingerprint, [output_path(folder, s.name).name for s in shards])
    options = {"batch_size": batch_size, "num_workers": num_workers, "block_rows": block_rows}
    with _progress_bar(todo, verbose) as bar:
        if client is None:
            outcomes = _score_here(scorer, todo, folder, options, bar.update)
        else:
            from skhftt.batch.distributed import score_on_dask

            outcomes = score_on_dask(
                scorer, todo, folder, client=client, retries=retries, options=options,
                progress=bar.update,
            )
        for shard, outcome in outcomes:
            if isinstance(outcome, ShardResult):
                report.add(outcome)
            else:
                report.failed[shard.name] = describe(outcome)
                if is_permanent(outcome):
                    report.permanent.add(shard.name)
            bar.set_postfix(shards=f"{len(report.written) + len(report.failed)}/{len(todo)}")
    remove_partials(folder)
    if report.failed:
        raise ScoringError(report)
    return report


def _check_no_overwrite(shards: Sequence[Shard], folder: Path) -> None:
    inputs = {Path(path) for shard in shards for path in (shard.path, shard.metadata) if path}
    for shard in shards:
        target = output_path(folder, shard.name).absolute()
        if target in inputs or target.resolve() in inputs:
            raise ValueError(
                f"the output of shard {shard.name!r} would overwrite the input {str(target)!r}; "
                "choose another output folder."
            )


def _score_here(
    scorer: Scorer,
    shards: Sequence[Shard],
    folder: Path,
    options: dict[str, int],
    progress: Callable[[int], object],
) -> Iterator[tuple[Shard, ShardResult | BaseException]]:
    """Score shards one after the other in this process; a failure is reported, not raised."""
    for shard in shards:
        try:
            yield shard, score_shard(scorer, shard, folder, progress=progress, **options)
        except Exception as exc:  # one shard's failure is recorded; the job goes on
            yield shard, exc
