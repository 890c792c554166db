"""Long encodes report their progress on stderr, even at the default verbosity."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from skhftt.embedding import progress
from skhftt.embedding.cache import encode_texts
from skhftt.embedding.inputs import to_embeddings


class FastEncoder:
    """Constant rows, at once: only the amount of work matters here."""

    dim = 4

    def __init__(self, identity: str = "fast") -> None:
        self.identity = identity
        self.n_texts = 0

    def encode_text(self, texts, *, batch_size=256, show_progress=False):
        self.n_texts += len(texts)
        return np.tile(np.eye(4, dtype=np.float32)[0], (len(texts), 1))

    def encode_image(self, images, *, batch_size=64, show_progress=False):
        return np.tile(np.eye(4, dtype=np.float32)[1], (len(images), 1))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def texts(n: int, tag: str) -> list[str]:
    return [f"{tag} {i}" for i in range(n)]


@pytest.fixture(autouse=True)
def default_progress(monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)


def test_a_long_encode_prints_one_line_with_the_time_left(capsys, tmp_path):
    encode_texts(FastEncoder("long"), texts(progress.LONG_ITEMS, "long"), cache_dir=tmp_path)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.match(
        r"skhftt: encoding 10,000 texts with 'long' \(kept in '.*' for later runs\): "
        r"256 done at [\d,]+ texts/s, about \d+ s left\. \(SKHFTT_PROGRESS=off hides",
        lines[0],
    ), lines[0]


def test_cached_texts_are_not_counted(capsys, tmp_path):
    encoder = FastEncoder("cached")
    encode_texts(encoder, texts(progress.LONG_ITEMS, "cached"), cache_dir=tmp_path)
    capsys.readouterr()
    encode_texts(encoder, texts(progress.LONG_ITEMS + 5, "cached"), cache_dir=tmp_path)
    assert encoder.n_texts == progress.LONG_ITEMS + 5
    assert capsys.readouterr().err == ""


def test_short_encodes_are_quiet(capsys):
    encode_texts(FastEncoder("short"), texts(progress.LONG_ITEMS - 1, "short"), cache_dir=False)
    assert capsys.readouterr().err == ""


def test_work_still_running_after_long_seconds_reports_too(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LONG_SECONDS", 0.0)
    encode_texts(FastEncoder("slow"), texts(30, "slow"), batch_size=10, cache_dir=False)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("skhftt: encoding 30 texts with 'slow': 10 done at ")


def test_long_image_encodes_report_too(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LONG_SECONDS", 0.0)
    images = [np.zeros((4, 4, 3), np.uint8)] * 3
    to_embeddings(images, encoder=FastEncoder("images"), dim=4, batch_size=1)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("skhftt: encoding 3 images with 'images': 1 done at ")


def test_a_terminal_gets_a_progress_bar(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    encode_texts(FastEncoder("tty"), texts(progress.LONG_ITEMS, "tty"), cache_dir=False)
    output = terminal.getvalue()
    assert "Encoding texts" in output and "10000/10000" in output
    assert "skhftt: encoding" not in output


@pytest.mark.parametrize("setting", ["off", "0", "FALSE"])
def test_the_environment_silences_it(capsys, monkeypatch, setting):
    monkeypatch.setenv(progress.PROGRESS_ENV, setting)
    encode_texts(FastEncoder("off"), texts(progress.LONG_ITEMS, f"off {setting}"), cache_dir=False)
    assert capsys.readouterr().err == ""


def test_show_progress_false_silences_it_and_true_always_shows(capsys):
    encode_texts(
        FastEncoder("never"), texts(progress.LONG_ITEMS, "never"), show_progress=False,
        cache_dir=False,
    )  # fmt: skip
    assert capsys.readouterr().err == ""
    encode_texts(FastEncoder("always"), ["one"], show_progress=True, cache_dir=False)
    assert "Encoding texts" in capsys.readouterr().err


def test_a_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, "loud")
    with pytest.raises(ValueError, match="SKHFTT_PROGRESS='loud'"):
        encode_texts(FastEncoder("bad"), ["a"], cache_dir=False)
