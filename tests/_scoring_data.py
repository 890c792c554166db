"""Detectors, shards and planted bad files shared by the scoring tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _synthetic import unit
from PIL import Image

from skhftt import HFTTDetector
from skhftt.embedding.encoders.hashing import HashingEncoder

DIM = 16
WORLD = [f"a photo of a {word}" for word in "dog car tree road bus lamp cup hat".split()]


def hashing_detector(**params) -> HFTTDetector:
    """A detector whose encoder embeds images from a hash of their pixels: no model."""
    det = HFTTDetector(encoder=HashingEncoder(dim=DIM), random_state=0, **params)
    return det.fit(WORLD, ["a ripe apple", "a red apple"])


def precomputed_detector(dim: int = DIM, threshold: float = 0.2) -> HFTTDetector:
    rng = np.random.default_rng(1)
    det = HFTTDetector(encoder="precomputed", random_state=0, threshold=threshold)
    return det.fit(unit(rng.normal(size=(300, dim))), unit(rng.normal(size=(4, dim))))


def row_by_row(embeddings: np.ndarray) -> np.ndarray:
    """Rows normalised one by one, as streaming does: rows within float32 rounding of
    unit norm stay as they are, the others are divided by their norm."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return np.where(np.abs(norms - 1) > 1e-4, embeddings / norms, embeddings)


def write_images(folder: Path, n: int, *, seed: int = 0, bad: bool = True) -> dict[str, Path]:
    """``n`` small PNG/JPEG images (some in a subfolder) and, with ``bad``, a zero-byte,
    a corrupt and a truncated image. Returns name -> path."""
    rng = np.random.default_rng(seed)
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    files = {}
    for index in range(n):
        name = f"sub/img{index:03d}.jpg" if index % 3 == 2 else f"img{index:03d}.png"
        pixels = rng.integers(0, 256, size=(12 + index % 5, 17, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
        files[name] = folder / name
    if bad:
        files["empty.jpg"] = folder / "empty.jpg"
        files["empty.jpg"].write_bytes(b"")
        files["corrupt.png"] = folder / "corrupt.png"
        files["corrupt.png"].write_bytes(b"\x89PNG but not really")
        photo = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        Image.fromarray(photo).save(folder / "whole.jpg", quality=90)
        data = (folder / "whole.jpg").read_bytes()
        (folder / "whole.jpg").unlink()
        files["truncated.jpg"] = folder / "truncated.jpg"
        files["truncated.jpg"].write_bytes(data[: len(data) // 2])
    return files


BAD_IMAGES = ("empty.jpg", "corrupt.png", "truncated.jpg")


def write_npy_shards(folder: Path, sizes: list[int], *, dim: int = DIM, seed: int = 0,
                     dtype=np.float16) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, size in enumerate(sizes):
        path = folder / f"part_{index}.npy"
        np.save(path, unit(rng.normal(size=(size, dim))).astype(dtype))
        paths.append(path)
    return paths


def read_outputs(folder: Path) -> dict[str, list[dict]]:
    """Every complete output in ``folder``, as rows."""
    return {
        path.name: pq.read_table(path).to_pylist()
        for path in sorted(Path(folder).glob("*.parquet"))
    }


def partials(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if ".partial-" in name)


def write_embedding_parquet(path: Path, embeddings: list, ids: list | None = None,
                            *, value_type=None, fixed: bool = False) -> None:
    value_type = value_type or pa.float32()
    kind = pa.list_(value_type, DIM) if fixed else pa.list_(value_type)
    columns = {"embedding": pa.array(embeddings, kind)}
    if ids is not None:
        columns["id"] = pa.array(ids)
    pq.write_table(pa.table(columns), path, row_group_size=3)


def image_bytes(files: dict[str, Path]) -> dict[str, bytes]:
    """The bytes of each file of :func:`write_images`, by name."""
    return {name: path.read_bytes() for name, path in files.items()}


def write_img2dataset_parquet(path: Path, images: dict[str, bytes | None], *,
                              row_group_size: int = 3) -> list[str]:
    """A parquet shard as img2dataset writes it (``key``, ``url``, ``caption``, ``jpg``).

    Returns the keys, in row order.
    """
    keys = [f"{index:09d}" for index in range(len(images))]
    table = pa.table({
        "key": keys,
        "url": [f"http://example.com/{name}" for name in images],
        "caption": [f"a picture called {name}" for name in images],
        "jpg": pa.array(list(images.values()), pa.binary()),
    })
    pq.write_table(table, path, row_group_size=row_group_size)
    return keys


HF_IMAGE_METADATA = {b"huggingface": b'{"info": {"features": {"image": {"_type": "Image"}, '
                                      b'"label": {"dtype": "int64", "_type": "Value"}}}}'}


def write_hf_parquet(path: Path, images: list[tuple[bytes | None, str | None] | None], *,
                     row_group_size: int = 3) -> None:
    """A parquet file of a Hugging Face dataset with an ``Image`` column (struct of bytes, path)."""
    kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    values = [None if item is None else {"bytes": item[0], "path": item[1]} for item in images]
    table = pa.table({"image": pa.array(values, kind), "label": list(range(len(images)))})
    pq.write_table(table.replace_schema_metadata(HF_IMAGE_METADATA), path,
                   row_group_size=row_group_size)
