"""CUDA paths: training, encoding with autocast, scoring, and moving fitted detectors.

Marked ``gpu`` and deselected by default (``pyproject`` addopts); run with
``pytest -m gpu`` on a machine with CUDA (``benchmarks/gpu_check.sh`` does).
Set ``SKHFTT_REQUIRE_GPU=1`` to turn a missing GPU into a failure rather than
a skip, so a GPU job cannot pass without using its GPU.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from skhftt import HFTTDetector
from skhftt.embedding.device import resolve_device

pytestmark = pytest.mark.gpu

if not torch.cuda.is_available():
    if os.environ.get("SKHFTT_REQUIRE_GPU") == "1":
        raise RuntimeError("SKHFTT_REQUIRE_GPU=1 but torch.cuda.is_available() is False.")
    pytest.skip("needs a CUDA device", allow_module_level=True)


def _clustered(n: int, dim: int, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows = centres[rng.integers(len(centres), size=n)] + 0.6 * rng.normal(size=(n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def texts():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 64)) / 8
    return _clustered(4000, 64, centres, rng), _clustered(200, 64, centres[:5], rng)


def test_auto_device_is_cuda():
    assert resolve_device("auto").type == "cuda"


def test_training_on_cuda_matches_cpu(texts):
    world, task = texts
    cpu = HFTTDetector(encoder="precomputed", device="cpu", random_state=0).fit(world, task)
    gpu = HFTTDetector(encoder="precomputed", device="cuda", random_state=0).fit(world, task)
    assert gpu.device_ == "cuda"
    # Same initial columns and order; kernels differ, so compare closely, not bitwise.
    np.testing.assert_allclose(gpu.score_samples(world[:500]), cpu.score_samples(world[:500]),
                               rtol=1e-3, atol=1e-2)


def test_fitted_on_cuda_pickles_and_scores_without_cuda(texts, monkeypatch):
    world, task = texts
    det = HFTTDetector(encoder="precomputed", device="cuda", random_state=0).fit(world, task)
    payload = pickle.dumps(det)
    expected = det.score_samples(world[:50])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.score_samples(world[:50]), expected)


def test_image_encoding_on_cuda_with_autocast(tiny_clip_dir, sample_arrays):
    from skhftt.embedding.encoders import SentenceTransformerEncoder

    images = list(sample_arrays.values())
    fp32 = SentenceTransformerEncoder(tiny_clip_dir, device="cuda", precision="fp32")
    fp16 = SentenceTransformerEncoder(tiny_clip_dir, device="cuda", precision="fp16")
    exact = fp32.encode_image(images, batch_size=2)
    half = fp16.encode_image(images, batch_size=2)
    assert half.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-3)
    assert np.min(np.sum(exact * half, axis=1)) > 0.99


def test_detector_scores_images_on_cuda(tiny_clip_dir, sample_arrays):
    det = HFTTDetector(encoder=str(tiny_clip_dir), device="cuda", random_state=0)
    det.fit(["a photo of a cat", "a dog", "a tree", "a car"] * 10, ["a photo of a cat"])
    scores = det.score_samples(list(sample_arrays.values()))
    assert scores.shape == (len(sample_arrays),) and np.isfinite(scores).all()
