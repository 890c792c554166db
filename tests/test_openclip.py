"""The open_clip backend, for real: random-weight models through the spec registry.

open_clip imports torchvision, and no torchvision on PyPI imports beside the
CPU torch 2.13.0 wheel of the default environment, so these tests run in a
second environment (``bash .ci/openclip.sh``: torch 2.14.1 + torchvision
0.29.1 + ``skhftt[openclip]``) and are deselected by the default ``-m``
expression. Without open_clip the module skips, saying why; with
``SKHFTT_REQUIRE_OPENCLIP=1`` (set by ``.ci/openclip.sh``) it fails instead,
so CI cannot pass by skipping.

Every model is a tiny ViT (two layers of width 64, 32-pixel images) with
random weights (``pretrained=None``), written as a checkpoint file, a model
directory, or a fake Hugging Face cache entry, and loaded through
``resolve_encoder("open_clip:...")`` exactly as a user's spec is. Nothing is
downloaded: every test runs with the Hub unreachable.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.openclip

REQUIRE = os.environ.get("SKHFTT_REQUIRE_OPENCLIP", "") == "1"


def _import_open_clip():
    try:
        import open_clip
        import torchvision  # noqa: F401
    except Exception as exc:  # ImportError, or torchvision's operator errors
        reason = (
            "open_clip is the optional extra skhftt[openclip] and needs a torchvision "
            "built for the installed torch; it does not import here "
            f"({type(exc).__name__}: {exc}). Run `bash .ci/openclip.sh` for the "
            "environment these tests need (torch 2.14.1 + torchvision 0.29.1)."
        )
        if REQUIRE:
            pytest.fail(f"SKHFTT_REQUIRE_OPENCLIP=1, but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return open_clip


open_clip = _import_open_clip()

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.base import clone  # noqa: E402

from skhftt import HFTTDetector  # noqa: E402
from skhftt.embedding.encoders import (  # noqa: E402
    EncoderUnavailableError,
    OpenCLIPEncoder,
    clear_cache,
    resolve_encoder,
)

ARCH = "skhftt-tiny-ViT"
TAG = "skhftt_test"
REPO = "skhftt-tests/tiny-open-clip"  # an hf-hub: model: config and weights
TAG_REPO = "skhftt-tests/tiny-open-clip-weights"  # where the tag's weights live
COMMIT = "0123456789abcdef0123456789abcdef01234567"
UNREACHABLE_HUB = "http://127.0.0.1:9"  # the discard port: connection refused at once
# Not open_clip's defaults, so a loader that ignores the tag's preprocessing shows.
TAG_MEAN = (0.5, 0.5, 0.5)
TAG_STD = (0.25, 0.25, 0.25)
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32,
                   "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 2},
}
TEXTS = [
    "a photo of a cat",
    "a dog",
    "",
    "Émile's café — 🙂",
    " ".join(["long"] * 120),  # beyond the 77-token context: truncated
]


# --------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def arch(tmp_path_factory):
    """Register the tiny architecture with open_clip, as a config file would."""
    path = tmp_path_factory.mktemp("open_clip_configs") / f"{ARCH}.json"
    path.write_text(json.dumps(TINY_CONFIG), "utf-8")
    open_clip.add_model_config(path)
    assert ARCH in open_clip.list_models()
    return ARCH


def _random_model(arch, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = open_clip.create_model(arch, pretrained=None)
    return model.eval()


@pytest.fixture(scope="module")
def state_dict(arch):
    """Random weights of the tiny architecture (seed 0)."""
    return {key: value.clone() for key, value in _random_model(arch, 0).state_dict().items()}


@pytest.fixture(scope="module")
def weights(tmp_path_factory, state_dict):
    """The random weights as a .pt file, a .safetensors file, and both kinds of directory."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("open_clip_weights")
    pt = root / "tiny.pt"
    torch.save(state_dict, pt)
    safetensors = root / "tiny.safetensors"
    save_file(state_dict, str(safetensors))
    checkpoint_dir = root / "checkpoint-dir"  # weights only: needs <arch>/ in the spec
    checkpoint_dir.mkdir()
    torch.save(state_dict, checkpoint_dir / "open_clip_pytorch_model.bin")
    model_dir = root / "tiny-model-dir"  # config + weights: what `hf download` writes
    model_dir.mkdir()
    (model_dir / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CONFIG,
                    "preprocess_cfg": {"mean": list(TAG_MEAN), "std": list(TAG_STD)}}),
        "utf-8",
    )
    save_file(state_dict, str(model_dir / "open_clip_model.safetensors"))
    return {"pt": pt, "safetensors": safetensors, "checkpoint_dir": checkpoint_dir,
            "model_dir": model_dir}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test can download: an empty HF cache, and a Hub that refuses connections."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "ENDPOINT", UNREACHABLE_HUB)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clear_cache()
    yield constants
    clear_cache()


@pytest.fixture
def hub_cache(offline, tmp_path, weights, monkeypatch, arch):
    """A Hugging Face cache holding the tiny model, and a pretrained tag naming it.

    The tag is registered in open_clip's pretrained table with ``hf_hub`` set,
    like every tag in open_clip's own list. The cache holds what
    ``hf_hub_download`` leaves there: for the tag, the weights file alone
    (open_clip downloads nothing else for a tag); for the ``hf-hub:`` model,
    its config and weights. So both loaders run their real code, from the
    cache.
    """
    import shutil

    cache = Path(offline.HF_HUB_CACHE)
    for repo_id, files in ((REPO, ["open_clip_config.json", "open_clip_model.safetensors"]),
                           (TAG_REPO, ["open_clip_model.safetensors"])):
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / COMMIT
        snapshot.mkdir(parents=True)
        for name in files:
            shutil.copy(weights["model_dir"] / name, snapshot / name)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(COMMIT, "utf-8")
    tag_cfg = {"url": "", "hf_hub": f"{TAG_REPO}/", "mean": TAG_MEAN, "std": TAG_STD,
               "interpolation": "bicubic", "resize_mode": "shortest"}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, arch, {TAG: tag_cfg})
    assert open_clip.get_pretrained_cfg(arch, TAG)
    return cache


@pytest.fixture(scope="module")
def images(sample_arrays):
    """RGB PIL images of several sizes and aspect ratios."""
    return [Image.fromarray(sample_arrays[name]) for name in ("astronaut", "china", "coffee")]


def _open_clip_reference(model_name, pretrained=None):
    """open_clip's own model, preprocessing and tokenizer for the same weights."""
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    return model.eval(), preprocess, open_clip.get_tokenizer(model_name)


def _reference_embeddings(reference, texts, images):
    model, preprocess, tokenizer = reference
    with torch.inference_mode():
        text_rows = model.encode_text(tokenizer(texts), normalize=True)
        pixels = torch.stack([preprocess(image) for image in images])
        image_rows = model.encode_image(pixels, normalize=True)
    return text_rows.numpy(), image_rows.numpy()


def _sha16(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# Each spec form a user can write for local or cached weights, with the
# open_clip call that loads the same model, and the identity skhftt records.
FORMS = {
    "tag": (lambda w: f"{ARCH}/{TAG}", lambda w: (ARCH, TAG),
            lambda w: rf"open_clip:{ARCH}/{TAG}@{COMMIT}"),
    "hf-hub": (lambda w: f"hf-hub:{REPO}", lambda w: (f"hf-hub:{REPO}", None),
               lambda w: rf"open_clip:hf-hub:{REPO}@{COMMIT}"),
    "pt-file": (lambda w: f"{ARCH}/{w['pt']}", lambda w: (ARCH, str(w["pt"])),
                lambda w: rf"open_clip:{ARCH}/tiny\.pt@sha256:{_sha16(w['pt'])}"),
    "safetensors-file": (
        lambda w: f"{ARCH}/{w['safetensors']}", lambda w: (ARCH, str(w["safetensors"])),
        lambda w: rf"open_clip:{ARCH}/tiny\.safetensors@sha256:{_sha16(w['safetensors'])}"),
    "checkpoint-dir": (
        lambda w: f"{ARCH}/{w['checkpoint_dir']}",
        lambda w: (ARCH, str(w["checkpoint_dir"] / "open_clip_pytorch_model.bin")),
        lambda w: rf"open_clip:{ARCH}/checkpoint-dir@sha256:[0-9a-f]{{16}}"),
    "model-dir": (lambda w: f"{w['model_dir']}",
                  lambda w: (f"local-dir:{w['model_dir']}", None),
                  lambda w: r"open_clip:tiny-model-dir@sha256:[0-9a-f]{16}"),
    "local-dir": (lambda w: f"local-dir:{w['model_dir']}",
                  lambda w: (f"local-dir:{w['model_dir']}", None),
                  lambda w: r"open_clip:tiny-model-dir@sha256:[0-9a-f]{16}"),
}


@pytest.fixture(params=sorted(FORMS))
def form(request, hub_cache, weights):
    """(spec, open_clip reference, identity pattern) for one spec form."""
    spec, reference, identity = FORMS[request.param]
    return f"open_clip:{spec(weights)}", reference(weights), identity(weights)


# ---------------------------------------------------- embeddings are open_clip's


def test_each_spec_form_matches_open_clip(form, images, state_dict, arch):
    spec, (model_name, pretrained), identity = form
    encoder = resolve_encoder(spec, device="cpu")
    assert isinstance(encoder, OpenCLIPEncoder)
    assert encoder.dim == TINY_CONFIG["embed_dim"]
    # The identity records the revision: a Hub commit, or a digest of local weights.
    assert re.fullmatch(identity, encoder.identity), encoder.identity
    assert encoder.identity.endswith(f"@{encoder.revision}")
    texts = encoder.encode_text(TEXTS, batch_size=2)
    image_rows = encoder.encode_image(images, batch_size=2)
    reference = _open_clip_reference(model_name, pretrained)
    expected_texts, expected_images = _reference_embeddings(reference, TEXTS, images)
    np.testing.assert_allclose(texts, expected_texts, atol=2e-6)
    np.testing.assert_allclose(image_rows, expected_images, atol=2e-6)
    for rows in (texts, image_rows):
        assert rows.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    # The checkpoint's weights were loaded, not a fresh random initialisation.
    loaded = encoder.model[0].state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state_dict.items())


def test_tag_preprocessing_is_the_tags(hub_cache, images, arch):
    """A pretrained tag's normalisation (mean, std) reaches the image tower."""
    encoder = resolve_encoder(f"open_clip:{arch}/{TAG}", device="cpu")
    normalize = encoder.pixel_transform().transforms[-1]
    np.testing.assert_allclose(normalize.mean, TAG_MEAN)
    np.testing.assert_allclose(normalize.std, TAG_STD)


def test_pixel_path_matches_encode_image(hub_cache, images, arch):
    encoder = resolve_encoder(f"open_clip:{arch}/{TAG}", device="cpu")
    transform = pickle.loads(pickle.dumps(encoder.pixel_transform()))  # for worker processes
    pixels = torch.stack([transform(image) for image in images])
    assert pixels.shape == (len(images), 3, 32, 32)
    np.testing.assert_allclose(encoder.encode_pixels(pixels), encoder.encode_image(images),
                               atol=1e-6)


def test_encode_image_wants_pil(weights, arch, sample_arrays):
    encoder = resolve_encoder(f"open_clip:{arch}/{weights['pt']}", device="cpu")
    with pytest.raises(TypeError, match="to_embeddings"):
        encoder.encode_image([sample_arrays["astronaut"]])


def test_empty_inputs(weights, arch):
    encoder = resolve_encoder(f"open_clip:{arch}/{weights['pt']}", device="cpu")
    assert encoder.encode_text([]).shape == (0, encoder.dim)
    assert encoder.encode_image([]).shape == (0, encoder.dim)


# ------------------------------------------------------------ offline, local


def test_local_checkpoint_loads_with_the_hub_unreachable(offline, weights, arch, monkeypatch):
    """A checkpoint file loads with HF_HUB_OFFLINE unset and the Hub refusing connections."""
    monkeypatch.setattr(offline, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    start = time.perf_counter()
    encoder = resolve_encoder(f"open_clip:{arch}/{weights['safetensors']}", device="cpu")
    encoder.encode_text(["a photo of a cat"])
    assert time.perf_counter() - start < 20
    assert encoder.revision == f"sha256:{_sha16(weights['safetensors'])}"


def test_cached_tag_loads_with_the_hub_unreachable(hub_cache, offline, arch, monkeypatch):
    """Weights in the HF cache load with HF_HUB_OFFLINE unset and no network, quickly."""
    monkeypatch.setattr(offline, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    start = time.perf_counter()
    encoder = resolve_encoder(f"open_clip:{arch}/{TAG}", device="cpu")
    encoder.encode_text(["a photo of a cat"])
    assert time.perf_counter() - start < 20
    assert encoder.identity == f"open_clip:{arch}/{TAG}@{COMMIT}"


def test_relative_and_home_paths(weights, arch, monkeypatch):
    monkeypatch.chdir(weights["pt"].parent)
    relative = resolve_encoder(f"open_clip:{arch}/./tiny.pt", device="cpu")
    monkeypatch.setenv("HOME", str(weights["pt"].parent))
    home = resolve_encoder(f"open_clip:{arch}/~/tiny.pt", device="cpu")
    absolute = resolve_encoder(f"open_clip:{arch}/{weights['pt']}", device="cpu")
    assert relative.identity == home.identity == absolute.identity
    # The handle names the file by its absolute path: a pickle loads from anywhere.
    assert Path(relative.pretrained).is_absolute()
    monkeypatch.chdir("/")
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(relative)).encode_text(["a dog"]),
        absolute.encode_text(["a dog"]),
    )


# ------------------------------------------------------- identity and revision


def test_other_weights_have_another_identity(tmp_path, weights, arch):
    other = tmp_path / "tiny.pt"  # same file name, other weights
    torch.save(_random_model(arch, 1).state_dict(), other)
    first = resolve_encoder(f"open_clip:{arch}/{weights['pt']}", device="cpu")
    second = resolve_encoder(f"open_clip:{arch}/{other}", device="cpu")
    assert first.identity != second.identity
    assert not np.allclose(first.encode_text(["a dog"]), second.encode_text(["a dog"]))


def test_at_sign_in_a_file_name_is_not_a_revision(tmp_path, weights, arch):
    import shutil

    path = tmp_path / "tiny@epoch10.pt"
    shutil.copy(weights["pt"], path)
    encoder = resolve_encoder(f"open_clip:{arch}/{path}", device="cpu")
    assert encoder.identity == f"open_clip:{arch}/tiny@epoch10.pt@sha256:{_sha16(path)}"
    clear_cache()
    restored = pickle.loads(pickle.dumps(encoder))
    assert restored.encode_text(["a dog"]).shape == (1, encoder.dim)


def test_moved_checkpoint_keeps_its_identity(tmp_path, weights, arch):
    """The identity names a file by its base name and digest, not by where it lives."""
    import shutil

    moved = tmp_path / "elsewhere" / "tiny.pt"
    moved.parent.mkdir()
    shutil.copy(weights["pt"], moved)
    assert (resolve_encoder(f"open_clip:{arch}/{moved}", device="cpu").identity
            == resolve_encoder(f"open_clip:{arch}/{weights['pt']}", device="cpu").identity)


def test_random_init_identity_is_a_weights_digest(arch, images):
    encoder = OpenCLIPEncoder(arch, pretrained=None, device="cpu")
    assert re.fullmatch(rf"open_clip:{arch}/random-init@sha256:[0-9a-f]{{16}}", encoder.identity)
    texts = encoder.encode_text(["a photo of a cat", "a dog"])
    rows = encoder.encode_image(images[:1])
    for array, n in ((texts, 2), (rows, 1)):
        assert array.shape == (n, encoder.dim) and array.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)
    assert clone(encoder) is encoder
    restored = pickle.loads(pickle.dumps(encoder))
    # The same batch: a batch of another size may round differently in BLAS.
    np.testing.assert_array_equal(restored.encode_text(["a photo of a cat", "a dog"]), texts)


def test_one_encoder_per_spec(weights, arch):
    spec = f"open_clip:{arch}/{weights['pt']}"
    assert resolve_encoder(spec, device="cpu") is resolve_encoder(spec, device="cpu")
    assert clone(resolve_encoder(spec, device="cpu")) is resolve_encoder(spec, device="cpu")


# ------------------------------------------------------------------- pickling


def test_pickle_keeps_the_spec_not_the_weights(form):
    spec, _, _ = form
    encoder = resolve_encoder(spec, device="cpu")
    expected = encoder.encode_text(TEXTS)
    data = pickle.dumps(encoder)
    tensors = encoder.model[0].state_dict().values()
    weights_bytes = sum(tensor.numel() * tensor.element_size() for tensor in tensors)
    assert len(data) < 10_000 < weights_bytes
    assert b"torch" not in data
    clear_cache()  # the copy must come from disk again, at the recorded revision
    restored = pickle.loads(data)
    assert restored.identity == encoder.identity
    np.testing.assert_array_equal(restored.encode_text(TEXTS), expected)


def test_pickle_refuses_changed_weights(tmp_path, weights, arch):
    import shutil

    path = tmp_path / "tiny.pt"
    shutil.copy(weights["pt"], path)
    data = pickle.dumps(resolve_encoder(f"open_clip:{arch}/{path}", device="cpu"))
    torch.save(_random_model(arch, 2).state_dict(), path)
    clear_cache()
    restored = pickle.loads(data)
    with pytest.raises(ValueError, match="revision"):
        restored.encode_text(["a dog"])


# ------------------------------------------------------------ detector, end to end


WORLD = [f"a photo of {word}" for word in (
    "a car", "a tree", "a house", "the sea", "a bicycle", "a mountain", "bread", "a chair",
    "a clock", "a river", "a bridge", "a shoe", "a lamp", "a book", "a guitar", "a train",
    "rain", "a cloud", "a field", "a road", "a boat", "a phone", "a cup", "a key",
)] + [f"word{index}" for index in range(100)]


def test_fitted_detector_scores_images_end_to_end(hub_cache, arch, images, tmp_path,
                                                  sample_arrays):
    spec = f"open_clip:{arch}/{TAG}"
    det = HFTTDetector(encoder=spec, n_embeddings=4, max_iter=2, batch_size=32,
                       device="cpu", random_state=0)
    det.fit(WORLD, ["a photo of a cat", "a photo of a dog"])
    encoder = resolve_encoder(spec, device="cpu")
    assert det.encoder_identity_ == encoder.identity == f"open_clip:{arch}/{TAG}@{COMMIT}"
    assert det.embedding_dim_ == encoder.dim
    files = []
    for index, image in enumerate(images):
        files.append(tmp_path / f"image{index}.png")
        image.save(files[-1])
    scores = det.decision_function(files)
    assert scores.shape == (len(images),) and np.isfinite(scores).all()
    np.testing.assert_allclose(det.decision_function(images), scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        det.decision_function(encoder.encode_image(images)), scores, rtol=1e-6, atol=1e-6
    )
    assert set(det.predict(files)) <= {-1, 1}
    proba = det.predict_proba([sample_arrays["camera"]])  # grayscale array
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Saved without pickle, loaded in a fresh registry: the encoder comes back from the spec.
    det.save(tmp_path / "det.safetensors")
    clear_cache()
    loaded = HFTTDetector.load(tmp_path / "det.safetensors")
    np.testing.assert_allclose(loaded.decision_function(files), scores, rtol=1e-6, atol=1e-6)


def test_detector_loads_with_a_moved_checkpoint(weights, arch, tmp_path, images):
    import shutil

    det = HFTTDetector(encoder=f"open_clip:{arch}/{weights['pt']}", n_embeddings=2,
                       device="cpu", random_state=0).fit(WORLD, ["a photo of a cat"])
    det.save(tmp_path / "det.safetensors")
    moved = tmp_path / "moved" / "tiny.pt"
    moved.parent.mkdir()
    shutil.copy(weights["pt"], moved)
    clear_cache()
    loaded = HFTTDetector.load(tmp_path / "det.safetensors", encoder=f"open_clip:{arch}/{moved}")
    np.testing.assert_allclose(loaded.decision_function(images), det.decision_function(images),
                               rtol=1e-6, atol=1e-6)


def test_detector_refuses_other_weights(weights, arch, tmp_path, images):
    det = HFTTDetector(encoder=f"open_clip:{arch}/{weights['pt']}", n_embeddings=2,
                       device="cpu", random_state=0).fit(WORLD, ["a photo of a cat"])
    other = tmp_path / "other.pt"
    torch.save(_random_model(arch, 3).state_dict(), other)
    det.set_params(encoder=f"open_clip:{arch}/{other}")
    with pytest.raises(ValueError, match="fitted in the space of"):
        det.decision_function(images)


# ------------------------------------------------- missing weights fail fast


def test_missing_pretrained_tag_fails_fast_offline(offline):
    """A real tag whose weights were never downloaded: a clear error, at once."""
    spec = "open_clip:ViT-B-16/openai"
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError) as info:
        resolve_encoder(spec, device="cpu")
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < 3, elapsed
    assert repr(spec) in message
    assert "HF_HUB_OFFLINE" in message
    assert "open_clip:ViT-B-16//path/to/" in message  # how to load a local checkpoint
    assert "SentenceTransformer" not in message
    assert isinstance(info.value, OSError)


def test_missing_pretrained_tag_fails_fast_hub_unreachable(offline, monkeypatch):
    monkeypatch.setattr(offline, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    spec = "open_clip:ViT-B-32/laion2b_s34b_b79k"
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError) as info:
        resolve_encoder(spec, device="cpu")
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < 3, elapsed
    assert repr(spec) in message and "unreachable" in message
    assert "open_clip:ViT-B-32//path/to/" in message


def test_missing_hf_hub_model_fails_fast_offline(offline):
    spec = "open_clip:hf-hub:skhftt-tests/no-such-open-clip"
    start = time.perf_counter()
    with pytest.raises(EncoderUnavailableError) as info:
        resolve_encoder(spec, device="cpu")
    assert time.perf_counter() - start < 3
    message = str(info.value)
    assert repr(spec) in message
    assert "open_clip:/path/to/" in message


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (f"open_clip:{ARCH}/no_such_tag", rf"no pretrained weights 'no_such_tag'.*{TAG}"),
        ("open_clip:ViT-B-16/no_such_tag", r"no pretrained weights 'no_such_tag'.*openai"),
        (f"open_clip:{ARCH}//no/such/checkpoint.pt", "no checkpoint file or directory"),
        ("open_clip:No-Such-Arch/openai", "no architecture 'No-Such-Arch'"),
        ("open_clip:ViT-B-16", "pretrained weights"),
        ("open_clip:local-dir:/no/such/dir", "no model directory"),
    ],
)
def test_bad_specs_fail_fast(hub_cache, spec, match):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as info:
        resolve_encoder(spec, device="cpu")
    assert time.perf_counter() - start < 3
    assert repr(spec) in str(info.value) or spec.split(":", 1)[1] in str(info.value)


def test_model_dir_without_config(weights, arch):
    with pytest.raises(ValueError, match=re.escape("open_clip_config.json")):
        resolve_encoder(f"open_clip:{weights['checkpoint_dir']}", device="cpu")
