"""Inputs -> embeddings: image forms, conversions, the str rule, errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from skhftt.embedding.images import load_image
from skhftt.embedding.inputs import ImagePaths, Texts, to_embeddings


def embed(encoder, X, **kwargs):
    return to_embeddings(X, encoder=encoder, dim=encoder.dim, **kwargs)


def rgb_array(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# ------------------------------------------------------------ the str rule

TEXTS_NAMED_LIKE_FILES = ["cat", "LICENSE", "AC/DC", "24/7", "holiday.jpg"]


@pytest.fixture
def text_named_files(tmp_path, monkeypatch, sample_arrays):
    """A working directory holding files named like texts: an image 'cat', a text 'LICENSE'."""
    monkeypatch.chdir(tmp_path)
    Image.fromarray(sample_arrays["astronaut"]).save(tmp_path / "cat", format="PNG")
    (tmp_path / "LICENSE").write_text("BSD-3-Clause", "utf-8")
    return tmp_path


def test_texts_wrapper_embeds_texts_whatever_files_exist(tiny_clip, text_named_files):
    texts = Texts(TEXTS_NAMED_LIKE_FILES)
    np.testing.assert_allclose(
        embed(tiny_clip, texts), tiny_clip.encode_text(TEXTS_NAMED_LIKE_FILES), atol=1e-6
    )


@pytest.mark.parametrize("text", ["cat", "a photo of a dog", "AC/DC", "24/7", "e.g. a dog"])
def test_a_str_is_never_embedded_as_a_text(tiny_clip, tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(repr(text))):
        embed(tiny_clip, [text])


def test_a_str_naming_a_file_is_that_file(tiny_clip, text_named_files, sample_arrays):
    np.testing.assert_allclose(
        embed(tiny_clip, ["cat"]), embed(tiny_clip, [sample_arrays["astronaut"]]), atol=1e-6
    )
    with pytest.raises(ValueError, match=r"'LICENSE'.*not a readable image"):
        embed(tiny_clip, ["LICENSE"])


def test_a_missing_text_like_path_says_how_to_embed_texts(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"X\[1\]: image file 'a dog' not found.*Texts"):
        embed(tiny_clip, [Image.new("RGB", (8, 8)), "a dog"])
    with pytest.raises(FileNotFoundError) as info:
        embed(tiny_clip, ["photos/dog.jpg"])
    assert "Texts" not in str(info.value)


def test_string_arrays_are_paths_too(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="'cat'"):
        embed(tiny_clip, np.array(["cat", "dog"]))


def test_a_missing_file_fails_before_anything_is_encoded(tmp_path, sample_arrays):
    from skhftt.embedding.encoders.hashing import HashingEncoder

    class Counting(HashingEncoder):
        images = 0

        def encode_image(self, images, **kwargs):
            Counting.images += len(images)
            return super().encode_image(images, **kwargs)

    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        to_embeddings(
            [sample_arrays["astronaut"]] * 3 + [tmp_path / "missing.png"],
            encoder=Counting(),
            dim=None,
            batch_size=2,
        )
    assert Counting.images == 0


def test_directory_is_not_an_image(tiny_clip, tmp_path):
    with pytest.raises(FileNotFoundError, match="directory"):
        embed(tiny_clip, [str(tmp_path) + os.sep])


def test_url_is_refused(tiny_clip):
    with pytest.raises(ValueError, match="URL"):
        embed(tiny_clip, ["https://example.com/cat.jpg"])


# ------------------------------------------------- one image, many forms


def test_path_pil_and_array_embed_identically(tiny_clip, image_files):
    names = ["astronaut.jpg", "china.jpg", "flower.jpg", "coffee.png"]
    paths = [str(image_files[name]) for name in names]
    from_paths = embed(tiny_clip, paths)
    from_pathlib = embed(tiny_clip, [image_files[name] for name in names])
    from_pil = embed(tiny_clip, [Image.open(path) for path in paths])
    from_arrays = embed(tiny_clip, [rgb_array(Path(path)) for path in paths])
    np.testing.assert_allclose(from_pathlib, from_paths, atol=1e-6)
    np.testing.assert_allclose(from_pil, from_paths, atol=1e-6)
    np.testing.assert_allclose(from_arrays, from_paths, atol=1e-6)


def test_png_file_embeds_like_its_source_array(tiny_clip, image_files, sample_arrays):
    from_file = embed(tiny_clip, [image_files["astronaut.png"]])
    from_array = embed(tiny_clip, [sample_arrays["astronaut"]])
    np.testing.assert_allclose(from_file, from_array, atol=1e-6)


def test_output_is_unit_float32_and_deterministic(tiny_clip, image_files):
    paths = [image_files["astronaut.jpg"], image_files["china.jpg"]]
    first = embed(tiny_clip, paths)
    second = embed(tiny_clip, paths)
    assert first.dtype == np.float32
    assert first.shape == (2, tiny_clip.dim)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first[0], first[1])


def test_batches_and_order(tiny_clip, image_files):
    paths = [
        image_files[name]
        for name in ["astronaut.jpg", "china.jpg", "flower.jpg", "coffee.png", "camera.png"]
    ]
    whole = embed(tiny_clip, paths)
    batched = embed(tiny_clip, paths, batch_size=2)
    reversed_ = embed(tiny_clip, paths[::-1], batch_size=3)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    np.testing.assert_allclose(reversed_[::-1], whole, atol=1e-6)


def test_uint16_float_and_bool_arrays(tiny_clip, sample_arrays):
    astronaut = sample_arrays["astronaut"]
    reference = embed(tiny_clip, [astronaut])
    as_uint16 = embed(tiny_clip, [astronaut.astype(np.uint16) * 257])
    as_float = embed(tiny_clip, [astronaut / 255.0])
    np.testing.assert_allclose(as_uint16, reference, atol=1e-6)
    np.testing.assert_allclose(as_float, reference, atol=1e-6)
    mask = sample_arrays["camera"] > 128
    np.testing.assert_allclose(
        embed(tiny_clip, [mask]), embed(tiny_clip, [mask.astype(np.uint8) * 255]), atol=1e-6
    )


def test_chw_tensors(tiny_clip, sample_arrays):
    astronaut = sample_arrays["astronaut"]
    reference = embed(tiny_clip, [astronaut])
    chw = torch.from_numpy(astronaut).permute(2, 0, 1)
    np.testing.assert_allclose(embed(tiny_clip, [chw]), reference, atol=1e-6)
    np.testing.assert_allclose(embed(tiny_clip, [chw.float() / 255]), reference, atol=1e-6)
    batch = torch.stack([chw, chw])
    np.testing.assert_allclose(embed(tiny_clip, batch), np.repeat(reference, 2, 0), atol=1e-6)


def test_4d_array_is_a_batch(tiny_clip, sample_arrays):
    astronaut = sample_arrays["astronaut"]
    batch = np.stack([astronaut, astronaut[::-1]])
    np.testing.assert_allclose(
        embed(tiny_clip, batch), embed(tiny_clip, [astronaut, astronaut[::-1]]), atol=1e-6
    )


def test_hwc_tensor_is_refused(tiny_clip, sample_arrays):
    hwc = torch.from_numpy(sample_arrays["astronaut"])
    with pytest.raises(ValueError, match="channels-first"):
        embed(tiny_clip, [hwc])


# ---------------------------------------------------------- conversions


def test_grayscale_file_and_array(tiny_clip, image_files, sample_arrays):
    camera = sample_arrays["camera"]
    as_rgb = embed(tiny_clip, [np.stack([camera] * 3, axis=-1)])
    np.testing.assert_allclose(embed(tiny_clip, [image_files["camera.png"]]), as_rgb, atol=1e-6)
    np.testing.assert_allclose(embed(tiny_clip, [camera]), as_rgb, atol=1e-6)
    np.testing.assert_allclose(embed(tiny_clip, [camera[:, :, None]]), as_rgb, atol=1e-6)


def test_16_bit_grayscale_file(tiny_clip, image_files):
    with Image.open(image_files["camera16.png"]) as image:
        assert image.mode.startswith("I")
    np.testing.assert_allclose(
        embed(tiny_clip, [image_files["camera16.png"]]),
        embed(tiny_clip, [image_files["camera.png"]]),
        atol=1e-6,
    )


def test_rgba_is_composited_over_white(tiny_clip, image_files, sample_arrays, tmp_path):
    rgba = np.dstack([sample_arrays["astronaut"], np.full((512, 512), 255, np.uint8)])
    rgba[:, :256] = 0  # left half: fully transparent, stored as black
    rgba[:, 256:320, 3] = 128  # a half-transparent band
    expected_rgb = rgba[:, :, :3].astype(np.float64) * (rgba[:, :, 3:] / 255)
    expected_rgb += 255 * (1 - rgba[:, :, 3:] / 255)
    expected = embed(tiny_clip, [np.round(expected_rgb).astype(np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    for item in (tmp_path / "rgba.png", Image.open(tmp_path / "rgba.png"), rgba):
        np.testing.assert_allclose(embed(tiny_clip, [item]), expected, atol=1e-2)
    dropped_alpha = embed(tiny_clip, [rgba[:, :, :3]])
    assert not np.allclose(dropped_alpha, expected, atol=1e-2)
    assert load_image(image_files["logo_rgba.png"]).mode == "RGB"


def test_palette_image(tiny_clip, image_files):
    with Image.open(image_files["astronaut_palette.png"]) as image:
        assert image.mode == "P"
        expected = embed(tiny_clip, [np.asarray(image.convert("RGB"))])
    np.testing.assert_allclose(
        embed(tiny_clip, [image_files["astronaut_palette.png"]]), expected, atol=1e-6
    )


def test_exif_orientation_is_honoured(tiny_clip, image_files, sample_arrays):
    upright = embed(tiny_clip, [sample_arrays["coffee"]])
    stored = embed(tiny_clip, [np.rot90(sample_arrays["coffee"], k=1)])
    from_file = embed(tiny_clip, [image_files["coffee_exif.png"]])
    from_pil = embed(tiny_clip, [Image.open(image_files["coffee_exif.png"])])
    np.testing.assert_allclose(from_file, upright, atol=1e-6)
    np.testing.assert_allclose(from_pil, upright, atol=1e-6)
    assert not np.allclose(stored, upright, atol=1e-3)
    loaded = load_image(image_files["coffee_exif.jpg"])
    assert loaded.size == (600, 400)


def test_load_image_always_rgb(image_files):
    for name in ["camera.png", "camera16.png", "logo_rgba.png", "astronaut_palette.png"]:
        image = load_image(image_files[name])
        assert image.mode == "RGB"


# ---------------------------------------------------- texts and wrappers


def test_texts_embed_with_the_text_tower(tiny_clip):
    texts = ["a photo of a cat", "a photo of a dog"]
    np.testing.assert_allclose(
        embed(tiny_clip, Texts(texts)), tiny_clip.encode_text(texts), atol=1e-6
    )


def test_image_paths_wrapper(tiny_clip, image_files, tmp_path):
    expected = embed(tiny_clip, [image_files["astronaut.png"]])
    np.testing.assert_allclose(
        embed(tiny_clip, ImagePaths([image_files["scan_0001"]])), expected, atol=1e-6
    )
    with pytest.raises(FileNotFoundError, match="scan_0002"):
        embed(tiny_clip, ImagePaths([str(tmp_path / "scan_0002")]))


def test_wrappers_validate_items():
    with pytest.raises(TypeError, match="single string"):
        Texts("a cat")
    with pytest.raises(TypeError, match="item 1"):
        Texts(["a cat", 3])
    with pytest.raises(TypeError, match="item 0"):
        ImagePaths([Image.new("RGB", (4, 4))])


def test_mixed_image_forms_keep_order(tiny_clip, image_files, sample_arrays):
    path = image_files["astronaut.png"]
    mixed = embed(
        tiny_clip, [str(path), sample_arrays["coffee"], path.read_bytes(), Image.open(path)]
    )
    np.testing.assert_allclose(mixed[[2, 3]], mixed[[0, 0]], atol=1e-6)
    np.testing.assert_allclose(mixed[1], embed(tiny_clip, [sample_arrays["coffee"]])[0], atol=1e-6)
    assert not np.allclose(mixed[0], mixed[1], atol=1e-3)


def test_embeddings_pass_through(tiny_clip):
    rows = np.random.default_rng(0).normal(size=(3, tiny_clip.dim))
    out = embed(tiny_clip, rows)
    np.testing.assert_allclose(out, rows / np.linalg.norm(rows, axis=1, keepdims=True), 1e-6)
    np.testing.assert_allclose(embed(tiny_clip, list(rows)), out)
    np.testing.assert_allclose(embed(tiny_clip, torch.from_numpy(rows)), out, atol=1e-6)


# ---------------------------------------------------------------- errors


def test_nonexistent_path_names_the_file(tiny_clip, tmp_path, image_files):
    missing = tmp_path / "missing.png"
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        embed(tiny_clip, [str(missing)])
    with pytest.raises(FileNotFoundError, match=r"X\[1\].*missing\.png"):
        embed(tiny_clip, [image_files["astronaut.png"], missing])


def test_corrupt_file_names_the_file(tiny_clip, image_files):
    with pytest.raises(ValueError, match=r"corrupt\.jpg.*not a readable image"):
        embed(tiny_clip, [image_files["astronaut.jpg"], image_files["corrupt.jpg"]])


def test_bad_arrays(tiny_clip, sample_arrays):
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        embed(tiny_clip, [sample_arrays["astronaut"].astype(np.float32)])
    with pytest.raises(ValueError, match=r"one \(H, W, C\) image"):
        embed(tiny_clip, sample_arrays["astronaut"])
    with pytest.raises(ValueError, match="shape"):
        embed(tiny_clip, [np.zeros((8, 8, 5), dtype=np.uint8)])
    with pytest.raises(ValueError, match="one grayscale image"):
        embed(tiny_clip, sample_arrays["camera"])
    with pytest.raises(ValueError, match="one grayscale image"):
        embed(tiny_clip, torch.from_numpy(sample_arrays["camera"]))
    with pytest.raises(ValueError, match="outside 0-255"):
        embed(tiny_clip, [np.full((8, 8), 300, dtype=np.int64)])


def test_single_items_and_unknown_items(tiny_clip, image_files):
    with pytest.raises(TypeError, match="wrap it in a list"):
        embed(tiny_clip, str(image_files["astronaut.jpg"]))
    with pytest.raises(TypeError, match="wrap it in a list"):
        embed(tiny_clip, Image.open(image_files["astronaut.jpg"]))
    with pytest.raises(TypeError, match=r"X\[1\] is dict.*Texts"):
        embed(tiny_clip, [image_files["astronaut.jpg"], {"image": 1}])
    with pytest.raises(ValueError, match="empty"):
        embed(tiny_clip, [])


def test_precomputed_mode_refuses_images_and_texts(image_files):
    with pytest.raises(TypeError, match=r"images.*precomputed"):
        to_embeddings([image_files["astronaut.jpg"]], encoder=None, dim=16)
    with pytest.raises(TypeError, match=r"texts.*precomputed"):
        to_embeddings(Texts(["a cat"]), encoder=None, dim=16)
    rows = np.eye(16, dtype=np.float32)[:2]
    np.testing.assert_array_equal(to_embeddings(rows, encoder=None, dim=16), rows)


def test_wrong_width_embeddings(tiny_clip):
    with pytest.raises(ValueError, match="width 3"):
        embed(tiny_clip, np.ones((2, 3)))


@pytest.mark.parametrize("make", [lambda big: big, lambda big: ["ok", big.encode()]])
def test_a_huge_bad_text_is_named_in_a_short_message(make):
    big = "x" * 1_000_000
    with pytest.raises(TypeError) as raised:
        Texts(make(big))
    assert len(str(raised.value)) < 300
