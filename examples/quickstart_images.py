"""Fit a detector from text for one job, then rank a folder of images and say what goes.

The detector never sees an image while it learns: it is fitted on a few
texts against a world corpus of generic texts, in the joint text-image space
of CLIP. By default the job is to **remove** what the texts describe (here,
flowers): :class:`~skhftt.HFTTDetector` with ``unwanted="match"``, its
temperature chosen from the texts alone (held-out phrasings and texts, never
images). ``--keep`` turns it into a keep job instead: images that do *not*
match are removed, with :class:`~skhftt.detectors.CSPDetector`, the best
published detector for that job (it embeds a pool of 491,924 short prompts
once: about two hours on two CPU cores, by estimate minutes on a GPU; cached).

Run it as is (the default CLIP, ``openai/clip-vit-base-patch16``, downloads on
first use; without ``--images`` the scikit-learn and scikit-image sample
photographs are written to a temporary folder)::

    python examples/quickstart_images.py
    python examples/quickstart_images.py --images ~/Pictures --remove "a photo of a cat"
    python examples/quickstart_images.py --encoder /path/to/clip-dir   # offline

Without Hub access, give ``--encoder`` a CLIP directory saved on another
machine, or try the pipeline on a tiny random CLIP (its ranking means
nothing)::

    python -c "from skhftt.testing import build_tiny_clip; build_tiny_clip('tiny-clip')"
    python examples/quickstart_images.py --encoder tiny-clip --world-words 2000

A higher score means "more like the task texts"; the last column says what
the detector's own threshold would do for its job -- a ranking aid, not a
removal rule (set a cut-off on images you know to be clean: see the README's
removal rules). Errors are one line, ``quickstart_images.py: error: ...``,
with exit status 2, as in ``skhftt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skhftt import HFTTDetector
from skhftt.corpora import imagenet_templates, load_world_corpus, read_texts
from skhftt.detectors import CSPDetector
from skhftt.embedding.encoders import DEFAULT_ENCODER, EncoderUnavailableError
from skhftt.embedding.images import has_image_extension
from skhftt.evaluation import select_detector, temperature_grid
from skhftt.testing import write_sample_images

PROG = "quickstart_images.py"

DEFAULT_TASK = ["flower", "bouquet of flowers", "flower bed", "blossoming tree"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--encoder",
        default=DEFAULT_ENCODER,
        help="Hugging Face model id, local model directory, or open_clip:<arch>/<tag>",
    )
    parser.add_argument(
        "--images",
        type=Path,
        help="folder of images to rank (default: sample photographs in a temp folder)",
    )
    job = parser.add_mutually_exclusive_group()
    job.add_argument(
        "--remove",
        action="append",
        help="a text describing what to remove; repeat for several (default: flowers)",
    )
    job.add_argument(
        "--keep",
        action="append",
        help="a text describing what to keep; repeat for several (a keep job, with CSP)",
    )
    parser.add_argument(
        "--world", type=Path, help="world corpus file, one text per line (default: bundled)"
    )
    parser.add_argument(
        "--world-words",
        type=int,
        default=10_000,
        help="use the N most frequent words of the bundled world corpus; 0 = all "
        "292,073 (best, but slow to embed without a GPU)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--cache-dir", type=Path,
                        help="folder of the text-embedding cache; None is skhftt's user "
                        "cache, ~/.cache/skhftt or $SKHFTT_CACHE_DIR")
    return parser.parse_args(argv)


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"--images {str(folder)!r} is not a folder.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and has_image_extension(p))
    if not files:
        raise ValueError(f"--images {str(folder)!r} holds no image files.")
    return files


def world_corpus(args: argparse.Namespace) -> list[str] | None:
    if args.world is not None:
        return read_texts(args.world)
    if args.world_words == 0:
        return None
    return load_world_corpus(args.world_words)


def fitted(args: argparse.Namespace) -> HFTTDetector | CSPDetector:
    """The detector of the job the options give, fitted from texts alone."""
    common = {"encoder": args.encoder, "device": args.device, "cache_dir": args.cache_dir,
              "random_state": 0}
    if args.keep:
        return CSPDetector(**common).fit(None, args.keep)
    texts = args.remove or DEFAULT_TASK
    world = world_corpus(args)
    if world is None:
        world = load_world_corpus()
    # Each text in the 80 CLIP templates, so that phrasings can be held out.
    detector = HFTTDetector(unwanted="match", templates=imagenet_templates(), **common)
    chosen = select_detector(temperature_grid(detector), world, texts)
    print(f"Temperature chosen from the texts alone: {chosen.best_name}.")
    return chosen.best_estimator


def rank(args: argparse.Namespace, folder: Path) -> None:
    files = image_files(folder)
    started = time.perf_counter()
    detector = fitted(args)
    print(f"Fitted {type(detector).__name__} on {len(detector.task_names_)} task texts in "
          f"{time.perf_counter() - started:.1f} s; job: it removes images that "
          f"{'match' if detector.unwanted == 'match' else 'do not match'} them.")
    for text in detector.task_names_:
        print(f"  task: {text}")

    started = time.perf_counter()
    scores = detector.decision_function(files)
    # predict's rule, without a second pass over the images: +1 from 0 up.
    matches = scores >= 0
    removed = matches if detector.unwanted == "match" else ~matches
    print(f"Scored {len(files)} images in {time.perf_counter() - started:.1f} s.\n")

    print(f"{'rank':>4}  {'score':>9}  {'at its threshold':<16}  image")
    for position, index in enumerate(np.argsort(-scores), start=1):
        verdict = "remove" if removed[index] else "keep"
        print(f"{position:>4}  {scores[index]:>9.3f}  {verdict:<16}  "
              f"{files[index].relative_to(folder)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.images is not None:
            rank(args, args.images.expanduser())
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            write_sample_images(tmp)
            rank(args, Path(tmp))
    except EncoderUnavailableError as exc:
        print(f"{PROG}: error: {exc} With this script: --encoder /path/to/clip-dir.",
              file=sys.stderr)
        return 2
    except (OSError, ValueError, ImportError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
