"""Training speed at ImageNet-1k scale on random unit embeddings.

Times one epoch of ``HFTTDetector(encoder="precomputed").fit`` end to end
(1000 classes x 80 prompts, 234,000 world texts, d = 512, K = 10, batch 256)
and, in the same process, the direct formulation of the same loss, in which
every step recomputes each task prompt's logits against all C + K columns,
over ``--direct-steps`` steps, extrapolated to an epoch.

Last line: ``epoch_s=<seconds> speedup=<direct epoch / skhftt epoch>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from skhftt import HFTTDetector
from skhftt.space.objective import normalize_rows


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--prompts", type=int, default=80)
    parser.add_argument("--world", type=int, default=234_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--direct-steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    prompts = unit_rows(rng, args.classes * args.prompts, args.dim)
    world = unit_rows(rng, args.world, args.dim)
    classes = {f"class {c}": prompts[c * args.prompts : (c + 1) * args.prompts]
               for c in range(args.classes)}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    print(f"task: {args.classes} classes x {args.prompts} prompts, world {args.world}, "
          f"d={args.dim}, K=10, batch 256")

    started = time.perf_counter()
    det = HFTTDetector(encoder="precomputed", device=args.device, random_state=0)
    det.fit(world, classes)
    epoch_s = time.perf_counter() - started
    n_steps = det.history_[0]["n_batches"]
    print(f"skhftt: one epoch ({n_steps} steps) in {epoch_s:.1f} s, "
          f"loss {det.loss_curve_[0]:.4f}")

    columns = det.task_columns_
    step_s = direct_step_seconds(prompts, columns, world, n_embeddings=10, batch_size=256,
                                 steps=args.direct_steps)
    direct_epoch_s = step_s * n_steps
    print(f"direct: {step_s:.3f} s/step over {args.direct_steps} steps -> "
          f"{direct_epoch_s:.0f} s per epoch (extrapolated)")
    print(f"epoch_s={epoch_s:.1f} speedup={direct_epoch_s / epoch_s:.1f}")


if __name__ == "__main__":
    main()
