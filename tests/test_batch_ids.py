"""How ids are written: ordinary ids unchanged, every other one escaped on one valid UTF-8
line, and decoded back exactly."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from skhftt.batch.ids import as_line, decode_id, encode_id, encode_ids
from skhftt.batch.lists import read_list, write_list

ORDINARY = ["photos/cat.jpg", "/data/a b/é漢字.png", "C:\\data\\a.png", "http://x/%20.jpg", ""]
ESCAPED = {
    "000001\n/home/user/precious": "\\000001\\n/home/user/precious",
    "a\tb\rc": "\\a\\tb\\rc",
    "\\\\server\\share": "\\\\\\\\\\server\\\\share",
    os.fsdecode(b"caf\xe9.png"): "\\caf\\xe9.png",
    "x\x00y\x1bz\x7f\x85": "\\x\\u0000y\\u001bz\\u007f\\u0085",
    "line\u2028sep": "\\line\\u2028sep",
}


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_ids_are_written_as_they_are(text):
    assert encode_id(text) == text and decode_id(text) == text and as_line(text) == text


@pytest.mark.parametrize(("text", "written"), ESCAPED.items())
def test_other_ids_are_escaped_and_decoded_back(text, written):
    assert encode_id(text) == written
    assert decode_id(written) == text
    assert as_line(written) == written
    written.encode("utf-8")  # valid UTF-8, no surrogate left


def test_raw_ids_of_older_outputs_become_safe_lines():
    assert as_line("000001\n/home/user/precious") == "\\000001\\n/home/user/precious"


def test_random_ids_round_trip_on_one_line():
    rng = np.random.default_rng(0)
    alphabet = [*range(0, 0x100), 0x2028, 0x2029, 0x5C, *range(0xDC80, 0xDD00), 0x1F600]
    for _ in range(2000):
        text = "".join(chr(code) for code in rng.choice(alphabet, size=rng.integers(0, 12)))
        written = encode_id(text)
        assert decode_id(written) == text
        assert len(f"{written}\n".splitlines()) == 1
        written.encode("utf-8")


def test_escapes_that_skhftt_never_writes_are_refused():
    for text in ("\\a\\q", "\\a\\x41", "\\a\\XFF", "\\a\\u00e9"):
        with pytest.raises(ValueError, match="is not an id written by skhftt"):
            decode_id(text)


def test_arrow_columns_are_escaped_only_where_needed():
    clean = pa.array(["a", None, "b"])
    assert encode_ids(clean) is clean
    mixed = encode_ids(pa.array(["a", None, "b\nc", "\\d"]))
    assert mixed.to_pylist() == ["a", None, "\\b\\nc", "\\\\\\d"]


def test_lists_round_trip(tmp_path):
    ids = [*ORDINARY, *ESCAPED]
    write_list(tmp_path / "l.txt", [encode_id(text) for text in ids])
    assert len((tmp_path / "l.txt").read_text(encoding="utf-8").splitlines()) == len(ids)
    assert read_list(tmp_path / "l.txt") == ids
