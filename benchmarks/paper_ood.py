"""The HFTT paper's OOD protocol: ImageNet-1k val vs iNaturalist, SUN, Places, Texture.

In-distribution: ImageNet-1k validation images, task = the 1000 class names
with the 80 CLIP templates. Out-of-distribution: one folder per dataset
(iNaturalist, SUN, Places, Texture, optionally NINCO), searched recursively
for images. HFTT, the zero-shot baselines of :mod:`skhftt.detectors.similarity` and the
baselines fitted on in-distribution images of :mod:`skhftt.detectors.image_fitted`
(MSP, Mahalanobis, KNN; marked † in the table) are run over ``--seeds``
seeds; the table (mean ± std, in %) has the papers' layout.

Every image set is encoded once and every detector scores the same
embeddings (see ``_ood_protocol.py``). The datasets and the model weights
are not shipped; on a machine that has them::

    python benchmarks/paper_ood.py \\
        --imagenet-val /data/imagenet/val --imagenet-train /data/imagenet/train \\
        --train-per-class 13 \\
        --ood iNaturalist=/data/ood/iNaturalist --ood SUN=/data/ood/SUN \\
        --ood Places=/data/ood/Places --ood Texture=/data/ood/dtd/images \\
        --encoder openai/clip-vit-base-patch16 --device cuda --seeds 5

The paper's backbones are CLIP ViT-B/16 (``openai/clip-vit-base-patch16``),
CLIP ViT-L/14 (``openai/clip-vit-large-patch14``) and BLIP
(``blip:Salesforce/blip-itm-base-coco``, ``blip:Salesforce/blip-itm-large-coco``);
for each, HFTT's temperature is that of the official code unless
``--set HFTT.temperature=...`` says otherwise.

``--imagenet-val`` is either the usual layout with one sub-folder per WordNet
id (``n01440764/...``), or a flat folder of the 50,000 images (then
``--classes`` cannot subsample and ``--val-split`` is unavailable). The
methods fitted on in-distribution images need labelled images that are never
evaluated: ``--imagenet-train DIR`` (one sub-folder per WordNet id), or
``--val-split N`` (N images per class of the validation set, evaluated on the
rest, for every method). Without either they are skipped. ``--extra-scores
NAME=FILE.npz`` adds the scores of a method skhftt does not ship. ``--classes``,
``--templates``, ``--world-size`` and ``--max-images`` shrink the run for smoke
tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _ood_protocol import (
    IMAGE_METHODS,
    IN_DISTRIBUTION,
    METHODS,
    TEXT_METHODS,
    add_protocol_arguments,
    embed_task,
    external_result,
    log,
    make_detectors,
    report,
    run,
)

from skhftt.corpora import (
    imagenet_classes,
    imagenet_task,
    imagenet_templates,
    load_world_corpus,
    read_texts,
)
from skhftt.embedding.cache import encode_texts
from skhftt.embedding.encoders import resolve_encoder
from skhftt.embedding.inputs import IMAGE_EXTENSIONS, ImagePaths, to_embeddings

N_CLASSES = 1000
N_IMAGENET_TRAIN = 1_281_167  # images of the ImageNet-1k training set
# The paper's backbones and the HFTT temperature the official code uses with each.
PAPER_ENCODERS = {
    "openai/clip-vit-base-patch16": ("CLIP ViT-B/16", 0.01),
    "openai/clip-vit-large-patch14": ("CLIP ViT-L/14", 0.01),
    "blip:Salesforce/blip-itm-base-coco": ("BLIP base", 0.0174),
    "blip:Salesforce/blip-itm-large-coco": ("BLIP large", 0.0222),
}


def list_images(directory: Path) -> list[Path]:
    """Every image file below ``directory``, sorted."""
    if not directory.is_dir():
        raise SystemExit(f"not a directory: {directory}")
    found = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not found:
        raise SystemExit(f"no images found below {directory}")
    return found


def class_images(root: Path, wnids: list[str]) -> dict[str, list[Path]]:
    """Images of each chosen class that has a sub-folder ``root/<wnid>``."""
    found = {wnid: list_images(root / wnid) for wnid in wnids if (root / wnid).is_dir()}
    if found and len(found) < len(wnids):
        log(f"note: {len(wnids) - len(found)} of {len(wnids)} class folders are missing "
            f"in {root}")
    return found


def imagenet_images(val_dir: Path, wnids: list[str]) -> list[Path]:
    """Validation images of the chosen classes (all images of a flat folder)."""
    per_class = class_images(val_dir, wnids)
    if per_class:
        return [image for images in per_class.values() for image in images]
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


def split_validation(
    val_dir: Path, wnids: list[str], per_class: int
) -> tuple[dict[str, list[Path]], list[Path]]:
    """``per_class`` seeded images of each class to fit on, and the rest to evaluate."""
    classes = class_images(val_dir, wnids)
    if not classes:
        raise SystemExit(f"--val-split needs one sub-folder per WordNet id in {val_dir}")
    rng = np.random.default_rng(0)
    fit, test = {}, []
    for wnid, images in classes.items():
        if len(images) <= per_class:
            raise SystemExit(f"--val-split {per_class} leaves no test image of class {wnid}, "
                             f"which has {len(images)}")
        order = rng.permutation(len(images))
        fit[wnid] = [images[i] for i in sorted(order[:per_class])]
        test += [images[i] for i in sorted(order[per_class:])]
    return fit, test


def fit_and_test_images(
    args: argparse.Namespace, wnids: list[str]
) -> tuple[dict[str, list[Path]] | None, list[Path]]:
    """In-distribution images to fit on (by class, or None) and to evaluate on."""
    if args.val_split is not None:
        fit, test = split_validation(args.imagenet_val, wnids, args.val_split)
    else:
        test = imagenet_images(args.imagenet_val, wnids)
        fit = None
        if args.imagenet_train is not None:
            fit = class_images(args.imagenet_train, wnids)
            if not fit:
                raise SystemExit("--imagenet-train needs one sub-folder per WordNet id "
                                 f"({wnids[0]}/...) in {args.imagenet_train}")
    if fit is not None:
        fit = {wnid: subsample(images, args.train_per_class) for wnid, images in fit.items()}
    return fit, test


def paper_defaults(encoder_spec: str, n_fit_images: int | None) -> dict[str, dict]:
    """Settings of the papers: HFTT's temperature per backbone, KNN's k per fitting-set size.

    KNN's ``k`` follows Sun et al.: 1000 for the full ImageNet-1k training
    set, scaled with the share of it that is used (10 for 1 %).
    """
    defaults: dict[str, dict] = {}
    known = PAPER_ENCODERS.get(encoder_spec.rsplit("@", 1)[0])
    if known is not None:
        defaults["HFTT"] = {"temperature": known[1]}
    if n_fit_images is not None:
        k = round(1000 * n_fit_images / N_IMAGENET_TRAIN)
        defaults["KNN"] = {"n_neighbors": min(n_fit_images, max(1, k))}
    return defaults


def extra_result(path: Path, datasets: list[str], sizes: dict[str, int], name: str) -> dict:
    """Read a method's scores from ``path`` (``.npz``) into a table row."""
    with np.load(path) as stored:
        entries = {key: stored[key] for key in stored.files}
    uses_id_images = bool(entries.pop("uses_id_images", False))
    try:
        result = external_result(entries, datasets, uses_id_images=uses_id_images)
    except ValueError as exc:
        raise SystemExit(f"--extra-scores {name}={path}: {exc}") from None
    for dataset, expected in sizes.items():
        found = np.shape(entries[dataset])[-1]
        if found != expected:
            log(f"note: {name} scores {found} images of {dataset}, the other methods {expected}")
    return result


def named_value(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(folder)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imagenet-val", type=Path, required=True)
    parser.add_argument("--ood", type=named_value, action="append", required=True,
                        metavar="NAME=DIR", help="an OOD dataset folder; repeat per dataset")
    paper = ", ".join(f"{spec} ({name}, T={t})" for spec, (name, t) in PAPER_ENCODERS.items())
    parser.add_argument("--encoder", default="openai/clip-vit-base-patch16",
                        help=f"any encoder spec; the paper's: {paper}")
    parser.add_argument("--classes", type=int, default=N_CLASSES,
                        help="use the first N ImageNet classes")
    parser.add_argument("--templates", type=int, default=80,
                        help="use the first N of the 80 CLIP templates")
    world = parser.add_mutually_exclusive_group()
    world.add_argument("--world-size", type=int, default=None,
                       help="most frequent words of the bundled world corpus (default: all)")
    world.add_argument("--world", type=Path, default=None, help="world corpus file, one a line")
    parser.add_argument("--max-images", type=int, default=None,
                        help="at most N images per evaluated dataset (a seeded sample)")
    fit = parser.add_mutually_exclusive_group()
    fit.add_argument("--imagenet-train", type=Path, default=None,
                     help="labelled images to fit MSP, Mahalanobis and KNN on: one "
                          "sub-folder per WordNet id")
    fit.add_argument("--val-split", type=int, default=None, metavar="N",
                     help="fit MSP, Mahalanobis and KNN on N images per class of "
                          "--imagenet-val and evaluate every method on the rest")
    parser.add_argument("--train-per-class", type=int, default=None, metavar="N",
                        help="fit on at most N images per class (a seeded sample)")
    parser.add_argument("--extra-scores", type=named_value, action="append", default=[],
                        metavar="NAME=FILE",
                        help="scores of another method (.npz: one array per dataset, "
                             f"'{IN_DISTRIBUTION}' for the in-distribution set); repeatable")
    add_protocol_arguments(parser, image_methods=True)
    args = parser.parse_args(argv)
    if not 1 <= args.classes <= N_CLASSES:
        parser.error(f"--classes must be between 1 and {N_CLASSES}; got {args.classes}")
    if not 1 <= args.templates <= 80:
        parser.error(f"--templates must be between 1 and 80; got {args.templates}")
    for option, value in (("--val-split", args.val_split),
                          ("--train-per-class", args.train_per_class)):
        if value is not None and value < 1:
            parser.error(f"{option} must be at least 1; got {value}")
    has_fit_images = args.imagenet_train is not None or args.val_split is not None
    if args.methods is None:
        args.methods = list(METHODS if has_fit_images else TEXT_METHODS)
        if not has_fit_images:
            log(f"note: {', '.join(IMAGE_METHODS)} need in-distribution images to fit on "
                "(--imagenet-train or --val-split); skipped")
    elif not has_fit_images and set(args.methods) & set(IMAGE_METHODS):
        parser.error(f"{', '.join(m for m in args.methods if m in IMAGE_METHODS)} need "
                     "--imagenet-train or --val-split")
    for name, _ in args.extra_scores:
        if name in METHODS:
            parser.error(f"--extra-scores {name}=...: {name} is a shipped method; pick "
                         "another name")
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
        log(f"encoding {len(paths)} images of {name}")
        return to_embeddings(ImagePaths(paths), encoder=encoder, dim=encoder.dim,
                             batch_size=args.batch_size, show_progress=True, name=name)

    fit_images, test_images = fit_and_test_images(args, wnids)
    id_images = None
    if fit_images is not None and set(args.methods) & set(IMAGE_METHODS):
        paths = [path for images in fit_images.values() for path in images]
        labels = np.array([wnid for wnid, images in fit_images.items() for _ in images])
        id_images = (embed_images(paths, "the in-distribution fitting images"), labels)
    in_set = embed_images(subsample(test_images, args.max_images), IN_DISTRIBUTION)
    ood_sets = {name: embed_images(subsample(list_images(folder), args.max_images), name)
                for name, folder in args.ood}

    defaults = paper_defaults(args.encoder, None if id_images is None else len(id_images[1]))
    detectors = make_detectors(args, defaults)
    results = run(detectors, world=world, task=task, in_set=in_set, ood_sets=ood_sets,
                  seeds=args.seeds, id_images=id_images)
    sizes = {IN_DISTRIBUTION: len(in_set), **{k: len(v) for k, v in ood_sets.items()}}
    for name, path in args.extra_scores:
        results[name] = extra_result(path, list(ood_sets), sizes, name)
    settings = {
        "encoder": encoder.identity, "classes": args.classes, "templates": args.templates,
        "world_texts": len(world_texts), "images": sizes,
        "fit_images": None if id_images is None else len(id_images[1]),
        "paper_defaults": defaults,
    }
    report(results, list(ood_sets), args, settings)


if __name__ == "__main__":
    main()
