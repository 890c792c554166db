"""Score shards into parquet files: one shard at a time, or many on a Dask cluster."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skhftt.batch.embeddings import Block, embedding_blocks
from skhftt.batch.images import describe, image_blocks
from skhftt.batch.output import (
    ShardWriter,
    is_done,
    output_path,
    remove_partials,
)
from skhftt.batch.shards import DEFAULT_SHARD_SIZE, Shard, discover_shards
from skhftt.detectors.base import PRECOMPUTED
from skhftt.embedding.device import resolve_device
from skhftt.embedding.encoders.base import Encoder

DEFAULT_BLOCK_ROWS = 32768
INSTALL_HINT = 'pip install "skhftt[scale]"'


def _digest_head(head: Any, offset: float, identity: str | None) -> str:
    digest = hashlib.sha256()
    for item in dataclasses.fields(head):
        value = getattr(head, item.name)
        digest.update(item.name.encode())
        if isinstance(value, np.ndarray):
            digest.update(f"{value.dtype}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        else:
            digest.update(repr(value).encode())
    digest.update(repr((float(offset), identity)).encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class ShardScorer:
    """What scoring needs from a fitted detector: its head, its offset and, for images, its encoder.

    Build it with :meth:`from_detector`. The head is numpy only, so a
    scorer without ``detector`` (see :meth:`model_free`) is kilobytes to a
    few MB and scores embeddings anywhere.

    Parameters
    ----------
    head : HFTTHead
        Scores unit embeddings (``log_odds``).
    offset : float
        ``decision = +1`` where ``score - offset > 0``.
    fingerprint : str
        Digest of the head, offset and encoder identity; outputs record it
        so that a rerun with another detector scores every shard again.
    detector : HFTTDetector, optional
        The fitted detector, used only to resolve and check its encoder for
        image shards.
    concepts : MultiConceptDetector, optional
        Set by :meth:`from_concepts`: ``head`` then scores every concept at
        once and the outputs get one score and decision column per concept
        (see :class:`ConceptShardWriter`).
    """

    head: Any
    offset: float
    fingerprint: str
    detector: Any = None
    concepts: Any = None

    @classmethod
    def from_detector(cls, detector: Any, *, device: str | None = None) -> ShardScorer:
        """The scorer of a fitted detector.

        Parameters
        ----------
        detector : HFTTDetector
            A fitted detector.
        device : str, optional
            Run its encoder here instead of on ``detector.device``.
        """
        from sklearn.utils.validation import check_is_fitted

        head = getattr(detector, "head_", None)
        if head is None or not hasattr(head, "log_odds"):
            check_is_fitted(detector)
            raise TypeError(
                f"streaming scoring needs a detector with a fitted head_ (such as "
                f"HFTTDetector); got a {type(detector).__name__}."
            )
        if device is not None:
            detector = copy.copy(detector)  # the caller's detector keeps its device
            detector.device = device
        identity = detector.encoder_identity_
        offset = float(detector.offset_)
        return cls(head, offset, _digest_head(head, offset, identity), detector)

    @classmethod
    def from_concepts(cls, concepts: Any, *, device: str | None = None) -> ShardScorer:
        """The scorer of a :class:`~skhftt.detectors.composite.MultiConceptDetector`.

        Each input is embedded once, by the first concept's encoder, and
        every concept's head is applied to that embedding in one pass.

        Parameters
        ----------
        concepts : MultiConceptDetector
            Fitted detectors of one embedding space, with their thresholds
            and unwanted sides.
        device : str, optional
            Run the shared encoder here instead of on its ``device``.
        """
        first = cls.from_detector(concepts.detector, device=device)
        digest = hashlib.sha256()
        for name, concept in concepts.concepts.items():
            part = cls.from_detector(concept.detector)
            digest.update(repr((name, part.fingerprint, concept.unwanted,
                                concept.offset)).encode())
        head = _ConceptHeads(concepts, first.dim)
        return cls(head, float("nan"), digest.hexdigest()[:32], first.detector, concepts)

    @property
    def dim(self) -> int:
        """Width of the embedding space."""
        return int(self.head.dim)

    def model_free(self) -> ShardScorer:
        """This scorer without the detector: all that embedding shards need."""
        return dataclasses.replace(self, detector=None)

    def check_encoder(self) -> None:
        """Raise unless the scorer can embed images (without loading any model).

        Raises
        ------
        ValueError
            The scorer has no detector, or its detector has no encoder
            (``encoder="precomputed"``): it can score embeddings only.
        """
        encoder = None if self.detector is None else self.detector.encoder
        if encoder is None or (isinstance(encoder, str) and encoder == PRECOMPUTED):
            raise ValueError(
                "image inputs need an encoder, but this detector has encoder='precomputed': "
                "score embedding shards, or give the detector the encoder it was fitted "
                "with (load_detector(path, encoder=...), --encoder)."
            )

    def encoder(self) -> Encoder:
        """The detector's encoder, loaded once per process and checked against the fit."""
        self.check_encoder()
        return self.detector._scoring_encoder()

    def device(self) -> Any:
        """The device the encoder runs on."""
        return resolve_device(getattr(self.detector, "device", "cpu"))


@dataclass(frozen=True)
class _ConceptHeads:
    """Every concept's head as one: ``log_odds`` gives one column per concept."""

    concepts: Any
    dim: int

    def log_odds(self, embeddings: np.ndarray) -> np.ndarray:
        return self.concepts.log_odds(embeddings)


class ConceptShardWriter(ShardWriter):
    """A :class:`~skhftt.batch.output.ShardWriter` for several concepts at once.

    The output has columns ``id``, ``row``, then ``<name>_score`` (float64
    log-odds) and ``<name>_decision`` (int8, +1 matches that concept's task)
    for each concept, ``remove`` (bool: some concept flags the row as
    unwanted), ``triggered`` (list of the names of the concepts that flag
    it) and ``error``; scores, decisions, ``remove`` and ``triggered`` are
    null for rows with an error.

    Parameters
    ----------
    target : path
        The final output file.
    manifest : dict
        Recorded in the footer, with the concepts added.
    concepts : MultiConceptDetector
        The concepts, their thresholds and unwanted sides.
    row_group_rows : int, default=32768
        Rows per row group.
    """

    def __init__(self, target: str | os.PathLike[str], manifest: dict[str, Any],
                 concepts: Any, *, row_group_rows: int = DEFAULT_BLOCK_ROWS) -> None:
        described = [{"name": name, "unwanted": concept.unwanted, "offset": concept.offset}
                     for name, concept in concepts.concepts.items()]
        super().__init__(target, {**manifest, "concepts": described},
                         row_group_rows=row_group_rows)
        self.concepts = concepts

    def schema(self) -> Any:
        """The columns of the output (see the class documentation)."""
        import pyarrow as pa

        per_concept = [
            field
            for name in self.concepts.names
            for field in ((f"{name}_score", pa.float64()), (f"{name}_decision", pa.int8()))
        ]
        return pa.schema([
            ("id", pa.string()), ("row", pa.int64()), *per_concept, ("remove", pa.bool_()),
            ("triggered", pa.list_(pa.string())), ("error", pa.string()),
        ])

    def __enter__(self) -> ConceptShardWriter:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self.partial, self.schema(), compression="zstd")
        return self

    def write(self, ids: Any, scores: np.ndarray, offset: float,
              errors: np.ndarray | None) -> None:
        """Append rows: their ids, ``(n, n_concepts)`` log-odds, and errors."""
        import pyarrow as pa

        n = len(scores)
        failed = np.zeros(n, bool) if errors is None else errors != None  # noqa: E711
        report = self.concepts.report(np.nan_to_num(scores))
        columns: list[Any] = [
            pa.nulls(n, pa.string()) if ids is None else ids,
            pa.array(np.arange(self.n_rows, self.n_rows + n, dtype=np.int64)),
        ]
        for j, concept in enumerate(self.concepts.concepts.values()):
            decisions = np.where(scores[:, j] > concept.offset, 1, -1).astype(np.int8)
            columns += [pa.array(scores[:, j], pa.float64(), mask=failed),
                        pa.array(decisions, pa.int8(), mask=failed)]
        triggered = [None if bad else names for bad, names in zip(failed, report.triggered,
                                                                    strict=True)]
        columns += [
            pa.array(report.remove, pa.bool_(), mask=failed),
            pa.array(triggered, pa.list_(pa.string())),
            pa.nulls(n, pa.string()) if errors is None else pa.array(errors, pa.string()),
        ]
        self._pending.append(pa.Table.from_arrays(columns, schema=self.schema()))
        self.n_rows += n
        self.n_errors += int(failed.sum())
        self._pending_rows += n
        if self._pending_rows >= self.row_group_rows:
            self._flush()


@dataclass(frozen=True)
class ShardResult:
    """What scoring one shard produced."""

    name: str
    n_rows: int
    n_errors: int


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
    n_rows : int
        Rows written by this run.
    n_errors : int
        Of those, rows with an error and no score.
    """

    output_dir: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
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
        super().__init__(
            f"{len(report.failed)} shard(s) failed ({reasons}). {report.summary()}. "
            "Rerun to retry them; finished shards are kept."
        )


def _blocks(scorer: ShardScorer, shard: Shard, batch_size: int, num_workers: int,
            block_rows: int) -> Iterable[Block]:
    if shard.has_embeddings:
        return embedding_blocks(shard, dim=scorer.dim, block_rows=block_rows)
    return image_blocks(
        shard,
        scorer.encoder(),
        dim=scorer.dim,
        batch_size=batch_size,
        num_workers=num_workers,
        device=scorer.device(),
    )


def score_shard(
    scorer: ShardScorer,
    shard: Shard,
    output_dir: str | os.PathLike[str],
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    progress: Callable[[int], object] | None = None,
) -> ShardResult:
    """Score one shard into ``<output_dir>/<shard.name>.parquet``, atomically.

    Parameters
    ----------
    scorer : ShardScorer
        From :meth:`ShardScorer.from_detector`; for embedding shards a
        model-free scorer suffices.
    shard : Shard
        From :func:`discover_shards`.
    output_dir : str or path-like
        An existing folder.
    batch_size : int, default=256
        Images per batch (image shards).
    num_workers : int, default=0
        DataLoader processes decoding images; 0 decodes in this process.
    block_rows : int, default=32768
        Embeddings per block (embedding shards); also rows per row group.
    progress : callable, optional
        Called with the number of rows after each block.

    Returns
    -------
    ShardResult
    """
    identity = None if scorer.detector is None else scorer.detector.encoder_identity_
    manifest = {
        "shard": shard.fingerprint(),
        "detector": scorer.fingerprint,
        "offset": scorer.offset,
        "encoder": identity,
        "source": shard.label or shard.path,
        "kind": shard.kind,
    }
    target = output_path(output_dir, shard.name)
    blocks = _blocks(scorer, shard, batch_size, num_workers, block_rows)
    if scorer.concepts is None:
        writer = ShardWriter(target, manifest, row_group_rows=block_rows)
    else:
        writer = ConceptShardWriter(target, manifest, scorer.concepts, row_group_rows=block_rows)
    with writer:
        for block in blocks:
            scores = scorer.head.log_odds(block.embeddings)
            writer.write(block.ids, scores, scorer.offset, block.errors)
            if progress is not None:
                progress(len(block))
    return ShardResult(shard.name, writer.n_rows, writer.n_errors)


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
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | Sequence[Shard],
    output_dir: str | os.PathLike[str],
    *,
    kind: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    embedding_column: str | None = None,
    id_column: str | None = None,
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
    job finishes it. An image that cannot be read becomes a row with an
    error and no score.

    Parameters
    ----------
    detector : HFTTDetector, MultiConceptDetector or ShardScorer
        A fitted detector. Image inputs need its encoder; embedding inputs
        only its head. A :class:`~skhftt.detectors.composite.MultiConceptDetector`
        embeds each input once and writes one score and decision column per
        concept, plus ``remove`` and ``triggered`` (see
        :class:`ConceptShardWriter`).
    inputs : path, iterable of paths, or list of Shard
        Folders, list files, ``.tar``, ``.npy`` and ``.parquet`` shards,
        image files; or shards from :func:`discover_shards`.
    output_dir : str or path-like
        Folder of the outputs; created if needed.
    kind, shard_size, embedding_column, id_column
        How to read the inputs; see :func:`discover_shards`.
    batch_size : int, default=256
        Images per encoder batch.
    num_workers : int, default=0
        DataLoader processes decoding images (per Dask worker, when
        ``client`` is given).
    block_rows : int, default=32768
        Embeddings per block, and rows per parquet row group.
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
        raise ImportError(f"score_shards writes parquet files with pyarrow: {INSTALL_HINT}")
    scorer = _scorer(detector, device)
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    shards = inputs if inputs and all(isinstance(s, Shard) for s in inputs) else discover_shards(
        inputs, kind=kind, shard_size=shard_size, embedding_column=embedding_column,
        id_column=id_column,
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
        if client is None:
            scorer.encoder()
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
                report.failed[shard.name] = outcome
            bar.set_postfix(shards=f"{len(report.written) + len(report.failed)}/{len(todo)}")
    remove_partials(folder)
    if report.failed:
        raise ScoringError(report)
    return report


def _scorer(detector: Any, device: str | None) -> ShardScorer:
    from skhftt.detectors.composite import MultiConceptDetector

    if isinstance(detector, ShardScorer):
        return detector
    if isinstance(detector, MultiConceptDetector):
        return ShardScorer.from_concepts(detector, device=device)
    return ShardScorer.from_detector(detector, device=device)


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
    scorer: ShardScorer,
    shards: Sequence[Shard],
    folder: Path,
    options: dict[str, int],
    progress: Callable[[int], object],
) -> Iterator[tuple[Shard, ShardResult | str]]:
    """Score shards one after the other in this process; a failure is reported, not raised."""
    for shard in shards:
        try:
            yield shard, score_shard(scorer, shard, folder, progress=progress, **options)
        except Exception as exc:  # one shard's failure is recorded; the job goes on
            yield shard, describe(exc)
