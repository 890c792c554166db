"""Find blurry, noisy, badly exposed and corrupted images with a detector fitted on text.

The recipe: describe the *defects* (the built-in
:func:`skhftt.corpora.low_quality_task`: blur, motion blur, JPEG artifacts,
noise, pixelation, over- and underexposure, low contrast, glitches), fit
HFTT against a world corpus, and remove the images that match the task (the
+1s). No image is needed to fit.

To see how well it works, the script builds a labelled check set: clean
photographs (the scikit-learn and scikit-image samples, or ``--images``)
and copies of them with each synthetic defect
(:func:`skhftt.evaluation.make_corruption_set`). It compares HFTT with the zero-shot
baselines fitted on the same task (y = 1 for a corrupted image, the task's
side) and shows, per defect, the share of images HFTT flags::

    python examples/low_quality_images.py                            # CLIP ViT-B/16
    python examples/low_quality_images.py --images ~/Pictures --severity 3
    python examples/low_quality_images.py --encoder /path/to/clip-dir    # offline

Synthetic defects are a proxy: real low-quality images mix defects and come
from real cameras and codecs. With a randomly initialised model (such as the
tiny CLIP of :mod:`skhftt.testing`) the numbers mean nothing: it only checks
that everything runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from skhftt import HFTTDetector
from skhftt.corpora import load_world_corpus, low_quality_task
from skhftt.detectors import EnergyDetector, MaxLogitDetector, MCMDetector, NegLabelDetector
from skhftt.embedding.encoders import DEFAULT_ENCODER, EncoderUnavailableError
from skhftt.embedding.images import has_image_extension
from skhftt.evaluation import CORRUPTIONS, make_corruption_set, ood_metrics
from skhftt.testing import sample_images

PROG = "low_quality_images.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--encoder", default=DEFAULT_ENCODER,
                        help="Hugging Face model id, local model directory, or open_clip spec")
    parser.add_argument("--images", type=Path,
                        help="folder of clean images (default: the sample photographs)")
    parser.add_argument("--world-words", type=int, default=10_000,
                        help="world corpus: the N most frequent bundled words; 0 = all")
    parser.add_argument("--severity", type=int, default=5, choices=range(1, 6),
                        help="strength of the synthetic defects, 1 (mild) to 5 (strong)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    return parser.parse_args(argv)


def clean_images(folder: Path | None) -> list[object]:
    if folder is None:
        return list(sample_images().values())
    files = sorted(p for p in folder.expanduser().rglob("*")
                   if p.is_file() and has_image_extension(p))
    if not files:
        raise ValueError(f"--images {str(folder)!r} holds no image files.")
    return files


def fit_detectors(args: argparse.Namespace) -> dict[str, object]:
    """HFTT and the zero-shot baselines, all fitted on the low-quality task."""
    world = load_world_corpus(args.world_words) if args.world_words else None
    common = {"encoder": args.encoder, "device": args.device}
    detectors = {"HFTT": HFTTDetector(**common, random_state=0)}
    for zero_shot in (MCMDetector, MaxLogitDetector, EnergyDetector):
        detectors[zero_shot.__name__.removesuffix("Detector")] = zero_shot(**common)
    # 15 % of the world corpus as negative labels, in 10 groups (a small corpus has few).
    detectors["NegLabel"] = NegLabelDetector(**common, n_negatives=0.15, n_groups=10,
                                             random_state=0)
    return {name: detector.fit(world, low_quality_task()) for name, detector in detectors.items()}


def compare(fitted: dict[str, object], images: list, y: np.ndarray, kinds: list[str]) -> None:
    embeddings = fitted["HFTT"].embed(images)  # one image-tower pass for every detector
    print(f"{'detector':10s} {'FPR95':>6s} {'AUROC':>6s} {'AUPR-In':>8s} {'AUPR-Out':>8s}")
    for name, detector in fitted.items():
        row = ood_metrics(y, detector.decision_function(embeddings))
        print(f"{name:10s} {row['fpr95']:6.3f} {row['auroc']:6.3f} "
              f"{row['aupr_in']:8.3f} {row['aupr_out']:8.3f}")

    flagged = fitted["HFTT"].predict(embeddings) == 1
    print(f"\n{'image kind':16s} {'images':>6s} {'flagged by HFTT':>15s}")
    for kind in ["clean", *CORRUPTIONS]:
        rows = np.array(kinds) == kind
        print(f"{kind:16s} {int(rows.sum()):6d} {flagged[rows].mean():15.2f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        images, y, kinds = make_corruption_set(clean_images(args.images),
                                               severity=args.severity, random_state=0)
        print(f"{len(low_quality_task())} defects in the task; {int((y == 0).sum())} clean "
              f"images and {int(y.sum())} corrupted copies (severity {args.severity})\n")
        fitted = fit_detectors(args)
    except EncoderUnavailableError as exc:
        print(f"{PROG}: error: {exc} With this script: --encoder /path/to/clip-dir.",
              file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    compare(fitted, images, y, kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
