"""The image quickstart example runs offline against a local model directory."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart_images.py"


def test_quickstart_ranks_the_sample_images(tiny_clip_dir, capsys, monkeypatch):
    argv = [str(EXAMPLE), "--encoder", str(tiny_clip_dir), "--world-words", "300"]
    monkeypatch.setattr(sys, "argv", argv)
    namespace = runpy.run_path(str(EXAMPLE), run_name="quickstart")
    assert namespace["main"](argv[1:]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("rank"))) + 1 :]
    assert len(table) >= 2
    assert [int(line.split()[0]) for line in table] == list(range(1, len(table) + 1))
    scores = [float(line.split()[1]) for line in table]
    assert scores == sorted(scores, reverse=True)
    assert "flower.jpg" in "\n".join(table)


def test_quickstart_reports_an_unreachable_hub(capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    namespace = runpy.run_path(str(EXAMPLE), run_name="quickstart")
    assert namespace["main"](["--encoder", "skhftt-tests/no-such-clip"]) == 2
    assert "unreachable" in capsys.readouterr().err
