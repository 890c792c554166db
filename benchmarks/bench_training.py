"""Training speed at ImageNet-1k scale on embeddings with a real cosine structure.

Data: ``benchmarks/_realistic.py`` -- 1000 classes x 80 prompts and 234,450
world texts, d = 384, drawn from a model fitted to real all-MiniLM-L6-v2
embeddings (the cosine quantiles of real vs synthetic pairs are printed
first). At T = 0.01 their logits spread over tens of units, which is where
the softmax and its gradient used to produce subnormal floats.

Measured, in one process, in this order (so torch's thread pool exists before
anything is timed, as in a user's session):

* **skhftt**: one epoch of ``HFTTDetector(encoder="precomputed").fit`` end to
  end (task columns, the constant log-sum-exps, 916 steps of K = 10, batch 256).
* **previous**: the same steps with the previous formulation of the loss
  (autograd's ``logsumexp`` / ``logaddexp`` / ``softmax``, whose gradient
  products underflow into subnormal floats, and two separate passes over the
  task prompts), timed against the current one over ``--compare-steps``
  steps from the initial columns and from the fitted ones; ``slowdown`` is
  the previous epoch extrapolated from the mean of the two, over the
  measured skhftt epoch.
* **random**: the same fit on random unit vectors (every cosine about 0), the
  figure this benchmark reported before.
* **direct**: on the random vectors, the formulation in which every step
  recomputes each task prompt's logits against all C + K columns, timed over
  ``--direct-steps`` steps, extrapolated to an epoch.

* **real**: the previous and the current formulation, step for step, on
  real all-MiniLM-L6-v2 rows only (the sample's 3,200 prompts and 4,000
  world texts, tiled to the same scale; see :func:`real_tiled`).

Last line: ``epoch_s=<skhftt epoch, realistic data> slowdown=<previous / skhftt>
real_step_slowdown=<previous / current s/step, real rows> speedup=<direct /
skhftt, random data>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import _realistic
import numpy as np
import torch

from skhftt import HFTTDetector
from skhftt.space.objective import hftt_loss, normalize_rows, task_logsumexp


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def autograd_hftt_loss(trainable, *, task_embeddings, task_lse, world_embeddings, world_lse,
                       temperature, gamma, task_weight=0.5):
    """The loss as skhftt computed it before: autograd's logsumexp, logaddexp, softmax."""
    columns = normalize_rows(trainable)

    def log_p_in_out(lse, logits):
        trainable_lse = torch.logsumexp(logits, dim=1)
        total_lse = torch.logaddexp(lse, trainable_lse)
        return lse - total_lse, trainable_lse - total_lse

    task_log_p_in, _ = log_p_in_out(task_lse, task_embeddings @ columns.T / temperature)
    world_log_p_in, world_log_p_out = log_p_in_out(
        world_lse, world_embeddings @ columns.T / temperature)
    beta = torch.softmax(gamma * world_log_p_in.detach(), dim=0)
    return (-task_weight * task_log_p_in.mean()
            - (1.0 - task_weight) * (beta * world_log_p_out).sum())


def fit_seconds(world, task, **params):
    started = time.perf_counter()
    det = HFTTDetector(encoder="precomputed", random_state=0, **params).fit(world, task)
    return time.perf_counter() - started, det


class StepTimer:
    """Times SGD steps of :func:`hftt_loss` from given columns, on fixed batches."""

    def __init__(self, prompts, columns, world, *, batch_size=256, temperature=0.01):
        self.task = torch.from_numpy(prompts)
        fixed = torch.from_numpy(columns)
        self.task_lse = task_logsumexp(self.task, fixed, temperature)
        order = torch.from_numpy(np.random.default_rng(0).permutation(len(world)))
        self.batches = order.split(batch_size)
        self.world = torch.from_numpy(world)
        self.world_lse = task_logsumexp(self.world, fixed, temperature)
        self.temperature = temperature

    def seconds_per_step(self, start_columns, steps, loss_function=hftt_loss):
        trainable = torch.nn.Parameter(torch.from_numpy(start_columns.copy()))
        optimizer = torch.optim.SGD([trainable], lr=1.0, momentum=0.9)
        started = time.perf_counter()
        for batch in self.batches[:steps]:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(trainable, task_embeddings=self.task, task_lse=self.task_lse,
                                 world_embeddings=self.world[batch],
                                 world_lse=self.world_lse[batch],
                                 temperature=self.temperature, gamma=1.0)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - started) / steps


def direct_step_seconds(prompts, columns, world, *, n_embeddings, batch_size, steps,
                        temperature=0.01, gamma=1.0):
    """Mean seconds per step when every logit is recomputed each step."""
    task = torch.from_numpy(prompts)
    fixed = torch.from_numpy(columns)
    world_t = torch.from_numpy(world)
    trainable = torch.nn.Parameter(torch.randn(n_embeddings, prompts.shape[1]))
    optimizer = torch.optim.SGD([trainable], lr=1.0, momentum=0.9)
    n_task = fixed.shape[0]

    def log_in_out(x, all_columns):
        logits = x @ all_columns.T / temperature
        total = torch.logsumexp(logits, dim=1)
        return (torch.logsumexp(logits[:, :n_task], dim=1) - total,
                torch.logsumexp(logits[:, n_task:], dim=1) - total)

    started = time.perf_counter()
    for step in range(steps):
        batch = world_t[step * batch_size : (step + 1) * batch_size]
        optimizer.zero_grad()
        all_columns = torch.cat([fixed, normalize_rows(trainable)])
        task_in, _ = log_in_out(task, all_columns)
        world_in, world_out = log_in_out(batch, all_columns)
        beta = torch.softmax(gamma * world_in.detach(), dim=0)
        loss = -0.5 * task_in.mean() - 0.5 * (beta * world_out).sum()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def real_tiled(sample: dict[str, np.ndarray], n_classes: int, n_prompts: int, n_world: int):
    """Real all-MiniLM-L6-v2 rows only, at full scale by repetition.

    The 40 x 80 real prompts of the sample, tiled to ``n_classes * n_prompts``
    rows; task columns: the 40 real class means and the real name embeddings
    of the other classes; world: the 4,000 real world texts, tiled to
    ``n_world``. Per-row numerics (and so any subnormal float) are those of
    real embeddings; only their number is made up.
    """
    prompts = sample["task"].reshape(-1, sample["task"].shape[-1])
    means = sample["task"].mean(axis=1)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    others = np.delete(sample["class_names"], sample["task_classes"], axis=0)
    columns = np.concatenate([means, others])[:n_classes].astype(np.float32)
    task = np.resize(prompts, (n_classes * n_prompts, prompts.shape[1]))
    world = np.resize(sample["world"], (n_world, prompts.shape[1]))
    return np.ascontiguousarray(task), columns, np.ascontiguousarray(world)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--prompts", type=int, default=80)
    parser.add_argument("--world", type=int, default=234_450)
    parser.add_argument("--compare-steps", type=int, default=20)
    parser.add_argument("--direct-steps", type=int, default=20)
    parser.add_argument("--device", default="cpu",
                        help="where the end-to-end fits train (the per-step comparisons "
                             "run on the CPU)")
    parser.add_argument("--cache-dir", default=None,
                        help="cache of the real sample and the generated embeddings "
                             "(default ~/.cache/skhftt-bench)")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.device}, "
          f"load {os.getloadavg()[0]:.1f}")
    data = _realistic.realistic_embeddings(args.classes, args.prompts, args.world,
                                           cache_dir=args.cache_dir)
    print("\n".join(_realistic.cosine_report(data, cache_dir=args.cache_dir)))
    task = _realistic.task_mapping(data)
    print(f"task: {args.classes} classes x {args.prompts} prompts, world {args.world}, "
          f"d={data.task.shape[1]}, K=10, batch 256")

    epoch_s, det = fit_seconds(data.world, task, device=args.device)
    n_steps = det.history_[0]["n_batches"]
    print(f"skhftt, realistic: one epoch ({n_steps} steps) in {epoch_s:.1f} s end to end, "
          f"{det.history_[0]['duration_s']:.1f} s of it in the training loop, "
          f"loss {det.loss_curve_[0]:.4f}")

    timer = StepTimer(data.task, det.task_columns_, data.world)
    initial = np.random.RandomState(0).standard_normal((10, data.task.shape[1]))
    starts = {"initial": initial.astype(np.float32), "fitted": det.trainable_columns_}
    previous_steps = []
    for name, columns in starts.items():
        floored_s = timer.seconds_per_step(columns, args.compare_steps)
        previous_s = timer.seconds_per_step(columns, args.compare_steps, autograd_hftt_loss)
        previous_steps.append(previous_s)
        print(f"  from the {name} columns: {floored_s:.3f} s/step, previous "
              f"{previous_s:.3f} s/step ({previous_s / floored_s:.1f}x)")
    previous_epoch_s = float(np.mean(previous_steps)) * n_steps
    print(f"previous, realistic: {previous_epoch_s:.0f} s per epoch (extrapolated)")

    real_task, real_columns, real_world = real_tiled(
        _realistic.real_sample(args.cache_dir), args.classes, args.prompts, args.world)
    real_timer = StepTimer(real_task, real_columns, real_world)
    floored_s = real_timer.seconds_per_step(starts["initial"], args.compare_steps)
    previous_s = real_timer.seconds_per_step(starts["initial"], args.compare_steps,
                                             autograd_hftt_loss)
    real_slowdown = previous_s / floored_s
    print(f"real MiniLM rows, tiled to the same scale, from the initial columns: "
          f"{floored_s:.3f} s/step, previous {previous_s:.3f} s/step ({real_slowdown:.1f}x)")

    rng = np.random.default_rng(0)
    prompts = unit_rows(rng, len(data.task), data.task.shape[1])
    world = unit_rows(rng, len(data.world), data.task.shape[1])
    random_task = {f"class {c}": prompts[c * args.prompts : (c + 1) * args.prompts]
                   for c in range(args.classes)}
    random_s, random_det = fit_seconds(world, random_task, device=args.device)
    print(f"skhftt, random unit vectors: one epoch in {random_s:.1f} s")
    step_s = direct_step_seconds(prompts, random_det.task_columns_, world, n_embeddings=10,
                                 batch_size=256, steps=args.direct_steps)
    direct_epoch_s = step_s * n_steps
    print(f"direct, random unit vectors: {step_s:.3f} s/step over {args.direct_steps} steps "
          f"-> {direct_epoch_s:.0f} s per epoch (extrapolated)")
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    print(f"epoch_s={epoch_s:.1f} slowdown={previous_epoch_s / epoch_s:.1f} "
          f"real_step_slowdown={real_slowdown:.1f} speedup={direct_epoch_s / random_s:.1f}")


if __name__ == "__main__":
    main()
