"""``skhftt filter``: turn ``skhftt score`` outputs into keep/remove lists."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skhftt.cli._common import (
    add_world_options,
    check_inputs_exist,
    check_output_dir,
    check_output_file,
    command_parser,
    encoder_errors,
    encoder_spec,
    positive,
    read_world,
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
        "removed), OUT/kept_uids.npy (the kept ids: a DataComp subset file when they are "
        "32-hex-digit uids, else a sorted numpy array of strings) and OUT/manifest.json "
        "(the record of the decision: detector, encoder, corpus and task digests, rule, "
        "calibration, cut-offs, counts). Rows without an id are named <shard>:<row>. "
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
    add_rule_options(parser)
    parser.add_argument("--keep-list", metavar="FILE", help="keep list (default: OUT/keep.txt)")
    parser.add_argument("--remove-list", metavar="FILE",
                        help="remove list (default: OUT/remove.txt)")
    parser.add_argument("--uids-npy", metavar="FILE",
                        help="kept ids as .npy (default: OUT/kept_uids.npy): a DataComp "
                             "subset file (sorted uint64 pairs) when every kept id is a "
                             "32-hex-digit uid, else a sorted array of strings")
    parser.add_argument("--save-plan", metavar="FILE",
                        help="also write the record of the decision here (OUT/manifest.json "
                             "holds the same): the resolved cut-offs with their provenance, "
                             "which --plan applies to new scores")
    parser.add_argument("--review", metavar="DIR",
                        help="also write a review page of the decision in DIR (see "
                             "'skhftt review')")
    place = parser.add_mutually_exclusive_group()
    place.add_argument("--copy-to", metavar="DIR", help="copy the kept image files here")
    place.add_argument("--symlink-to", metavar="DIR",
                       help="symlink the kept image files here")
    parser.set_defaults(handler=run, **PAGE_DEFAULTS)


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """The options of the removal rule, shared by ``skhftt filter`` and ``skhftt review``."""
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
    parser.add_argument("--plan", metavar="FILE",
                        help="apply the cut-offs of a plan (filter --save-plan, or a "
                             "manifest.json of filter or review) instead of a rule: no "
                             "recalibration; refused for scores of another detector or encoder")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="decide on a scores folder whose run has shards without an "
                             "output (the run was killed, or some shards failed), on the "
                             "scored shards alone; says how many are missing")


@dataclass
class ScoreTable:
    """Rows of score files: unwanted-oriented scores and flags, ids read from the files.

    Attributes
    ----------
    files : skhftt.review.ScoreFiles
        The files, in the order of the rows.
    oriented : ndarray
        Higher = more unwanted; NaN for rows with an error, and for all rows
        of composite scores read without a concept.
    flagged : ndarray of bool
        Removed by the detectors' own thresholds.
    failed : ndarray of bool
        Rows with an error.
    side : {"mismatch", "match"} or None
        The side removed (None for composite scores read without a concept:
        each detector's own).
    """

    files: Any
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
    where it agrees (or ``override_job``). Only the numeric columns are read:
    ten million rows take seconds; ids are read from ``ScoreTable.files``.

    Raises
    ------
    ValueError
        A file is no complete score output, ``--concept`` is not in it,
        ``unwanted`` contradicts a recorded job, or the files record
        different jobs.
    """
    import numpy as np

    from skhftt.removal.rules import removal_mask
    from skhftt.review.decision import orient
    from skhftt.review.scores import ScoreFiles

    files = ScoreFiles.open(score_files(source, flag), flag)
    failed = files.failed()
    oriented = np.full(len(files), np.nan)
    flagged = np.zeros(len(files), dtype=bool)
    sides = set()
    for index, path, manifest, rows in files.spans():
        composite = "concepts" in manifest
        if concept is not None and not composite:
            raise ValueError(f"--concept {concept!r}: {str(path)!r} was scored by one detector.")
        if composite and concept is None:
            if unwanted is not None:
                raise ValueError(f"--unwanted applies to one detector's score, and "
                                 f"{str(path)!r} holds several: pick one with --concept NAME.")
            flagged[rows] = files.column("remove", null=False, file=index)
            sides.add(None)
            continue
        described = manifest if concept is None else _concept(manifest, concept, path)
        side = _side(described, unwanted, override_job, path)
        sides.add(side)
        column = "score" if concept is None else f"{concept}_score"
        oriented[rows] = orient(files.column(column, file=index), described["offset"], side)
        flagged[rows] = removal_mask(oriented[rows], method="probability", unwanted=side)
    if len(sides) > 1:
        raise ValueError(f"{flag} {source!r} mixes scores of detectors with different jobs "
                         f"({', '.join(sorted(str(s) for s in sides))}); use them apart.")
    return ScoreTable(files, oriented, flagged & ~failed, failed, sides.pop())


def _removal(args: argparse.Namespace, table: ScoreTable) -> tuple[Any, Any]:
    """The rows the rule removes, and the scored rows of ``--calibration`` (or None)."""
    import numpy as np

    from skhftt.removal.rules import removal_mask

    if args.method == "probability":
        return table.flagged, None
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
    remove = np.zeros(len(table.failed), dtype=bool)
    remove[ok] = removal_mask(scores, method=args.method, unwanted=table.side,
                              calibration_scores=calibration, alpha=args.alpha, tpr=args.tpr,
                              fraction=args.fraction)
    return remove, calibration


def _kept_files(files: Any, ids: list[str], keep: Any) -> list[str]:
    """The image file of every kept row; raises before anything is written."""
    import numpy as np

    kept = []
    for _, _, manifest, rows in files.spans():
        for row in np.flatnonzero(keep[rows]) + rows.start:
            source = _file_of(ids[row], manifest)
            if source is None or not os.path.isfile(source):
                raise ValueError(f"kept id {ids[row]!r} is not an image file; --copy-to and "
                                 "--symlink-to need scores of image files that still exist.")
            kept.append(source)
    return kept


def check_runs(args: argparse.Namespace, command: str) -> None:
    """Refuse scores folders (SCORES_DIR, ``--calibration``) whose recorded run is incomplete.

    With ``--allow-incomplete``, missing shards are reported on stderr instead.
    """
    from skhftt.batch.record import check_complete

    for source, flag in ((args.scores, "SCORES_DIR"), (args.calibration, "--calibration")):
        if source is None or not os.path.isdir(source):
            continue
        warning = check_complete(source, allow_incomplete=args.allow_incomplete,
                                 name=f"{flag} {source!r}", allow="--allow-incomplete",
                                 rerun="the same 'skhftt score' command")
        if warning is not None:
            print(f"skhftt {command}: warning: {warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Write keep/remove lists; see ``skhftt filter --help``."""
    from skhftt.batch.lists import place, plan_placements, write_list
    from skhftt.review.datacomp import write_uids

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
    check_runs(args, "filter")
    check_record_options(args)
    table = read_rule_scores(args, args.concept)
    files, ids = table.files, table.files.ids()
    decision = decide(args, table)
    remove = decision.remove
    keep = ~remove & ~table.failed
    outputs = {"keep": args.keep_list or out / "keep.txt",
               "remove": args.remove_list or out / "remove.txt",
               "errors": out / "errors.txt", "uids": args.uids_npy or out / "kept_uids.npy"}
    plan = plan_placements(_kept_files(files, ids, keep), folder, link=bool(args.symlink_to),
                           reserved=[*outputs.values(), out / "manifest.json"]) if folder else []

    out.mkdir(parents=True, exist_ok=True)
    kept = [name for name, flag in zip(ids, keep, strict=True) if flag]
    removed = [name for name, flag in zip(ids, remove, strict=True) if flag]
    errors = [name for name, flag in zip(ids, table.failed, strict=True) if flag]
    write_list(outputs["keep"], kept)
    write_list(outputs["remove"], removed)
    write_list(outputs["errors"], errors)
    form = write_uids(outputs["uids"], kept)
    if folder:
        place(plan, folder, link=bool(args.symlink_to))
    write_records(args, decision, files, command="filter", manifest=out / "manifest.json",
                  page=args.review, outputs=outputs)
    print(f"kept {len(kept):,}, removed {len(removed):,}, {len(errors):,} with errors, of "
          f"{len(ids):,} rows (method {decision.rule['method']}); lists in {str(out)!r}")
    if form == "strings" and kept:
        print(f"{str(outputs['uids'])!r} holds the kept ids as strings: they are not all "
              "32-hex-digit uids, so it is no DataComp subset file")
    return 0


# ------------------------------------------------ the decision and its record

_RULE_PARAMETERS = {"fraction": ("fraction",), "tpr": ("tpr",), "fdr": ("alpha",)}


def check_record_options(args: argparse.Namespace) -> None:
    """Check ``--plan`` against the rule options, and ``--save-plan``/``--review``, before work."""
    if getattr(args, "save_plan", None) is not None:
        check_output_file(args.save_plan, "--save-plan")
    if getattr(args, "review", None) is not None:
        check_output_dir(args.review, "--review")
    if args.plan is None:
        return
    check_inputs_exist([args.plan], "--plan")
    given = [flag for flag, value in (("--method", args.method != "probability"),
                                      ("--calibration", args.calibration), ("--concept",
                                      args.concept), ("--unwanted", args.unwanted),
                                      ("--override-job", args.override_job)) if value]
    if given:
        raise ValueError(f"--plan {args.plan!r} applies the rule and cut-offs it records; leave "
                         f"out {', '.join(given)}.")


def read_rule_scores(args: argparse.Namespace, concept: str | None) -> ScoreTable:
    """SCORES_DIR as the rule options read it: one concept's scores, or None for no concept."""
    return read_scores(args.scores, unwanted=args.unwanted, concept=concept,
                       override_job=args.override_job)


def _planned(args: argparse.Namespace, table: ScoreTable) -> Any:
    """The decision of ``--plan``: its cut-offs, applied to these scores."""
    import numpy as np

    from skhftt.batch.scorers import file_sha256
    from skhftt.review.decision import Decision, Part, concept_description
    from skhftt.review.record import check_plan, plan_cuts, read_plan

    files = table.files
    plan = read_plan(args.plan, "--plan")
    check_plan(plan, files, "--plan", args.plan)
    parts, remove = [], np.zeros(len(table.failed), dtype=bool)
    for concept, cut in plan_cuts(plan):
        oriented = table.oriented if concept is None else read_rule_scores(args, concept).oriented
        part = Part(concept, concept_description(files, concept), cut, oriented)
        remove |= part.removed() & ~table.failed
        parts.append(part)
    rule = {"method": "plan", "plan": {"path": os.path.abspath(args.plan),
                                       "sha256": file_sha256(args.plan)},
            "resolved_with": plan["rule"]}
    return Decision(rule, parts, remove, table.failed, plan["calibration"])


def decide(args: argparse.Namespace, table: ScoreTable) -> Any:
    """The rule's (or the plan's) decision on ``table``, with each detector's cut-off.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`add_rule_options`.
    table : ScoreTable
        The scores, read with ``args.unwanted`` and ``args.concept``
        (:func:`read_rule_scores`); the other concepts of composite scores
        are read from the same files when a plan names them.

    Returns
    -------
    skhftt.review.Decision
    """
    from skhftt.review.cuts import Cut, resolve_cut
    from skhftt.review.decision import Decision, Part, concept_description
    from skhftt.review.record import array_fingerprint

    if args.plan is not None:
        return _planned(args, table)
    files = table.files
    remove, clean = _removal(args, table)
    rule = {"method": args.method, "unwanted": table.side, "concept": args.concept,
            **{name: getattr(args, name) for name in _RULE_PARAMETERS.get(args.method, ())}}
    if table.side is None:  # composite scores: each concept at its own threshold
        parts = [Part(concept["name"], described, Cut.own(concept["unwanted"],
                                                          described["offset"]))
                 for concept in files.manifests[0]["concepts"]
                 for described in [concept_description(files, concept["name"])]]
        return Decision(rule, parts, remove, table.failed)
    calibration = None
    if clean is not None:
        calibration = {"path": os.path.abspath(args.calibration), "rows": len(clean),
                       "fingerprint": array_fingerprint(clean)}
    described = concept_description(files, args.concept)
    scored = ~table.failed
    cut = resolve_cut(args.method, table.oriented[scored], remove[scored], side=table.side,
                      offset=described["offset"], calibration=clean, fraction=args.fraction,
                      tpr=args.tpr)
    return Decision(rule, [Part(args.concept, described, cut, table.oriented)], remove,
                    table.failed, calibration)


PAGE_DEFAULTS = {"thumbnails": 24, "seed": 0, "dataset": [], "world": None, "world_words": None,
                 "world_embeddings": None, "encoder": None, "no_explain": False}


def add_page_options(parser: argparse.ArgumentParser) -> None:
    """The options of the review page (``skhftt review``; ``filter --review`` uses defaults)."""
    from skhftt.cli.explain import WORLD_WORDS

    parser.add_argument("--thumbnails", type=positive, default=PAGE_DEFAULTS["thumbnails"],
                        metavar="N", help="rows per grid, and on each side of the cut "
                                          f"(default: {PAGE_DEFAULTS['thumbnails']})")
    parser.add_argument("--seed", type=int, default=PAGE_DEFAULTS["seed"],
                        help="seed of the random samples of rows (default: 0)")
    parser.add_argument("--dataset", action="append", default=[], metavar="DIR",
                        help="a Hugging Face dataset saved with save_to_disk whose scores are "
                             "reviewed (repeatable): its rows are shown from it")
    add_world_options(parser, default=f"default: {WORLD_WORDS}")
    parser.add_argument("--world-embeddings", metavar="NPY",
                        help="embeddings of the world texts, one row per text (for a "
                             "precomputed detector's nearest words)")
    parser.add_argument("--encoder", help="encoder spec or model folder replacing the saved one, "
                                          "to explain the scores of images")
    parser.add_argument("--no-explain", action="store_true",
                        help="do not load the detectors to explain the rows shown")


def _explainer(args: argparse.Namespace, decision: Any) -> Any:
    """What explains the rows shown: each part's detector, with the world texts near its columns."""
    from skhftt.cli.explain import WORLD_WORDS
    from skhftt.corpora import load_world_corpus
    from skhftt.review.explanations import Explainer

    if args.no_explain:
        return None
    world = read_world(args, texts_only=True) or load_world_corpus(WORLD_WORDS)
    embeddings = None
    if args.world_embeddings is not None:
        import numpy as np

        check_inputs_exist([args.world_embeddings], "--world-embeddings")
        embeddings = np.load(args.world_embeddings)
    with encoder_errors(args.encoder or "the detector's encoder"):
        return Explainer({part.concept: part.described for part in decision.parts}, world,
                         world_embeddings=embeddings,
                         encoder=None if args.encoder is None else encoder_spec(args.encoder))


def _datasets(folders: Sequence[str]) -> dict[str, Any]:
    """``--dataset`` folders as datasets, by the label their shards' scores record."""
    if not folders:
        return {}
    check_inputs_exist(folders, "--dataset")
    import datasets

    from skhftt.batch import discover_shards

    loaded = {}
    for folder in folders:
        dataset = datasets.load_from_disk(folder)
        loaded[discover_shards(dataset)[0].label] = dataset
    return loaded


def write_records(args: argparse.Namespace, decision: Any, files: Any, *, command: str,
                  manifest: str | os.PathLike[str], page: str | None,
                  outputs: dict[str, Any]) -> dict[str, Any]:
    """Write the review page (if ``page``), the manifest and ``--save-plan``; returns the record."""
    from skhftt.review.page import write_review
    from skhftt.review.record import decision_record, write_json

    if page is not None:
        outputs = {**outputs, "review": write_review(
            page, decision, files, source=args.scores, file_of=_file_of, n=args.thumbnails,
            seed=args.seed, datasets=_datasets(args.dataset),
            explainer=_explainer(args, decision))}
    record = decision_record(decision, files, command=command, source=args.scores,
                             outputs=outputs)
    write_json(manifest, record)
    if getattr(args, "save_plan", None) is not None:
        write_json(args.save_plan, record)
    return record
