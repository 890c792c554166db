"""Testing utilities: random-weight CLIP models and sample images, all offline.

These build real model directories (a Transformers ``CLIPModel`` with a
byte-level ``CLIPTokenizer`` and a ``CLIPImageProcessor``, written with
``save_pretrained``) that load through exactly the code path a Hugging Face
model id takes, without any download. The weights are random: use them to
test plumbing, shapes, determinism and persistence, and (full size) to
measure throughput, never accuracy.

Examples
--------
>>> import tempfile
>>> from skhftt.embedding.encoders import resolve_encoder
>>> from skhftt.testing import build_tiny_clip
>>> path = build_tiny_clip(tempfile.mkdtemp())  # doctest: +SKIP
>>> encoder = resolve_encoder(path, device="cpu")  # doctest: +SKIP
>>> encoder.encode_text(["a photo of a cat"]).shape  # doctest: +SKIP
(1, 16)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

_SIZES = ("tiny", "base")
_START, _END = "<|startoftext|>", "<|endoftext|>"


def _write_byte_tokenizer(path: Path) -> dict[str, int]:
    """A byte-level CLIP vocabulary with no merges: every byte is a token."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    characters = list(bytes_to_unicode().values())
    tokens = characters + [character + "</w>" for character in characters] + [_START, _END]
    vocab = {token: index for index, token in enumerate(tokens)}
    (path / "vocab.json").write_text(json.dumps(vocab), "utf-8")
    (path / "merges.txt").write_text("#version: 0.2\n", "utf-8")
    return vocab


def build_random_clip(path: str | os.PathLike[str], *, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight CLIP model directory and return its path.

    Parameters
    ----------
    path : str or path-like
        Directory to write (created if needed).
    size : {"tiny", "base"}, default="tiny"
        ``"tiny"``: 2-layer towers of width 32, 32-pixel images, embeddings
        of width 16; loads and runs in well under a second. ``"base"``: the
        ``CLIPConfig()`` defaults, i.e. ViT-B/32 at 224 pixels with 512-wide
        embeddings, the FLOPs of the real model (about 600 MB on disk).
    seed : int, default=0
        Seed of the weights; the global torch RNG is left untouched.

    Returns
    -------
    pathlib.Path
        ``path``, ready for ``resolve_encoder(path)``.
    """
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    from skhftt.embedding.encoders._hub import quiet_transformers

    if size not in _SIZES:
        raise ValueError(f"size={size!r} is not one of {list(_SIZES)}.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = _write_byte_tokenizer(path)
    special = {
        "bos_token_id": vocab[_START],
        "eos_token_id": vocab[_END],
        "pad_token_id": vocab[_END],
    }
    if size == "tiny":
        text_config = {
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            **special,
        }
        vision_config = {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        }
        config = CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=16)
    else:
        config = CLIPConfig(text_config=special)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
    image_size = config.vision_config.image_size
    tokenizer = CLIPTokenizer(
        str(path / "vocab.json"),
        str(path / "merges.txt"),
        model_max_length=config.text_config.max_position_embeddings,
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    with quiet_transformers():
        model.save_pretrained(path)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def build_tiny_clip(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write a tiny random CLIP directory (see :func:`build_random_clip`)."""
    return build_random_clip(path, size="tiny", seed=seed)


def sample_images() -> dict[str, np.ndarray]:
    """Real photographs that ship with scikit-learn (and scikit-image, if installed).

    Returns
    -------
    dict of str -> ndarray
        uint8 arrays: ``china`` and ``flower`` (427 x 640 RGB) from
        :func:`sklearn.datasets.load_sample_images`; with scikit-image also
        ``astronaut``, ``coffee``, ``chelsea``, ``rocket`` (RGB), ``camera``
        (grayscale) and ``logo`` (RGBA).
    """
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    images = {
        Path(filename).stem: array
        for filename, array in zip(bunch.filenames, bunch.images, strict=True)
    }
    try:
        from skimage import data
    except ImportError:
        return images
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "logo"):
        images[name] = getattr(data, name)()
    return images


def write_sample_images(directory: str | os.PathLike[str]) -> list[Path]:
    """Save :func:`sample_images` into ``directory`` (JPEG; PNG when transparent).

    Returns
    -------
    list of pathlib.Path
        The files written, sorted by name.
    """
    from PIL import Image

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, array in sample_images().items():
        image = Image.fromarray(array)
        if image.mode in ("RGBA", "LA"):
            target = directory / f"{name}.png"
            image.save(target)
        else:
            target = directory / f"{name}.jpg"
            image.save(target, quality=92)
        written.append(target)
    return sorted(written)
