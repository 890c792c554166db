"""Image decoding: one decoder, an error policy, one list of image extensions."""

from __future__ import annotations

import importlib.util
import io

import numpy as np
import pytest
from PIL import Image

from skhftt.embedding.images import IMAGE_EXTENSIONS, has_image_extension, load_image


def rgb(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


# ------------------------------------------------------------ forms of input


def test_bytes_streams_paths_and_pil_decode_identically(image_files):
    path = image_files["coffee_exif.jpg"]
    expected = rgb(load_image(path))
    assert expected.shape[:2] == (400, 600)  # the EXIF rotation is applied
    data = path.read_bytes()
    np.testing.assert_array_equal(rgb(load_image(data)), expected)
    np.testing.assert_array_equal(rgb(load_image(bytearray(data))), expected)
    np.testing.assert_array_equal(rgb(load_image(memoryview(data))), expected)
    np.testing.assert_array_equal(rgb(load_image(io.BytesIO(data))), expected)
    with open(path, "rb") as handle:
        np.testing.assert_array_equal(rgb(load_image(handle)), expected)
    np.testing.assert_array_equal(rgb(load_image(str(path))), expected)
    np.testing.assert_array_equal(rgb(load_image(Image.open(path))), expected)


def test_a_stream_is_read_from_where_it_stands(image_files):
    data = image_files["astronaut.png"].read_bytes()
    stream = io.BytesIO(b"header" + data)
    stream.seek(len(b"header"))
    np.testing.assert_array_equal(
        rgb(load_image(stream)), rgb(load_image(image_files["astronaut.png"]))
    )


@pytest.mark.parametrize(
    "name", ["camera16.png", "logo_rgba.png", "astronaut_palette.png", "camera.png"]
)
def test_every_mode_becomes_rgb_from_bytes_too(image_files, name):
    from_path = rgb(load_image(image_files[name]))
    np.testing.assert_array_equal(rgb(load_image(image_files[name].read_bytes())), from_path)


# ------------------------------------------------------------- error policy


def test_errors_raise_name_the_item(tmp_path, image_files):
    with pytest.raises(FileNotFoundError, match=r"image file '.*nope\.jpg' not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ValueError, match=r"corrupt\.jpg.*not a readable image"):
        load_image(image_files["corrupt.jpg"])
    with pytest.raises(ValueError, match=r"^tar member 'a/1\.jpg' is not a readable image"):
        load_image(b"not an image", source="tar member 'a/1.jpg'")
    with pytest.raises(ValueError, match=r"^image bytes is not a readable image"):
        load_image(b"")
    with pytest.raises(TypeError, match=r"^images\[2\] is dict"):
        load_image({}, source="images[2]")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        load_image(np.full((4, 4), 2.0))


def test_errors_return_hands_the_error_back(tmp_path, image_files, sample_arrays):
    missing = load_image(tmp_path / "nope.jpg", errors="return")
    assert isinstance(missing, FileNotFoundError) and "nope.jpg" in str(missing)
    corrupt = load_image(image_files["corrupt.jpg"], source="row 7", errors="return")
    assert isinstance(corrupt, ValueError)
    assert str(corrupt).startswith("row 7 is not a readable image")
    truncated = image_files["astronaut.jpg"].read_bytes()[:2000]
    assert isinstance(load_image(truncated, errors="return"), ValueError)
    assert isinstance(load_image(3, errors="return"), TypeError)
    good = load_image(sample_arrays["astronaut"], errors="return")
    np.testing.assert_array_equal(rgb(good), sample_arrays["astronaut"])


def test_errors_must_be_raise_or_return():
    with pytest.raises(ValueError, match=r"errors='ignore' is not one of \['raise', 'return'\]"):
        load_image(np.zeros((2, 2), np.uint8), errors="ignore")


# -------------------------------------------------------- image extensions


def test_the_package_has_one_list_of_image_extensions():
    from skhftt.embedding import inputs

    assert inputs.IMAGE_EXTENSIONS is IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    assert {".jpg", ".jpeg", ".png", ".webp", ".avif", ".heic", ".tif"} <= IMAGE_EXTENSIONS
    assert has_image_extension("Photos/CAT.JPG") and has_image_extension("a.avif")
    assert not has_image_extension("notes.txt") and not has_image_extension("README")


def _writable_formats() -> list[tuple[str, str]]:
    Image.init()
    registered = Image.registered_extensions()
    return [
        (ext, registered[ext])
        for ext in sorted(IMAGE_EXTENSIONS)
        if ext in registered and registered[ext] in Image.SAVE
    ]


@pytest.mark.parametrize(("extension", "format_"), _writable_formats())
def test_each_listed_format_pillow_writes_decodes(tmp_path, sample_arrays, extension, format_):
    photo = Image.fromarray(sample_arrays["astronaut"][::16, ::16])
    path = tmp_path / f"photo{extension}"
    try:
        photo.save(path, format=format_)
    except (OSError, KeyError, ValueError) as exc:  # an encoder Pillow was built without
        pytest.skip(f"Pillow cannot write {format_} here: {exc}")
    decoded = load_image(path)
    assert decoded.mode == "RGB" and decoded.size == photo.size


PLUGINS = {
    ".avif": ("pillow_avif", "pillow-avif-plugin"),
    ".heic": ("pillow_heif", "pillow-heif"),
    ".heif": ("pillow_heif", "pillow-heif"),
}


def test_every_listed_extension_is_readable_or_names_its_plugin(tmp_path):
    Image.init()
    registered = Image.registered_extensions()
    for extension in sorted(IMAGE_EXTENSIONS - registered.keys()):
        module, package = PLUGINS[extension]
        if importlib.util.find_spec(module) is not None:
            continue
        path = tmp_path / f"photo{extension}"
        path.write_bytes(b"\0" * 64)
        with pytest.raises(ValueError, match=f"need the {package} package"):
            load_image(path)


def test_in_memory_and_batch_scoring_embed_images_identically(tmp_path, tiny_clip, image_files):
    """One pipeline: decoding threads (in memory, and batch jobs without workers) and
    DataLoader worker processes give the same embeddings, bit for bit."""
    import torch

    from skhftt.batch import discover_shards
    from skhftt.batch.images import image_blocks
    from skhftt.embedding.inputs import to_embeddings

    names = ["astronaut.jpg", "coffee_exif.png", "camera16.png", "logo_rgba.png", "china.jpg"]
    files = [str(image_files[name]) for name in names]
    (tmp_path / "list.txt").write_text("\n".join(files))
    [shard] = discover_shards(tmp_path / "list.txt")
    in_memory = to_embeddings(files, encoder=tiny_clip, dim=None, batch_size=2)
    for workers in (0, 2):
        blocks = list(image_blocks(shard, tiny_clip, dim=in_memory.shape[1], batch_size=2,
                                   num_workers=workers, device=torch.device("cpu")))
        assert [len(block) for block in blocks] == [2, 2, 1]
        assert all(block.errors is None for block in blocks)
        np.testing.assert_array_equal(np.concatenate([b.embeddings for b in blocks]), in_memory)
