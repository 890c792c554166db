"""The ``fit``, ``filter``, ``evaluate``, ``explain`` and ``info`` commands of ``skhftt``.

``skhftt score`` and the entry point live in :mod:`skhftt.cli`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skhftt.cli.main import add_input_options, load_detector_file, score_inputs

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _parser(commands: Any, name: str, summary: str, description: str,
            examples: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, help=summary, description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


def _add_world_options(parser: argparse.ArgumentParser, *, default: str) -> None:
    world = parser.add_mutually_exclusive_group()
    world.add_argument("--world", metavar="FILE",
                       help="world corpus: a text file (one text a line), .csv/.tsv/.parquet "
                            "(first column), or a .npy of text embeddings for a precomputed "
                            "detector")
    world.add_argument("--world-words", type=int, metavar="N",
                       help=f"the N most frequent words of the bundled corpus ({default})")


def _read_world(args: argparse.Namespace) -> Any:
    """The world texts (or embeddings) of ``--world`` / ``--world-words``; None if neither."""
    from skhftt.corpora import load_world_corpus, read_texts

    if args.world is not None:
        return np.load(args.world) if args.world.endswith(".npy") else read_texts(args.world)
    if args.world_words is not None:
        if args.world_words < 1:
            raise ValueError(f"--world-words must be at least 1; got {args.world_words}.")
        return load_world_corpus(args.world_words)
    return None


# ----------------------------------------------------------------------- fit


def add_fit(commands: Any) -> None:
    """Add ``skhftt fit``."""
    parser = _parser(
        commands, "fit", "fit a detector on texts and save it",
        "Fit a detector from texts alone: the task texts describe the images that match "
        "(the in-distribution), the world corpus everything else. The detector is written "
        "as safetensors (for a name ending in .safetensors) or with joblib (other names).",
        "  skhftt fit -o dogs.safetensors --task 'a dog' 'a puppy' --world-words 20000\n"
        "  skhftt fit -o imagenet.safetensors --imagenet --encoder open_clip:ViT-B-16/openai\n"
        "  skhftt fit -o birds.joblib --task-file birds.txt --templates imagenet -v\n"
        "  skhftt fit -o emb.joblib --encoder precomputed --task-file task.npy "
        "--world world.npy\n",
    )
    parser.add_argument("-o", "--output", required=True, metavar="DETECTOR",
                        help="file to write (.safetensors, or anything else for joblib)")
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--task", nargs="+", metavar="TEXT", help="task texts")
    task.add_argument("--task-file", metavar="FILE",
                      help="task texts, one a line (or .csv/.tsv/.parquet, first column), or "
                           "a .npy of task embeddings with --encoder precomputed")
    task.add_argument("--imagenet", action="store_true",
                      help="the 1000 ImageNet classes as the task")
    parser.add_argument("--templates", metavar="imagenet|FILE",
                        help="prompt templates with one {} filled by each task text: the 80 "
                             "CLIP ImageNet templates, or a file of templates, one a line "
                             "(default: the texts as they are; all 80 with --imagenet)")
    _add_world_options(parser, default="default: all of it")
    parser.add_argument("--encoder", default="openai/clip-vit-base-patch16",
                        help="encoder spec or model folder (default: %(default)s)")
    parser.add_argument("--n-embeddings", type=int, default=10, metavar="K",
                        help="learned columns (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.01,
                        help="softmax temperature (default: %(default)s)")
    parser.add_argument("--gamma", type=float, default=1.0,
                        help="weight of the world term (default: %(default)s)")
    parser.add_argument("--threshold", type=_unit_interval, default=0.5,
                        help="probability of the task above which an input matches "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--device", default="auto", help="encoder device (default: auto)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show progress bars")
    parser.set_defaults(handler=run_fit)


def _templates(spec: str | None) -> list[str] | None:
    from skhftt.corpora import imagenet_templates, read_texts

    if spec is None:
        return None
    return imagenet_templates() if spec == "imagenet" else read_texts(spec)


def _task(args: argparse.Namespace) -> Any:
    from skhftt.corpora import imagenet_task, read_texts

    if args.imagenet:
        return imagenet_task(_templates(args.templates) or "all")
    if args.task is not None:
        return args.task
    return np.load(args.task_file) if args.task_file.endswith(".npy") else read_texts(
        args.task_file)


def run_fit(args: argparse.Namespace) -> int:
    """Fit and save a detector; see ``skhftt fit --help``."""
    import joblib

    from skhftt import HFTTDetector

    detector = HFTTDetector(
        encoder=args.encoder,
        n_embeddings=args.n_embeddings,
        temperature=args.temperature,
        gamma=args.gamma,
        threshold=args.threshold,
        templates=None if args.imagenet else _templates(args.templates),
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    detector.fit(_read_world(args), _task(args))
    if args.output.endswith(".safetensors"):
        detector.save(args.output)
    else:
        joblib.dump(detector, args.output)
    print(f"wrote {args.output!r}: {len(detector.task_names_)} task column(s), "
          f"{args.n_embeddings} learned, width {detector.embedding_dim_}")
    return 0


# -------------------------------------------------------------------- filter


def add_filter(commands: Any) -> None:
    """Add ``skhftt filter``."""
    parser = _parser(
        commands, "filter", "turn score files into keep/remove lists",
        "Decide which scored rows to remove and write OUT/keep.txt, OUT/remove.txt and "
        "OUT/errors.txt (one id a line; rows that could not be scored are neither kept nor "
        "removed) and OUT/kept_uids.npy: the kept ids as a sorted numpy array of strings, "
        "the form of a DataComp subset file. Rows without an id are named <shard>:<row>. "
        "Scores are oriented so that higher = more unwanted (--unwanted).",
        "  skhftt filter scores/ -o lists/\n"
        "  skhftt filter scores/ -o lists/ --method fraction --fraction 0.2\n"
        "  skhftt filter scores/ -o lists/ --method fdr --alpha 0.05 --calibration clean/\n"
        "  skhftt filter scores/ -o lists/ --unwanted match --symlink-to kept_images/\n",
    )
    parser.add_argument("scores", metavar="SCORES_DIR",
                        help="folder of 'skhftt score' outputs (or one output file)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUT",
                        help="folder of the lists (created if needed)")
    parser.add_argument("--method", choices=("probability", "fraction", "fdr", "tpr"),
                        default="probability",
                        help="probability: the detector's threshold (default); fraction: "
                             "remove the most unwanted share; fdr: conformal selection with "
                             "a false-discovery rate; tpr: keep a share of clean samples")
    parser.add_argument("--fraction", type=_unit_interval, default=0.1,
                        help="share removed by --method fraction (default: 0.1)")
    parser.add_argument("--alpha", type=_unit_interval, default=0.1,
                        help="target false-discovery rate of --method fdr (default: 0.1)")
    parser.add_argument("--tpr", type=_unit_interval, default=0.95,
                        help="share of clean samples kept by --method tpr (default: 0.95)")
    parser.add_argument("--calibration", metavar="CLEAN_SCORES",
                        help="scores of known-clean samples (folder or file), for fdr and tpr")
    parser.add_argument("--unwanted", choices=("match", "mismatch"),
                        help="which side is removed: mismatch (inputs outside the task; the "
                             "default) or match (inputs the task describes); for composite "
                             "scores, that of the chosen --concept")
    parser.add_argument("--concept", metavar="NAME",
                        help="for composite scores (score -d): filter on this detector's "
                             "score alone; by default the remove column is used")
    parser.add_argument("--keep-list", metavar="FILE", help="keep list (default: OUT/keep.txt)")
    parser.add_argument("--remove-list", metavar="FILE",
                        help="remove list (default: OUT/remove.txt)")
    parser.add_argument("--uids-npy", metavar="FILE",
                        help="kept ids as .npy (default: OUT/kept_uids.npy)")
    place = parser.add_mutually_exclusive_group()
    place.add_argument("--copy-to", metavar="DIR", help="copy the kept image files here")
    place.add_argument("--symlink-to", metavar="DIR",
                       help="symlink the kept image files here")
    parser.set_defaults(handler=run_filter)


@dataclass
class ScoreTable:
    """Rows of score files: ids, unwanted-oriented scores, and flags.

    Attributes
    ----------
    ids : list of str
    oriented : ndarray
        Higher = more unwanted; NaN for rows with an error, and for all rows
        of composite scores read without a concept.
    flagged : ndarray of bool
        Removed by the detector's own threshold.
    failed : ndarray of bool
        Rows with an error.
    """

    ids: list[str]
    oriented: np.ndarray
    flagged: np.ndarray
    failed: np.ndarray


def _score_files(source: str) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    files = sorted(path.glob("*.parquet")) if path.is_dir() else []
    if not files:
        raise ValueError(f"{source!r} holds no score files (*.parquet from 'skhftt score').")
    return files


def read_scores(source: str, *, unwanted: str | None, concept: str | None) -> ScoreTable:
    """Read ``skhftt score`` outputs and orient their scores.

    Parameters
    ----------
    source : str
        A folder of outputs or one output file.
    unwanted : {"match", "mismatch"} or None
        The side removed; None means ``mismatch`` (or, with ``concept``, the
        side the composite was scored with).
    concept : str, optional
        For composite outputs: the detector whose score is used.

    Raises
    ------
    ValueError
        A file is no score output, or ``concept`` is not in it.
    """
    import pyarrow.parquet as pq

    from skhftt.batch import read_manifest
    from skhftt.removal.rules import removal_mask

    ids, oriented, flagged, failed = [], [], [], []
    for path in _score_files(source):
        manifest = read_manifest(path)
        if manifest is None:
            raise ValueError(f"{str(path)!r} is not a complete 'skhftt score' output.")
        table = pq.read_table(path).to_pydict()
        score, side, offset = "score", unwanted or "mismatch", manifest.get("offset")
        if "remove" in table and concept is None:
            score = None
        elif "remove" in table:
            described = {c["name"]: c for c in manifest["concepts"]}
            if concept not in described:
                raise ValueError(f"--concept {concept!r} is not in {str(path)!r}; it has "
                                 f"{', '.join(described)}.")
            score, side = f"{concept}_score", unwanted or described[concept]["unwanted"]
            offset = described[concept]["offset"]
        elif concept is not None:
            raise ValueError(f"--concept {concept!r}: {str(path)!r} was scored by one detector.")
        bad = np.array([error is not None for error in table["error"]], dtype=bool)
        if score is None:
            values = np.full(len(bad), np.nan)
            removed = np.array([bool(r) for r in table["remove"]]) & ~bad
        else:
            decision = np.array(table[score], dtype=np.float64) - offset
            values = decision if side == "match" else -decision
            removed = removal_mask(values, method="probability", unwanted=side) & ~bad
        ids += [name if name is not None else f"{path.stem}:{row}"
                for name, row in zip(table["id"], table["row"], strict=True)]
        oriented.append(values)
        flagged.append(removed)
        failed.append(bad)
    return ScoreTable(ids, np.concatenate(oriented), np.concatenate(flagged),
                      np.concatenate(failed))


def _removal(args: argparse.Namespace, table: ScoreTable) -> np.ndarray:
    from skhftt.removal.rules import removal_mask

    if args.method == "probability":
        return table.flagged
    ok = ~table.failed
    scores = table.oriented[ok]
    if np.isnan(scores).any():
        raise ValueError(f"--method {args.method} needs one score per row: for composite "
                         "scores, pick a detector with --concept NAME.")
    calibration = None
    if args.method in ("tpr", "fdr"):
        if args.calibration is None:
            raise ValueError(f"--method {args.method} needs --calibration CLEAN_SCORES.")
        clean = read_scores(args.calibration, unwanted=args.unwanted, concept=args.concept)
        calibration = clean.oriented[~clean.failed]
    remove = np.zeros(len(table.ids), dtype=bool)
    remove[ok] = removal_mask(scores, method=args.method, calibration_scores=calibration,
                              alpha=args.alpha, tpr=args.tpr, fraction=args.fraction)
    return remove


def _place(ids: Sequence[str], folder: str, *, link: bool) -> None:
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name in ids:
        source = Path(name)
        if not source.is_file():
            raise ValueError(f"kept id {name!r} is not an image file; --copy-to and "
                             "--symlink-to need scores of image files.")
        destination = target / source.name
        if destination.exists() or destination.is_symlink():
            destination = target / f"{len(list(target.iterdir()))}_{source.name}"
        if link:
            destination.symlink_to(source.resolve())
        else:
            shutil.copy2(source, destination)


def _write_lines(path: str | Path, lines: Sequence[str]) -> None:
    Path(path).write_text("".join(f"{line}\n" for line in lines))


def run_filter(args: argparse.Namespace) -> int:
    """Write keep/remove lists; see ``skhftt filter --help``."""
    table = read_scores(args.scores, unwanted=args.unwanted, concept=args.concept)
    remove = _removal(args, table)
    keep = ~remove & ~table.failed
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept = [name for name, flag in zip(table.ids, keep, strict=True) if flag]
    removed = [name for name, flag in zip(table.ids, remove, strict=True) if flag]
    errors = [name for name, flag in zip(table.ids, table.failed, strict=True) if flag]
    _write_lines(args.keep_list or out / "keep.txt", kept)
    _write_lines(args.remove_list or out / "remove.txt", removed)
    _write_lines(out / "errors.txt", errors)
    np.save(args.uids_npy or out / "kept_uids.npy", np.array(sorted(kept), dtype=str))
    if args.copy_to or args.symlink_to:
        _place(kept, args.copy_to or args.symlink_to, link=bool(args.symlink_to))
    print(f"kept {len(kept):,}, removed {len(removed):,}, {len(errors):,} with errors, of "
          f"{len(table.ids):,} rows (method {args.method}); lists in {str(out)!r}")
    return 0


# ------------------------------------------------------------------ evaluate


def add_evaluate(commands: Any) -> None:
    """Add ``skhftt evaluate``."""
    parser = _parser(
        commands, "evaluate", "measure a detector on labelled inputs",
        "Score inputs known to match the task (--in) and inputs known not to (--out), "
        "print FPR95, AUROC, AUPR-in and AUPR-out, and with -o write the scores, "
        "metrics.json and roc.png there.",
        "  skhftt evaluate dogs.safetensors --in dogs/ --out cats/ cars/ -o report/\n"
        "  skhftt evaluate emb.joblib --in in_emb.npy --out out_emb.npy\n",
    )
    parser.add_argument("detector", metavar="DETECTOR", help="fitted detector file")
    parser.add_argument("--in", dest="inputs_in", nargs="+", required=True, metavar="INPUT",
                        help="inputs that match the task")
    parser.add_argument("--out", dest="inputs_out", nargs="+", required=True, metavar="INPUT",
                        help="inputs that do not")
    parser.add_argument("-o", "--output-dir", metavar="DIR",
                        help="write scores, metrics.json and roc.png here")
    add_input_options(parser)
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Score labelled inputs and report metrics; see ``skhftt evaluate --help``."""
    from skhftt.evaluation.metrics import ood_metrics

    detector = load_detector_file(args.detector, encoder=args.encoder)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.output_dir or scratch)
        scores = []
        for side, inputs in (("in", args.inputs_in), ("out", args.inputs_out)):
            score_inputs(detector, inputs, str(folder / f"{side}_scores"), args)
            table = read_scores(str(folder / f"{side}_scores"), unwanted="match", concept=None)
            scores.append(table.oriented[~table.failed])
    if not all(len(side) for side in scores):
        raise ValueError("no input of --in or --out could be scored.")
    y_true = np.r_[np.ones(len(scores[0])), np.zeros(len(scores[1]))]
    y_score = np.concatenate(scores)
    metrics = ood_metrics(y_true, y_score)
    print(f"{len(scores[0]):,} in, {len(scores[1]):,} out")
    for name, value in metrics.items():
        print(f"{name:<10} {value:.4f}")
    if args.output_dir:
        _write_report(Path(args.output_dir), metrics, y_true, y_score, args.detector)
    return 0


def _write_report(folder: Path, metrics: dict[str, float], y_true: np.ndarray,
                  y_score: np.ndarray, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhftt.evaluation.plotting import plot_roc

    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    display = plot_roc(y_true, y_score, name=Path(name).name)
    display.figure_.savefig(folder / "roc.png", dpi=100)
    plt.close(display.figure_)
    print(f"wrote {str(folder / 'metrics.json')!r} and {str(folder / 'roc.png')!r}")


# ------------------------------------------------------------------- explain


def add_explain(commands: Any) -> None:
    """Add ``skhftt explain``."""
    parser = _parser(
        commands, "explain", "show what a detector learned and why it scored inputs so",
        "For each learned column, print the world texts nearest to it; for each input "
        "given, print its score and the column (a task item or a learned one) that "
        "dominated it. Give the inputs right after the detector.",
        "  skhftt explain dogs.safetensors --world-words 20000 -k 5\n"
        "  skhftt explain dogs.safetensors photos/ one.jpg\n"
        "  skhftt explain emb.joblib embeddings.npy --world texts.txt --world-embeddings "
        "texts.npy\n",
    )
    parser.add_argument("paths", metavar="PATH", nargs="+",
                        help="fitted detector file, then any inputs to explain: image files, "
                             "image folders, or .npy files of embeddings")
    _add_world_options(parser, default="default: 10000")
    parser.add_argument("--world-embeddings", metavar="NPY",
                        help="embeddings of the world texts (needed for a precomputed "
                             "detector)")
    parser.add_argument("-k", type=int, default=10, help="texts per column (default: 10)")
    parser.add_argument("--encoder", help="encoder spec or model folder replacing the saved one")
    parser.set_defaults(handler=run_explain)


def _explain_inputs(paths: Sequence[str]) -> tuple[list[str], Any]:
    """Names and values (image paths or stacked embeddings) of the ``explain`` inputs."""
    names: list[str] = []
    images: list[str] = []
    arrays = []
    for path in map(Path, paths):
        if path.suffix == ".npy":
            array = np.atleast_2d(np.load(path))
            names += [f"{path}:{row}" for row in range(array.shape[0])]
            arrays.append(array)
        elif path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            names += found
            images += found
        elif path.is_file():
            names.append(str(path))
            images.append(str(path))
        else:
            raise FileNotFoundError(f"input {str(path)!r} not found.")
    if arrays and images:
        raise ValueError("explain takes images or .npy embeddings, not both at once.")
    return names, np.vstack(arrays) if arrays else images


def run_explain(args: argparse.Namespace) -> int:
    """Print nearest texts and per-input explanations; see ``skhftt explain --help``."""
    from skhftt.corpora import load_world_corpus, read_texts
    from skhftt.removal.explain import explain_scores, nearest_texts

    detector = load_detector_file(args.paths[0], encoder=args.encoder)
    world = _read_world(args)
    if world is None or isinstance(world, np.ndarray):
        world = read_texts(args.world) if world is not None else load_world_corpus(10000)
    embeddings = None if args.world_embeddings is None else np.load(args.world_embeddings)
    for column, texts in nearest_texts(detector, world, embeddings=embeddings, k=args.k).items():
        print(f"{column}: " + "; ".join(f"{text} ({cosine:.2f})" for text, cosine in texts))
    if args.paths[1:]:
        names, values = _explain_inputs(args.paths[1:])
        explained = explain_scores(detector, values)
        print(f"\n{'score':>8}  {'share':>5}  column  input")
        for row, name in enumerate(names):
            print(f"{explained.scores[row]:8.3f}  {explained.share[row]:5.2f}  "
                  f"{explained.column[row]}  {name}")
    return 0


# ---------------------------------------------------------------------- info


def add_info(commands: Any) -> None:
    """Add ``skhftt info``."""
    parser = _parser(
        commands, "info", "summarise a detector file",
        "Print what a detector file holds: its encoder, embedding width, task columns, "
        "learned columns, temperature, threshold, and the skhftt version that wrote it.",
        "  skhftt info dogs.safetensors\n",
    )
    parser.add_argument("detector", metavar="DETECTOR", help="fitted detector file")
    parser.set_defaults(handler=run_info)


def _written_by(path: str) -> str:
    import skhftt

    if not path.endswith(".safetensors"):
        return f"unknown (joblib file; this is skhftt {skhftt.__version__})"
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as handle:
        return json.loads(handle.metadata()["skhftt"]).get("skhftt_version", "unknown")


def run_info(args: argparse.Namespace) -> int:
    """Print a detector summary; see ``skhftt info --help``."""
    encoder = "precomputed" if args.detector.endswith(".safetensors") else None
    detector = load_detector_file(args.detector, encoder=encoder)
    names = list(detector.task_names_)
    shown = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
    rows = {
        "file": f"{args.detector} ({os.path.getsize(args.detector):,} bytes)",
        "encoder": detector.encoder_identity_ or "none (scores precomputed embeddings)",
        "embedding width": detector.embedding_dim_,
        "task columns": f"{len(names)}: {shown}",
        "learned columns (K)": detector.trainable_columns_.shape[0],
        "temperature": detector.head_.temperature,
        "threshold": f"{detector.threshold} (log-odds offset {detector.offset_:.4f})",
        "written by skhftt": _written_by(args.detector),
    }
    for key, value in rows.items():
        print(f"{key + ':':<21}{value}")
    return 0
