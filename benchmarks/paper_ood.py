"""The HFTT paper's OOD protocol: ImageNet-1k val vs iNaturalist, SUN, Places, Texture.

In-distribution: ImageNet-1k validation images, task = the 1000 class names
with the 80 CLIP templates. Out-of-distribution: one folder per dataset
(iNaturalist, SUN, Places, Texture, optionally NINCO), searched recursively
for images. HFTT and every baseline of :mod:`skhftt.baselines` are fitted
over ``--seeds`` seeds; the table (mean ± std, in %) has the papers' layout.

Every image set is encoded once and every detector scores the same
embeddings (see ``_ood_protocol.py``). The datasets and the CLIP weights
are not shipped; on a machine that has them::

    python benchmarks/paper_ood.py \\
        --imagenet-val /data/imagenet/val \\
        --ood iNaturalist=/data/ood/iNaturalist --ood SUN=/data/ood/SUN \\
        --ood Places=/data/ood/Places --ood Texture=/data/ood/dtd/images \\
        --encoder openai/clip-vit-base-patch16 --device cuda --seeds 5

``--imagenet-val`` is either the usual layout with one sub-folder per WordNet
id (``n01440764/...``), or a flat folder of the 50,000 images (then
``--classes`` cannot subsample). ``--classes``, ``--templates``,
``--world-size`` and ``--max-images`` shrink the run for smoke tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _ood_protocol import add_protocol_arguments, embed_task, log, make_detectors, report, run

from skhftt.corpora import (
    imagenet_classes,
    imagenet_task,
    imagenet_templates,
    load_world_corpus,
    read_texts,
)
from skhftt.encoders import resolve_encoder
from skhftt.encoders.cache import encode_texts
from skhftt.inputs import IMAGE_EXTENSIONS, ImagePaths, to_embeddings

N_CLASSES = 1000


def list_images(directory: Path) -> list[Path]:
    """Every image file below ``directory``, sorted."""
    if not directory.is_dir():
        raise SystemExit(f"not a directory: {directory}")
    found = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not found:
        raise SystemExit(f"no images found below {directory}")
    return found


def imagenet_images(val_dir: Path, wnids: list[str]) -> list[Path]:
    """Validation images of the chosen classes (all images of a flat folder)."""
    folders = [val_dir / wnid for wnid in wnids if (val_dir / wnid).is_dir()]
    if folders:
        if len(folders) < len(wnids):
            log(f"note: {len(wnids) - len(folders)} of {len(wnids)} class folders are missing")
        return [image for folder in folders for image in list_images(folder)]
    if len(wnids) < N_CLASSES:
        raise SystemExit(
            f"--classes {len(wnids)} needs one sub-folder per WordNet id in {val_dir}"
        )
    return list_images(val_dir)


def subsample(paths: list[Path], limit: int | None) -> list[Path]:
    if limit is None or len(paths) <= limit:
        return paths
    keep = np.random.default_rng(0).choice(len(paths), size=limit, replace=False)
    return [paths[i] for i in sorted(keep)]


def named_folder(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {value!r}")
    return name, Path(folder)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imagenet-val", type=Path, required=True)
    parser.add_argument("--ood", type=named_folder, action="append", required=True,
                        metavar="NAME=DIR", help="an OOD dataset folder; repeat per dataset")
    parser.add_argument("--encoder", default="openai/clip-vit-base-patch16")
    parser.add_argument("--classes", type=int, default=N_CLASSES,
                        help="use the first N ImageNet classes")
    parser.add_argument("--templates", type=int, default=80,
                        help="use the first N of the 80 CLIP templates")
    world = parser.add_mutually_exclusive_group()
    world.add_argument("--world-size", type=int, default=None,
                       help="most frequent words of the bundled world corpus (default: all)")
    world.add_argument("--world", type=Path, default=None, help="world corpus file, one a line")
    parser.add_argument("--max-images", type=int, default=None,
                        help="at most N images per dataset (a seeded sample)")
    add_protocol_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.classes <= N_CLASSES:
        parser.error(f"--classes must be between 1 and {N_CLASSES}; got {args.classes}")
    if not 1 <= args.templates <= 80:
        parser.error(f"--templates must be between 1 and 80; got {args.templates}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    encoder = resolve_encoder(args.encoder, device=args.device)
    templates = imagenet_templates()[: args.templates]
    task_texts = dict(list(imagenet_task(templates).items())[: args.classes])
    wnids = imagenet_classes().wnids[: args.classes]
    world_texts = (read_texts(args.world) if args.world is not None
                   else load_world_corpus(args.world_size))

    log(f"encoding {sum(map(len, task_texts.values()))} task prompts and "
        f"{len(world_texts)} world texts with {encoder.identity}")
    task = embed_task(encoder, task_texts, batch_size=args.batch_size, cache_dir=args.cache_dir)
    world = encode_texts(encoder, world_texts, batch_size=args.batch_size, show_progress=True,
                         cache_dir=args.cache_dir)

    def embed_images(paths: list[Path], name: str) -> np.ndarray:
        paths = subsample(paths, args.max_images)
        log(f"encoding {len(paths)} images of {name}")
        return to_embeddings(ImagePaths(paths), encoder=encoder, dim=encoder.dim,
                             batch_size=args.batch_size, show_progress=True, name=name)

    in_set = embed_images(imagenet_images(args.imagenet_val, wnids), "ImageNet")
    ood_sets = {name: embed_images(list_images(folder), name) for name, folder in args.ood}

    results = run(make_detectors(args), world=world, task=task, in_set=in_set,
                  ood_sets=ood_sets, seeds=args.seeds)
    settings = {
        "encoder": encoder.identity, "classes": args.classes, "templates": args.templates,
        "world_texts": len(world_texts),
        "images": {"ImageNet": len(in_set), **{k: len(v) for k, v in ood_sets.items()}},
    }
    report(results, list(ood_sets), args, settings)


if __name__ == "__main__":
    main()
