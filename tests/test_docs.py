"""The documentation builds without a single warning, and its first pages keep their promises:
the README opens with commands that work on a fresh machine and an offline route, and the
first example, run as written, decides with a removal rule."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_docs_build_without_warnings(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert (tmp_path / "html" / "api.html").is_file()
    page = (tmp_path / "html" / "generated" / "skhftt.HFTTDetector.html").read_text()
    for method in ("fit", "score_samples", "decision_function", "predict", "predict_proba",
                   "save", "load"):
        assert f'id="skhftt.HFTTDetector.{method}"' in page, method
    rule = (tmp_path / "html" / "generated" / "skhftt.removal.RemovalRule.html").read_text()
    assert 'id="skhftt.removal.RemovalRule.calibrate"' in rule
    # Highlighting splits code into spans: compare the page's text.
    index = re.sub(r"<[^>]+>", "", (tmp_path / "html" / "index.html").read_text())
    assert "pip install skhftt" in index and "RemovalRule" in index


def test_readme_opens_with_the_job_the_tests_and_the_offline_route():
    bash = _blocks(README, "bash")
    job, tests, offline = bash[:3]
    assert "pip install" in job and "examples/quickstart_images.py" in job
    lines = README.splitlines()
    marker = lines.index("<!-- test-command -->")
    assert lines[marker + 2].strip() == tests.strip() and "pytest" in tests
    assert README.index(offline) < README.index("## In five lines")
    for route in ("--encoder /path/to/clip-dir", "examples/filter_folder.py",
                  "skhftt.testing import build_tiny_clip"):
        assert route in offline, route


@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "index.md"],
                         ids=lambda path: path.name)
def test_the_first_example_runs_as_written(page, tiny_clip_dir, monkeypatch, tmp_path):
    import skhftt
    from skhftt.corpora import load_world_corpus
    from skhftt.testing import write_sample_images

    example = _blocks(page.read_text(), "python")[0]
    assert "RemovalRule(" in example and ".predict(" not in example
    small_world = load_world_corpus(300)
    # The same code, on the tiny random CLIP and a small world corpus: no download.
    for name in ("HFTTDetector", "HFTTEnsembleDetector"):
        kind = getattr(skhftt, name)
        monkeypatch.setattr(skhftt, name, lambda kind=kind, **params: kind(
            encoder=tiny_clip_dir, device="cpu", **params))
    monkeypatch.setattr("skhftt.corpora.load_world_corpus", lambda *args: small_world)
    images = [str(path) for path in write_sample_images(tmp_path)]
    namespace = {"clean_images": images[:4], "images": images}
    exec(compile(example, str(page), "exec"), namespace)
    remove = namespace["remove"]
    assert remove.dtype == bool and remove.shape == (len(images),)
