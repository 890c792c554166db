from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _synthetic import make_task_world
from torch.utils._python_dispatch import TorchDispatchMode

from skhftt.space.head import HFTTHead, logsumexp_rows
from skhftt.space.objective import focal_weights, hftt_loss, log_p_in_out, task_logsumexp
from skhftt.space.task import task_columns


def _reference_loss(V, prompts, world, W, temperature, gamma, task_weight):
    """The loss written as in the paper: explicit softmax, float64."""
    columns = V / V.norm(dim=1, keepdim=True)

    def p_in_out(x):
        probs = torch.softmax(torch.cat([x @ W.T, x @ columns.T], dim=1) / temperature, dim=1)
        return probs[:, : W.shape[0]].sum(dim=1), probs[:, W.shape[0] :].sum(dim=1)

    task_ce = -torch.log(p_in_out(prompts)[0]).mean()
    p_out_world = p_in_out(world)[1]
    alpha = (1 - p_out_world.detach()) ** gamma
    beta = alpha / alpha.sum()
    world_ce = -(beta * torch.log(p_out_world)).sum()
    return task_weight * task_ce + (1 - task_weight) * world_ce


def _random_problem(seed, dim=8, n_classes=3, n_prompts=7, n_world=11, k=4):
    gen = torch.Generator().manual_seed(seed)

    def unit(*shape):
        x = torch.randn(*shape, generator=gen, dtype=torch.float64)
        return x / x.norm(dim=1, keepdim=True)

    return unit(n_prompts, dim), unit(n_world, dim), unit(n_classes, dim), torch.randn(
        k, dim, generator=gen, dtype=torch.float64
    )


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("temperature", [0.01, 0.1])
@pytest.mark.parametrize("task_weight", [0.5, 0.3])
def test_loss_and_gradient_match_direct_formula(gamma, temperature, task_weight):
    prompts, world, W, V0 = _random_problem(seed=int(gamma * 10 + temperature * 100))
    V_ref = V0.clone().requires_grad_(True)
    expected = _reference_loss(V_ref, prompts, world, W, temperature, gamma, task_weight)
    expected.backward()

    V = V0.clone().requires_grad_(True)
    loss = hftt_loss(
        V,
        task_embeddings=prompts,
        task_lse=task_logsumexp(prompts, W, temperature),
        world_embeddings=world,
        world_lse=task_logsumexp(world, W, temperature),
        temperature=temperature,
        gamma=gamma,
        task_weight=task_weight,
    )
    loss.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(V.grad, V_ref.grad, rtol=1e-8, atol=1e-10)
    assert V.grad.abs().sum() > 0


def test_loss_float32_close_to_float64():
    prompts, world, W, V0 = _random_problem(seed=3)
    args = {"temperature": 0.01, "gamma": 1.0}
    values = []
    for dtype in (torch.float64, torch.float32):
        p, w, c, v = (t.to(dtype) for t in (prompts, world, W, V0))
        values.append(hftt_loss(
            v, task_embeddings=p, task_lse=task_logsumexp(p, c, 0.01),
            world_embeddings=w, world_lse=task_logsumexp(w, c, 0.01), **args,
        ).item())
    assert values[1] == pytest.approx(values[0], rel=1e-4)


def test_focal_weights_are_constants_that_sum_to_one():
    log_p_in = torch.log(torch.tensor([0.9, 0.5, 0.1], requires_grad=True))
    uniform = focal_weights(log_p_in, 0.0)
    torch.testing.assert_close(uniform, torch.full((3,), 1 / 3))
    weights = focal_weights(log_p_in, 2.0)
    assert not weights.requires_grad
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    expected = torch.tensor([0.81, 0.25, 0.01]) / (0.81 + 0.25 + 0.01)
    torch.testing.assert_close(weights, expected)


def test_log_p_in_out_are_log_probabilities_that_sum_to_one():
    task_lse = torch.tensor([3.0, -2.0, 50.0], dtype=torch.float64)
    trainable = torch.tensor([[1.0, 0.0], [4.0, 2.0], [-60.0, -70.0]], dtype=torch.float64)
    log_in, log_out = log_p_in_out(task_lse, trainable)
    torch.testing.assert_close(log_in.exp() + log_out.exp(), torch.ones(3, dtype=torch.float64))
    assert torch.isfinite(log_out).all()


def test_task_logsumexp_blocks_match_one_shot():
    prompts, _, W, _ = _random_problem(seed=5, n_prompts=50)
    torch.testing.assert_close(
        task_logsumexp(prompts, W, 0.01, chunk_size=7),
        torch.logsumexp(prompts @ W.T / 0.01, dim=1),
    )


def test_saturated_probabilities_still_rank_by_log_odds():
    """Where P_in rounds to exactly 1.0, the log-odds keep the true order."""
    task = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    trainable = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    head = HFTTHead(task, trainable, temperature=0.01)
    angles = np.array([0.02, 0.2, 0.4])  # radians away from the task column
    x = np.stack([np.cos(angles), np.sin(angles), np.zeros(3)], axis=1).astype(np.float32)
    scores = head.log_odds(x)
    logits = head.logits(x).astype(np.float64)
    p_in = np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)
    assert (p_in == 1.0).all(), "the inputs must saturate for this test to mean anything"
    assert scores[0] > scores[1] > scores[2]
    np.testing.assert_allclose(scores, logits[:, 0] - logits[:, 1], rtol=1e-5)


def test_head_log_odds_streams_in_blocks():
    rng = np.random.default_rng(0)
    head = HFTTHead(
        rng.normal(size=(5, 6)).astype(np.float32),
        rng.normal(size=(3, 6)).astype(np.float32),
        temperature=0.05,
    )
    x = rng.normal(size=(101, 6)).astype(np.float32)
    np.testing.assert_allclose(head.log_odds(x, block_rows=10), head.log_odds(x), rtol=1e-6)


def test_log_p_in_out_gradients_in_both_arguments():
    gen = torch.Generator().manual_seed(0)
    task_lse = (30 * torch.randn(6, generator=gen, dtype=torch.float64)).requires_grad_(True)
    logits = (30 * torch.randn(6, 4, generator=gen, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(log_p_in_out, (task_lse, logits))


def test_log_p_in_out_exact_where_terms_are_far_apart():
    """Terms e^-100 and e^-400 below the rest are dropped without changing anything."""
    task_lse = torch.tensor([0.0, 0.0, 400.0])
    logits = torch.tensor([[-100.0, 0.0], [-400.0, -300.0], [0.0, 1.0]])
    log_in, log_out = log_p_in_out(task_lse, logits)
    expected = torch.stack([task_lse, torch.logsumexp(logits.double(), dim=1).float()], dim=1)
    expected = expected - torch.logsumexp(expected.double(), dim=1, keepdim=True).float()
    torch.testing.assert_close(log_in, expected[:, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(log_out, expected[:, 1], rtol=0, atol=1e-6)


def test_log_p_in_out_with_infinite_logits():
    task_lse = torch.tensor([2.0, 2.0, -np.inf])
    logits = torch.tensor([[-np.inf, -np.inf], [np.inf, 0.0], [1.0, -np.inf]])
    log_in, log_out = log_p_in_out(task_lse, logits)
    torch.testing.assert_close(log_in, torch.tensor([0.0, -np.inf, -np.inf]))
    torch.testing.assert_close(log_out[[0, 2]], torch.tensor([-np.inf, 0.0]))


class _AbnormalFloats(TorchDispatchMode):
    """Records ops that output subnormal floats or take ``exp`` below the normal range.

    Both are many times slower per element on x86 CPUs (torch's ``exp`` takes
    a slow path below log(smallest normal), subnormal operands need microcode
    assists on many chips), whatever the process's float environment.
    """

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in (torch.ops.aten.exp.default, torch.ops.aten.exp_.default):
            argument = args[0]
            if (argument < math.log(torch.finfo(argument.dtype).tiny)).any():
                self.found.append(f"{func} of an argument below the normal range")
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                tiny = torch.finfo(tensor.dtype).tiny
                if ((tensor != 0) & (tensor.abs() < tiny)).any():
                    self.found.append(f"{func} output a subnormal float")
        return out


def test_training_step_never_leaves_the_normal_float_range():
    """At T = 0.01 the task logits are ~90 above the trainable ones for clustered
    prompts: exp and the gradient of the softmax reach far below e^-87."""
    data = make_task_world(seed=1)
    columns = torch.from_numpy(task_columns(data["prompts"], np.repeat(np.arange(4), 3), 4))
    prompts, world = torch.from_numpy(data["prompts"]), torch.from_numpy(data["world"][:256])
    trainable = torch.nn.Parameter(torch.from_numpy(
        np.random.RandomState(0).standard_normal((5, 32)).astype(np.float32)
    ))
    watch = _AbnormalFloats()
    with watch:
        prompts_lse = task_logsumexp(prompts, columns, 0.01)
        world_lse = task_logsumexp(world, columns, 0.01)
        loss = hftt_loss(trainable, task_embeddings=prompts, task_lse=prompts_lse,
                         world_embeddings=world, world_lse=world_lse,
                         temperature=0.01, gamma=1.0)
        loss.backward()
    assert watch.found == []
    assert (prompts_lse.max() - world_lse.min()) > 87, "the data must reach the regime"
    assert torch.isfinite(trainable.grad).all() and trainable.grad.abs().sum() > 0


def _spread_logits(seed=0, n=300, n_task=20, k=5):
    """Logits at T = 0.01 of clustered unit vectors: they spread over ~200 units."""
    data = make_task_world(seed=seed, n_classes=n_task)
    rng = np.random.default_rng(seed)
    trainable = rng.normal(size=(k, data["world"].shape[1])).astype(np.float32)
    trainable /= np.linalg.norm(trainable, axis=1, keepdims=True)
    head = HFTTHead(data["centres"], trainable, temperature=0.01)
    x = np.vstack([data["in_test"], data["out_test"], data["world"][:n]])
    return head, x


def test_head_scores_raise_no_underflow_and_are_unchanged():
    head, x = _spread_logits()
    logits = head.logits(x)
    assert (logits.max(axis=1, keepdims=True) - logits).max() > 104, "must reach the regime"
    with np.errstate(under="raise"):
        scores = head.log_odds(x)
    n_task = head.n_task_columns
    with np.errstate(under="ignore"):
        unfloored = [np.log(np.exp(part - part.max(axis=1, keepdims=True)).sum(axis=1))
                     + part.max(axis=1) for part in (logits[:, :n_task], logits[:, n_task:])]
    np.testing.assert_array_equal(scores, unfloored[0] - unfloored[1])


def test_logsumexp_rows_float64_and_far_terms():
    logits = np.array([[0.0, -1000.0, -2.0], [5.0, 5.0, -np.inf]])
    with np.errstate(under="raise"):
        result = logsumexp_rows(logits)
    np.testing.assert_allclose(result, [np.log1p(np.exp(-2.0)), 5 + np.log(2)], rtol=1e-15)
