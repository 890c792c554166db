"""Shared test fixtures."""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Text-embedding cache and corpora: a counting, hash-based fake text encoder.
# ---------------------------------------------------------------------------
import hashlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest


class CountingTextEncoder:
    """Deterministic fake encoder that records every text it is asked to embed.

    Each text maps to a fixed random unit vector seeded by a hash of the text,
    so equal texts always get equal embeddings, in any process. Every call is
    recorded in ``calls`` (this process) and, when ``log_dir`` is set, as one
    JSON file per call in ``log_dir`` (any process, e.g. loky workers), so
    tests can count how often each text reached the encoder.
    """

    def __init__(
        self,
        dim: int = 16,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        delay: float = 0.0,
        tag: str | None = None,
    ) -> None:
        self.dim = dim
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.delay = delay
        self.identity = f"counting-hash:{dim}:{tag or uuid.uuid4().hex}"
        self.calls: list[list[str]] = []

    def __sklearn_clone__(self) -> CountingTextEncoder:
        return self

    @staticmethod
    def vector(text: str, dim: int) -> np.ndarray:
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
        row = np.random.default_rng(int.from_bytes(digest, "little")).normal(size=dim)
        return (row / np.linalg.norm(row)).astype(np.float32)

    def encode_text(
        self, texts: Sequence[str], *, batch_size: int = 256, show_progress: bool = False
    ) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        if self.log_dir is not None:
            name = f"{os.getpid()}-{uuid.uuid4().hex}.json"
            Path(self.log_dir, name).write_text(json.dumps(texts), "utf-8")
        if self.delay:
            time.sleep(self.delay)
        return np.stack([self.vector(text, self.dim) for text in texts]).reshape(
            len(texts), self.dim
        )

    def encode_image(
        self, images: Sequence[Any], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        raise TypeError("CountingTextEncoder embeds texts only.")

    def counts(self) -> Counter[str]:
        """How many times each text was encoded, in this process or in ``log_dir``."""
        if self.log_dir is None:
            return Counter(text for call in self.calls for text in call)
        return Counter(
            text
            for path in Path(self.log_dir).glob("*.json")
            for text in json.loads(path.read_text("utf-8"))
        )


@pytest.fixture
def counting_encoder() -> CountingTextEncoder:
    """A fresh fake text encoder with its own identity (nothing cached yet)."""
    return CountingTextEncoder()


@pytest.fixture(scope="session", autouse=True)
def user_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The persistent embedding cache of this test session, never the user's own.

    Set in the environment, so that subprocesses started by tests use it too.
    """
    from skhftt.embedding.cache import CACHE_DIR_ENV

    folder = tmp_path_factory.mktemp("skhftt-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_ENV, str(folder))
        yield folder


@pytest.fixture
def restore_cache_limits() -> Iterator[None]:
    """Undo set_cache_limits() calls made by a test."""
    from skhftt.embedding.cache import reset_cache_limits

    yield
    reset_cache_limits()


# ---------------------------------------------------------------------------
# Encoders and inputs: a tiny random CLIP on disk, and real sample images.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight CLIP directory (width-16 embeddings, 32 px images)."""
    from skhftt.testing import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_dir: Path) -> Any:
    """The tiny CLIP loaded through resolve_encoder, as a Hub id would be."""
    from skhftt.embedding.encoders import resolve_encoder

    return resolve_encoder(tiny_clip_dir, device="cpu")


@pytest.fixture(scope="session")
def sample_arrays() -> dict[str, np.ndarray]:
    """Real photographs from scikit-learn and scikit-image, as uint8 arrays."""
    from skhftt.testing import sample_images

    return sample_images()


@pytest.fixture(scope="session")
def image_files(
    tmp_path_factory: pytest.TempPathFactory, sample_arrays: dict[str, np.ndarray]
) -> dict[str, Path]:
    """Image files in many encodings, named by what they test.

    PNG files are lossless, so their pixels equal the source arrays exactly.
    ``coffee_exif.png`` stores ``coffee`` rotated a quarter turn
    counter-clockwise with EXIF orientation 6 ("rotate 90 clockwise to
    display"), so honouring the tag gives back the upright ``coffee``.
    """
    from PIL import Image

    directory = tmp_path_factory.mktemp("images")
    files: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **params: Any) -> None:
        files[name] = directory / name
        image.save(files[name], **params)

    astronaut = sample_arrays["astronaut"]
    camera = sample_arrays["camera"]
    save("astronaut.jpg", Image.fromarray(astronaut), quality=90)
    save("astronaut.png", Image.fromarray(astronaut))
    save("coffee.png", Image.fromarray(sample_arrays["coffee"]))
    save("china.jpg", Image.fromarray(sample_arrays["china"]), quality=90)
    save("flower.jpg", Image.fromarray(sample_arrays["flower"]), quality=90)
    save("camera.png", Image.fromarray(camera))
    save("camera16.png", Image.fromarray(camera.astype(np.uint16) * 257))
    save("logo_rgba.png", Image.fromarray(sample_arrays["logo"]))
    save("astronaut_palette.png", Image.fromarray(astronaut).quantize(colors=64))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = np.ascontiguousarray(np.rot90(sample_arrays["coffee"], k=1))
    save("coffee_exif.png", Image.fromarray(rotated), exif=exif)
    save("coffee_exif.jpg", Image.fromarray(rotated), quality=95, exif=exif)
    files["scan_0001"] = directory / "scan_0001"
    files["scan_0001"].write_bytes(files["astronaut.png"].read_bytes())
    files["corrupt.jpg"] = directory / "corrupt.jpg"
    files["corrupt.jpg"].write_bytes(b"this is not a JPEG file")
    return files
