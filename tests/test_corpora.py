"""Bundled world corpus, ImageNet task, and user corpora."""

from __future__ import annotations

import csv
import gzip
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from skhftt.corpora import (
    WORLD_TEMPLATE,
    apply_template,
    dedupe_texts,
    imagenet_classes,
    imagenet_task,
    imagenet_templates,
    load_world_corpus,
    read_texts,
    templated_task,
    world_words,
)
from skhftt.corpora._build import WORD_PATTERN, filter_words, write_words
from skhftt.corpora._world import WORDS_FILE

N_WORDS = 292_073

# ------------------------------------------------------------- world corpus


def test_world_corpus_is_large_distinct_and_templated():
    corpus = load_world_corpus()
    assert len(corpus) == N_WORDS >= 200_000
    assert len(set(corpus)) == len(corpus)
    assert corpus[:3] == [
        "This is a photo of a the.",
        "This is a photo of a to.",
        "This is a photo of a and.",
    ]
    assert all(text.startswith("This is a photo of a ") for text in corpus)
    assert WORLD_TEMPLATE == "This is a photo of a {}."


def test_world_words_are_lower_case_words_by_frequency():
    words = world_words()
    assert all(WORD_PATTERN.fullmatch(word) for word in words)
    rank = {word: index for index, word in enumerate(words)}
    assert rank["dog"] < rank["aardvark"] < rank["zwitterion"]
    assert {"cat", "car", "tree", "pizza", "café"} <= rank.keys()


def test_n_words_takes_the_most_frequent(n=1000):
    assert load_world_corpus(n) == load_world_corpus()[:n]
    assert world_words(n) == world_words()[:n]
    assert load_world_corpus(N_WORDS) == load_world_corpus()


def test_returned_lists_are_independent_copies():
    words = world_words(3)
    words.append("mutated")
    assert world_words(3) != words


@pytest.mark.parametrize(
    ("n_words", "error", "message"),
    [
        (0, ValueError, "between 1 and 292073"),
        (N_WORDS + 1, ValueError, "between 1 and 292073"),
        (2.5, TypeError, "n_words must be an int"),
        (True, TypeError, "n_words must be an int"),
    ],
)
def test_bad_n_words(n_words, error, message):
    with pytest.raises(error, match=message):
        load_world_corpus(n_words)


def test_custom_template():
    assert load_world_corpus(2, template="{}") == ["the", "to"]
    assert load_world_corpus(1, template="a {} {{literal}}") == ["a the {{literal}}"]


@pytest.mark.parametrize(
    ("template", "error", "message"),
    [
        ("no slot", ValueError, "exactly one '{}' slot; 'no slot' has 0"),
        ("{} and {}", ValueError, "has 2"),
        (None, TypeError, "template must be a str"),
    ],
)
def test_bad_templates(template, error, message):
    with pytest.raises(error, match=re.escape(message)):
        load_world_corpus(5, template=template)


def test_apply_template():
    assert apply_template(["cat"], "a photo of a {}.") == ["a photo of a cat."]


def test_data_files_ship_with_their_notice():
    data = resources.files("skhftt.corpora") / "data"
    notice = (data / "NOTICE.txt").read_text("utf-8")
    assert "CC BY-SA 4.0" in notice and re.search(r"wordfreq\s+3\.1\.1", notice)
    assert (data / WORDS_FILE).stat().st_size < 2_000_000  # type: ignore[union-attr]


def test_build_filter_keeps_latin_words_once():
    tokens = ["the", "00", "u.s", "i", "café", "😂", "вопросы", "the", "o'clock"]
    assert list(filter_words(tokens)) == ["the", "café"]


def test_build_writes_reproducible_gzip(tmp_path):
    write_words(["b", "a"], tmp_path / "one.gz")
    write_words(["b", "a"], tmp_path / "two.gz")
    assert (tmp_path / "one.gz").read_bytes() == (tmp_path / "two.gz").read_bytes()
    assert gzip.decompress((tmp_path / "one.gz").read_bytes()) == b"b\na\n"


def test_bundled_list_matches_wordfreq():
    pytest.importorskip("wordfreq", reason="wordfreq is needed only to rebuild")
    from skhftt.corpora._build import wordfreq_words

    assert wordfreq_words() == world_words()


# ------------------------------------------------------------------ ImageNet


def test_imagenet_classes_in_canonical_order():
    names, wnids = imagenet_classes()
    assert len(names) == len(wnids) == 1000
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in wnids)
    assert (names[0], wnids[0]) == ("tench", "n01440764")
    assert (names[-1], wnids[-1]) == ("toilet paper", "n15075141")


def test_imagenet_templates():
    templates = imagenet_templates()
    assert len(templates) == len(set(templates)) == 80
    assert all(template.count("{}") == 1 for template in templates)


def test_imagenet_task_has_1000_classes_of_80_prompts():
    task = imagenet_task()
    assert len(task) == 1000
    assert {len(prompts) for prompts in task.values()} == {80}
    assert task["tench"][0] == "a bad photo of a tench."
    assert "missile (n03773504)" in task and "missile (n04008634)" in task
    assert task["sunglasses (n04355933)"][0] == "a bad photo of a sunglasses."


def test_imagenet_task_by_wnid_with_chosen_templates():
    task = imagenet_task(["a photo of a {}.", "itap of a {}."], key="wnid")
    assert list(task) == imagenet_classes().wnids
    assert task["n01440764"] == ["a photo of a tench.", "itap of a tench."]
    assert imagenet_task("a {}")["goldfish"] == ["a goldfish"]


def test_imagenet_task_rejects_bad_arguments():
    with pytest.raises(ValueError, match="key must be 'name' or 'wnid'"):
        imagenet_task(key="index")
    with pytest.raises(ValueError, match="exactly one"):
        imagenet_task(["no slot here"])
    with pytest.raises(ValueError, match="templates is empty"):
        imagenet_task([])


def test_templated_task():
    task = templated_task(["cat", "dog"], ["a {}.", "the {}."])
    assert task == {"cat": ["a cat.", "the cat."], "dog": ["a dog.", "the dog."]}
    with pytest.raises(ValueError, match="repeated: \\['cat'\\]"):
        templated_task(["cat", "cat"], "a {}")
    with pytest.raises(TypeError, match="not a single string"):
        templated_task("cat", "a {}")
    with pytest.raises(TypeError, match="item 1 is int"):
        templated_task(["cat", 1], "a {}")
    with pytest.raises(ValueError, match="names is empty"):
        templated_task([], "a {}")


# --------------------------------------------------------------- user corpora


def test_dedupe_texts_keeps_first_occurrences_in_order():
    assert dedupe_texts(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_read_texts_from_iterables():
    assert read_texts(["cat", " dog ", "", "cat", None, float("nan")]) == ["cat", "dog"]
    assert read_texts(text for text in ["a", "b", "a"]) == ["a", "b"]
    assert read_texts(np.array(["x", "y"])) == ["x", "y"]
    assert read_texts(["a", "a"], dedupe=False) == ["a", "a"]
    assert read_texts(["cat"], template=WORLD_TEMPLATE) == ["This is a photo of a cat."]


def test_read_texts_from_a_text_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("cat\r\ndog\n\n  bird \ncat\n", encoding="utf-8")
    assert read_texts(path) == ["cat", "dog", "bird"]
    assert read_texts(str(path), dedupe=False) == ["cat", "dog", "bird", "cat"]
    plain = tmp_path / "words"
    plain.write_text("one\ntwo\n")
    assert read_texts(plain) == ["one", "two"]
    packed = tmp_path / "words.txt.gz"
    packed.write_bytes(gzip.compress("é\nü\n".encode()))
    assert read_texts(packed) == ["é", "ü"]


def _write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)


def test_read_texts_from_csv_and_tsv_columns(tmp_path):
    rows = [["id", "caption"], ["1", "a dog, running"], ["2", "a cat"], ["3", ""]]
    _write_csv(tmp_path / "captions.csv", rows)
    assert read_texts(tmp_path / "captions.csv", column="caption") == [
        "a dog, running",
        "a cat",
    ]
    assert read_texts(tmp_path / "captions.csv", column=1) == ["a dog, running", "a cat"]
    _write_csv(tmp_path / "captions.tsv", rows, delimiter="\t")
    assert read_texts(tmp_path / "captions.tsv", column=-1) == ["a dog, running", "a cat"]
    _write_csv(tmp_path / "single.csv", [["text"], ["x"], ["y"]])
    assert read_texts(tmp_path / "single.csv") == ["x", "y"]
    _write_csv(tmp_path / "data.dat", [["text"], ["z"]])
    assert read_texts(tmp_path / "data.dat", format="csv") == ["z"]


def test_read_texts_csv_column_errors(tmp_path):
    _write_csv(tmp_path / "captions.csv", [["id", "caption"], ["1", "a"]])
    with pytest.raises(ValueError, match="has 2 columns \\['id', 'caption'\\]"):
        read_texts(tmp_path / "captions.csv")
    with pytest.raises(ValueError, match="'text' is not a column"):
        read_texts(tmp_path / "captions.csv", column="text")
    with pytest.raises(ValueError, match="column=5 is out of range"):
        read_texts(tmp_path / "captions.csv", column=5)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="expected a header row"):
        read_texts(tmp_path / "empty.csv")


def test_read_texts_from_parquet_and_arrow_tables(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": [1, 2, 3], "text": ["a cat", None, "a dog"]})
    pq.write_table(table, tmp_path / "texts.parquet")
    assert read_texts(tmp_path / "texts.parquet", column="text") == ["a cat", "a dog"]
    assert read_texts(table, column="text", template="{}!") == ["a cat!", "a dog!"]
    with pytest.raises(TypeError, match="item 0 is int"):
        read_texts(tmp_path / "texts.parquet", column="id")
    with pytest.raises(ValueError, match="pass column="):
        read_texts(table)


def test_read_texts_rejects_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file: 'a cat'"):
        read_texts("a cat")
    with pytest.raises(TypeError, match="not bytes"):
        read_texts(b"cat")
    with pytest.raises(TypeError, match="item 1 is int"):
        read_texts(["cat", 3])
    with pytest.raises(ValueError, match="is empty"):
        read_texts(["", "  "])
    with pytest.raises(ValueError, match="has no columns"):
        read_texts(["cat"], column="text")
    (tmp_path / "texts.json").write_text("[]")
    with pytest.raises(ValueError, match="Cannot tell the format"):
        read_texts(tmp_path / "texts.json")
    (tmp_path / "texts.txt").write_text("x\n")
    with pytest.raises(ValueError, match="one text per line"):
        read_texts(tmp_path / "texts.txt", column="text")
    with pytest.raises(ValueError, match="format='xml' is not supported"):
        read_texts(tmp_path / "texts.txt", format="xml")


@pytest.mark.slow
def test_fit_without_a_world_corpus_uses_the_bundled_one():
    from conftest import CountingTextEncoder

    from skhftt.detectors.hftt import HFTTDetector

    encoder = CountingTextEncoder(dim=8)
    task = ["a photo of a cat", "a photo of a dog"]
    HFTTDetector(encoder=encoder, device="cpu", random_state=0).fit(None, task)
    counts = encoder.counts()
    assert set(counts) == set(load_world_corpus()) | set(task)
    assert set(counts.values()) == {1}
