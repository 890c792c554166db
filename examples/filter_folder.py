"""Filter a folder of images with the ``skhftt`` command line: fit, score, filter.

A detector is fitted from texts alone for a remove job (``skhftt fit
--remove``: images of flowers, trees and gardens are the ones to remove; its
temperature is chosen from the texts), every image of a folder is scored
into parquet files (``skhftt score``), and the scores become keep/remove
lists and a folder of symlinks to the kept images (``skhftt filter``).
Unreadable images are listed in ``errors.txt``, neither kept nor removed.

By default this runs offline in seconds on a tiny random CLIP built on the
spot and the sample photographs that ship with scikit-learn; its decisions
are therefore arbitrary. Pass ``--encoder openai/clip-vit-base-patch16`` (or
a CLIP directory saved on another machine, offline) and ``--images
YOUR_FOLDER`` for real ones. A failing command has printed its one-line
error; the script stops with that command's exit status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from skhftt.testing import build_tiny_clip, write_sample_images


class CommandFailed(Exception):
    """A ``skhftt`` command exited with a non-zero status (it has said why)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def skhftt(*args: object) -> None:
    """Run one ``skhftt`` command, echoing it and its output."""
    argv = [str(arg) for arg in args]
    print("$ skhftt " + " ".join(argv), flush=True)
    status = subprocess.run([sys.executable, "-m", "skhftt", *argv]).returncode
    if status:
        raise CommandFailed(status)


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="skhftt-filter-"))
    encoder = args.encoder or build_tiny_clip(work / "tiny-clip")
    images = Path(args.images) if args.images else work / "images"
    if not args.images:
        write_sample_images(images)
        (images / "broken.jpg").write_bytes(b"not an image")

    detector = work / "plants.safetensors"
    skhftt("fit", "-o", detector, "--remove", "flower", "tree", "garden", "--templates",
           "imagenet", "--world-words", 2000, "--encoder", encoder, "--device", "cpu")
    skhftt("info", detector)
    # The detector records its model folder as an absolute path: no --encoder needed.
    skhftt("score", detector, images, "-o", work / "scores", "--num-workers", 0)
    skhftt("filter", work / "scores", "-o", work / "lists", "--method", "fraction",
           "--fraction", 0.5, "--symlink-to", work / "kept")
    for name in ("keep.txt", "remove.txt", "errors.txt"):
        lines = (work / "lists" / name).read_text().split()
        print(f"{name}: {len(lines)} image(s)")
    print(f"kept images linked in {work / 'kept'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", help="encoder spec (default: a tiny random CLIP)")
    parser.add_argument("--images", help="folder of images (default: sample photographs)")
    try:
        run(parser.parse_args(argv))
    except CommandFailed as failed:
        return failed.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
