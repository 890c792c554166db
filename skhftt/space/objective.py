"""The HFTT training objective: focal-weighted text loss in a joint space.

Pure tensor code, no I/O and no models. Notation follows the HFTT paper:
W (C x d) are the fixed task columns, V (K x d) the trainable columns,
re-normalised on every forward pass, T the temperature. For an embedding x,
``logits = [x W^T, x V^T] / T`` and ``P_out(x)`` is the softmax mass on the K
trainable columns. Everything is computed in log space: at T = 0.01 the
probabilities round to exactly 0 or 1 for many inputs.

Because W and every training text are fixed, the log-sum-exp of a text's
logits against W is a constant; it is computed once
(:func:`task_logsumexp`) and each step only needs the products with V.
"""

from __future__ import annotations

import torch

__all__ = ["focal_weights", "hftt_loss", "log_p_in_out", "normalize_rows", "task_logsumexp"]


def normalize_rows(matrix: torch.Tensor) -> torch.Tensor:
    """Scale each row of ``matrix`` to unit L2 norm."""
    return matrix / matrix.norm(dim=1, keepdim=True)


def task_logsumexp(
    embeddings: torch.Tensor,
    task_columns: torch.Tensor,
    temperature: float,
    *,
    chunk_size: int = 16384,
) -> torch.Tensor:
    """``logsumexp(x W^T / T)`` per row of ``embeddings``, in bounded memory.

    Parameters
    ----------
    embeddings : Tensor of shape (n, d)
    task_columns : Tensor of shape (C, d)
    temperature : float
    chunk_size : int
        Rows per block, so that the (n, C) logits never exist at once.

    Returns
    -------
    Tensor of shape (n,)
    """
    blocks = [
        torch.logsumexp(block @ task_columns.T / temperature, dim=1)
        for block in embeddings.split(chunk_size)
    ]
    return torch.cat(blocks) if blocks else embeddings.new_empty(0)


def log_p_in_out(
    task_lse: torch.Tensor, trainable_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(log P_in, log P_out)`` from the two halves of the logits.

    Parameters
    ----------
    task_lse : Tensor of shape (n,)
        ``logsumexp`` of the logits against the task columns.
    trainable_logits : Tensor of shape (n, K)
        Logits against the trainable columns.
    """
    trainable_lse = torch.logsumexp(trainable_logits, dim=1)
    total_lse = torch.logaddexp(task_lse, trainable_lse)
    return task_lse - total_lse, trainable_lse - total_lse


def focal_weights(log_p_in: torch.Tensor, gamma: float) -> torch.Tensor:
    """Normalised focal weights ``beta_j = alpha_j / sum_k alpha_k``.

    ``alpha_j = (1 - P_out(b_j))^gamma = P_in(b_j)^gamma``, so world texts that
    the detector already places outside the task weigh little, and texts that
    still look like the task weigh more. The weights are constants: no
    gradient flows through them. ``gamma = 0`` gives uniform weights.
    """
    return torch.softmax(gamma * log_p_in.detach(), dim=0)


def hftt_loss(
    trainable: torch.Tensor,
    *,
    task_embeddings: torch.Tensor,
    task_lse: torch.Tensor,
    world_embeddings: torch.Tensor,
    world_lse: torch.Tensor,
    temperature: float,
    gamma: float,
    task_weight: float = 0.5,
) -> torch.Tensor:
    """The HFTT loss for one world minibatch.

    ``task_weight * mean_i CE(t_i, in) + (1 - task_weight) * sum_j beta_j CE(b_j, out)``
    where ``t_i`` runs over every task prompt and ``b_j`` over the world batch.

    Parameters
    ----------
    trainable : Tensor of shape (K, d)
        The raw trainable columns V; normalised here, so gradients flow
        through the normalisation.
    task_embeddings : Tensor of shape (m, d)
        Every task prompt embedding (label "in").
    task_lse : Tensor of shape (m,)
        :func:`task_logsumexp` of ``task_embeddings``.
    world_embeddings : Tensor of shape (N, d)
        The world minibatch (label "out", unlabelled in truth).
    world_lse : Tensor of shape (N,)
        :func:`task_logsumexp` of ``world_embeddings``.
    temperature : float
    gamma : float
        Focal exponent; 0 weighs every world text equally.
    task_weight : float, default=0.5
        Weight of the task term (lambda); the world term gets ``1 - task_weight``.

    Returns
    -------
    Tensor
        Scalar loss.
    """
    columns = normalize_rows(trainable)
    task_log_p_in, _ = log_p_in_out(task_lse, task_embeddings @ columns.T / temperature)
    world_log_p_in, world_log_p_out = log_p_in_out(
        world_lse, world_embeddings @ columns.T / temperature
    )
    beta = focal_weights(world_log_p_in, gamma)
    task_term = -task_log_p_in.mean()
    world_term = -(beta * world_log_p_out).sum()
    return task_weight * task_term + (1.0 - task_weight) * world_term
