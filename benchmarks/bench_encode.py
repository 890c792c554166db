"""Image scoring throughput: skhftt's input path against the bare forward pass.

Builds a full-size random-weight CLIP (``CLIPConfig()``: ViT-B/32 at 224 px,
the FLOPs of the real model) as a model directory, loads it through
``resolve_encoder`` exactly as a Hub model is loaded, writes ``--n-images``
JPEG files of varied sizes made from the scikit-learn / scikit-image sample
photographs, and times, in one process:

* end to end: ``skhftt.embedding.inputs.to_embeddings(paths, ...)``: decoding (in
  threads, one chunk ahead), RGB conversion, the model's own preprocessing
  and the forward pass, through sentence-transformers;
* forward only: the same model's ``get_image_features`` on ready
  preprocessed tensors, in the same batches.

The two are timed in alternating rounds of ``--round-size`` images (order
A B, then B A, ...), so that drifts in machine speed (shared or throttled
CPUs) fall on both alike; the totals over all rounds are compared.

Last line: ``images_per_s=<end to end> pipeline_efficiency=<end to end /
forward only>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from skhftt.embedding.encoders import SentenceTransformerEncoder
from skhftt.embedding.inputs import load_image, to_embeddings
from skhftt.testing import build_random_clip, sample_images


def write_jpegs(directory: Path, n_images: int, seed: int = 0) -> list[str]:
    """JPEG files from the sample photographs, long sides between 256 and 1024."""
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(array).convert("RGB") for array in sample_images().values()]
    paths = []
    for index in range(n_images):
        source = sources[index % len(sources)]
        long_side = int(rng.integers(256, 1025))
        scale = long_side / max(source.size)
        size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
        path = directory / f"img_{index:04d}.jpg"
        source.resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(str(path))
    return paths


def forward_only(model, pixel_values: torch.Tensor, batch_size: int, device) -> float:
    """Seconds for get_image_features over ready tensors, batch by batch."""
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(pixel_values), batch_size):
            batch = pixel_values[start : start + batch_size].to(device)
            features = model.get_image_features(pixel_values=batch)
            features = getattr(features, "pooler_output", features)
            torch.nn.functional.normalize(features, dim=-1).cpu()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--round-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = build_random_clip(tmp_path / "clip-vit-b-32", size="base")
        image_dir = tmp_path / "images"
        image_dir.mkdir()
        paths = write_jpegs(image_dir, args.n_images)
        encoder = SentenceTransformerEncoder(
            model_dir, device=args.device, precision=args.precision
        )
        clip = encoder.model[0].auto_model
        processor = encoder.model[0].processor.image_processor
        device = next(clip.parameters()).device

        images = [load_image(path) for path in paths]
        pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
        del images

        def end_to_end(chunk: list[str]) -> float:
            started = time.perf_counter()
            rows = to_embeddings(
                chunk, encoder=encoder, dim=encoder.dim, batch_size=args.batch_size
            )
            assert rows.shape == (len(chunk), encoder.dim)
            return time.perf_counter() - started

        def forward(start: int, stop: int) -> float:
            with encoder.inference_context():
                return forward_only(clip, pixel_values[start:stop], args.batch_size, device)

        end_to_end(paths[: args.batch_size])
        forward(0, args.batch_size)
        end_to_end_s = forward_s = 0.0
        for number, start in enumerate(range(0, len(paths), args.round_size)):
            stop = start + args.round_size
            if number % 2 == 0:
                end_to_end_s += end_to_end(paths[start:stop])
                forward_s += forward(start, stop)
            else:
                forward_s += forward(start, stop)
                end_to_end_s += end_to_end(paths[start:stop])

    images_per_s = len(paths) / end_to_end_s
    forward_per_s = len(paths) / forward_s
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device}, precision {args.precision}"
    )
    print(f"images: {len(paths)} JPEG files, long side 256-1024 px; batch {args.batch_size}")
    print(f"end to end:   {end_to_end_s:8.2f} s  {images_per_s:8.2f} images/s")
    print(f"forward only: {forward_s:8.2f} s  {forward_per_s:8.2f} images/s")
    print(f"images_per_s={images_per_s:.2f} pipeline_efficiency={images_per_s / forward_per_s:.3f}")


if __name__ == "__main__":
    main()
