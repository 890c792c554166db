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

No ``exp`` here is ever taken of an argument below the normal floating-point
range. At T = 0.01 real cosines spread the logits over tens of units, so the
shifted logits of a softmax, and the gradients autograd builds from them,
reach ``e^-100`` and less. torch's CPU ``exp`` is 15-40 times slower per
element for arguments below ``log`` of the smallest normal float (-87.3 in
float32), whether the result is subnormal or 0, and subnormal operands slow
down arithmetic on many x86 CPUs: one epoch at ImageNet scale took minutes
instead of seconds. Flushing subnormals (``torch.set_flush_denormal``) would
change the caller's float environment, reaches only the calling thread, not
torch's thread pool, and does not speed up ``exp``. Instead every ``exp`` goes
through :func:`_floored_exp`, which raises its argument to at least -79
(float32) first, and the gradient of the probabilities is computed in log
space (:class:`_LogPInOut`). A term raised to ``e^-79`` is far below
float32's resolution next to the terms of order 1 it is summed with.
"""

from __future__ import annotations

import math

import torch

__all__ = ["focal_weights", "hftt_loss", "log_p_in_out", "normalize_rows", "task_logsumexp"]

# e^8 above the smallest normal float: a floored value can still be scaled
# down 3000-fold (by an embedding coordinate, say) and stay normal.
_FLOOR_MARGIN = 8.0
# Task prompts per block of the fused task term: a block (6 MB at d = 384)
# stays in cache between its two products.
_TASK_BLOCK_ROWS = 4096


def _log_floor(dtype: torch.dtype) -> float:
    """The smallest argument :func:`_floored_exp` evaluates: -79.3 for float32."""
    return math.log(torch.finfo(dtype).tiny) + _FLOOR_MARGIN


def _floored_exp(log_values: torch.Tensor) -> torch.Tensor:
    """``exp(max(log_values, floor))``: never below ``e^floor``, never slow.

    For terms summed with one of order 1: where this raises a smaller
    value it adds at most ``e^-79`` (float32), far below the resolution.
    """
    return log_values.clamp(min=_log_floor(log_values.dtype)).exp_()


def _zero_floored_exp(log_values: torch.Tensor) -> torch.Tensor:
    """``exp(log_values)``, exactly 0 below ``e^floor``; for gradients.

    Gradients are multiplied by embedding coordinates next, and a product of
    ``e^floor`` with a coordinate below ``e^-8`` would be subnormal; a 0 is not.
    """
    floor = _log_floor(log_values.dtype)
    return log_values.clamp(min=floor).exp_().masked_fill_(log_values < floor, 0.0)


def _logsumexp(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``log(sum(exp(values), dim))``, each term floored relative to the largest.

    For values that need no gradient: autograd's backward of it is not
    floored (see :func:`log_p_in_out`).
    """
    peak = values.amax(dim=dim, keepdim=True)
    terms = (values - peak).clamp_(min=_log_floor(values.dtype)).exp_()
    result = terms.sum(dim=dim, keepdim=True).log_().add_(peak)
    # A row whose largest value is infinite has that value as its result.
    return torch.where(torch.isfinite(peak), result, peak).squeeze(dim)


def _logaddexp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(exp(a) + exp(b))`` with a floored exponential; no gradient."""
    high, low = torch.maximum(a, b), torch.minimum(a, b)
    return high + torch.log1p(_floored_exp(low - high))


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
    scaled = task_columns.T / temperature
    blocks = [_logsumexp(block @ scaled, dim=1) for block in embeddings.split(chunk_size)]
    return torch.cat(blocks) if blocks else embeddings.new_empty(0)


def _row_scaled_exp(
    values: torch.Tensor, row_log_offset: torch.Tensor, row_weight: torch.Tensor
) -> torch.Tensor:
    """``row_weight[:, None] * exp(values - row_log_offset[:, None])``, 0 below ``e^floor``.

    One exponential of a sum of logs, so that no product underflows.
    """
    log_values = values - (row_log_offset - row_weight.abs().log()).unsqueeze(1)
    return _zero_floored_exp(log_values).mul_(row_weight.sign().unsqueeze(1))


class _LogPInOut(torch.autograd.Function):
    """``(log P_in, log P_out)`` with a backward pass that stays in log space.

    Autograd's own backward of ``logsumexp`` and ``logaddexp`` takes ``exp``
    of log-probabilities far below -87 (slow, see the module docstring) and
    multiplies upstream gradients of order 1 / n by probabilities of order
    ``e^-80``, which gives subnormal products. Here each gradient entry is a
    single floored exponential of a sum of logs.
    """

    @staticmethod
    def forward(ctx, task_lse: torch.Tensor, trainable_logits: torch.Tensor):
        trainable_lse = _logsumexp(trainable_logits, dim=1)
        total_lse = _logaddexp(task_lse, trainable_lse)
        log_p_in, log_p_out = task_lse - total_lse, trainable_lse - total_lse
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(trainable_logits, total_lse, log_p_in, log_p_out)
        return log_p_in, log_p_out

    @staticmethod
    def backward(ctx, grad_in, grad_out):
        trainable_logits, total_lse, log_p_in, log_p_out = ctx.saved_tensors
        grad_task = grad_logits = None
        if ctx.needs_input_grad[1]:
            # d log P_in / d l_k = -p_k and d log P_out / d l_k = p_k P_in / P_out,
            # where p_k = exp(l_k - total_lse) is the softmax over all columns.
            if grad_in is not None:
                grad_logits = _row_scaled_exp(trainable_logits, total_lse, -grad_in)
            if grad_out is not None:
                term = _row_scaled_exp(
                    trainable_logits, total_lse + log_p_out - log_p_in, grad_out
                )
                grad_logits = term if grad_logits is None else grad_logits + term
        if ctx.needs_input_grad[0]:
            # d log P_in / d task_lse = P_out and d log P_out / d task_lse = -P_in.
            grad_task = torch.zeros_like(log_p_in)
            if grad_in is not None:
                grad_task += grad_in * _floored_exp(log_p_out)
            if grad_out is not None:
                grad_task -= grad_out * _floored_exp(log_p_in)
        return grad_task, grad_logits


class _MeanNegLogPIn(torch.autograd.Function):
    """``-mean_i log P_in(t_i)`` over the task prompts, and its gradient, in one pass.

    The loss and its gradient each need a product with every task prompt
    embedding, the largest tensor of a step; done apart, each reads it from
    memory. Here both products run block by block, so that the second finds
    the block in cache: a CPU step takes about 40 % less time. The gradient
    (with respect to the scaled columns only; the prompts are constants) is
    computed in the forward pass, in log space as in :class:`_LogPInOut`.
    """

    @staticmethod
    def forward(ctx, scaled_columns: torch.Tensor, embeddings: torch.Tensor,
                task_lse: torch.Tensor):
        n = embeddings.shape[0]
        total = scaled_columns.new_zeros(())
        grad_t = scaled_columns.new_zeros(scaled_columns.T.shape)
        for block, block_lse in zip(
            embeddings.split(_TASK_BLOCK_ROWS), task_lse.split(_TASK_BLOCK_ROWS), strict=True
        ):
            logits = block @ scaled_columns
            total_lse = _logaddexp(block_lse, _logsumexp(logits, dim=1))
            total += (total_lse - block_lse).sum()
            if ctx.needs_input_grad[0]:
                # d(-log P_in) / d l_k = p_k = exp(l_k - total_lse); / n for the mean.
                weights = _zero_floored_exp(logits - (total_lse + math.log(n)).unsqueeze(1))
                grad_t.addmm_(weights.T, block)
        ctx.save_for_backward(grad_t)
        return total / n

    @staticmethod
    def backward(ctx, grad_output):
        (grad_t,) = ctx.saved_tensors
        return grad_output * grad_t.T, None, None


def log_p_in_out(
    task_lse: torch.Tensor, trainable_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(log P_in, log P_out)`` from the two halves of the logits.

    Differentiable in both arguments; no subnormal float arises in the
    forward or the backward pass (see the module docstring).

    Parameters
    ----------
    task_lse : Tensor of shape (n,)
        ``logsumexp`` of the logits against the task columns.
    trainable_logits : Tensor of shape (n, K)
        Logits against the trainable columns.
    """
    return _LogPInOut.apply(task_lse, trainable_logits)


def focal_weights(log_p_in: torch.Tensor, gamma: float) -> torch.Tensor:
    """Normalised focal weights ``beta_j = alpha_j / sum_k alpha_k``.

    ``alpha_j = (1 - P_out(b_j))^gamma = P_in(b_j)^gamma``, so world texts that
    the detector already places outside the task weigh little, and texts that
    still look like the task weigh more. The weights are constants: no
    gradient flows through them. ``gamma = 0`` gives uniform weights.
    """
    log_alpha = gamma * log_p_in.detach()
    return _floored_exp(log_alpha - _logsumexp(log_alpha, dim=0))


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
    # Scaling the (d, K) columns, not the (n, K) logits, saves passes over the
    # logits of every task prompt.
    scaled = normalize_rows(trainable).T / temperature
    task_term = _MeanNegLogPIn.apply(scaled, task_embeddings, task_lse)
    world_log_p_in, world_log_p_out = log_p_in_out(world_lse, world_embeddings @ scaled)
    beta = focal_weights(world_log_p_in, gamma)
    world_term = -(beta * world_log_p_out).sum()
    return task_weight * task_term + (1.0 - task_weight) * world_term
