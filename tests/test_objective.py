from __future__ import annotations

import numpy as np
import pytest
import torch

from skhftt.space.head import HFTTHead
from skhftt.space.objective import focal_weights, hftt_loss, log_p_in_out, task_logsumexp


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
