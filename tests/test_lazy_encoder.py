"""A named encoder's identity is known without its model, which loads only to encode."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
from huggingface_hub import constants

from skhftt.embedding.embedder import Embedder
from skhftt.embedding.encoders import clear_cache, loaded_models, resolve_encoder
from skhftt.embedding.encoders.registry import peek_identity
from skhftt.embedding.inputs import Texts


def test_peek_identity_is_the_loaded_identity(tiny_clip, tiny_clip_dir):
    assert peek_identity(tiny_clip_dir) == tiny_clip.identity
    assert peek_identity(f"sentence_transformers:{tiny_clip_dir}") == tiny_clip.identity
    assert peek_identity(f"{tiny_clip_dir}@{tiny_clip.revision}") == tiny_clip.identity


@pytest.mark.parametrize("spec", ["open_clip:ViT-B-16/openai", "skhftt-tests/not-cached"])
def test_peek_identity_leaves_to_loading_what_only_loading_tells(spec, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert peek_identity(spec) is None


def test_peek_identity_refuses_a_directory_at_another_revision(tiny_clip_dir):
    assert peek_identity(f"{tiny_clip_dir}@sha256:0123456789abcdef") is None


def test_peek_identity_of_a_hub_id_is_its_cached_commit(tiny_clip_dir, tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--skhftt-tests--tiny-clip"
    shutil.copytree(tiny_clip_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, "utf-8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert peek_identity("skhftt-tests/tiny-clip") == (
        f"sentence_transformers:skhftt-tests/tiny-clip@{commit}"
    )


def _loaded(directory) -> bool:
    return any(model["name"] == str(directory.resolve()) for model in loaded_models())


def test_cached_texts_need_no_model_and_new_texts_load_it(tiny_clip_dir, tmp_path):
    model = shutil.copytree(tiny_clip_dir, tmp_path / "clip")
    texts = Texts(["a photo of a cat", "a diagram"])
    first = Embedder(model, device="cpu", cache_dir=tmp_path / "cache").embed(texts)
    clear_cache()
    embedder = Embedder(model, device="cpu", cache_dir=tmp_path / "cache")
    encoder = embedder.load()
    assert (encoder.identity, encoder.dim) == (peek_identity(model), 16)
    np.testing.assert_array_equal(embedder.embed(texts), first)
    assert not _loaded(model)
    fresh = embedder.embed(Texts(["a new text"]))
    assert _loaded(model)
    np.testing.assert_allclose(
        fresh, resolve_encoder(model, device="cpu").encode_text(["a new text"]), atol=1e-6
    )


def test_model_files_changed_since_the_identity_was_read_are_refused(tiny_clip_dir, tmp_path):
    model = shutil.copytree(tiny_clip_dir, tmp_path / "clip")
    Embedder(model, device="cpu", cache_dir=tmp_path / "cache").embed(Texts(["a cat"]))
    clear_cache()
    encoder = Embedder(model, device="cpu", cache_dir=tmp_path / "cache").load()
    (model / "notes.txt").write_text("a new file changes the content digest")
    with pytest.raises(ValueError, match="model files changed while in use"):
        encoder.encode_text(["a dog"])


def test_lazy_and_loaded_encoders_pickle(tiny_clip_dir, tmp_path):
    model = shutil.copytree(tiny_clip_dir, tmp_path / "clip")
    loaded = Embedder(model, device="cpu", cache_dir=tmp_path / "cache").load()
    loaded.encode_text(["a cat"])
    Embedder(model, device="cpu", cache_dir=tmp_path / "cache").embed(Texts(["a cat"]))
    clear_cache()
    lazy = Embedder(model, device="cpu", cache_dir=tmp_path / "cache").load()
    assert not _loaded(model)
    for encoder in (pickle.loads(pickle.dumps(lazy)), pickle.loads(pickle.dumps(loaded))):
        assert (encoder.identity, encoder.dim) == (lazy.identity, 16)
        np.testing.assert_allclose(
            encoder.encode_text(["a dog"]), loaded.encode_text(["a dog"]), atol=1e-6
        )
