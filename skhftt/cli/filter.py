"""``skhftt filter``: turn ``skhftt score`` outputs into keep/remove lists."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skhftt.cli._common import (
    check_inputs_exist,
    check_output_dir,
    check_output_file,
    command_parser,
    unit_interval,
)

SUMMARY = "turn score files into keep/remove lists"
EXAMPLES = """\
  skhftt filter scores/ -o lists/ --method fraction --fraction 0.1
  skhftt filter scores/ -o lists/ --method tpr --tpr 0.95 --calibration clean_scores/
  skhftt filter scores/ -o lists/ --method fdr --alpha 0.05 --calibration clean_scores/
  skhftt filter scores/ -o lists/ --symlink-to kept_images/
  skhftt filter composite_scores/ -o lists/ --concept hateful --method fraction
"""
METHODS = ("probability", "fraction", "fdr", "tpr")


def add_parser(commands: Any) -> None:
    """Add ``skhftt filter`` to the subcommands."""
    parser = command_parser(
        commands, "filter", SUMMARY,
        "Decide which scored rows to remove and write OUT/keep.txt, OUT/remove.txt and "
        "OUT/errors.txt (one id a line; rows that could not be scored are neither kept nor "
        "removed) and OUT/kept_uids.npy: the kept ids as a sorted numpy array of strings, "
        "the form of a DataComp subset file. Rows without an id are named <shard>:<row>. "
        "Ids are written as the score files store them: an id with a control character "
        "(a newline...), bytes that are not UTF-8 or a leading backslash is a backslash "
        "then the id with \\\\, \\n, \\r, \\t, \\xHH, \\uHHHH escapes "
        "(skhftt.batch.lists.read_list decodes them), so no id can add a line. A scores "
        "folder whose run has shards without an output (a killed 'skhftt score') is "
        "refused. Everything is checked before anything is written.",
        EXAMPLES,
    )
    parser.add_argument("scores", metavar="SCORES_DIR",
                        help="folder of 'skhftt score' outputs (or one output file)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUT",
                        help="folder of the lists (created if needed)")
    parser.add_argument("--method", choices=METHODS, default="probability",
                        help="probability: the detector's threshold (default; its "
                             "probability is not calibrated); fraction: remove the most "
                             "unwanted share; fdr: conformal selection with a false-discovery "
                             "rate; tpr: keep a share of clean samples")
    parser.add_argument("--fraction", type=unit_interval, default=0.1,
                        help="share removed by --method fraction (default: 0.1)")
    parser.add_argument("--alpha", type=unit_interval, default=0.1,
                        help="target false-discovery rate of --method fdr (default: 0.1)")
    parser.add_argument("--tpr", type=unit_interval, default=0.95,
                        help="share of clean samples kept by --method tpr (default: 0.95)")
    parser.add_argument("--calibration", metavar="CLEAN_SCORES",
                        help="scores of known-clean samples (folder or file), for fdr and tpr")
    parser.add_argument("--unwanted", choices=("match", "mismatch"),
                        help="which side is removed: mismatch (inputs outside the task) or "
                             "match (inputs the task describes). Default: the job the "
                             "detector was fitted for, recorded in the scores (mismatch for "
                             "scores that record none); a side that contradicts a recorded "
                             "job is an error unless --override-job. For composite scores, "
                             "that of the chosen --concept")
    parser.add_argument("--override-job", action="store_true",
                        help="apply --unwanted even where it contradicts the job recorded in "
                             "the scores (for detectors fitted before skhftt recorded jobs)")
    parser.add_argument("--concept", metavar="NAME",
                        help="for composite scores (score -d): filter on this detector's "
                             "score alone; by default the remove column is used")
    parser.add_argument("--keep-list", metavar="FILE", help="keep list (default: OUT/keep.txt)")
    parser.add_argument("--remove-list", metavar="FILE",
                        help="remove list (default: OUT/remove.txt)")
    parser.add_argument("--uids-npy", metavar="FILE",
                        help="kept ids as .npy (default: OUT/kept_uids.npy)")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="decide on a scores folder whose run has shards without an "
                             "output (the run was killed, or some shards failed), on the "
                             "scored shards alone; says how many are missing")
    place = parser.add_mutually_exclusive_group()
    place.add_argument("--copy-to", metavar="DIR", help="copy the kept image files here")
    place.add_argument("--symlink-to", metavar="DIR",
                       help="symlink the kept image files here")
    parser.set_defaults(handler=run)


@dataclass
class ScoreTable:
    """Rows of score files: ids, the files they name, unwanted-oriented scores, flags.

    Attributes
    ----------
    ids : list of str
    files : list of str or None
        The image file each row names, resolved against the scored input;
        None for rows that name no file (embeddings, tar members).
    oriented : ndarray
        Higher = more unwanted; NaN for rows with an error, and for all rows
        of composite scores read without a concept.
    side : {"mismatch", "match"} or None
        The side removed (None for composite scores read without a concept:
        each detector's own).
    flagged : ndarray of bool
        Removed by the detectors' own thresholds.
    failed : ndarray of bool
        Rows with an error.
    """

    ids: list[str]
    files: list[str | None]
    oriented: Any
    flagged: Any
    failed: Any
    side: str | None


def score_files(source: str, flag: str) -> list[Path]:
    """The ``skhftt score`` outputs of a folder, or the one file given."""
    check_inputs_exist([source], flag)
    path = Path(source)
    files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
    if not files:
        raise ValueError(f"{flag} {source!r} holds no score files (*.parquet from "
                         "'skhftt score').")
    return files


def _file_of(name: str | None, manifest: dict[str, Any]) -> str | None:
    """The image file a row id names; list files hold paths relative to their folder."""
    from skhftt.batch import decode_id

    if name is None or manifest.get("kind") not in ("images", "list"):
        return None
    path = os.path.expanduser(decode_id(name))
    if manifest["kind"] == "list":
        path = os.path.join(os.path.dirname(manifest.get("source", "")), path)
    return os.path.abspath(path)


def _concept(manifest: dict[str, Any], concept: str, path: Path) -> dict[str, Any]:
    described = {c["name"]: c for c in manifest["concepts"]}
    if concept not in described:
        raise ValueError(f"--concept {concept!r} is not in {str(path)!r}; it has "
                         f"{', '.join(described)}.")
    return described[concept]


def _side(described: dict[str, Any], unwanted: str | None, override_job: bool,
          path: Path) -> str:
    """The side to remove: the recorded job, or ``--unwanted`` where it may apply."""
    recorded = described.get("unwanted")
    if unwanted is None:
        return recorded or "mismatch"
    if recorded is not None and unwanted != recorded and not override_job:
        from skhftt.detectors.base import job_words

        raise ValueError(
            f"--unwanted {unwanted} contradicts the job recorded in {str(path)!r}: its "
            f"detector ({described.get('detector_kind', 'detector')}) was fitted with "
            f"unwanted={recorded} ({job_words(recorded)}). Leave --unwanted out, or add "
            "--override-job to remove the other side anyway.")
    return unwanted


def read_scores(source: str, *, unwanted: str | None, concept: str | None,
                override_job: bool = False, flag: str = "SCORES_DIR") -> ScoreTable:
    """Read ``skhftt score`` outputs and orient their scores so that higher = more unwanted.

    The side removed is the job recorded in the outputs, or ``unwanted``
    where it agrees (or ``override_job``).

    Raises
    ------
    ValueError
        A file is no complete score output, ``--concept`` is not in it,
        ``unwanted`` contradicts a recorded job, or the files record
        different jobs.
    """
    import numpy as np
    import pyarrow.parquet as pq

    from skhftt.batch import encode_id, read_manifest
    from skhftt.removal.rules import removal_mask

    ids, files, oriented, flagged, failed, sides = [], [], [], [], [], set()
    for path in score_files(source, flag):
        manifest = read_manifest(path)
        if manifest is None:
            raise ValueError(f"{flag}: {str(path)!r} is not a complete 'skhftt score' output.")
        table = pq.read_table(path).to_pydict()
        composite = "remove" in table
        if concept is not None and not composite:
            raise ValueError(f"--concept {concept!r}: {str(path)!r} was scored by one detector.")
        bad = np.array([error is not None for error in table["error"]], dtype=bool)
        if composite and concept is None:
            if unwanted is not None:
                raise ValueError(f"--unwanted applies to one detector's score, and "
                                 f"{str(path)!r} holds several: pick one with --concept NAME.")
            values = np.full(len(bad), np.nan)
            removed = np.array([bool(r) for r in table["remove"]]) & ~bad
            sides.add(None)
        else:
            described = manifest if concept is None else _concept(manifest, concept, path)
            side = _side(described, unwanted, override_job, path)
            sides.add(side)
            column = "score" if concept is None else f"{concept}_score"
            decision = np.array(table[column], dtype=np.float64) - described["offset"]
            values = decision if side == "match" else -decision
            removed = removal_mask(values, method="probability", unwanted=side) & ~bad
        ids += [name if name is not None else encode_id(f"{path.stem}:{row}")
                for name, row in zip(table["id"], table["row"], strict=True)]
        files += [_file_of(name, manifest) for name in table["id"]]
        oriented.append(values)
        flagged.append(removed)
        failed.append(bad)
    if len(sides) > 1:
        raise ValueError(f"{flag} {source!r} mixes scores of detectors with different jobs "
                         f"({', '.join(sorted(str(s) for s in sides))}); filter them apart.")
    return ScoreTable(ids, files, np.concatenate(oriented), np.concatenate(flagged),
                      np.concatenate(failed), sides.pop())


def _removal(args: argparse.Namespace, table: ScoreTable) -> Any:
    import numpy as np

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
        clean = read_scores(args.calibration, unwanted=args.unwanted, concept=args.concept,
                            override_job=args.override_job, flag="--calibration")
        calibration = clean.oriented[~clean.failed]
        if calibration.size == 0:
            raise ValueError(f"--calibration {args.calibration!r} holds no scored row.")
    remove = np.zeros(len(table.ids), dtype=bool)
    remove[ok] = removal_mask(scores, method=args.method, unwanted=table.side,
                              calibration_scores=calibration, alpha=args.alpha, tpr=args.tpr,
                              fraction=args.fraction)
    return remove


def _kept_files(table: ScoreTable, keep: Any) -> list[str]:
    """The image file of every kept row; raises before anything is written."""
    files = []
    for name, source, kept in zip(table.ids, table.files, keep, strict=True):
        if not kept:
            continue
        if source is None or not os.path.isfile(source):
            raise ValueError(f"kept id {name!r} is not an image file; --copy-to and "
                             "--symlink-to need scores of image files that still exist.")
        files.append(source)
    return files


def _check_run(source: str, flag: str, allow_incomplete: bool) -> None:
    """Refuse a scores folder whose recorded run is incomplete or mixed with other scores.

    With ``allow_incomplete``, missing shards are reported on stderr instead.
    """
    from skhftt.batch.record import check_complete

    if not os.path.isdir(source):
        return
    warning = check_complete(source, allow_incomplete=allow_incomplete, name=f"{flag} {source!r}",
                             allow="--allow-incomplete", rerun="the same 'skhftt score' command")
    if warning is not None:
        print(f"skhftt filter: warning: {warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Write keep/remove lists; see ``skhftt filter --help``."""
    import numpy as np

    from skhftt.batch.lists import place, plan_placements, write_list

    out = Path(args.output_dir)
    check_output_dir(args.output_dir, "-o/--output-dir")
    lists = {"--keep-list": args.keep_list, "--remove-list": args.remove_list,
             "--uids-npy": args.uids_npy}
    for flag, path in lists.items():
        if path is not None:
            check_output_file(path, flag)
    folder = args.copy_to or args.symlink_to
    if folder:
        check_output_dir(folder, "--copy-to" if args.copy_to else "--symlink-to")
    _check_run(args.scores, "SCORES_DIR", args.allow_incomplete)
    if args.calibration is not None:
        _check_run(args.calibration, "--calibration", args.allow_incomplete)
    table = read_scores(args.scores, unwanted=args.unwanted, concept=args.concept,
                        override_job=args.override_job)
    remove = _removal(args, table)
    keep = ~remove & ~table.failed
    outputs = {"keep": args.keep_list or out / "keep.txt",
               "remove": args.remove_list or out / "remove.txt",
               "errors": out / "errors.txt", "uids": args.uids_npy or out / "kept_uids.npy"}
    plan = plan_placements(_kept_files(table, keep), folder, link=bool(args.symlink_to),
                           reserved=outputs.values()) if folder else []

    out.mkdir(parents=True, exist_ok=True)
    kept = [name for name, flag in zip(table.ids, keep, strict=True) if flag]
    removed = [name for name, flag in zip(table.ids, remove, strict=True) if flag]
    errors = [name for name, flag in zip(table.ids, table.failed, strict=True) if flag]
    write_list(outputs["keep"], kept)
    write_list(outputs["remove"], removed)
    write_list(outputs["errors"], errors)
    np.save(outputs["uids"], np.array(sorted(kept), dtype=str))
    if folder:
        place(plan, folder, link=bool(args.symlink_to))
    print(f"kept {len(kept):,}, removed {len(removed):,}, {len(errors):,} with errors, of "
          f"{len(table.ids):,} rows (method {args.method}); lists in {str(out)!r}")
    return 0
