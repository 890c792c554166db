from __future__ import annotations

import builtins

import numpy as np
import pytest
from _synthetic import make_task_world

matplotlib = pytest.importorskip("matplotlib", reason="plots need the 'plot' extra")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from skhftt import HFTTDetector  # noqa: E402
from skhftt.evaluation.metrics import auroc  # noqa: E402
from skhftt.evaluation.plotting import ScoreHistogramDisplay, plot_roc  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    data = make_task_world(seed=6)
    det = HFTTDetector(encoder="precomputed", random_state=0).fit(data["world"], data["prompts"])
    X = np.vstack([data["in_test"], data["out_test"]])
    y = np.r_[np.ones(50), -np.ones(50)]
    return det, X, y


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_roc_in_distribution_positive(fitted):
    det, X, y = fitted
    scores = det.decision_function(X)
    display = plot_roc(y, scores, name="HFTT")
    assert display.roc_auc == pytest.approx(auroc(y, scores))
    assert display.ax_.get_legend().get_texts()[0].get_text().startswith("HFTT")
    # Reversed scores give the mirrored curve, as for any binary ROC.
    assert plot_roc(y, -scores).roc_auc == pytest.approx(1 - auroc(y, scores))


def test_plot_roc_on_given_axes(fitted):
    det, X, y = fitted
    _, ax = plt.subplots()
    assert plot_roc(y, det.decision_function(X), ax=ax).ax_ is ax


def test_histogram_from_estimator(fitted):
    det, X, y = fitted
    display = ScoreHistogramDisplay.from_estimator(det, X, y, bins=10)
    scores = det.decision_function(X)
    np.testing.assert_array_equal(display.scores_in, scores[y == 1])
    np.testing.assert_array_equal(display.scores_out, scores[y == -1])
    assert display.threshold == 0.0
    assert display.threshold_line_.get_xdata()[0] == 0.0
    assert display.ax_.get_title() == "HFTTDetector"
    assert display.figure_ is display.ax_.figure
    assert [len(bars) for bars in display.bars_] == [10, 10]
    raw = ScoreHistogramDisplay.from_estimator(det, X, y, response_method="score_samples")
    assert raw.threshold == det.offset_


def test_histogram_from_predictions_labels_and_counts():
    display = ScoreHistogramDisplay.from_predictions(
        [1, 1, 1, 0], [0.0, 0.1, 0.9, 1.0], labels=("hateful", "other"), bins=2, density=False
    )
    legend = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert legend == ["hateful", "other"]
    heights = [[bar.get_height() for bar in bars] for bars in display.bars_]
    assert heights == [[2, 1], [0, 1]]
    assert display.threshold_line_ is None
    assert display.ax_.get_ylabel() == "count"


def test_histogram_errors(fitted):
    det, X, y = fitted
    with pytest.raises(ValueError, match="response_method must be"):
        ScoreHistogramDisplay.from_estimator(det, X, y, response_method="predict")
    with pytest.raises(ValueError, match="both in-distribution"):
        ScoreHistogramDisplay.from_predictions([1, 1], [0.1, 0.2])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r'pip install "skhftt\[plot\]"'):
        plot_roc([1, 0], [0.5, 0.1])
