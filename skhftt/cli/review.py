"""``skhftt review``: a page to look at what a removal rule removes, before removing it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from skhftt.cli._common import check_output_dir, command_parser
from skhftt.cli.filter import add_page_options, add_rule_options

SUMMARY = "write a page that shows what a removal rule removes"
EXAMPLES = """\
  skhftt review scores/ -o review/ --method fraction --fraction 0.1
  skhftt review scores/ -o review/ --method tpr --tpr 0.95 --calibration clean_scores/
  skhftt review scores/ -o review/ --plan plan.json
  skhftt review dataset_scores/ -o review/ --dataset photos_on_disk/
"""


def add_parser(commands: Any) -> None:
    """Add ``skhftt review`` to the subcommands."""
    parser = command_parser(
        commands, "review", SUMMARY,
        "Decide which scored rows to remove, as 'skhftt filter' does with the same options, "
        "and write OUT/index.html, one self-contained page (no server, no network: it opens "
        "from file://) with, per detector or concept: the counts, the rule and its cut-off, "
        "a histogram of the scores with the cut, and thumbnails of the most unwanted rows, "
        "of the rows each side of the cut, of a random sample of the rows kept and of the "
        "rows with an error, each with its id, score, rank and, for HFTT and ensemble "
        "detectors saved as .safetensors, the column that dominated its score. Rows of "
        "embedding shards show their caption and URL from their metadata. Also writes "
        "OUT/manifest.json, the record of the decision, which 'filter --plan' applies to "
        "new scores. Only the rows shown are read from the inputs.",
        EXAMPLES,
    )
    parser.add_argument("scores", metavar="SCORES_DIR",
                        help="folder of 'skhftt score' outputs (or one output file)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUT",
                        help="folder of the page and its record (created if needed)")
    add_rule_options(parser)
    add_page_options(parser)
    parser.set_defaults(handler=run)


def score_table(files: Any, args: argparse.Namespace, concept: str | None) -> Any:
    """The scores of ``files`` as ``skhftt filter`` reads them, read column by column.

    The same table as :func:`skhftt.cli.filter.read_scores`, with the same
    checks, but its ids and image files are read on demand: ten million rows
    take seconds, not minutes.
    """
    import numpy as np

    from skhftt.cli.filter import ScoreTable, _concept, _file_of, _side
    from skhftt.removal.rules import removal_mask
    from skhftt.review.decision import orient
    from skhftt.review.scores import RowIds

    failed = files.failed()
    oriented = np.full(len(files), np.nan)
    flagged = np.zeros(len(files), dtype=bool)
    sides = set()
    for index, path, manifest, rows in files.spans():
        composite = "concepts" in manifest
        if concept is not None and not composite:
            raise ValueError(f"--concept {concept!r}: {str(path)!r} was scored by one detector.")
        if composite and concept is None:
            if args.unwanted is not None:
                raise ValueError(f"--unwanted applies to one detector's score, and "
                                 f"{str(path)!r} holds several: pick one with --concept NAME.")
            flagged[rows] = files.column("remove", null=False, file=index)
            sides.add(None)
            continue
        described = manifest if concept is None else _concept(manifest, concept, path)
        side = _side(described, args.unwanted, args.override_job, path)
        sides.add(side)
        column = "score" if concept is None else f"{concept}_score"
        oriented[rows] = orient(files.column(column, file=index), described["offset"], side)
        flagged[rows] = removal_mask(oriented[rows], method="probability", unwanted=side)
    if len(sides) > 1:
        raise ValueError(f"SCORES_DIR {args.scores!r} mixes scores of detectors with different "
                         f"jobs ({', '.join(sorted(str(s) for s in sides))}); review them apart.")
    return ScoreTable(RowIds(files), RowIds(files, _file_of), oriented, flagged & ~failed,
                      failed, sides.pop())


def run(args: argparse.Namespace) -> int:
    """Write a review page; see ``skhftt review --help``."""
    from skhftt.cli.filter import (
        check_record_options,
        check_runs,
        decide,
        score_files,
        write_records,
    )
    from skhftt.review.scores import ScoreFiles

    check_output_dir(args.output_dir, "-o/--output-dir")
    check_runs(args, "review")
    check_record_options(args)
    files = ScoreFiles.open(score_files(args.scores, "SCORES_DIR"), "SCORES_DIR")
    table = score_table(files, args, args.concept)
    decision = decide(args, table, files, lambda concept: score_table(files, args, concept))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = write_records(args, decision, files, command="review",
                           manifest=out / "manifest.json", page=str(out), outputs={})
    counts = record["counts"]
    print(f"review of {counts['rows']:,} rows: {counts['kept']:,} kept, {counts['removed']:,} "
          f"removed, {counts['errors']:,} with errors; page {str(out / 'index.html')!r}")
    return 0
