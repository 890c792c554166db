"""``skhftt evaluate``: measure a detector on inputs known to match the task or not."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from skhftt.cli._common import (
    PLOT_HINT,
    add_input_options,
    check_device,
    check_inputs_exist,
    check_output_dir,
    command_parser,
    load_detector_file,
    score_inputs,
)

SUMMARY = "measure a detector on labelled inputs"
EXAMPLES = """\
  skhftt evaluate dogs.safetensors --in dogs/ --out cats/ cars/ -o report/
  skhftt evaluate emb.joblib --in in_emb.npy --out out_emb.npy
"""


def add_parser(commands: Any) -> None:
    """Add ``skhftt evaluate`` to the subcommands."""
    parser = command_parser(
        commands, "evaluate", SUMMARY,
        "Score inputs known to match the task (--in) and inputs known not to (--out), "
        "print FPR95, AUROC, AUPR-in and AUPR-out, and with -o write the scores, "
        f"metrics.json and roc.png there (roc.png needs matplotlib: {PLOT_HINT}). "
        "Unreadable images are left out of the metrics and counted.",
        EXAMPLES,
    )
    parser.add_argument("detector", metavar="DETECTOR", help="fitted detector file")
    parser.add_argument("--in", dest="inputs_in", nargs="+", required=True, metavar="INPUT",
                        help="inputs that match the task")
    parser.add_argument("--out", dest="inputs_out", nargs="+", required=True, metavar="INPUT",
                        help="inputs that do not")
    parser.add_argument("-o", "--output-dir", metavar="DIR",
                        help="write scores, metrics.json and roc.png here")
    add_input_options(parser, scheduler=False)
    parser.set_defaults(handler=run)


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"-o/--output-dir draws roc.png with matplotlib, which is not "
                          f"installed: {PLOT_HINT}") from exc


def _scores(report: Any) -> tuple[Any, int]:
    """The scores of the shards of one scoring run, and the number of unscored rows."""
    import numpy as np
    import pyarrow.parquet as pq

    scores, n_failed = [], 0
    for name in [*report.written, *report.skipped]:
        table = pq.read_table(Path(report.output_dir) / f"{name}.parquet",
                              columns=["score", "error"])
        failed = table.column("error").is_valid().to_numpy(zero_copy_only=False)
        values = table.column("score").to_numpy(zero_copy_only=False)
        scores.append(np.asarray(values, dtype=np.float64)[~failed])
        n_failed += int(failed.sum())
    return np.concatenate(scores), n_failed


def _meaning(unwanted: str) -> str:
    """What FPR95 measures for the detector's job."""
    if unwanted == "match":
        return ("job: remove what matches the task (--in); fpr95 is the share of --out "
                "inputs removed when 95 % of --in inputs are")
    return ("job: keep what matches the task (--in); fpr95 is the share of --out inputs "
            "kept when 95 % of --in inputs are")


def _counted(n_scored: int, n_failed: int, side: str) -> str:
    left_out = f" ({n_failed:,} unreadable, left out)" if n_failed else ""
    return f"{n_scored:,} {side}{left_out}"


def run(args: argparse.Namespace) -> int:
    """Score labelled inputs and report metrics; see ``skhftt evaluate --help``."""
    import numpy as np

    from skhftt.evaluation.metrics import ood_metrics

    check_inputs_exist(args.inputs_in, "--in")
    check_inputs_exist(args.inputs_out, "--out")
    if args.output_dir:
        check_output_dir(args.output_dir, "-o/--output-dir")
        _check_matplotlib()
    check_device(args.device)
    detector = load_detector_file(args.detector, encoder=args.encoder)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.output_dir or scratch)
        sides = {}
        for side, inputs in (("in", args.inputs_in), ("out", args.inputs_out)):
            report = score_inputs(detector, inputs, str(folder / f"{side}_scores"), args,
                                  encoder=detector.encoder)
            sides[side] = _scores(report)
    (scores_in, failed_in), (scores_out, failed_out) = sides["in"], sides["out"]
    for flag, scores in (("--in", scores_in), ("--out", scores_out)):
        if not len(scores):
            raise ValueError(f"no input of {flag} could be scored.")
    y_true = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    y_score = np.concatenate([scores_in, scores_out])
    metrics = ood_metrics(y_true, y_score)
    print(f"{_counted(len(scores_in), failed_in, 'in')}, "
          f"{_counted(len(scores_out), failed_out, 'out')}")
    print(_meaning(detector.unwanted))
    for name, value in metrics.items():
        print(f"{name:<10} {value:.4f}")
    if args.output_dir:
        counts = {"n_in": len(scores_in), "n_out": len(scores_out),
                  "n_in_unreadable": failed_in, "n_out_unreadable": failed_out,
                  "unwanted": detector.unwanted}
        _write_report(Path(args.output_dir), {**metrics, **counts}, y_true, y_score,
                      args.detector)
    return 0


def _write_report(folder: Path, metrics: dict[str, float], y_true: Any, y_score: Any,
                  name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhftt.evaluation.plotting import plot_roc

    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    display = plot_roc(y_true, y_score, name=Path(name).name)
    display.figure_.savefig(folder / "roc.png", dpi=100)
    plt.close(display.figure_)
    print(f"wrote {str(folder / 'metrics.json')!r} and {str(folder / 'roc.png')!r}")
