"""The OOD evaluation protocol shared by ``paper_ood.py`` and ``bench_proxy_ood.py``.

Everything is embedded once, before any detector runs: the task prompts,
the world corpus, the in-distribution fitting images (for the methods that
need them), the in-distribution test set and every OOD set. Each detector
is then fitted with ``encoder="precomputed"`` on those embeddings and scores
the same arrays, once per seed. Detectors without ``random_state`` (the
zero-shot baselines, MSP, Mahalanobis, KNN) are fitted once; their std over
seeds is 0. Methods fitted on in-distribution images are marked with
``ID_MARK`` in the table, as the papers do.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.base import clone

from skhftt import HFTTDetector
from skhftt.detectors import (
    EnergyDetector,
    MaxLogitDetector,
    MCMDetector,
    NegLabelDetector,
)
from skhftt.detectors.image_fitted import KNNDetector, MahalanobisDetector, MSPDetector
from skhftt.embedding.cache import encode_texts
from skhftt.evaluation.metrics import ood_metrics

TEXT_METHODS = ("HFTT", "MCM", "MaxLogit", "Energy", "NegLabel")
IMAGE_METHODS = ("MSP", "Mahalanobis", "KNN")  # fitted on in-distribution images
METHODS = TEXT_METHODS + IMAGE_METHODS
AVERAGE = "Average"
IN_DISTRIBUTION = "ImageNet"
ID_MARK = "†"


def log(message: str) -> None:
    """Progress goes to stderr, so that stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


def count_or_fraction(value: str) -> int | float:
    """``"10000"`` -> 10000, ``"0.15"`` -> 0.15 (for NegLabel's ``n_negatives``)."""
    number = float(value)
    if number.is_integer() and number >= 1:
        return int(number)
    if 0 < number < 1:
        return number
    raise argparse.ArgumentTypeError(f"expected a count >= 1 or a fraction in (0, 1); got {value}")


def method_parameter(value: str) -> tuple[str, str, object]:
    """``"HFTT.temperature=0.05"`` -> ("HFTT", "temperature", 0.05)."""
    target, sep, raw = value.partition("=")
    method, dot, parameter = target.partition(".")
    if not (sep and dot and method and parameter):
        raise argparse.ArgumentTypeError(f"expected METHOD.PARAM=VALUE, got {value!r}")
    if method not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown method {method!r}; one of {list(METHODS)}")
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        parsed = raw
    return method, parameter, parsed


def add_protocol_arguments(
    parser: argparse.ArgumentParser,
    *,
    image_methods: bool = False,
    methods: Sequence[str] = TEXT_METHODS,
) -> None:
    """Options every OOD benchmark shares: seeds, methods, NegLabel, output.

    With ``image_methods`` the methods fitted on in-distribution images
    (MSP, Mahalanobis, KNN) can be chosen too, and ``--methods`` defaults to
    None: the script then picks every method its data allow. Otherwise
    ``methods`` are the choices of ``--methods`` and its default.
    """
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS if image_methods else methods,
        default=None if image_methods else list(methods),
        help="methods to run (default: all that the data allow)",
    )
    parser.add_argument("--device", default="auto", help="encoder and HFTT training device")
    parser.add_argument("--batch-size", type=int, default=256, help="inputs per encoder call")
    parser.add_argument("--cache-dir", default=None, help="on-disk text-embedding cache")
    parser.add_argument(
        "--neg-labels", type=count_or_fraction, default=10000,
        help="NegLabel's number of negative labels (or a fraction of the world corpus)",
    )
    parser.add_argument("--neg-groups", type=int, default=100, help="NegLabel's groups")
    parser.add_argument(
        "--set", type=method_parameter, action="append", default=[], dest="overrides",
        metavar="METHOD.PARAM=VALUE", help="set a detector parameter, e.g. HFTT.temperature=0.05",
    )
    parser.add_argument("--output", type=Path, default=None, help="write raw results as JSON")


def make_detectors(
    args: argparse.Namespace, defaults: Mapping[str, Mapping[str, object]] | None = None
) -> dict[str, object]:
    """The compared detectors, unfitted, all on precomputed embeddings.

    ``defaults`` (method -> parameters) is applied first, then the
    ``--set`` overrides, which win. Names of ``args.methods`` that are not
    protocol methods are the caller's to build, and left out here.
    """
    detectors = {
        "HFTT": HFTTDetector(encoder="precomputed", device=args.device),
        "MCM": MCMDetector(encoder="precomputed"),
        "MaxLogit": MaxLogitDetector(encoder="precomputed"),
        "Energy": EnergyDetector(encoder="precomputed"),
        "NegLabel": NegLabelDetector(
            encoder="precomputed", n_negatives=args.neg_labels, n_groups=args.neg_groups
        ),
        "MSP": MSPDetector(encoder="precomputed"),
        "Mahalanobis": MahalanobisDetector(encoder="precomputed"),
        "KNN": KNNDetector(encoder="precomputed"),
    }
    for method, parameters in (defaults or {}).items():
        detectors[method].set_params(**parameters)
    for method, parameter, value in args.overrides:
        detectors[method].set_params(**{parameter: value})
    return {name: detectors[name] for name in args.methods if name in detectors}


def embed_task(
    encoder, task: dict[str, list[str]], *, batch_size: int, cache_dir: str | None
) -> dict[str, np.ndarray]:
    """Embed every prompt once; class name -> (n_prompts, dim) array."""
    prompts = [prompt for group in task.values() for prompt in group]
    embeddings = encode_texts(
        encoder, prompts, batch_size=batch_size, show_progress=True, cache_dir=cache_dir
    )
    bounds = np.cumsum([0] + [len(group) for group in task.values()])
    return {
        name: embeddings[start:stop]
        for name, start, stop in zip(task, bounds[:-1], bounds[1:], strict=True)
    }


def run(
    detectors: dict[str, object],
    *,
    world: np.ndarray,
    task: dict[str, np.ndarray],
    in_set: np.ndarray,
    ood_sets: dict[str, np.ndarray],
    seeds: int,
    id_images: tuple[np.ndarray, np.ndarray] | None = None,
    tasks: Mapping[str, dict[str, np.ndarray]] | None = None,
) -> dict[str, dict]:
    """Fit every detector per seed and evaluate it on every OOD set.

    Parameters
    ----------
    detectors : dict
        Method name -> unfitted detector.
    world, task : ndarray, dict
        World corpus and task prompt embeddings, for the text-fitted methods.
    in_set, ood_sets : ndarray, dict
        In-distribution test embeddings and OOD name -> embeddings.
    seeds : int
        Seeds (0, 1, ...) of the detectors that have ``random_state``.
    id_images : (embeddings, class labels), optional
        In-distribution fitting images for the methods of ``IMAGE_METHODS``;
        never the ones of ``in_set``.
    tasks : dict, optional
        Method name -> task prompt embeddings, for the methods whose
        reference prompts the task its own way; the others get ``task``.

    Returns
    -------
    dict
        ``{method: {"fit_seconds": [...], "uses_id_images": bool,
        "metrics": {dataset: [row per seed]}}}`` where a row is
        :func:`skhftt.evaluation.metrics.ood_metrics`' dict.
    """
    results = {}
    for name, detector in detectors.items():
        uses_id_images = name in IMAGE_METHODS
        if uses_id_images and id_images is None:
            raise ValueError(f"{name} is fitted on in-distribution images, but none were given.")
        fit_args = id_images if uses_id_images else (world, (tasks or {}).get(name, task))
        seeded = "random_state" in detector.get_params()
        fit_seconds, rows = [], {dataset: [] for dataset in ood_sets}
        for seed in range(seeds if seeded else 1):
            model = clone(detector).set_params(random_state=seed) if seeded else clone(detector)
            started = time.perf_counter()
            model.fit(*fit_args)
            fit_seconds.append(time.perf_counter() - started)
            scores_in = model.decision_function(in_set)
            for dataset, embeddings in ood_sets.items():
                rows[dataset].append(_metrics(scores_in, model.decision_function(embeddings)))
            log(f"{name} seed {seed}: fit {fit_seconds[-1]:.2f} s")
        if not seeded:  # deterministic: the same row for every seed
            rows = {dataset: found * seeds for dataset, found in rows.items()}
        results[name] = {
            "fit_seconds": fit_seconds, "uses_id_images": uses_id_images, "metrics": rows,
        }
    return results


def _metrics(scores_in: np.ndarray, scores_out: np.ndarray) -> dict[str, float]:
    """:func:`~skhftt.evaluation.metrics.ood_metrics` of in- against out-of-distribution scores."""
    y = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    return ood_metrics(y, np.r_[scores_in, scores_out])


def external_result(
    scores: Mapping[str, object],
    datasets: Sequence[str],
    *,
    in_name: str = IN_DISTRIBUTION,
    uses_id_images: bool = False,
) -> dict:
    """A result of ``run``'s form for scores computed outside skhftt.

    For methods skhftt does not ship (NPOS, ZOC, CLIPN, ...): their scores
    on the same images join the table through this function.

    Parameters
    ----------
    scores : mapping
        ``in_name`` and every name of ``datasets`` -> scores (higher = more
        in-distribution), a 1-D array for one run or a 2-D array with one
        row per run (seed). Every entry must have the same number of runs.
    datasets : sequence of str
        The OOD datasets of the table.
    in_name : str, default="ImageNet"
        Key of the in-distribution scores.
    uses_id_images : bool, default=False
        Whether the method used in-distribution images (marked in the table).

    Returns
    -------
    dict
        ``{"fit_seconds": [], "uses_id_images": ..., "metrics": {dataset: [row per run]}}``.
    """
    missing = [name for name in (in_name, *datasets) if name not in scores]
    if missing:
        raise ValueError(f"the scores lack {missing}; they have {sorted(scores)}.")
    runs = {name: np.atleast_2d(np.asarray(scores[name], dtype=np.float64))
            for name in (in_name, *datasets)}
    for name, values in runs.items():
        if values.ndim != 2 or values.shape[1] == 0:
            raise ValueError(f"scores[{name!r}] must be a 1-D or 2-D array of scores; "
                             f"got shape {np.shape(scores[name])}.")
    counts = {name: values.shape[0] for name, values in runs.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"every entry needs the same number of runs; got {counts}.")
    metrics = {
        dataset: [_metrics(scores_in, scores_out)
                  for scores_in, scores_out in zip(runs[in_name], runs[dataset], strict=True)]
        for dataset in datasets
    }
    return {"fit_seconds": [], "uses_id_images": uses_id_images, "metrics": metrics}


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def _cell(values: Sequence[float]) -> str:
    """Mean ± sample standard deviation, in %."""
    mean, spread = mean_and_spread(100 * np.asarray(values))
    return f"{mean:.2f}±{spread:.2f}"


def seed_averages(result: dict, datasets: Sequence[str], key: str = "fpr95") -> np.ndarray:
    """Per seed, the mean of ``key`` over ``datasets`` (a row of ``run``'s result)."""
    rows = result["metrics"]
    return np.mean([[row[key] for row in rows[dataset]] for dataset in datasets], axis=0)


def format_table(
    results: dict[str, dict],
    datasets: Sequence[str],
    averaged: Sequence[str] | None = None,
) -> str:
    """A Markdown table in the papers' layout: FPR95 and AUROC per dataset, in %.

    Rows are methods; every dataset has an FPR95 (lower is better) and an
    AUROC (higher is better) column, as mean ± std over seeds; "Average"
    averages the datasets of ``averaged`` (default: all) within each seed
    first. Methods that used in-distribution images carry ``ID_MARK``,
    explained below the table.
    """
    header = ["Method"]
    for dataset in [*datasets, AVERAGE]:
        header += [f"{dataset} FPR95↓", f"{dataset} AUROC↑"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, result in results.items():
        rows = result["metrics"]
        cells = [method + (ID_MARK if result.get("uses_id_images") else "")]
        for dataset in datasets:
            cells += [_cell([row["fpr95"] for row in rows[dataset]]),
                      _cell([row["auroc"] for row in rows[dataset]])]
        for key in ("fpr95", "auroc"):
            cells.append(_cell(seed_averages(result, averaged or datasets, key)))
        lines.append("| " + " | ".join(cells) + " |")
    if any(result.get("uses_id_images") for result in results.values()):
        lines += ["", f"{ID_MARK} used in-distribution images; the other rows used none."]
    return "\n".join(lines)


def report(results: dict[str, dict], datasets: Sequence[str], args: argparse.Namespace,
           settings: dict) -> None:
    """Print the table (stdout) and the mean fit times; write JSON if asked.

    ``settings`` describes the data; the shared options are added to it.
    """
    print(format_table(results, datasets))
    for method, result in results.items():
        if result["fit_seconds"]:
            log(f"{method}: mean fit {np.mean(result['fit_seconds']):.2f} s")
    if args.output is not None:
        settings = {
            **settings, "seeds": args.seeds, "device": args.device,
            "neg_labels": args.neg_labels, "neg_groups": args.neg_groups,
            "overrides": [f"{m}.{p}={v!r}" for m, p, v in args.overrides],
        }
        args.output.write_text(
            json.dumps({"settings": settings, "results": results}, indent=2), "utf-8"
        )
        log(f"wrote {args.output}")
