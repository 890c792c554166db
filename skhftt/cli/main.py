"""The ``skhftt`` command line: the parser, and the dispatch to one module per command.

Commands (run ``skhftt <command> --help`` for the options and examples of
each):

* ``skhftt fit -o DETECTOR --task TEXT...`` fits a detector from texts and
  writes it (``.safetensors``, or joblib for other names);
* ``skhftt score DETECTOR INPUT... -o OUTPUT_DIR`` scores images or
  embeddings into one parquet file per input shard (see
  :func:`skhftt.batch.score_shards`); ``skhftt score -d DETECTOR -d
  DETECTOR INPUT... -o OUTPUT_DIR`` scores with several detectors at once;
* ``skhftt filter SCORES_DIR -o OUT`` turns scores into keep/remove lists;
* ``skhftt review SCORES_DIR -o OUT`` writes a page that shows what a removal
  rule removes, before anything is removed;
* ``skhftt evaluate DETECTOR --in INPUT... --out INPUT...`` reports FPR95,
  AUROC and AUPR and draws the ROC curve;
* ``skhftt explain DETECTOR [INPUT...]`` shows the texts nearest each learned
  column and which column dominated each input;
* ``skhftt info DETECTOR`` summarises a detector file.

Exit status: 0 on success; 1 when part of the work failed and rerunning the
same command retries it (shards that could not be scored; the others are
written); 2 for a usage or permanent error (bad option, missing file,
unreadable detector, unavailable model), printed as one line
``skhftt <command>: error: ...``; 130 when interrupted; 141, with nothing
printed, when the reader of the output went away (``| head``).

Only the invoked command's options are built, and each command imports what
it needs when it runs, so ``skhftt --help`` answers without loading the
scientific stack.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from skhftt.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_READER_GONE,
    EXIT_USAGE,
    PROG,
)

COMMANDS = ("fit", "score", "filter", "review", "evaluate", "explain", "info")


def build_parser(full: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser of the ``skhftt`` command and its subcommands.

    Parameters
    ----------
    full : sequence of str, default=all commands
        The subcommands whose options are built; the others get their name
        and summary, enough for ``skhftt --help``.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Remove unwanted images with a detector trained on text alone.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"skhftt.cli.{name}")
        if name in full:
            module.add_parser(commands)
        else:
            commands.add_parser(name, help=module.SUMMARY)
    return parser


def _command_in(argv: Sequence[str]) -> list[str]:
    """The subcommand named in ``argv`` (its first argument that is not an option), if any."""
    return [arg for arg in argv if not arg.startswith("-")][:1]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skhftt`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 1 when part of the work failed (rerun to retry it), 2
        for a usage or permanent error, 130 when interrupted, 141 when the
        reader of the output went away (``skhftt info DETECTOR | head -1``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_in(argv)).parse_args(argv)
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return status
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted; run the same command again to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # End quietly, as a shell tool does; what is left to print goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_READER_GONE
    except Exception as exc:  # the command line reports every failure as one line
        status = _status_of(exc)
        if status is None:
            raise
        label = "" if status == EXIT_FAILED else "error: "
        print(f"{PROG} {args.command}: {label}{exc}", file=sys.stderr)
        return status


def _status_of(exc: Exception) -> int | None:
    """The exit status of a failed command, or None for a bug (shown with its traceback)."""
    # Only a command that imported the batch runner can have raised its ScoringError.
    run = sys.modules.get("skhftt.batch.run")
    if run is not None and isinstance(exc, run.ScoringError):
        # A rerun cannot fix a permanent failure: report it as a usage error.
        return EXIT_USAGE if exc.permanent else EXIT_FAILED
    if isinstance(exc, (OSError, ValueError, TypeError, ImportError)):
        return EXIT_USAGE
    return None


if __name__ == "__main__":
    sys.exit(main())
