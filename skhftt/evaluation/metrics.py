"""OOD metrics, scikit-learn scorers, and a scorer for held-out labelled images.

Conventions
-----------
skhftt follows the convention of the OOD papers it is compared with (ODIN,
MCM, NegLabel): **the in-distribution is the positive class**.

* ``y_true``: 1 (or +1, or True) marks an in-distribution sample, i.e. one
  that matches the task texts; 0 (or -1, or False) marks an unwanted
  ("out-of-distribution") one. Both scikit-learn's outlier labels {-1, +1}
  and {0, 1} are accepted.
* ``y_score``: higher means more in-distribution, as returned by a
  detector's ``decision_function`` or ``score_samples``.

With these, FPR@95 is the fraction of out-of-distribution samples that are
still accepted when the threshold keeps 95 % of the in-distribution samples.
Some libraries (OpenOOD 1.5, pytorch-ood, and the evaluation code released
with the HFTT paper) use the opposite view: out-of-distribution positive,
and FPR is the fraction of in-distribution samples rejected when 95 % of the
out-of-distribution samples are caught. That number is
``fpr_at_tpr(1 - y_in, -y_score)`` here; the two differ in general, so
compare tables only when they share the convention. AUROC is the same in
both views; AUPR-In and AUPR-Out swap.

Scorers
-------
scikit-learn has no public registry for custom scorer names, so a string
such as ``scoring="fpr95"`` cannot reach ``GridSearchCV``. skhftt instead
resolves its names to scorer objects: ``scoring=get_scorer("fpr95")``, or a
dict of several for multi-metric search. :func:`get_scorer` falls back to
scikit-learn's own names, so one call covers both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, make_scorer, roc_auc_score
from sklearn.metrics import get_scorer as _sklearn_get_scorer

__all__ = [
    "HeldOutScorer",
    "aupr_in",
    "aupr_out",
    "auroc",
    "fpr_at_tpr",
    "get_scorer",
    "get_scorer_names",
    "ood_metrics",
]

_FPR_NAME = re.compile(r"^fpr(\d{1,2})$")


def _check_in_labels(y_true: object) -> np.ndarray:
    """``y_true`` as a boolean "in-distribution" vector, with both classes present."""
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array of labels; got shape {labels.shape}.")
    values = np.unique(labels)
    if labels.dtype.kind not in "biuf" or not np.isin(values, [-1, 0, 1]).all():
        raise ValueError(
            "y_true must hold in-distribution labels 1 (in) and 0 or -1 (out); "
            f"got values {values[:10].tolist()}."
        )
    is_in = labels == 1
    if is_in.all() or not is_in.any():
        raise ValueError(
            "y_true must contain both in-distribution (1) and out-of-distribution "
            f"(0 or -1) samples; got only {values.tolist()}."
        )
    return is_in


def _check_ood_inputs(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as a boolean "in-distribution" vector, ``y_score`` as float64."""
    is_in = _check_in_labels(y_true)
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.shape != is_in.shape:
        raise ValueError(
            f"y_score must be a 1-D array with one score per label: y_true has shape "
            f"{is_in.shape}, y_score {scores.shape}."
        )
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))
        raise ValueError(
            f"y_score contains {bad.size} NaN or infinite value(s), first at index {bad[0]}."
        )
    return is_in, scores


def fpr_at_tpr(y_true: object, y_score: object, *, tpr: float = 0.95) -> float:
    """False positive rate at the threshold that keeps ``tpr`` of the in-distribution.

    The threshold ``t`` is the highest score such that at least a fraction
    ``tpr`` of the in-distribution samples score ``>= t``; the result is the
    fraction of out-of-distribution samples that also score ``>= t``.
    Samples tied at ``t`` all count as accepted, so ties never flatter a
    detector: a constant score gives FPR = 1.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 (or +1, True) for in-distribution, 0 (or -1, False) for
        out-of-distribution.
    y_score : array-like of shape (n_samples,)
        Scores, higher = more in-distribution.
    tpr : float, default=0.95
        Target true positive rate, in (0, 1].

    Returns
    -------
    float
        FPR in [0, 1]; lower is better.

    Notes
    -----
    "At least ``tpr``" is the rule of pytorch-ood's and OpenOOD's
    ``fpr_at_tpr`` (the first ROC point with TPR >= ``tpr``). The code of
    Hendrycks et al., reused by several OOD papers, instead takes the ROC
    point whose TPR is *nearest* to ``tpr``, which may keep fewer than
    ``tpr`` of the in-distribution; on small sets the two can differ by one
    step. See the module documentation for which class is positive.

    Examples
    --------
    >>> fpr_at_tpr([1, 1, 1, 1, 0, 0], [0.9, 0.8, 0.7, 0.1, 0.5, 0.05], tpr=0.75)
    0.0
    >>> fpr_at_tpr([1, 1, 1, 1, 0, 0], [0.9, 0.8, 0.7, 0.1, 0.5, 0.05], tpr=1.0)
    0.5
    """
    if isinstance(tpr, bool) or not isinstance(tpr, Real) or not 0 < tpr <= 1:
        raise ValueError(f"tpr must be a float in (0, 1]; got {tpr!r}.")
    is_in, scores = _check_ood_inputs(y_true, y_score)
    order = np.argsort(-scores, kind="mergesort")
    ranked_scores, ranked_in = scores[order], is_in[order]
    # Last index of each run of equal scores: the ROC points.
    ends = np.r_[np.flatnonzero(np.diff(ranked_scores)), ranked_scores.size - 1]
    true_pos = np.cumsum(ranked_in)[ends]
    false_pos = ends + 1 - true_pos
    n_in = int(is_in.sum())
    needed = math.ceil(round(tpr * n_in, 9))
    point = int(np.searchsorted(true_pos, needed, side="left"))
    return float(false_pos[point] / (is_in.size - n_in))


def auroc(y_true: object, y_score: object) -> float:
    """Area under the ROC curve, in-distribution positive.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 or -1 for out-of-distribution.
    y_score : array-like of shape (n_samples,)
        Scores, higher = more in-distribution.

    Returns
    -------
    float
        AUROC in [0, 1]; higher is better. Ties count one half.

    Examples
    --------
    >>> auroc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    0.75
    """
    is_in, scores = _check_ood_inputs(y_true, y_score)
    return float(roc_auc_score(is_in, scores))


def aupr_in(y_true: object, y_score: object) -> float:
    """Average precision with the in-distribution as the positive class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 or -1 for out-of-distribution.
    y_score : array-like of shape (n_samples,)
        Scores, higher = more in-distribution.

    Returns
    -------
    float
        :func:`sklearn.metrics.average_precision_score` of the
        in-distribution samples; higher is better.

    Examples
    --------
    >>> aupr_in([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    0.8333333333333333
    """
    is_in, scores = _check_ood_inputs(y_true, y_score)
    return float(average_precision_score(is_in, scores))


def aupr_out(y_true: object, y_score: object) -> float:
    """Average precision with the out-of-distribution as the positive class.

    The scores are negated, so that the most out-of-distribution samples
    rank first.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 or -1 for out-of-distribution.
    y_score : array-like of shape (n_samples,)
        Scores, higher = more in-distribution.

    Returns
    -------
    float
        Average precision of the out-of-distribution samples; higher is
        better.

    Examples
    --------
    >>> aupr_out([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    0.8333333333333333
    """
    is_in, scores = _check_ood_inputs(y_true, y_score)
    return float(average_precision_score(~is_in, -scores))


def ood_metrics(y_true: object, y_score: object, *, tpr: float = 0.95) -> dict[str, float]:
    """The standard OOD table row: FPR@tpr, AUROC, AUPR-In, AUPR-Out.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 or -1 for out-of-distribution.
    y_score : array-like of shape (n_samples,)
        Scores, higher = more in-distribution.
    tpr : float, default=0.95
        True positive rate of the FPR entry.

    Returns
    -------
    dict of str to float
        Keys ``"fpr95"`` (``"fpr90"`` for ``tpr=0.9``, ...), ``"auroc"``,
        ``"aupr_in"`` and ``"aupr_out"``, each in [0, 1].

    Examples
    --------
    >>> ood_metrics([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    {'fpr95': 0.5, 'auroc': 0.75, 'aupr_in': 0.8333333333333333, 'aupr_out': 0.8333333333333333}
    """
    return {
        f"fpr{round(tpr * 100):d}": fpr_at_tpr(y_true, y_score, tpr=tpr),
        "auroc": auroc(y_true, y_score),
        "aupr_in": aupr_in(y_true, y_score),
        "aupr_out": aupr_out(y_true, y_score),
    }


# --------------------------------------------------------------- scorers


@dataclass(frozen=True)
class _Metric:
    function: Callable[..., float]
    greater_is_better: bool
    kwargs: Mapping[str, Any]


_METRICS = {
    "auroc": _Metric(auroc, True, {}),
    "aupr_in": _Metric(aupr_in, True, {}),
    "aupr_out": _Metric(aupr_out, True, {}),
}


def _metric(name: str) -> _Metric | None:
    match = _FPR_NAME.match(name)
    if match and 0 < int(match.group(1)) < 100:
        return _Metric(fpr_at_tpr, False, {"tpr": int(match.group(1)) / 100})
    return _METRICS.get(name)


def get_scorer_names() -> list[str]:
    """Names that :func:`get_scorer` resolves besides scikit-learn's own.

    Returns
    -------
    list of str
        ``["aupr_in", "aupr_out", "auroc", "fpr95"]``; ``"fprNN"`` works
        for any NN from 1 to 99 (e.g. ``"fpr90"``).
    """
    return sorted([*_METRICS, "fpr95"])


def get_scorer(scoring: str | Callable) -> Callable:
    """A scorer for ``GridSearchCV``, ``cross_val_score`` and friends.

    Parameters
    ----------
    scoring : str or callable
        An skhftt metric name (see :func:`get_scorer_names`), any name
        scikit-learn knows (e.g. ``"roc_auc"``), or a callable, returned
        unchanged.

    Returns
    -------
    callable
        ``scorer(estimator, X, y)``. skhftt scorers call
        ``estimator.decision_function(X)`` and read ``y`` as
        in-distribution labels (1 or +1 = in). For lower-is-better metrics
        (``"fprNN"``) the scorer returns the negated value, as scikit-learn's
        ``neg_*`` scorers do, so that larger is always better.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skhftt import HFTTDetector
    >>> from skhftt.evaluation.metrics import get_scorer
    >>> search = GridSearchCV(
    ...     HFTTDetector(encoder="precomputed"),
    ...     {"gamma": [0.0, 1.0]},
    ...     scoring={"fpr95": get_scorer("fpr95"), "auroc": get_scorer("auroc")},
    ...     refit="fpr95",
    ... )
    """
    if callable(scoring):
        return scoring
    if not isinstance(scoring, str):
        raise TypeError(
            f"scoring must be a metric name or a callable; got {type(scoring).__name__}."
        )
    metric = _metric(scoring)
    if metric is None:
        try:
            return _sklearn_get_scorer(scoring)
        except ValueError:
            raise ValueError(
                f"{scoring!r} is neither an skhftt metric ({get_scorer_names()}, or "
                "'fprNN' for another TPR) nor a scikit-learn scorer name."
            ) from None
    return make_scorer(
        metric.function,
        response_method="decision_function",
        greater_is_better=metric.greater_is_better,
        **metric.kwargs,
    )


class HeldOutScorer:
    """Score every candidate on one fixed, labelled set of images.

    Model selection for HFTT fits on texts but should judge on images.
    Passed as ``scoring=`` to ``GridSearchCV`` (or ``cross_validate``), this
    scorer ignores the fold it is given and evaluates the fitted candidate
    on the held-out images instead, so the folds split only the texts
    (``fit(texts, y)`` with 0/1 PU labels) while the hyperparameters are
    chosen by image-side FPR@95 or AUROC.

    Parameters
    ----------
    X : images or array-like of shape (n_images, dim)
        The held-out images, or better their embeddings (embed them once
        with the encoder the candidates use). Anything a detector's
        ``decision_function`` accepts.
    y : array-like of shape (n_images,)
        1 (or +1) for images that match the task, 0 (or -1) for the others.
    metric : str, callable or sequence of str, default="fpr95"
        A name from :func:`get_scorer_names`, a callable
        ``metric(y_true, y_score) -> float`` (higher = better unless
        ``greater_is_better=False``), or several names: the scorer then
        returns a dict, for multi-metric search with ``refit=<name>``.
    greater_is_better : bool, default=True
        Only for a callable ``metric``.

    Notes
    -----
    Images (not embeddings) are embedded once per encoder: the embeddings
    are cached on the scorer, keyed by the candidate's
    ``encoder_identity_``, so a grid over head hyperparameters runs the
    image tower once. Lower-is-better metrics are returned negated, like
    :func:`get_scorer`'s.

    Never select hyperparameters on the images you report results on; keep
    a separate test set.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV, StratifiedKFold
    >>> from skhftt import HFTTDetector
    >>> from skhftt.evaluation.metrics import HeldOutScorer
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 16))             # three task classes
    >>> task = np.repeat(centres, 6, axis=0) + 0.2 * rng.normal(size=(18, 16))
    >>> world = rng.normal(size=(300, 16))
    >>> texts, y_texts = np.vstack([world, task]), np.r_[np.zeros(300), np.ones(18)]
    >>> images = np.vstack([centres + 0.3 * rng.normal(size=(3, 16)), rng.normal(size=(6, 16))])
    >>> y_images = np.r_[np.ones(3), np.zeros(6)]
    >>> search = GridSearchCV(
    ...     HFTTDetector(encoder="precomputed", random_state=0),
    ...     {"n_embeddings": [2, 10]},
    ...     scoring=HeldOutScorer(images, y_images, metric="auroc"),
    ...     cv=StratifiedKFold(2, shuffle=True, random_state=0),
    ... ).fit(texts, y_texts)
    >>> float(search.best_score_)
    1.0
    """

    def __init__(
        self,
        X: object,
        y: object,
        *,
        metric: str | Callable | Sequence[str] = "fpr95",
        greater_is_better: bool = True,
    ) -> None:
        self.X = X
        self.y = np.asarray(y)
        _check_in_labels(self.y)
        self.metric = metric
        self.greater_is_better = greater_is_better
        self._metrics = self._resolve(metric, greater_is_better)
        self._embeddings: dict[str, np.ndarray] = {}

    @staticmethod
    def _resolve(metric: object, greater_is_better: bool) -> dict[str, _Metric]:
        if callable(metric):
            name = getattr(metric, "__name__", "score")
            return {name: _Metric(metric, greater_is_better, {})}
        names = [metric] if isinstance(metric, str) else list(metric)  # type: ignore[arg-type]
        if not names:
            raise ValueError("metric is empty: name at least one metric.")
        resolved = {}
        for name in names:
            found = _metric(name) if isinstance(name, str) else None
            if found is None:
                raise ValueError(
                    f"unknown metric {name!r}; use one of {get_scorer_names()} "
                    "(or 'fprNN'), or pass a callable metric(y_true, y_score)."
                )
            resolved[name] = found
        return resolved

    def _inputs_for(self, estimator: Any) -> object:
        """The held-out set, embedded once per encoder when the candidate can embed."""
        if not hasattr(estimator, "embed"):
            return self.X
        key = str(getattr(estimator, "encoder_identity_", None))
        if key not in self._embeddings:
            self._embeddings[key] = estimator.embed(self.X)
        return self._embeddings[key]

    def __call__(
        self, estimator: Any, X: object = None, y: object = None, **kwargs: Any
    ) -> float | dict[str, float]:
        """Score ``estimator`` on the held-out set; ``X`` and ``y`` are ignored.

        Returns
        -------
        float or dict of str to float
            The metric (negated when lower is better), or one entry per
            metric when several were named.
        """
        scores = estimator.decision_function(self._inputs_for(estimator))
        results = {}
        for name, metric in self._metrics.items():
            value = float(metric.function(self.y, scores, **metric.kwargs))
            results[name] = value if metric.greater_is_better else -value
        if callable(self.metric) or isinstance(self.metric, str):
            return next(iter(results.values()))
        return results

    def __repr__(self) -> str:
        return f"HeldOutScorer(n_samples={len(self.y)}, metric={self.metric!r})"
