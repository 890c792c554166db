from __future__ import annotations

import numpy as np
import pytest
import torch
from _synthetic import make_task_world

from skhftt.space import objective, training
from skhftt.space.head import HFTTHead
from skhftt.space.task import task_columns
from skhftt.space.training import train_trainable_columns


def _columns():
    data = make_task_world(seed=1)
    return data, task_columns(data["prompts"], np.repeat(np.arange(4), 3), 4)


def _train(seed, max_iter=2, **overrides):
    data, columns = _columns()
    params = dict(
        n_embeddings=5, temperature=0.01, gamma=1.0, task_weight=0.5, max_iter=max_iter,
        batch_size=64, learning_rate=1.0, momentum=0.9, device=torch.device("cpu"),
        random_state=np.random.RandomState(seed),
    )
    params.update(overrides)
    return train_trainable_columns(data["prompts"], data["world"], columns, **params)


def test_same_seed_gives_identical_columns():
    first, second = _train(0), _train(0)
    np.testing.assert_array_equal(first.trainable_columns, second.trainable_columns)
    assert first.loss_curve == second.loss_curve


def test_different_seeds_give_different_columns():
    assert not np.allclose(_train(0).trainable_columns, _train(1).trainable_columns)


def test_columns_are_unit_float32_and_history_is_recorded():
    result = _train(0, max_iter=3)
    assert result.trainable_columns.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.trainable_columns, axis=1), 1, rtol=1e-5)
    assert [record["epoch"] for record in result.history] == [1, 2, 3]
    assert all(record["n_batches"] == 10 for record in result.history)  # ceil(600 / 64)
    assert len(result.loss_curve) == 3


def test_loss_decreases_over_epochs():
    curve = _train(0, max_iter=4, learning_rate=0.5).loss_curve
    assert curve[-1] < curve[0]


def test_progress_output_when_verbose(capsys):
    _train(0, max_iter=1, verbose=2)
    assert "epoch 1/1: loss=" in capsys.readouterr().out


def test_cosine_schedule_anneals_once_per_epoch():
    cosine = _train(0, max_iter=3, learning_rate=0.5)
    constant = _train(0, max_iter=3, learning_rate=0.5, learning_rate_schedule="constant")
    # CosineAnnealingLR(T_max=3): lr * (1 + cos(pi * e / 3)) / 2 for e = 0, 1, 2.
    rates = [record["learning_rate"] for record in cosine.history]
    np.testing.assert_allclose(rates, [0.5, 0.375, 0.125])
    assert [record["learning_rate"] for record in constant.history] == [0.5] * 3
    assert cosine.loss_curve[0] == constant.loss_curve[0]
    assert not np.allclose(cosine.trainable_columns, constant.trainable_columns)


def test_schedule_has_no_effect_at_one_epoch():
    cosine = _train(0, max_iter=1)
    constant = _train(0, max_iter=1, learning_rate_schedule="constant")
    np.testing.assert_array_equal(cosine.trainable_columns, constant.trainable_columns)
    assert cosine.history[0]["learning_rate"] == constant.history[0]["learning_rate"] == 1.0


def test_unknown_schedule_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"learning_rate_schedule.*'linear'"):
        _train(0, learning_rate_schedule="linear")


def _autograd_hftt_loss(trainable, *, task_embeddings, task_lse, world_embeddings, world_lse,
                        temperature, gamma, task_weight):
    """The loss with autograd's own logsumexp / logaddexp / softmax and backward."""
    columns = trainable / trainable.norm(dim=1, keepdim=True)

    def log_p_in_out(lse, logits):
        trainable_lse = torch.logsumexp(logits, dim=1)
        total_lse = torch.logaddexp(lse, trainable_lse)
        return lse - total_lse, trainable_lse - total_lse

    task_in, _ = log_p_in_out(task_lse, task_embeddings @ columns.T / temperature)
    world_in, world_out = log_p_in_out(world_lse, world_embeddings @ columns.T / temperature)
    beta = torch.softmax(gamma * world_in.detach(), dim=0)
    return -task_weight * task_in.mean() - (1 - task_weight) * (beta * world_out).sum()


def _scores(data, columns, result):
    x = np.vstack([data["in_test"], data["out_test"], data["world"]])
    return HFTTHead(columns, result.trainable_columns, 0.01).log_odds(x)


def test_floor_of_the_exponentials_leaves_fit_and_scores_unchanged(monkeypatch):
    """Raising exp's arguments to e^-79 (float32) changes nothing, bit for bit."""
    data, columns = _columns()
    floored = _train(0, max_iter=2)
    monkeypatch.setattr(objective, "_log_floor", lambda dtype: -np.inf)
    unfloored = _train(0, max_iter=2)
    np.testing.assert_array_equal(floored.trainable_columns, unfloored.trainable_columns)
    assert floored.loss_curve == unfloored.loss_curve
    np.testing.assert_array_equal(_scores(data, columns, floored),
                                  _scores(data, columns, unfloored))


def test_fit_matches_autograd_formulation(monkeypatch):
    """The same fit with autograd's own backward; they differ by float32 rounding."""
    data, columns = _columns()
    ours = _train(0, max_iter=2)
    monkeypatch.setattr(training, "hftt_loss", _autograd_hftt_loss)
    plain = _train(0, max_iter=2)
    np.testing.assert_allclose(ours.trainable_columns, plain.trainable_columns,
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours.loss_curve, plain.loss_curve, rtol=1e-6)
    np.testing.assert_allclose(_scores(data, columns, ours), _scores(data, columns, plain),
                               rtol=1e-5, atol=1e-3)


def test_detector_passes_its_schedule_to_training():
    from skhftt import HFTTDetector
    from skhftt._sklearn_compat import InvalidParameterError

    data = make_task_world(seed=1)
    params = dict(encoder="precomputed", n_embeddings=3, max_iter=3, random_state=0)
    cosine = HFTTDetector(**params).fit(data["world"], data["prompts"])
    constant = HFTTDetector(learning_rate="constant", **params).fit(data["world"], data["prompts"])
    np.testing.assert_allclose([r["learning_rate"] for r in cosine.history_], [1.0, 0.75, 0.25])
    assert [r["learning_rate"] for r in constant.history_] == [1.0] * 3
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        HFTTDetector(learning_rate="linear", **params).fit(data["world"], data["prompts"])
