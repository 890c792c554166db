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


def run(args: argparse.Namespace) -> int:
    """Write a review page; see ``skhftt review --help``."""
    from skhftt.cli.filter import (
        check_record_options,
        check_runs,
        decide,
        read_rule_scores,
        write_records,
    )

    check_output_dir(args.output_dir, "-o/--output-dir")
    check_runs(args, "review")
    check_record_options(args)
    table = read_rule_scores(args, args.concept)
    files = table.files
    decision = decide(args, table)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = write_records(args, decision, files, command="review",
                           manifest=out / "manifest.json", page=str(out), outputs={})
    counts = record["counts"]
    print(f"review of {counts['rows']:,} rows: {counts['kept']:,} kept, {counts['removed']:,} "
          f"removed, {counts['errors']:,} with errors; page {str(out / 'index.html')!r}")
    return 0
