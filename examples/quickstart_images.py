"""Fit a detector from text, then rank a folder of images by how well they match.

The detector never sees an image while it learns: it is fitted on a few task
descriptions (default: flowers) against a world corpus of generic texts, in
the joint text-image space of CLIP. It then scores every image in a folder
and prints them best match first.

Run it as is (the default CLIP, ``openai/clip-vit-base-patch16``, downloads on
first use; without ``--images`` the scikit-learn and scikit-image sample
photographs are written to a temporary folder)::

    python examples/quickstart_images.py
    python examples/quickstart_images.py --images ~/Pictures --task "a photo of a cat"
    python examples/quickstart_images.py --encoder /path/to/clip-dir   # offline

Without Hub access, give ``--encoder`` a CLIP directory saved on another
machine, or try the pipeline on a tiny random CLIP (its ranking means
nothing)::

    python -c "from skhftt.testing import build_tiny_clip; build_tiny_clip('tiny-clip')"
    python examples/quickstart_images.py --encoder tiny-clip --world-words 2000

The detector is :class:`~skhftt.HFTTEnsembleDetector`, the one that led on
both kinds of job in ``benchmarks/RESULTS.md`` (HFTT blended with MCM's
zero-shot score). A higher score means "more like the task texts"; ``+1``
marks images that score at least as high as a median world text on both
scores, ``-1`` the others -- a ranking aid, not a removal rule (see the
README's removal rules). Errors are one line,
``quickstart_images.py: error: ...``, with exit status 2, as in ``skhftt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skhftt import HFTTEnsembleDetector
from skhftt.corpora import load_world_corpus, read_texts
from skhftt.embedding.encoders import DEFAULT_ENCODER, EncoderUnavailableError
from skhftt.embedding.images import has_image_extension
from skhftt.testing import write_sample_images

PROG = "quickstart_images.py"

DEFAULT_TASK = [
    "a photo of a flower",
    "a close-up photo of a flower in bloom",
    "a photo of a bouquet of flowers",
    "a photo of a garden full of flowers",
]


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
    parser.add_argument(
        "--task",
        action="append",
        help="a task description; repeat for several (default: flower descriptions)",
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


def rank(args: argparse.Namespace, folder: Path) -> None:
    files = image_files(folder)
    task = args.task or DEFAULT_TASK
    detector = HFTTEnsembleDetector(
        encoder=args.encoder, device=args.device, cache_dir=args.cache_dir, random_state=0
    )
    started = time.perf_counter()
    world = world_corpus(args)
    detector.fit(world, task)
    world_size = "the bundled" if world is None else f"{len(world):,}"
    print(
        f"Fitted on {len(task)} task texts and {world_size} world texts "
        f"in {time.perf_counter() - started:.1f} s."
    )
    for text in task:
        print(f"  task: {text}")

    started = time.perf_counter()
    scores = detector.decision_function(files)
    # predict's rule, without a second pass over the images: +1 from 0 up.
    labels = np.where(scores >= 0, 1, -1)
    print(f"Scored {len(files)} images in {time.perf_counter() - started:.1f} s.\n")

    print(f"{'rank':>4}  {'score':>9}  {'label':>5}  image")
    for position, index in enumerate(np.argsort(-scores), start=1):
        print(
            f"{position:>4}  {scores[index]:>9.3f}  {labels[index]:>+5d}  "
            f"{files[index].relative_to(folder)}"
        )


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
