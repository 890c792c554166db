"""Plots of detector scores: ROC curves and score histograms, one call each.

matplotlib is optional: ``pip install "skhftt[plot]"``. Labels follow
:mod:`skhftt.evaluation.metrics`: 1 (or +1) marks samples that match the task, 0 (or
-1) the others; scores are higher for the task.

Examples
--------
>>> from skhftt.evaluation.plotting import ScoreHistogramDisplay, plot_roc
>>> plot_roc(y_images, det.decision_function(images))  # doctest: +SKIP
>>> ScoreHistogramDisplay.from_estimator(det, images, y_images)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.metrics import RocCurveDisplay
from sklearn.utils.validation import check_is_fitted

from skhftt.evaluation.metrics import _check_ood_inputs

__all__ = ["ScoreHistogramDisplay", "plot_roc"]

_DEFAULT_LABELS = ("in-distribution", "out-of-distribution")


def _check_matplotlib(caller: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f'{caller} needs matplotlib: pip install "skhftt[plot]" (or matplotlib).'
        ) from exc


def plot_roc(
    y_true: object,
    y_score: object,
    *,
    ax: Any = None,
    name: str | None = None,
    **kwargs: Any,
) -> RocCurveDisplay:
    """Plot the ROC curve of scores, with the in-distribution as the positive class.

    scikit-learn's ``RocCurveDisplay.from_estimator`` accepts only
    classifiers; this is ``RocCurveDisplay.from_predictions`` with skhftt's
    label conventions.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 (or +1) for samples that match the task, 0 (or -1) for the others.
    y_score : array-like of shape (n_samples,)
        Scores, higher = more like the task, e.g. ``det.decision_function(X)``.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when None.
    name : str, default=None
        Legend name of the curve, e.g. the detector.
    **kwargs
        Passed to ``RocCurveDisplay.from_predictions``.

    Returns
    -------
    sklearn.metrics.RocCurveDisplay
        With ``ax_``, ``figure_`` and ``roc_auc``.
    """
    _check_matplotlib("plot_roc")
    is_in, scores = _check_ood_inputs(y_true, y_score)
    return RocCurveDisplay.from_predictions(
        is_in.astype(int), scores, pos_label=1, name=name, ax=ax, **kwargs
    )


class ScoreHistogramDisplay:
    """Histograms of the scores of in-distribution and other samples.

    Create it with :meth:`from_estimator` or :meth:`from_predictions`; both
    draw at once. The two histograms share their bins, so their overlap is
    the region where no threshold separates them.

    Parameters
    ----------
    scores_in : ndarray of shape (n_in,)
        Scores of the samples that match the task.
    scores_out : ndarray of shape (n_out,)
        Scores of the other samples.
    threshold : float, default=None
        Where to draw the decision threshold, if anywhere.
    name : str, default=None
        Title of the plot, e.g. the detector.
    labels : tuple of two str, default=("in-distribution", "out-of-distribution")
        Legend entries of the two histograms; e.g.
        ``("hateful", "other")`` when the task describes unwanted content.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the histograms.
    figure_ : matplotlib Figure
        Figure of ``ax_``.
    bars_ : tuple of two matplotlib BarContainer
        The in-distribution and the other histogram.
    threshold_line_ : matplotlib Line2D or None
        The threshold, when one was drawn.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skhftt.evaluation.plotting import ScoreHistogramDisplay
    >>> display = ScoreHistogramDisplay.from_predictions([1, 1, 0, 0], [2.0, 1.5, -1.0, 0.5])
    >>> [text.get_text() for text in display.ax_.get_legend().get_texts()]
    ['in-distribution', 'out-of-distribution']
    """

    def __init__(
        self,
        *,
        scores_in: np.ndarray,
        scores_out: np.ndarray,
        threshold: float | None = None,
        name: str | None = None,
        labels: tuple[str, str] = _DEFAULT_LABELS,
    ) -> None:
        self.scores_in = scores_in
        self.scores_out = scores_out
        self.threshold = threshold
        self.name = name
        self.labels = labels

    def plot(
        self,
        ax: Any = None,
        *,
        bins: int | str = 50,
        density: bool = True,
        **kwargs: Any,
    ) -> ScoreHistogramDisplay:
        """Draw the histograms.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        bins : int or str, default=50
            Number of shared bins, or a numpy binning rule such as ``"auto"``.
        density : bool, default=True
            Normalise each histogram to unit area, so that sets of different
            sizes compare.
        **kwargs
            Passed to both ``Axes.hist`` calls (default ``alpha=0.5``).

        Returns
        -------
        self : ScoreHistogramDisplay
        """
        _check_matplotlib("ScoreHistogramDisplay.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        edges = np.histogram_bin_edges(np.concatenate([self.scores_in, self.scores_out]), bins)
        style = {"alpha": 0.5, **kwargs}
        bars = tuple(
            ax.hist(scores, bins=edges, density=density, label=label, **style)[2]
            for scores, label in zip((self.scores_in, self.scores_out), self.labels, strict=True)
        )
        self.threshold_line_ = None
        if self.threshold is not None:
            self.threshold_line_ = ax.axvline(
                self.threshold, color="black", linestyle="--", label="threshold"
            )
        ax.set_xlabel("score (higher = more like the task)")
        ax.set_ylabel("density" if density else "count")
        if self.name is not None:
            ax.set_title(self.name)
        ax.legend()
        self.ax_, self.figure_, self.bars_ = ax, ax.figure, bars
        return self

    @classmethod
    def from_predictions(
        cls,
        y_true: object,
        y_score: object,
        *,
        threshold: float | None = None,
        name: str | None = None,
        labels: tuple[str, str] = _DEFAULT_LABELS,
        ax: Any = None,
        bins: int | str = 50,
        density: bool = True,
        **kwargs: Any,
    ) -> ScoreHistogramDisplay:
        """Plot the histograms of given scores.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            1 (or +1) for samples that match the task, 0 (or -1) otherwise.
        y_score : array-like of shape (n_samples,)
            Scores, higher = more like the task.
        threshold, name, labels
            See the class parameters.
        ax, bins, density, **kwargs
            See :meth:`plot`.

        Returns
        -------
        ScoreHistogramDisplay
            The drawn display.
        """
        _check_matplotlib("ScoreHistogramDisplay.from_predictions")
        is_in, scores = _check_ood_inputs(y_true, y_score)
        display = cls(
            scores_in=scores[is_in],
            scores_out=scores[~is_in],
            threshold=threshold,
            name=name,
            labels=labels,
        )
        return display.plot(ax, bins=bins, density=density, **kwargs)

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: object,
        y: object,
        *,
        response_method: Literal["decision_function", "score_samples"] = "decision_function",
        name: str | None = None,
        labels: tuple[str, str] = _DEFAULT_LABELS,
        ax: Any = None,
        bins: int | str = 50,
        density: bool = True,
        **kwargs: Any,
    ) -> ScoreHistogramDisplay:
        """Score ``X`` with a fitted detector and plot the histograms.

        The detector's decision threshold is drawn: 0 for
        ``decision_function``, ``offset_`` for ``score_samples``.

        Parameters
        ----------
        estimator : fitted detector
            Any skhftt detector (or an estimator with the chosen method).
        X : images, texts or embeddings
            What the detector scores.
        y : array-like of shape (n_samples,)
            1 (or +1) for samples that match the task, 0 (or -1) otherwise.
        response_method : {"decision_function", "score_samples"}, default="decision_function"
            Which scores to plot.
        name : str, default=None
            Title; the estimator's class name when None.
        labels, ax, bins, density, **kwargs
            See :meth:`from_predictions`.

        Returns
        -------
        ScoreHistogramDisplay
            The drawn display.
        """
        _check_matplotlib("ScoreHistogramDisplay.from_estimator")
        if response_method not in ("decision_function", "score_samples"):
            raise ValueError(
                "response_method must be 'decision_function' or 'score_samples'; "
                f"got {response_method!r}."
            )
        check_is_fitted(estimator)
        scores = getattr(estimator, response_method)(X)
        threshold = 0.0 if response_method == "decision_function" else estimator.offset_
        return cls.from_predictions(
            y,
            scores,
            threshold=float(threshold),
            name=type(estimator).__name__ if name is None else name,
            labels=labels,
            ax=ax,
            bins=bins,
            density=density,
            **kwargs,
        )
