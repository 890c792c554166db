"""The record of a removal (manifest.json), plans that travel, DataComp uid files, cut-offs.

Every decision ``skhftt filter`` and ``skhftt review`` make is recorded with what
made it; a record applies its cut-offs to new scores as a plan, and is refused for
scores of another detector or encoder; kept uids are written the way DataComp's
resharder reads them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scoring_data import DIM, hashing_detector, precomputed_detector, write_images
from _synthetic import unit

from skhftt.cli import main
from skhftt.detectors.persistence import save_detector
from skhftt.removal.rules import removal_mask
from skhftt.review import Cut, read_uids, resolve_cut, uid_array, write_uids

# --------------------------------------------------------------- DataComp


def _uids(rng, n):
    halves = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).astype(np.uint64) * 2 + 1
    return [f"{int(a):016x}{int(b):016x}" for a, b in halves]


def test_datacomp_subset_file_is_what_datacomp_writes_and_reads(tmp_path):
    rng = np.random.default_rng(0)
    uids = [*_uids(rng, 200), "0" * 32, "f" * 32, "139E4A9B22A614771F06C700A8EBE150"]
    assert write_uids(tmp_path / "subset.npy", uids) == "datacomp"

    # DataComp's README writes a subset file so:
    expected = np.array([(int(uid[:16], 16), int(uid[16:32], 16)) for uid in uids],
                        np.dtype("u8,u8"))
    expected.sort()
    # and its resharder reads it so (load_subset, then a binary search per sample):
    u16 = np.dtype("u8,u8")
    with open(tmp_path / "subset.npy", "rb") as handle:
        assert handle.read(6) == b"\x93NUMPY"
    subset = np.load(tmp_path / "subset.npy", mmap_mode="r")
    assert subset.dtype == u16 and subset.shape == (len(uids),)
    assert np.array_equal(subset, expected)
    for key in [*uids, *_uids(rng, 50)]:
        key_u16 = np.array([divmod(int(key, 16), 2**64)], u16)[0]
        count = np.searchsorted(subset, key_u16, "right") - np.searchsorted(subset, key_u16,
                                                                              "left")
        assert count == (key in uids)
    assert read_uids(tmp_path / "subset.npy") == sorted(uid.lower() for uid in uids)


@pytest.mark.parametrize("ids", [["a/b.jpg"], ["0" * 31], ["g" * 32], ["é" * 32],
                                 ["0" * 32, "shard:3"], []])
def test_ids_that_are_not_all_uids_are_written_as_sorted_strings(tmp_path, ids):
    assert uid_array(ids) is None
    assert write_uids(tmp_path / "ids.npy", ids) == "strings"
    written = np.load(tmp_path / "ids.npy")
    assert written.dtype.kind == "U" and written.tolist() == sorted(ids)
    assert read_uids(tmp_path / "ids.npy") == sorted(ids)


def _uid_shard(tmp_path, rng, n=30):
    """A parquet embedding shard whose ids are DataComp uids."""
    uids = _uids(rng, n)
    table = pa.table({"uid": uids, "embedding": pa.array(unit(rng.normal(size=(n, DIM))).tolist(),
                                                          pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "pool.parquet")
    return uids


def test_filter_writes_a_datacomp_subset_file_for_uid_ids(tmp_path, capsys):
    joblib.dump(precomputed_detector(), tmp_path / "det.joblib")
    _uid_shard(tmp_path, np.random.default_rng(1))
    assert main(["score", str(tmp_path / "det.joblib"), str(tmp_path / "pool.parquet"),
                 "--id-column", "uid", "-o", str(tmp_path / "s")]) == 0
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l"), "--method",
                 "fraction", "--fraction", "0.3"]) == 0
    assert "no DataComp subset file" not in capsys.readouterr().out
    kept = (tmp_path / "l" / "keep.txt").read_text().split()
    subset = np.load(tmp_path / "l" / "kept_uids.npy")
    expected = np.array([(int(u[:16], 16), int(u[16:32], 16)) for u in kept], np.dtype("u8,u8"))
    expected.sort()
    assert len(kept) == 21 and subset.dtype == np.dtype("u8,u8")
    assert np.array_equal(subset, expected)
    record = json.loads((tmp_path / "l" / "manifest.json").read_text())
    assert record["outputs"]["uids"]["path"] == str(tmp_path / "l" / "kept_uids.npy")


# ----------------------------------------------------------------- cuts


@pytest.mark.parametrize("method", ["probability", "fraction", "tpr", "fdr"])
@pytest.mark.parametrize("side", ["match", "mismatch"])
def test_the_cut_reproduces_every_rule_with_ties(method, side):
    rng = np.random.default_rng(2)
    oriented = np.round(np.r_[rng.normal(size=300), rng.normal(loc=2.5, size=40)], 1)
    clean = np.round(rng.normal(size=400), 1)
    remove = removal_mask(oriented, method=method, unwanted=side, calibration_scores=clean,
                          alpha=0.1, tpr=0.9, fraction=0.2)
    assert 0 < remove.sum() < len(remove)
    cut = resolve_cut(method, oriented, remove, side=side, offset=0.5, calibration=clean,
                      fraction=0.2, tpr=0.9)
    assert np.array_equal(cut.apply(oriented), remove)
    # The same cut on the detector's score: score = offset +/- oriented.
    scores = 0.5 + oriented if side == "match" else 0.5 - oriented
    expected = {("match", True): scores >= cut.score, ("match", False): scores > cut.score,
                ("mismatch", False): scores < cut.score}[side, cut.inclusive]
    assert np.array_equal(expected, remove)
    assert Cut.from_dict(json.loads(json.dumps(cut.to_dict()))) == cut


def test_a_conformal_cut_follows_the_p_values_on_new_rows():
    rng = np.random.default_rng(3)
    clean, rows = rng.normal(size=200), np.r_[rng.normal(size=90), rng.normal(4, size=10)]
    remove = removal_mask(rows, method="fdr", unwanted="mismatch", calibration_scores=clean,
                          alpha=0.2)
    cut = resolve_cut("fdr", rows, remove, side="mismatch", offset=0.0, calibration=clean)
    least = rows[remove].min()
    pvalue = (1 + (clean >= least).sum()) / 201
    fresh = rng.normal(1, 2, size=500)
    fresh_p = (1 + (clean[None, :] >= fresh[:, None]).sum(axis=1)) / 201
    assert np.array_equal(cut.apply(fresh), fresh_p <= pvalue)


# ------------------------------------------------------ manifest and plans


@pytest.fixture
def scored(tmp_path):
    """A detector file, scores of 40 rows, and scores of 60 clean rows."""
    detector = precomputed_detector()
    save_detector(detector, tmp_path / "det.safetensors")
    rng = np.random.default_rng(4)
    task = detector.task_columns_
    (tmp_path / "new").mkdir()
    np.save(tmp_path / "new" / "part_0.npy", unit(rng.normal(size=(40, DIM))))
    np.save(tmp_path / "new" / "part_1.npy", unit(rng.normal(size=(25, DIM))))
    np.save(tmp_path / "clean.npy", unit(task[rng.integers(0, 4, 60)]
                                         + 0.3 * rng.normal(size=(60, DIM))))
    for name, inputs in (("s", ["new/part_0.npy"]), ("c", ["clean.npy"]),
                         ("s1", ["new/part_1.npy"])):
        assert main(["score", str(tmp_path / "det.safetensors"),
                     *[str(tmp_path / i) for i in inputs], "-o", str(tmp_path / name)]) == 0
    return tmp_path


def _sha256(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_filter_records_what_decided_the_removal(scored):
    assert main(["filter", str(scored / "s"), "-o", str(scored / "l"), "--method", "tpr",
                 "--tpr", "0.9", "--calibration", str(scored / "c")]) == 0
    record = json.loads((scored / "l" / "manifest.json").read_text())
    assert record["format"] == "skhftt.decision" and record["command"] == "filter"
    assert record["skhftt_version"] and datetime.fromisoformat(record["created"])
    detector = record["decisions"][0]["detector"]
    assert detector["detector_sha256"] == _sha256(scored / "det.safetensors")
    assert detector["detector_kind"] == "HFTTDetector" and detector["unwanted"] == "mismatch"
    assert detector["job"] == "it removes inputs that do not match its task"
    assert detector["detector_params"]["n_embeddings"] == 10
    assert set(detector["training_digests"]) == {"task", "world"}
    footer = pq.read_metadata(scored / "s" / "part_0.parquet").metadata[b"skhftt"]
    assert record["scores"]["encoders"] == [json.loads(footer)["encoder"]]
    assert record["rule"] == {"method": "tpr", "tpr": 0.9, "unwanted": "mismatch",
                              "concept": None}
    clean = pq.read_table(scored / "c" / "clean.parquet").column("score").to_numpy()
    offset = detector["offset"]
    oriented = offset - clean
    assert record["calibration"] == {
        "path": str(scored / "c"), "rows": 60,
        "fingerprint": "sha256:" + hashlib.sha256(oriented.astype(np.float64)).hexdigest()}
    cut = record["decisions"][0]["cut"]
    assert cut["threshold"] == np.sort(oriented)[int(np.ceil(0.9 * 60)) - 1]
    assert cut["removes"] == f"score < {cut['score']:.6g}"
    removed = (scored / "l" / "remove.txt").read_text().split()
    assert record["counts"] == {"rows": 40, "kept": 40 - len(removed), "removed": len(removed),
                                "errors": 0}
    for name, output in record["outputs"].items():
        assert output["sha256"] == _sha256(scored / "l" / {
            "keep": "keep.txt", "remove": "remove.txt", "errors": "errors.txt",
            "uids": "kept_uids.npy"}[name])


def test_a_saved_plan_applies_the_same_cut_to_new_scores(scored):
    assert main(["filter", str(scored / "s"), "-o", str(scored / "l"), "--method", "fraction",
                 "--fraction", "0.25", "--save-plan", str(scored / "plan.json")]) == 0
    plan = json.loads((scored / "plan.json").read_text())
    assert plan == {**json.loads((scored / "l" / "manifest.json").read_text()),
                    "created": plan["created"]}
    # The same scores: the same lists, without the rule.
    assert main(["filter", str(scored / "s"), "-o", str(scored / "again"), "--plan",
                 str(scored / "plan.json")]) == 0
    for name in ("keep.txt", "remove.txt"):
        assert (scored / "again" / name).read_text() == (scored / "l" / name).read_text()
    again = json.loads((scored / "again" / "manifest.json").read_text())
    assert again["rule"]["method"] == "plan" and again["rule"]["resolved_with"]["fraction"] == 0.25
    assert again["rule"]["plan"]["sha256"] == _sha256(scored / "plan.json")
    # New scores: the plan's cut-off, not a new quarter of them.
    assert main(["filter", str(scored / "s1"), "-o", str(scored / "new"), "--plan",
                 str(scored / "plan.json"), "--review", str(scored / "page")]) == 0
    record = json.loads((scored / "new" / "manifest.json").read_text())
    assert record["outputs"]["review"]["sha256"] == _sha256(scored / "page" / "index.html")
    assert "the cut-offs of the plan" in (scored / "page" / "index.html").read_text()
    table = pq.read_table(scored / "s1" / "part_1.parquet")
    below = np.asarray(table.column("score")) < plan["decisions"][0]["cut"]["score"]
    removed = (scored / "new" / "remove.txt").read_text().split()
    assert removed == [f"part_1:{row}" for row in np.flatnonzero(below)]
    assert 0 < len(removed) != round(0.25 * 25)


def test_a_plan_for_another_detector_or_encoder_is_refused(scored, capsys):
    assert main(["review", str(scored / "s"), "-o", str(scored / "r"), "--method", "fraction",
                 "--no-explain"]) == 0
    plan = scored / "r" / "manifest.json"
    other = precomputed_detector(threshold=0.7)
    save_detector(other, scored / "other.safetensors")
    assert main(["score", str(scored / "other.safetensors"), str(scored / "new" / "part_1.npy"),
                 "-o", str(scored / "o")]) == 0
    capsys.readouterr()
    assert main(["filter", str(scored / "o"), "-o", str(scored / "l"), "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    wanted = json.loads(plan.read_text())["scores"]["detectors"][0]
    assert f"resolved on scores of detector {wanted} (HFTTDetector from " in err
    assert str(scored / "det.safetensors") in err and str(scored / "other.safetensors") in err
    assert not (scored / "l").exists()

    joblib.dump(hashing_detector(), scored / "hashing.joblib")
    assert main(["score", str(scored / "hashing.joblib"), str(scored / "new" / "part_1.npy"),
                 "-o", str(scored / "h")]) == 0
    capsys.readouterr()
    assert main(["review", str(scored / "h"), "-o", str(scored / "r2"), "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skhftt review: error: --plan") and err.count("\n") == 1
    assert "resolved on scores of no named encoder (precomputed), but" in err
    assert f"was scored with encoder '{hashing_detector().encoder_identity_}'" in err


@pytest.mark.parametrize("extra", [["--method", "tpr"], ["--concept", "x"],
                                   ["--unwanted", "match"]])
def test_a_plan_replaces_the_rule_options(scored, capsys, extra):
    assert main(["filter", str(scored / "s"), "-o", str(scored / "l"), "--save-plan",
                 str(scored / "plan.json")]) == 0
    assert main(["filter", str(scored / "s"), "-o", str(scored / "l2"), "--plan",
                 str(scored / "plan.json"), *extra]) == 2
    assert f"leave out {extra[0]}" in capsys.readouterr().err


def test_several_concepts_plan_and_review_as_filter_decides(scored):
    save_detector(precomputed_detector(threshold=0.9).set_params(unwanted="match"),
                  scored / "strict.safetensors")
    assert main(["score", "-d", str(scored / "det.safetensors"), "-d",
                 str(scored / "strict.safetensors"), str(scored / "new"), "-o",
                 str(scored / "m")]) == 0
    assert main(["filter", str(scored / "m"), "-o", str(scored / "l"), "--save-plan",
                 str(scored / "plan.json")]) == 0
    plan = json.loads((scored / "plan.json").read_text())
    assert [(d["concept"], d["cut"]["side"]) for d in plan["decisions"]] == [
        ("det", "mismatch"), ("strict", "match")]
    assert main(["filter", str(scored / "m"), "-o", str(scored / "l2"), "--plan",
                 str(scored / "plan.json")]) == 0
    assert (scored / "l2" / "remove.txt").read_text() == (scored / "l" / "remove.txt").read_text()
    assert main(["review", str(scored / "m"), "-o", str(scored / "r"), "--no-explain"]) == 0
    review = json.loads((scored / "r" / "manifest.json").read_text())
    assert review["counts"] == plan["counts"] and review["decisions"] == plan["decisions"]
    assert main(["score", "-d", str(scored / "det.safetensors"), "-d",
                 str(scored / "strict.safetensors"), str(scored / "clean.npy"), "-o",
                 str(scored / "mc")]) == 0
    for rule in (["--method", "fraction", "--fraction", "0.3", "--concept", "strict"],
                 ["--method", "tpr", "--concept", "det", "--calibration", str(scored / "mc")]):
        assert main(["filter", str(scored / "m"), "-o", str(scored / "fl"), *rule]) == 0
        assert main(["review", str(scored / "m"), "-o", str(scored / "rv"), "--no-explain",
                     *rule]) == 0
        filtered, reviewed = (json.loads((scored / folder / "manifest.json").read_text())
                              for folder in ("fl", "rv"))
        for key in ("counts", "decisions", "rule", "calibration"):
            assert filtered[key] == reviewed[key], key
        assert filtered["counts"]["removed"] == len((scored / "fl" / "remove.txt").read_text()
                                                    .split()) > 0


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not a removal plan (JSON)"),
    ('{"format": "other"}', "is not a removal plan: write one with 'skhftt filter --save-plan'"),
    ('{"format": "skhftt.decision", "scores": {}}', "is an incomplete removal plan"),
])
def test_a_file_that_is_no_plan_is_one_line(scored, capsys, content, message):
    (scored / "plan.json").write_text(content)
    assert main(["filter", str(scored / "s"), "-o", str(scored / "l"), "--plan",
                 str(scored / "plan.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skhftt filter: error: --plan ") and message in err
    assert err.count("\n") == 1 and not (scored / "l").exists()


def test_review_of_a_list_file_and_of_scores_without_a_scored_row(tmp_path, capsys):
    joblib.dump(hashing_detector(), tmp_path / "det.joblib")
    write_images(tmp_path / "pics", 4)
    (tmp_path / "pics" / "some.txt").write_text("img000.png\nsub/img002.jpg\nempty.jpg\n")
    assert main(["score", str(tmp_path / "det.joblib"), str(tmp_path / "pics" / "some.txt"),
                 "-o", str(tmp_path / "s"), "--num-workers", "0"]) == 0
    assert main(["review", str(tmp_path / "s"), "-o", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    for name in ("img000.png", "sub/img002.jpg"):  # relative to the list file's folder
        assert f'href="{(tmp_path / "pics" / name).as_uri()}"' in page
    assert page.count("<img ") == 4 and "empty.jpg" in page  # 2 rows, each in 2 grids

    np.save(tmp_path / "bad.npy", np.full((3, DIM), np.nan, np.float32))
    joblib.dump(precomputed_detector(), tmp_path / "pre.joblib")
    assert main(["score", str(tmp_path / "pre.joblib"), str(tmp_path / "bad.npy"), "-o",
                 str(tmp_path / "sb")]) == 0
    assert main(["review", str(tmp_path / "sb"), "-o", str(tmp_path / "rb")]) == 0
    assert "review of 3 rows: 0 kept, 0 removed, 3 with errors" in capsys.readouterr().out
    assert "No row was scored." in (tmp_path / "rb" / "index.html").read_text()
