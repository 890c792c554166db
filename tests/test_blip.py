"""The BLIP backend, through the real loading code, with a tiny random BLIP offline."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone

from skhftt import HFTTDetector
from skhftt.detectors.image_fitted import KNNDetector
from skhftt.embedding.encoders import (
    EncoderUnavailableError,
    clear_cache,
    list_backends,
    resolve_encoder,
)
from skhftt.embedding.encoders.blip import BlipEncoder, blip_from_spec

WORDS = "a photo of the this is cat dog car tree red blue small big animal vehicle".split()
TEXTS = ["a photo of a cat", "a red car", "this is a big tree", "dog"]
UNREACHABLE_HUB = "http://127.0.0.1:9"  # the discard port: connection refused at once


def build_tiny_blip(path: Path, *, seed: int = 0) -> Path:
    """A random-weight BlipForImageTextRetrieval with a BERT word-piece tokenizer, 32 px."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForImageTextRetrieval,
        BlipImageProcessor,
        BlipProcessor,
    )

    path.mkdir(parents=True)
    (path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", "utf-8"
    )
    tokenizer = BertTokenizer(str(path / "vocab.txt"), model_max_length=32)
    text_config = {
        "vocab_size": len(WORDS) + 5, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 32,
        "encoder_hidden_size": 32, "pad_token_id": 0, "bos_token_id": 2, "sep_token_id": 3,
        "eos_token_id": 3,
    }
    vision_config = {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
    }
    config = BlipConfig(
        text_config=text_config, vision_config=vision_config, image_text_hidden_size=16
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BlipForImageTextRetrieval(config).eval()
    model.save_pretrained(path)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory) -> Path:
    return build_tiny_blip(tmp_path_factory.mktemp("blip") / "tiny-blip")


@pytest.fixture(scope="module")
def blip(blip_dir) -> BlipEncoder:
    return blip_from_spec(str(blip_dir), "cpu")


@pytest.fixture(scope="module")
def images(sample_arrays) -> list[Image.Image]:
    return [Image.fromarray(sample_arrays[name]) for name in ("china", "flower", "astronaut")]


def test_texts_and_images_share_one_unit_space(blip, images):
    assert blip.dim == 16
    assert blip.identity.startswith("blip:tiny-blip@sha256:")
    texts = blip.encode_text(TEXTS, batch_size=3)
    pictures = blip.encode_image(images, batch_size=2)
    for rows, n in ((texts, len(TEXTS)), (pictures, len(images))):
        assert rows.shape == (n, 16) and rows.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    assert blip.encode_text([]).shape == (0, 16)


def test_features_are_blip_retrieval_similarities(blip, blip_dir, images):
    """Cosines of the encoder's rows equal BlipForImageTextRetrieval's own ITC scores."""
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    model = BlipForImageTextRetrieval.from_pretrained(blip_dir).eval()
    processor = BlipProcessor.from_pretrained(blip_dir)
    inputs = processor(images=images, text=TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**inputs, use_itm_head=False).itm_score.numpy()
    found = blip.encode_image(images) @ blip.encode_text(TEXTS).T
    np.testing.assert_allclose(found, expected, atol=1e-5)


def test_batches_and_pixel_path_agree(blip, images):
    one_batch = blip.encode_text(TEXTS)
    np.testing.assert_allclose(blip.encode_text(TEXTS, batch_size=1), one_batch, atol=1e-5)
    pixels = torch.stack([blip.pixel_transform()(image) for image in images])
    np.testing.assert_allclose(blip.encode_pixels(pixels), blip.encode_image(images), atol=1e-6)
    arrays = [np.asarray(image) for image in images]
    np.testing.assert_allclose(blip.encode_image(arrays), blip.encode_image(images), atol=1e-6)
    with pytest.raises(TypeError, match=r"images\[1\] is int"):
        blip.encode_image([images[0], 3])


def test_handle_clones_pickles_and_reloads_deterministically(blip_dir, tmp_path):
    copy = Path(shutil.copytree(blip_dir, tmp_path / "tiny-blip"))
    first = BlipEncoder(copy, device="cpu")
    assert clone(first) is first
    before = first.encode_text(TEXTS)
    payload = pickle.dumps(first)
    assert len(payload) < 2000
    clear_cache()
    restored = pickle.loads(payload)
    assert restored.identity == first.identity and restored.dim == first.dim
    np.testing.assert_array_equal(restored.encode_text(TEXTS), before)
    clear_cache()
    (copy / "notes.txt").write_text("changed", "utf-8")
    with pytest.raises(ValueError, match="changed"):
        pickle.loads(payload).encode_text(TEXTS)
    clear_cache()


def test_detectors_fit_and_score_end_to_end(blip, images, tmp_path):
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        image.save(paths[-1])
    world = [f"this is a {w}" for w in WORDS]
    det = HFTTDetector(encoder=blip, n_embeddings=2, temperature=0.0174, random_state=0)
    det.fit(world, ["cat", "dog"])
    assert det.encoder_identity_ == blip.identity and det.embedding_dim_ == 16
    scores = det.score_samples(paths)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    np.testing.assert_allclose(det.score_samples(images), scores, atol=1e-5)
    knn = KNNDetector(encoder=blip, n_neighbors=2).fit(paths[:2])
    assert knn.score_samples(paths[:1])[0] > -1e-5  # itself is among its 2 nearest


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("./no-such-blip-dir", "there is no model directory"),
        ("not a model id!", "neither a model directory nor"),
    ],
)
def test_unusable_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        blip_from_spec(spec, "cpu")


def test_a_file_is_not_a_model(blip_dir):
    with pytest.raises(ValueError, match="is a file"):
        blip_from_spec(str(blip_dir / "config.json"), "cpu")


def test_directory_revision_is_checked(blip_dir):
    with pytest.raises(ValueError, match="content digest"):
        BlipEncoder(blip_dir, device="cpu", revision="sha256:0000000000000000")


@pytest.mark.parametrize("offline", [True, False])
def test_hub_names_fail_fast_offline(monkeypatch, offline):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "ENDPOINT", UNREACHABLE_HUB)
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError, match="'Salesforce/blip-itm-base-coco'"):
        blip_from_spec("Salesforce/blip-itm-base-coco", "cpu")
    assert time.perf_counter() - start < 20


def test_hub_id_loads_from_the_local_cache(blip, blip_dir, tmp_path):
    """A Hub id already in the Hugging Face cache loads offline, at its commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--skhftt-tests--tiny-blip"
    shutil.copytree(blip_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, "utf-8")
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from skhftt.embedding.encoders.blip import blip_from_spec

        encoder = blip_from_spec("skhftt-tests/tiny-blip", "cpu")
        print(encoder.identity)
        np.save(sys.argv[1], encoder.encode_text(["a photo of a cat"]))
        """
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_ENDPOINT": UNREACHABLE_HUB,
           "HF_HUB_OFFLINE": "0"}
    out = tmp_path / "rows.npy"
    done = subprocess.run([sys.executable, "-c", script, str(out)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == f"blip:skhftt-tests/tiny-blip@{commit}"
    np.testing.assert_allclose(np.load(out), blip.encode_text(["a photo of a cat"]), atol=1e-6)


def test_registry_spec(blip_dir):
    assert "blip" in list_backends()
    encoder = resolve_encoder(f"blip:{blip_dir}", device="cpu")
    assert isinstance(encoder, BlipEncoder)
    assert resolve_encoder(f"blip:{blip_dir}", device="cpu") is encoder
