"""The optimisation loop: SGD with momentum over shuffled world minibatches.

The learning rate is constant within an epoch and, by default, annealed
from epoch to epoch with a cosine schedule, as in the reference code.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from skhftt.space.objective import hftt_loss, normalize_rows, task_logsumexp

__all__ = ["LEARNING_RATE_SCHEDULES", "TrainingResult", "train_trainable_columns"]

LEARNING_RATE_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainingResult:
    """What :func:`train_trainable_columns` returns.

    Attributes
    ----------
    trainable_columns : ndarray of shape (K, d)
        Trained columns, unit rows, float32.
    loss_curve : list of float
        Mean minibatch loss of each epoch.
    history : list of dict
        One record per epoch: ``epoch``, ``loss``, ``n_batches``,
        ``learning_rate`` (the rate the epoch used), ``duration_s``.
    """

    trainable_columns: np.ndarray
    loss_curve: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)


def _read_only_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A tensor sharing ``array``'s memory on the CPU, never written to.

    Cached embeddings come as read-only arrays; copying them to silence
    torch's warning would double the memory of a large world corpus.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array).to(device)


def train_trainable_columns(
    task_embeddings: np.ndarray,
    world_embeddings: np.ndarray,
    task_columns: np.ndarray,
    *,
    n_embeddings: int,
    temperature: float,
    gamma: float,
    task_weight: float,
    max_iter: int,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    device: torch.device,
    random_state: np.random.RandomState,
    learning_rate_schedule: str = "cosine",
    verbose: int = 0,
) -> TrainingResult:
    """Learn the K trainable columns of an HFTT head from text embeddings.

    Parameters
    ----------
    task_embeddings : ndarray of shape (m, d)
        Every task prompt, unit rows (label "in").
    world_embeddings : ndarray of shape (n, d)
        The world corpus, unit rows (label "out", unlabelled).
    task_columns : ndarray of shape (C, d)
        Fixed task columns W, unit rows.
    n_embeddings : int
        Number of trainable columns K.
    temperature, gamma, task_weight : float
        See :func:`skhftt.space.objective.hftt_loss`.
    max_iter : int
        Number of epochs over the world corpus.
    batch_size : int
        World texts per step; the last batch of an epoch may be smaller.
    learning_rate, momentum : float
        SGD hyperparameters (no weight decay); ``learning_rate`` is the rate
        of the first epoch.
    device : torch.device
    random_state : numpy RandomState
        Source of the initial columns and of the shuffling. All randomness is
        drawn from it, so equal seeds give identical results on one device.
    learning_rate_schedule : {"constant", "cosine"}, default="cosine"
        ``"cosine"`` anneals the rate from ``learning_rate`` towards 0 over
        ``max_iter`` epochs (epoch e, counted from 0, uses
        ``learning_rate * (1 + cos(pi * e / max_iter)) / 2``), stepped once
        per epoch as in the reference code, so one epoch is unaffected.
        ``"constant"`` keeps ``learning_rate``.
    verbose : int
        0 silent, 1 progress bar, 2 also one line per epoch.

    Returns
    -------
    TrainingResult
    """
    if learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
        raise ValueError(
            f"learning_rate_schedule must be one of {LEARNING_RATE_SCHEDULES}; "
            f"got {learning_rate_schedule!r}."
        )
    dim = task_columns.shape[1]
    initial = random_state.standard_normal((n_embeddings, dim)).astype(np.float32)
    trainable = torch.nn.Parameter(torch.from_numpy(initial).to(device))
    optimizer = torch.optim.SGD(
        [trainable], lr=learning_rate, momentum=momentum, weight_decay=0.0
    )
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_iter)
        if learning_rate_schedule == "cosine"
        else None
    )

    with torch.no_grad():
        columns = _read_only_tensor(task_columns, device)
        task = _read_only_tensor(task_embeddings, device)
        world = _read_only_tensor(world_embeddings, device)
        task_lse = task_logsumexp(task, columns, temperature)
        world_lse = task_logsumexp(world, columns, temperature)

    n_world = world.shape[0]
    n_batches = -(-n_world // batch_size)
    result = TrainingResult(trainable_columns=initial)
    for epoch in range(max_iter):
        started = time.perf_counter()
        epoch_rate = optimizer.param_groups[0]["lr"]
        order = torch.from_numpy(random_state.permutation(n_world)).to(device)
        total = torch.zeros((), device=device)
        batches = tqdm(
            order.split(batch_size),
            total=n_batches,
            desc=f"HFTT epoch {epoch + 1}/{max_iter}",
            unit="batch",
            disable=verbose < 1,
        )
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = hftt_loss(
                trainable,
                task_embeddings=task,
                task_lse=task_lse,
                world_embeddings=world[batch],
                world_lse=world_lse[batch],
                temperature=temperature,
                gamma=gamma,
                task_weight=task_weight,
            )
            loss.backward()
            optimizer.step()
            total += loss.detach()
        if scheduler is not None:
            scheduler.step()
        mean_loss = total.item() / n_batches
        duration = time.perf_counter() - started
        result.loss_curve.append(mean_loss)
        result.history.append(
            {"epoch": epoch + 1, "loss": mean_loss, "n_batches": n_batches,
             "learning_rate": epoch_rate, "duration_s": duration}
        )
        if verbose >= 2:
            print(f"epoch {epoch + 1}/{max_iter}: loss={mean_loss:.5f} ({duration:.1f}s)")
    with torch.no_grad():
        result.trainable_columns = normalize_rows(trainable).cpu().numpy().astype(np.float32)
    return result
