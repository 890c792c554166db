"""Nothing lost, nothing run, nothing injected: hostile inputs to ``skhftt score`` and
``filter`` (issue 19, items 3 to 10), run as a user runs them where the item is about the
command line. Each test failed on 3d0db03 (the new names are imported where they are
used, so that each test fails there on its behaviour)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import joblib
import numpy as np
import pyarrow.parquet as pq
import pytest
from _scoring_data import (
    DIM,
    hashing_detector,
    precomputed_detector,
    write_embedding_parquet,
    write_images,
    write_npy_shards,
)
from _synthetic import unit

from skhftt.batch import ShardScorer, score_shards
from skhftt.space.validation import check_embeddings

RUN_FILE = "skhftt-run.json"  # the interface others read: its name is part of it


def read_list(path):
    from skhftt.batch.lists import read_list

    return read_list(path)


def missing_outputs(folder):
    from skhftt.batch import missing_outputs

    return missing_outputs(folder)


def _skhftt(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "skhftt", *map(os.fspath, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _one_line_error(done, command):
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"skhftt {command}: error: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def _rows(path):
    return pq.read_table(path).to_pylist()


@pytest.fixture
def detectors(tmp_path):
    """(image detector, embedding detector) files."""
    joblib.dump(hashing_detector(), tmp_path / "det.joblib")
    joblib.dump(precomputed_detector(), tmp_path / "pre.joblib")
    return tmp_path / "det.joblib", tmp_path / "pre.joblib"


# ------------------------------------------------- 3: non-finite scores


class NonFiniteHead:
    """Scores like ``head``, but NaN for row 1 and +inf for row 2 of every block."""

    def __init__(self, head):
        self.head, self.dim = head, head.dim

    def log_odds(self, embeddings):
        scores = self.head.log_odds(embeddings)
        scores[1:3] = [np.nan, np.inf][: len(scores[1:3])]
        return scores


def test_a_row_whose_score_is_not_finite_is_an_error_row_never_decided(tmp_path):
    write_npy_shards(tmp_path / "in", [5])
    scorer = ShardScorer.from_detector(precomputed_detector())
    broken = dataclasses.replace(scorer, head=NonFiniteHead(scorer.head))
    report = score_shards(broken, tmp_path / "in", tmp_path / "out")
    assert (report.n_rows, report.n_errors) == (5, 2)
    rows = _rows(tmp_path / "out" / "part_0.parquet")
    assert [row["error"] for row in rows] == [
        None,
        "score is not finite (nan): the detector cannot decide on this row",
        "score is not finite (inf): the detector cannot decide on this row",
        None, None]
    assert all(rows[i]["score"] is None and rows[i]["decision"] is None for i in (1, 2))
    done = _skhftt("filter", tmp_path / "out", "-o", tmp_path / "lists")
    assert done.returncode == 0, done.stderr
    assert ", 2 with errors, of 5 rows" in done.stdout
    assert read_list(tmp_path / "lists" / "errors.txt") == ["part_0:1", "part_0:2"]


# ------------------------------------------------------ 4: rows vanish


def _add(archive, name, data=None, *, link=None, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    if link is not None:
        info.linkname = link
    if data is not None:
        info.size = len(data)
    archive.addfile(info, None if data is None else io.BytesIO(data))


def test_tar_links_are_read_within_the_archive_or_error_rows(tmp_path, detectors):
    files = write_images(tmp_path / "pics", 2, bad=False)
    data = files["img000.png"].read_bytes()
    (tmp_path / "secret.png").write_bytes(files["img001.png"].read_bytes())
    with tarfile.open(tmp_path / "links.tar", "w") as archive:
        _add(archive, "s/a.png", data)
        _add(archive, "s/b.png", link="s/a.png", kind=tarfile.LNKTYPE)  # what tar -h writes
        _add(archive, "s/c.png", link="a.png", kind=tarfile.SYMTYPE)
        _add(archive, "s/d.png", link="c.png", kind=tarfile.SYMTYPE)  # a chain
        _add(archive, "s/e.png", link=str(tmp_path / "secret.png"), kind=tarfile.SYMTYPE)
        _add(archive, "s/f.png", link="../../secret.png", kind=tarfile.SYMTYPE)
        _add(archive, "s/g.png", link="nowhere.png", kind=tarfile.SYMTYPE)
        _add(archive, "s/h.png", link="h.png", kind=tarfile.SYMTYPE)  # a loop
        _add(archive, "s/.x.png", data)  # hidden files are samples of their own
        _add(archive, "s/.y.png", data)
    done = _skhftt("score", detectors[0], tmp_path / "links.tar", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "scored 10 rows (4 with errors)" in done.stdout
    rows = {row["id"]: row for row in _rows(tmp_path / "out" / "links.parquet")}
    assert list(rows) == ["s/a", "s/b", "s/c", "s/d", "s/e", "s/f", "s/g", "s/h", "s/.x",
                          "s/.y"]
    same = {rows[key]["score"] for key in ("s/a", "s/b", "s/c", "s/d", "s/.x", "s/.y")}
    assert len(same) == 1 and None not in same  # all read the content of a.png
    secret = str(tmp_path / "secret.png")
    assert rows["s/e"]["error"] == (f"ValueError: tar member 's/e.png' links to {secret!r}, "
                                    "outside the archive: it is not followed")
    assert "links to '../../secret.png', outside the archive" in rows["s/f"]["error"]
    assert rows["s/g"]["error"] == ("ValueError: tar member 's/g.png' links to "
                                    "'nowhere.png', which the archive does not hold")
    assert "a chain of more than 32 links (a loop?)" in rows["s/h"]["error"]


def test_an_image_folder_with_a_npy_is_refused_naming_both_never_emptied(tmp_path, detectors):
    write_images(tmp_path / "pics", 3, bad=False)
    np.save(tmp_path / "pics" / "emb.npy", np.ones((5, DIM), np.float32))
    done = _skhftt("score", detectors[0], tmp_path / "pics", "-o", tmp_path / "out")
    _one_line_error(done, "score")
    assert ("holds 3 image file(s) (or files of other extensions, read as images) "
            "('img000.png', 'img001.png', 'sub/img002.jpg') and 1 npy shard(s) ('emb.npy')"
            in done.stderr)
    assert "choose one kind with kind= (--kind)" in done.stderr
    assert not (tmp_path / "out").exists()
    done = _skhftt("score", detectors[0], tmp_path / "pics", "--kind", "images", "-o",
                   tmp_path / "images")
    assert done.returncode == 0 and "scored 3 rows (0 with errors)" in done.stdout
    done = _skhftt("score", detectors[1], tmp_path / "pics", "--kind", "npy", "-o",
                   tmp_path / "npy")
    assert done.returncode == 0 and "scored 5 rows (0 with errors)" in done.stdout


def test_files_of_other_extensions_are_read_as_images_but_sidecars_are_not(tmp_path,
                                                                          detectors):
    files = write_images(tmp_path / "pics", 2, bad=False)
    (tmp_path / "pics" / "scan_0001").write_bytes(files["img000.png"].read_bytes())
    (tmp_path / "pics" / "README").write_text("photos of the trip")
    (tmp_path / "pics" / "img000.txt").write_text("a caption of img000.png")
    done = _skhftt("score", detectors[0], tmp_path / "pics", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    rows = {os.path.basename(row["id"]): row for row in
            _rows(tmp_path / "out" / "pics-00000.parquet")}
    assert sorted(rows) == ["README", "img000.png", "img001.png", "scan_0001"]
    assert rows["scan_0001"]["score"] == rows["img000.png"]["score"]
    assert "is not a readable image" in rows["README"]["error"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_shard_that_is_no_regular_file_fails_alone_and_is_never_opened(tmp_path, detectors):
    write_npy_shards(tmp_path / "in", [3])
    os.mkfifo(tmp_path / "in" / "pipe.npy")  # opening it for reading would block
    done = _skhftt("score", detectors[1], tmp_path / "in", "-o", tmp_path / "out")
    _one_line_error(done, "score")
    assert "pipe: ValueError:" in done.stderr and "is not a regular file" in done.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["part_0.parquet", RUN_FILE]


# --------------------------------------------- 5: one bad shard stops all


@pytest.mark.parametrize(("name", "content", "message"), [
    ("zero.npy", b"", r"zero\.npy' is not a readable \.npy file"),
    ("junk.npy", b"\x93NUMPY junk", r"junk\.npy' is not a readable \.npy file"),
    ("zero.parquet", b"", r"zero\.parquet' is not a readable parquet file"),
    ("junk.parquet", b"PAR1 not really PAR1", r"junk\.parquet' is not a readable parquet file"),
])
def test_a_bad_shard_among_good_ones_fails_alone_and_named(tmp_path, detectors, name,
                                                           content, message):
    kind = name.split(".")[1]
    (tmp_path / "in").mkdir()
    if kind == "npy":
        write_npy_shards(tmp_path / "in", [3, 4])
    else:
        write_embedding_parquet(tmp_path / "in" / "good.parquet", [[1.0] * DIM] * 3)
    (tmp_path / "in" / name).write_bytes(content)
    done = _skhftt("score", detectors[1], tmp_path / "in", "-o", tmp_path / "out")
    _one_line_error(done, "score")  # permanent: a rerun cannot help
    assert re.search(rf"1 shard\(s\) failed \({name.split('.')[0]}: ValueError: .*{message}",
                     done.stderr)
    written = sorted(p for p in os.listdir(tmp_path / "out") if p.endswith(".parquet"))
    assert written == (["part_0.parquet", "part_1.parquet"] if kind == "npy"
                       else ["good.parquet"])


# ---------------------------------------------- 6 and 8: ids in the lists


def test_ids_with_newlines_cannot_inject_lines_into_the_lists(tmp_path, detectors):
    files = write_images(tmp_path / "pics", 2, bad=False)
    data = files["img000.png"].read_bytes()
    with tarfile.open(tmp_path / "inject.tar", "w") as archive:
        _add(archive, "000001\n/home/user/precious.png", data)
        _add(archive, "000002\r/etc/x.png", b"not an image")
        _add(archive, "\\000003.png", data)  # a leading backslash is escaped too
    assert _skhftt("score", detectors[0], tmp_path / "inject.tar", "-o",
                   tmp_path / "s").returncode == 0
    for method in (["--method", "fraction", "--fraction", "0.99"],
                   ["--method", "fraction", "--fraction", "0.01"]):
        done = _skhftt("filter", tmp_path / "s", "-o", tmp_path / "lists", *method)
        assert done.returncode == 0, done.stderr
        text = "".join((tmp_path / "lists" / name).read_text()
                       for name in ("keep.txt", "remove.txt", "errors.txt"))
        assert sorted(text.splitlines()) == ["\\000001\\n/home/user/precious",
                                             "\\000002\\r/etc/x", "\\\\\\000003"]
        assert sorted(id_ for name in ("keep.txt", "remove.txt", "errors.txt")
                      for id_ in read_list(tmp_path / "lists" / name)) == [
            "000001\n/home/user/precious", "000002\r/etc/x", "\\000003"]
    uids = np.load(tmp_path / "lists" / "kept_uids.npy")
    assert all("\n" not in uid and "\r" not in uid for uid in uids.tolist())


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs arbitrary bytes in names")
def test_file_names_that_are_not_utf8_keep_their_bytes_end_to_end(tmp_path, detectors):
    files = write_images(tmp_path / "pics", 1, bad=False)
    names = [b"caf\xe9.png", b"new\nline.png", b"plain.png"]
    (tmp_path / "odd").mkdir()
    for name in names:
        (tmp_path / "odd" / os.fsdecode(name)).write_bytes(files["img000.png"].read_bytes())
    assert _skhftt("score", detectors[0], tmp_path / "odd", "-o", tmp_path / "s"
                   ).returncode == 0
    odd = os.fsencode(tmp_path / "odd")
    for place in ("--copy-to", "--symlink-to"):
        done = _skhftt("filter", tmp_path / "s", "-o", tmp_path / "lists", "--method",
                       "fraction", "--fraction", "0.01", place, tmp_path / place[2:])
        assert done.returncode == 0, done.stderr
        assert sorted(os.listdir(os.fsencode(tmp_path / place[2:]))) == sorted(names)
    assert [os.fsencode(name) for name in read_list(tmp_path / "lists" / "keep.txt")] == [
        odd + b"/" + name for name in sorted(names)]
    from skhftt.batch import decode_id

    ids = [row["id"] for row in _rows(tmp_path / "s" / "odd-00000.parquet")]
    assert [os.fsencode(decode_id(name)) for name in ids] == [
        odd + b"/" + name for name in sorted(names)]
    assert ids[0].startswith("\\") and ids[0].endswith("caf\\xe9.png")


# -------------------------------------------- 7: filter's own outputs


LISTS = ("keep.txt", "remove.txt", "errors.txt", "kept_uids.npy", "manifest.json")


def test_copies_never_replace_a_list_and_reruns_place_nothing_twice(tmp_path, detectors):
    files = write_images(tmp_path / "pics", 2, bad=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "img000.png").write_bytes(files["img001.png"].read_bytes())
    for name in LISTS:  # images named like the lists
        (tmp_path / "pics" / name).write_bytes(files["img000.png"].read_bytes())
    paths = [*(f"pics/{name}" for name in LISTS), "pics/img000.png", "other/img000.png"]
    (tmp_path / "all.txt").write_text("\n".join(paths))
    assert _skhftt("score", detectors[0], tmp_path / "all.txt", "-o", tmp_path / "s"
                   ).returncode == 0
    args = ["filter", tmp_path / "s", "-o", tmp_path / "L", "--method", "fraction",
            "--fraction", "0.01"]  # removes floor(0.06) = 0 rows: every image is kept
    done = _skhftt(*args, "--copy-to", tmp_path / "L")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "L")) == sorted(
        [*LISTS, *(f"1_{name}" for name in LISTS), "img000.png", "1_img000.png"])
    kept = read_list(tmp_path / "L" / "keep.txt")  # still the lists, not images
    assert kept == paths  # the lines of the list file, as written
    assert read_list(tmp_path / "L" / "remove.txt") == []
    assert np.load(tmp_path / "L" / "kept_uids.npy").tolist() == sorted(kept)
    assert (tmp_path / "L" / "1_keep.txt").read_bytes() == files["img000.png"].read_bytes()
    assert (tmp_path / "L" / "1_img000.png").read_bytes() == files["img001.png"].read_bytes()
    copies = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "L").iterdir()
              if path.name not in LISTS}
    again = _skhftt(*args, "--copy-to", tmp_path / "L")
    assert again.returncode == 0, again.stderr
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "L").iterdir()
            if path.name not in LISTS} == copies  # nothing placed twice, nothing rewritten
    for _ in range(2):
        assert _skhftt(*args, "--symlink-to", tmp_path / "links").returncode == 0
        assert len(os.listdir(tmp_path / "links")) == len(paths)


# ----------------------------------------------- 9: incomplete score runs


def test_the_score_folder_records_its_run_and_filter_refuses_an_incomplete_one(tmp_path,
                                                                              detectors):
    write_npy_shards(tmp_path / "in", [3, 4, 5])
    assert _skhftt("score", detectors[1], tmp_path / "in", "-o", tmp_path / "s"
                   ).returncode == 0
    run = json.loads((tmp_path / "s" / RUN_FILE).read_text())
    assert run["format"] == "skhftt.run" and run["format_version"] == 1
    assert run["shards"] == ["part_0.parquet", "part_1.parquet", "part_2.parquet"]
    assert run["detector"] == pq.read_metadata(tmp_path / "s" / "part_0.parquet"
                                               ).metadata[b"skhftt"].decode().split(
        '"detector": "')[1].split('"')[0]
    (tmp_path / "s" / "part_1.parquet").unlink()  # what a kill leaves: a shard not done
    assert missing_outputs(tmp_path / "s") == ["part_1.parquet"]
    done = _skhftt("filter", tmp_path / "s", "-o", tmp_path / "lists")
    _one_line_error(done, "filter")
    assert ("is incomplete: 1 of the 3 shard(s) its score run was asked for have no complete "
            "output (part_1.parquet)" in done.stderr)
    assert "--allow-incomplete" in done.stderr and not (tmp_path / "lists").exists()
    done = _skhftt("filter", tmp_path / "s", "-o", tmp_path / "lists", "--allow-incomplete")
    assert done.returncode == 0, done.stderr
    assert "warning: SCORES_DIR" in done.stderr and "1 of the 3 shard(s)" in done.stderr
    assert "of 8 rows" in done.stdout
    done = _skhftt("filter", tmp_path / "s", "-o", tmp_path / "l2", "--method", "tpr",
                   "--calibration", tmp_path / "s", "--allow-incomplete")
    assert done.returncode == 0 and done.stderr.count("warning:") == 2
    assert _skhftt("score", detectors[1], tmp_path / "in", "-o", tmp_path / "s"
                   ).returncode == 0  # the rerun finishes it
    assert missing_outputs(tmp_path / "s") == []
    assert _skhftt("filter", tmp_path / "s", "-o", tmp_path / "lists").returncode == 0


def test_records_of_reruns_other_inputs_and_other_detectors(tmp_path):
    det = precomputed_detector()
    write_npy_shards(tmp_path / "a", [3, 2])
    np.save(tmp_path / "b.npy", unit(np.ones((2, DIM))).astype(np.float32))
    score_shards(det, tmp_path / "a", tmp_path / "s")
    first = (tmp_path / "s" / RUN_FILE).read_bytes()
    from skhftt.batch import foreign_outputs
    from skhftt.batch.record import read_run

    score_shards(det, tmp_path / "a", tmp_path / "s")
    assert (tmp_path / "s" / RUN_FILE).read_bytes() == first  # a rerun: the same record
    score_shards(det, tmp_path / "b.npy", tmp_path / "s")  # other inputs gather beside
    assert read_run(tmp_path / "s")["shards"] == ["part_0.parquet", "part_1.parquet",
                                                  "b.parquet"]
    other = precomputed_detector(threshold=0.9)
    score_shards(other, tmp_path / "b.npy", tmp_path / "s")  # another detector starts anew
    assert read_run(tmp_path / "s")["shards"] == ["b.parquet"]
    assert missing_outputs(tmp_path / "s") == []
    assert foreign_outputs(tmp_path / "s") == ["part_0.parquet", "part_1.parquet"]
    done = _skhftt("filter", tmp_path / "s", "-o", tmp_path / "lists", "--allow-incomplete")
    _one_line_error(done, "filter")
    assert ("holds 2 score file(s) that its skhftt-run.json does not record "
            "(part_0.parquet, part_1.parquet)" in done.stderr)


def test_a_failed_shard_is_missing_from_its_run(tmp_path):
    write_npy_shards(tmp_path / "in", [3])
    (tmp_path / "in" / "bad.npy").write_bytes(b"")
    with pytest.raises(Exception, match="bad: ValueError"):
        score_shards(precomputed_detector(), tmp_path / "in", tmp_path / "s")
    assert missing_outputs(tmp_path / "s") == ["bad.parquet"]


# ------------------------------------------- 10: one rule for both paths


def test_tiny_and_huge_rows_are_scored_alike_in_memory_and_in_shards(tmp_path):
    det = precomputed_detector()
    rng = np.random.default_rng(0)
    directions = unit(rng.normal(size=(4, DIM))).astype(np.float32)
    rows = directions * np.array([[1e-30], [1e30], [3e37], [1.0]], dtype=np.float32)
    rows = np.vstack([rows, np.full((1, DIM), 3e38, np.float32)])  # its norm passes float32's
    directions = np.vstack([directions, np.full((1, DIM), 0.25, np.float32)])
    unit_rows = check_embeddings(rows)
    np.testing.assert_allclose(np.linalg.norm(unit_rows, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(unit_rows, directions, rtol=1e-5, atol=1e-6)
    np.save(tmp_path / "rows.npy", rows)
    write_embedding_parquet(tmp_path / "rows.parquet", rows.tolist())
    expected = det.score_samples(rows)
    for name in ("rows.npy", "rows.parquet"):
        report = score_shards(det, tmp_path / name, tmp_path / name.replace(".", "_"))
        assert report.n_errors == 0
        scores = [row["score"] for row in _rows(tmp_path / name.replace(".", "_")
                                                / "rows.parquet")]
        np.testing.assert_array_equal(scores, expected)

