"""Text-only model selection: pick a detector and its hyperparameters from texts alone.

A detector of unwanted images is fitted on texts, and no labelled image may
choose it. :func:`select_detector` scores every candidate on held-out
*texts* in a way that imitates the job, and refits the best:

* **Held-out phrasings.** Each task item's prompts are split: the last
  ``validation_fraction`` of them (e.g. 2 of 8 templates) are never fitted
  on. They stand in for in-distribution images: the same concepts, worded
  differently.
* **Held-out world texts.** The world corpus is split into ``n_folds``
  folds; each fold is scored by detectors fitted on the others. They stand
  in for everything else (they are unlabelled, so a few of them match the
  task: every candidate pays for those alike).
* **Held-out task items** (a fraction ``item_fraction`` per fold). What they
  mean depends on the job:

  - ``job="ood"`` (the task lists what to *keep*, e.g. ImageNet's classes):
    an item the detector was not given is out of distribution, so the
    held-out items' prompts join the *out* side, a near-OOD stand-in;
  - ``job="concept"`` (the task describes one unwanted concept with a few
    texts): unseen members of the concept must still be recognised, so the
    held-out items' prompts are the *in* side.

The criterion is FPR95 (or AUROC) of in against out, averaged over the
folds. Training loss is no criterion: HFTT's loss can be lower for worse
detectors (two of ten columns absorbing the world corpus).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_random_state

from skhftt.embedding.inputs import Texts
from skhftt.evaluation.metrics import ood_metrics
from skhftt.space.task import parse_task
from skhftt.space.validation import check_embeddings, is_string_sequence

__all__ = ["SelectionResult", "ensemble_grid", "select_detector", "temperature_grid"]

JOBS = ("ood", "concept")
# The selection job of a detector's job (its ``unwanted``): a keep job is OOD removal.
_SELECTION_JOB = {"mismatch": "ood", "match": "concept"}
# HFTT's temperatures that temperature_grid offers, fixed before any benchmark ran.
HFTT_TEMPERATURES = (0.01, 0.02, 0.05, 0.1)
SCORINGS = ("fpr95", "auroc")
# The grid bench_proxy_ood measured; ensemble_grid's defaults.
ENSEMBLE_TEMPERATURES = (0.01, 0.02, 0.05)
ENSEMBLE_MCM_WEIGHTS = (0.0, 0.25, 0.5)


@dataclass
class SelectionResult:
    """What :func:`select_detector` found.

    Attributes
    ----------
    best_name : str
        The candidate with the best criterion.
    best_estimator : detector or None
        That candidate refitted on every task prompt and the whole world
        corpus; None with ``refit=False``.
    criteria : dict
        Candidate name -> ``{"fpr95": mean, "auroc": mean, "folds": [per-fold
        ood_metrics dicts]}``.
    scoring : str
        The metric that chose (``"fpr95"``: lower is better; ``"auroc"``:
        higher is better).
    """

    best_name: str
    best_estimator: Any
    criteria: dict[str, dict[str, Any]] = field(default_factory=dict)
    scoring: str = "fpr95"

    def ranking(self) -> list[str]:
        """Candidate names, best first."""
        return _ranked(self.criteria, self.scoring)


def _stack(prompts: Sequence[object]) -> object:
    """Prompts of several items as one list of texts or one array of embeddings."""
    if prompts and isinstance(prompts[0], str):
        return list(prompts)
    return np.concatenate([np.atleast_2d(p) for p in prompts])


def _split_items(task: Any, validation_fraction: float) -> tuple[list, list]:
    """Per task item: the prompts to fit on and the held-out ones."""
    grouped: list[list] = [[] for _ in task.names]
    if task.are_texts:
        for prompt, owner in zip(task.prompts, task.owners, strict=True):
            grouped[owner].append(prompt)
    else:
        grouped = [list(np.atleast_2d(block)) for block in task.prompts]
    fit, held = [], []
    for name, prompts in zip(task.names, grouped, strict=True):
        if len(prompts) < 2:
            raise ValueError(
                f"task item {name!r} has {len(prompts)} prompt; text-only selection holds "
                "some of each item's prompts out, so every item needs at least 2 (pass "
                "class names with several templates, or a mapping class -> prompts)."
            )
        n_held = min(len(prompts) - 1, max(1, round(validation_fraction * len(prompts))))
        fit.append(prompts[: len(prompts) - n_held])
        held.append(prompts[len(prompts) - n_held :])
    return fit, held


def _task_mapping(names: Sequence[str], prompts: Sequence[list], keep: np.ndarray) -> dict:
    if prompts and isinstance(prompts[0][0], str):
        return {names[i]: list(prompts[i]) for i in keep}
    return {names[i]: np.stack(prompts[i]) for i in keep}


def ensemble_grid(
    detector: Any,
    *,
    temperatures: Sequence[float] = ENSEMBLE_TEMPERATURES,
    mcm_weights: Sequence[float] = ENSEMBLE_MCM_WEIGHTS,
) -> dict[str, Any]:
    """Candidates for :func:`select_detector`: an ensemble detector over a grid.

    The grid measured in ``benchmarks/RESULTS.md`` (bench_proxy_ood): HFTT's
    temperature times the weight of MCM's score (0 is plain HFTT at that
    temperature).

    Parameters
    ----------
    detector : HFTTEnsembleDetector
        Unfitted; every candidate is a clone with ``temperature`` and
        ``mcm_weight`` set.
    temperatures, mcm_weights : sequence of float

    Returns
    -------
    dict of str to detector
        ``"T=<t>, w=<w>"`` -> candidate.
    """
    return {f"T={t:g}, w={w:g}": clone(detector).set_params(temperature=t, mcm_weight=w)
            for t in temperatures for w in mcm_weights}


def temperature_grid(
    detector: Any, *, temperatures: Sequence[float] = HFTT_TEMPERATURES
) -> dict[str, Any]:
    """Candidates for :func:`select_detector`: a detector at several temperatures.

    The default choice of ``skhftt fit --remove``: HFTT at the paper's
    temperature (0.01) and three softer ones.

    Parameters
    ----------
    detector : detector with a ``temperature`` parameter
        Unfitted; every candidate is a clone with ``temperature`` set.
    temperatures : sequence of float, default=(0.01, 0.02, 0.05, 0.1)

    Returns
    -------
    dict of str to detector
        ``"T=<t>"`` -> candidate.
    """
    return {f"T={t:g}": clone(detector).set_params(temperature=t) for t in temperatures}


def _job_of(candidates: Mapping[str, Any], job: str | None) -> str:
    """The selection job: given, or that of the candidates' own job (``unwanted``)."""
    jobs = {_SELECTION_JOB[c.get_params().get("unwanted", "mismatch")]
            for c in candidates.values()}
    if job is None:
        if len(jobs) > 1:
            raise ValueError("the candidates are made for different jobs (unwanted='match' "
                             "and 'mismatch'); select among detectors of one job.")
        return jobs.pop()
    if job not in JOBS:
        raise ValueError(f"job must be one of {list(JOBS)} or None; got {job!r}.")
    if jobs != {job}:
        raise ValueError(
            f"job={job!r} contradicts the candidates' own job: a detector with "
            f"unwanted='mismatch' keeps what matches its task (job 'ood'), one with "
            f"unwanted='match' removes it (job 'concept'). Leave job=None, or set the "
            "candidates' unwanted.")
    return job


def _templates_of(candidates: Mapping[str, Any]) -> list[str] | None:
    """The templates every candidate was given (None when none has any)."""
    given = {tuple(c.get_params().get("templates") or ()) for c in candidates.values()}
    if len(given) > 1:
        raise ValueError("the candidates have different templates; give templates= once, "
                         "for all of them.")
    return list(given.pop()) or None


def select_detector(
    candidates: Mapping[str, Any],
    X: object,
    y: object,
    *,
    job: Literal["ood", "concept"] | None = None,
    templates: Sequence[str] | None = None,
    validation_fraction: float = 0.25,
    item_fraction: float = 0.2,
    n_folds: int = 2,
    scoring: Literal["fpr95", "auroc"] = "fpr95",
    refit: bool = True,
    random_state: int | np.random.RandomState | None = 0,
) -> SelectionResult:
    """Choose among detectors (kinds and hyperparameters) with texts alone.

    Parameters
    ----------
    candidates : mapping of str to detector
        Unfitted detectors by name, e.g. ``{"HFTT T=0.01": HFTTDetector(),
        "HFTT T=0.05": HFTTDetector(temperature=0.05), "MCM":
        MCMDetector()}``. Each is cloned; a ``templates`` parameter is
        cleared, since the prompts are expanded here.
    X : sequence of str, array-like of shape (n_texts, dim) or None
        The world corpus (texts, or embeddings for ``encoder="precomputed"``);
        None is the bundled corpus (:func:`skhftt.corpora.load_world_corpus`),
        as in the detectors' ``fit``.
    y : sequence of str or mapping
        The task, as for the detectors' ``fit``: class names (with
        ``templates``), a mapping class -> prompts, or a mapping class ->
        ``(m, d)`` prompt embeddings. Every item needs at least 2 prompts.
    job : {"ood", "concept"} or None, default=None
        ``"ood"``: the task lists what to keep, held-out items are out of
        distribution. ``"concept"``: the task describes an unwanted concept,
        held-out items are in it. See the module docstring. None takes it
        from the candidates' own job (their ``unwanted``: ``"mismatch"`` is
        ``"ood"``, ``"match"`` is ``"concept"``), which must agree.
    templates : list of str, default=None
        Templates expanding class names given as a list. None takes the
        candidates' own ``templates`` (which must agree), if they have any.
    validation_fraction : float, default=0.25
        Share of each item's prompts (the last ones) held out as in-distribution
        stand-ins, at least 1 and at most all but one.
    item_fraction : float, default=0.2
        Share of the task items held out in each fold (at least 1 item).
    n_folds : int, default=2
        Folds of the world corpus; fold ``f`` also holds out the ``f``-th
        group of items.
    scoring : {"fpr95", "auroc"}, default="fpr95"
        The criterion: mean FPR95 over folds (lower is better) or mean AUROC.
    refit : bool, default=True
        Refit the best candidate on all prompts and the whole world corpus.
    random_state : int, RandomState instance or None, default=0
        Seeds the world folds and the item groups.

    Returns
    -------
    SelectionResult

    Raises
    ------
    ValueError
        Fewer than 2 candidates' worth of input (no candidate, fewer than 2
        task items, an item with one prompt, a world corpus smaller than
        ``n_folds``), an unknown ``job`` / ``scoring``, or a ``job`` that
        contradicts the candidates' own.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import MCMDetector, MaxLogitDetector
    >>> from skhftt.evaluation import select_detector
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(6, 16))
    >>> task = {f"c{i}": centres[i] + 0.3 * rng.normal(size=(4, 16)) for i in range(6)}
    >>> world = rng.normal(size=(300, 16))
    >>> result = select_detector(
    ...     {"MCM": MCMDetector(encoder="precomputed"),
    ...      "MaxLogit": MaxLogitDetector(encoder="precomputed")},
    ...     world, task, job="ood")
    >>> result.best_name in {"MCM", "MaxLogit"}, sorted(result.criteria)
    (True, ['MCM', 'MaxLogit'])
    """
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {list(SCORINGS)}; got {scoring!r}.")
    if not candidates:
        raise ValueError("candidates is empty; give at least one detector.")
    job = _job_of(candidates, job)
    if templates is None:
        templates = _templates_of(candidates)
    if not (0 < validation_fraction < 1 and 0 < item_fraction < 1):
        raise ValueError(
            "validation_fraction and item_fraction must be in (0, 1); got "
            f"{validation_fraction} and {item_fraction}."
        )
    task = parse_task(y, templates=templates)
    if len(task.names) < 2:
        raise ValueError(
            f"the task has {len(task.names)} item; holding items out needs at least 2."
        )
    if X is None:
        from skhftt.corpora import load_world_corpus

        X = load_world_corpus()
    world = list(X) if is_string_sequence(X) else check_embeddings(X, name="X")
    if len(world) < n_folds or n_folds < 2:
        raise ValueError(
            f"n_folds={n_folds} needs at least 2 folds and at most one per world text "
            f"({len(world)})."
        )
    fit_prompts, held_prompts = _split_items(task, validation_fraction)
    rng = check_random_state(random_state)
    world_folds = np.array_split(rng.permutation(len(world)), n_folds)
    n_groups = max(n_folds, round(1 / item_fraction))
    n_groups = min(n_groups, len(task.names))
    item_groups = np.array_split(rng.permutation(len(task.names)), n_groups)

    def take(indices: np.ndarray) -> object:
        return [world[i] for i in indices] if isinstance(world, list) else world[indices]

    criteria = {}
    for name, candidate in candidates.items():
        folds = []
        for fold, held_world in enumerate(world_folds):
            held_items = item_groups[fold % len(item_groups)]
            kept = np.setdiff1d(np.arange(len(task.names)), held_items)
            detector = _untemplated(candidate)
            detector.fit(take(np.setdiff1d(np.arange(len(world)), held_world)),
                         _task_mapping(task.names, fit_prompts, kept))
            unseen = _stack([p for i in held_items for p in fit_prompts[i] + held_prompts[i]])
            rephrased = _stack([p for i in kept for p in held_prompts[i]])
            if job == "ood":
                inside = _score(detector, rephrased)
                outside = np.r_[_score(detector, take(held_world)), _score(detector, unseen)]
            else:
                inside = _score(detector, unseen)
                outside = _score(detector, take(held_world))
            truth = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
            folds.append(ood_metrics(truth, np.r_[inside, outside]))
        criteria[name] = {
            "fpr95": float(np.mean([f["fpr95"] for f in folds])),
            "auroc": float(np.mean([f["auroc"] for f in folds])),
            "folds": folds,
        }
    ranked = _ranked(criteria, scoring)
    best = None
    if refit:
        every = [f + h for f, h in zip(fit_prompts, held_prompts, strict=True)]
        best = _untemplated(candidates[ranked[0]])
        best.fit(X, _task_mapping(task.names, every, np.arange(len(task.names))))
    return SelectionResult(best_name=ranked[0], best_estimator=best, criteria=criteria,
                           scoring=scoring)


def _ranked(criteria: Mapping[str, Mapping[str, Any]], scoring: str) -> list[str]:
    sign = 1.0 if scoring == "fpr95" else -1.0
    return sorted(criteria, key=lambda name: sign * criteria[name][scoring])


def _untemplated(candidate: Any) -> Any:
    """A clone of ``candidate`` that takes its task as prompts already expanded."""
    detector = clone(candidate)
    if "templates" in detector.get_params():
        detector.set_params(templates=None)
    return detector


def _score(detector: Any, inputs: object) -> np.ndarray:
    """Scores of texts (as texts, whatever they look like) or of embeddings."""
    if isinstance(inputs, list):
        return detector.decision_function(Texts(inputs))
    return detector.decision_function(inputs)
