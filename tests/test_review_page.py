"""The review page, opened in a real browser: the right thumbnails for every kind of input.

Each test scores an input as a user would, writes the page with ``skhftt review``,
opens it in headless Chromium (no network: the page is one file) and reads the
rendered DOM: the grids hold the expected rows with their ids and scores, every
thumbnail decoded, the histogram is drawn. A screenshot of each page is kept as a
test artefact (in ``$SKHFTT_TEST_ARTEFACTS``, else in pytest's temporary folder).
Chromium is Debian's ``chromium`` package; ``.ci/run`` installs it. Without it these
tests fail in CI (``CI=true``) and skip elsewhere.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scoring_data import (
    BAD_IMAGES,
    DIM,
    hashing_detector,
    image_bytes,
    precomputed_detector,
    write_images,
    write_img2dataset_parquet,
)
from _synthetic import unit

from skhftt.cli import main
from skhftt.detectors.persistence import save_detector

N = 3  # thumbnails per grid


@pytest.fixture(scope="module")
def chromium():
    """The path of Chromium; a missing browser fails the test in CI and skips it elsewhere."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI must test the review page in a browser")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    folder = Path(os.environ.get("SKHFTT_TEST_ARTEFACTS") or
                  tmp_path_factory.getbasetemp() / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _browse(chromium, page, tmp_path, *args):
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
         "--hide-scrollbars", *args, page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Page(HTMLParser):
    """The rendered DOM of a review page: tiles per (section, grid), images, histograms."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.grids: dict[tuple[str, str], list[dict]] = {}
        self.images: list[dict] = []
        self.histograms: list[dict] = []
        self.bars = 0
        self.body: dict = {}
        self._where = ("", "")
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "body":
            self.body = found
        elif tag == "section":
            self._where = (found.get("data-concept", ""), "")
        elif tag == "div" and "data-grid" in found:
            self._where = (self._where[0], found["data-grid"])
            self.grids[self._where] = []
        elif tag == "figure":
            self.grids[self._where].append(found)
        elif tag == "img":
            self.images.append(found)
        elif tag == "svg" and "histogram" in found.get("class", ""):
            self.histograms.append(found)
        elif tag == "rect" and found.get("class") == "bar":
            self.bars += 1

    def ids(self, grid, concept=""):
        return [tile["data-id"] for tile in self.grids[concept, grid]]


def _review(chromium, tmp_path, artefacts, name, scores, *options):
    out = tmp_path / "review"
    assert main(["review", str(scores), "-o", str(out), "--thumbnails", str(N), *options]) == 0
    page = out / "index.html"
    text = page.read_text()
    # One self-contained file: nothing to fetch, from the network or beside it.
    assert not re.search(r"<(link|script)[^>]*(src|href)=", text)
    assert all(src.startswith("data:image/") for src in re.findall(r'<img src="([^"]*)"', text))
    dom = Page(_browse(chromium, page, tmp_path, "--dump-dom"))
    assert dom.body.get("data-loaded") == "true"
    shot = artefacts / f"review-{name}.png"
    _browse(chromium, page, tmp_path, "--window-size=1280,2200", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return dom


def _expected(scores_dir, fraction):
    """What a fraction rule decides, computed from the score files alone."""
    paths = sorted(scores_dir.glob("*.parquet"))
    table = pa.concat_tables(pq.read_table(path) for path in paths)
    stems = [path.stem for path in paths for _ in range(pq.read_metadata(path).num_rows)]
    ids = np.array([value if value is not None else f"{stem}:{row}" for value, row, stem in
                    zip(table.column("id").to_pylist(), table.column("row").to_pylist(), stems,
                        strict=True)], dtype=object)
    score = np.asarray(table.column("score").to_numpy(zero_copy_only=False), dtype=float)
    failed = np.asarray(table.column("error").is_valid())
    scored = np.flatnonzero(~failed)
    order = scored[np.argsort(score[scored], kind="stable")]  # most unwanted: lowest score
    n_removed = int(np.floor(fraction * len(scored)))
    return {"ids": ids, "score": score, "failed": np.flatnonzero(failed), "order": order,
            "removed": order[:n_removed], "kept": order[n_removed:]}


def _check_decision(dom, expected, concept=""):
    ids, score = expected["ids"], expected["score"]
    top, removed, kept = expected["order"][:N], expected["removed"], expected["kept"]
    assert dom.ids("top", concept) == list(ids[top])
    assert [float(t["data-score"]) for t in dom.grids[concept, "top"]] == list(score[top])
    assert dom.ids("border-removed", concept) == list(ids[removed[-N:]])
    assert dom.ids("border-kept", concept) == list(ids[kept[:N]])
    sample = dom.ids("kept", concept)
    assert len(sample) == min(N, len(kept)) and set(sample) <= set(ids[kept])
    for grid in ("top", "border-removed", "border-kept", "kept"):
        for tile in dom.grids[concept, grid]:
            assert float(tile["data-score"]) == score[int(tile["data-row"])]
    assert dom.histograms and dom.bars > 0


def _tiles(expected):
    """How many tiles the decision grids hold (the borderline band may be short)."""
    removed, kept = len(expected["removed"]), len(expected["kept"])
    return min(N, removed + kept) + min(N, removed) + 2 * min(N, kept)


def _all_loaded(dom, count):
    assert len(dom.images) == count
    assert all(int(image["data-natural-width"]) > 0 for image in dom.images)


def test_a_folder_of_images_on_the_tiny_clip(chromium, artefacts, tmp_path, tiny_clip_dir):
    from skhftt import HFTTDetector
    from skhftt.corpora import load_world_corpus

    write_images(tmp_path / "pics", 14)
    detector = HFTTDetector(encoder=str(tiny_clip_dir), device="cpu", n_embeddings=3,
                            random_state=0).fit(load_world_corpus(200), ["a red apple", "a pear"])
    save_detector(detector, tmp_path / "det.safetensors")
    assert main(["score", str(tmp_path / "det.safetensors"), str(tmp_path / "pics"), "-o",
                 str(tmp_path / "s"), "--num-workers", "0"]) == 0
    dom = _review(chromium, tmp_path, artefacts, "folder", tmp_path / "s", "--method",
                  "fraction", "--fraction", "0.3", "--world-words", "200")
    expected = _expected(tmp_path / "s", 0.3)
    _check_decision(dom, expected)
    assert sorted(dom.ids("errors")) == sorted(str(tmp_path / "pics" / b) for b in BAD_IMAGES)
    _all_loaded(dom, _tiles(expected))
    page = (tmp_path / "review" / "index.html").read_text()
    assert page.count(' · rank ') == 4 * N and "learned_" in page  # explained by their columns
    assert f'href="{(tmp_path / "pics" / "img000.png").as_uri()}"' in page
    assert int(dom.body["data-errors"]) == len(BAD_IMAGES)


def _tar(path, images):
    """A webdataset tar: each sample a key with an image member and a caption."""
    with tarfile.open(path, "w") as archive:
        for index, (name, data) in enumerate(images.items()):
            for suffix, payload in ((Path(name).suffix, data), (".txt", name.encode())):
                member = tarfile.TarInfo(f"sample{index:03d}{suffix}")
                member.size = len(payload)
                archive.addfile(member, io.BytesIO(payload))


def test_a_webdataset_tar(chromium, artefacts, tmp_path):
    joblib.dump(hashing_detector(), tmp_path / "det.joblib")
    _tar(tmp_path / "shard.tar", image_bytes(write_images(tmp_path / "pics", 10)))
    assert main(["score", str(tmp_path / "det.joblib"), str(tmp_path / "shard.tar"), "-o",
                 str(tmp_path / "s"), "--num-workers", "0"]) == 0
    dom = _review(chromium, tmp_path, artefacts, "tar", tmp_path / "s", "--method", "fraction",
                  "--fraction", "0.4")
    expected = _expected(tmp_path / "s", 0.4)
    _check_decision(dom, expected)
    assert len(dom.ids("errors")) == len(BAD_IMAGES)
    _all_loaded(dom, _tiles(expected))
    page = (tmp_path / "review" / "index.html").read_text()
    assert f'href="{(tmp_path / "shard.tar").as_uri()}"' in page
    assert "is a pickle, which is not loaded from a path the scores name" in page


def test_a_parquet_shard_of_image_bytes(chromium, artefacts, tmp_path):
    joblib.dump(hashing_detector(), tmp_path / "det.joblib")
    images = image_bytes(write_images(tmp_path / "pics", 9))
    keys = write_img2dataset_parquet(tmp_path / "00000.parquet", images, row_group_size=4)
    assert main(["score", str(tmp_path / "det.joblib"), str(tmp_path / "00000.parquet"), "-o",
                 str(tmp_path / "s"), "--num-workers", "0"]) == 0
    dom = _review(chromium, tmp_path, artefacts, "parquet", tmp_path / "s", "--method",
                  "fraction", "--fraction", "0.5")
    expected = _expected(tmp_path / "s", 0.5)
    _check_decision(dom, expected)
    assert set(dom.ids("top")) <= set(keys)
    _all_loaded(dom, _tiles(expected))
    page = (tmp_path / "review" / "index.html").read_text()
    assert 'href="http://example.com/img000.png"' in page or "http://example.com/" in page


def test_laion_embeddings_with_their_metadata(chromium, artefacts, tmp_path):
    rng = np.random.default_rng(5)
    (tmp_path / "laion" / "img_emb").mkdir(parents=True)
    (tmp_path / "laion" / "metadata").mkdir()
    embeddings = unit(rng.normal(size=(30, DIM)))
    embeddings[7] = np.nan  # a bad row: an error, neither kept nor removed
    np.save(tmp_path / "laion" / "img_emb" / "img_emb_0.npy", embeddings.astype(np.float16))
    keys = [f"{index:09d}" for index in range(30)]
    pq.write_table(pa.table({
        "key": keys, "url": [f"https://example.org/{key}.jpg" for key in keys],
        "caption": [f"caption of picture {key}" for key in keys],
    }), tmp_path / "laion" / "metadata" / "metadata_0.parquet", row_group_size=8)
    save_detector(precomputed_detector(), tmp_path / "det.safetensors")
    assert main(["score", str(tmp_path / "det.safetensors"), str(tmp_path / "laion"), "-o",
                 str(tmp_path / "s")]) == 0
    (tmp_path / "world.txt").write_text("".join(f"word{i}\n" for i in range(50)))
    np.save(tmp_path / "world.npy", unit(rng.normal(size=(50, DIM))))
    dom = _review(chromium, tmp_path, artefacts, "laion", tmp_path / "s", "--method",
                  "fraction", "--fraction", "0.2", "--world", str(tmp_path / "world.txt"),
                  "--world-embeddings", str(tmp_path / "world.npy"))
    expected = _expected(tmp_path / "s", 0.2)
    _check_decision(dom, expected)
    assert dom.ids("errors") == ["000000007"]
    _all_loaded(dom, 0)  # embeddings have no pixels: their caption and URL are shown
    page = (tmp_path / "review" / "index.html").read_text()
    for row in expected["order"][:N]:
        assert f"caption of picture {keys[row]}" in page
        assert f'href="https://example.org/{keys[row]}.jpg"' in page
    # The precomputed detector names the column that dominated, with its nearest words.
    assert re.search(r"learned_\d+ \(word\d+, word\d+, word\d+\) · \d+%", page)


def test_a_hugging_face_dataset_saved_to_disk(chromium, artefacts, tmp_path):
    datasets = pytest.importorskip("datasets")
    from skhftt.batch import score_shards

    files = write_images(tmp_path / "pics", 8, bad=False)
    dataset = datasets.Dataset.from_dict({
        "image": [{"bytes": path.read_bytes(), "path": None} for path in files.values()],
        "caption": list(files),
    }).cast_column("image", datasets.Image())
    dataset.save_to_disk(tmp_path / "on-disk")
    score_shards(hashing_detector(), datasets.load_from_disk(tmp_path / "on-disk"),
                 tmp_path / "s", shard_size=3)
    dom = _review(chromium, tmp_path, artefacts, "dataset", tmp_path / "s", "--method",
                  "fraction", "--fraction", "0.25", "--dataset", str(tmp_path / "on-disk"))
    expected = _expected(tmp_path / "s", 0.25)
    _check_decision(dom, expected)
    _all_loaded(dom, _tiles(expected))
    # Without the dataset, the page still shows every row's id and score, and says why
    # there is no thumbnail.
    assert main(["review", str(tmp_path / "s"), "-o", str(tmp_path / "bare"), "--thumbnails",
                 str(N), "--no-explain", "--method", "fraction", "--fraction", "0.25"]) == 0
    bare = (tmp_path / "bare" / "index.html").read_text()
    assert "<img" not in bare and bare.count("pass it (--dataset DIR") == _tiles(expected)


def test_several_concepts_get_a_section_each_and_the_combined_decision(chromium, artefacts,
                                                                        tmp_path):
    rng = np.random.default_rng(6)
    np.save(tmp_path / "part_0.npy", unit(rng.normal(size=(40, DIM))))
    save_detector(precomputed_detector(), tmp_path / "ood.safetensors")
    save_detector(precomputed_detector(threshold=0.9).set_params(unwanted="match"),
                  tmp_path / "hateful.safetensors")
    assert main(["score", "-d", str(tmp_path / "ood.safetensors"), "-d",
                 str(tmp_path / "hateful.safetensors"), str(tmp_path / "part_0.npy"), "-o",
                 str(tmp_path / "s")]) == 0
    dom = _review(chromium, tmp_path, artefacts, "concepts", tmp_path / "s", "--no-explain")
    table = pq.read_table(tmp_path / "s" / "part_0.parquet")
    ids = np.array([f"part_0:{row}" for row in range(40)])
    for concept, unwanted_low in (("ood", True), ("hateful", False)):
        score = table.column(f"{concept}_score").to_numpy()
        order = np.argsort(score if unwanted_low else -score, kind="stable")
        assert dom.ids("top", concept) == list(ids[order[:N]])
        assert [float(t["data-score"]) for t in dom.grids[concept, "top"]] == list(
            score[order[:N]])
    removed = np.asarray(table.column("remove"))
    assert set(dom.ids("removed")) <= set(ids[removed])
    assert set(dom.ids("kept")) <= set(ids[~removed])
    assert int(dom.body["data-removed"]) == removed.sum() and dom.ids("errors") == []
    assert len(dom.histograms) == 2
