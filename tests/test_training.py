from __future__ import annotations

import numpy as np
import torch
from _synthetic import make_task_world

from skhftt.space.task import task_columns
from skhftt.space.training import train_trainable_columns


def _train(seed, max_iter=2, **overrides):
    data = make_task_world(seed=1)
    owners = np.repeat(np.arange(4), 3)
    params = dict(
        n_embeddings=5, temperature=0.01, gamma=1.0, task_weight=0.5, max_iter=max_iter,
        batch_size=64, learning_rate=1.0, momentum=0.9, device=torch.device("cpu"),
        random_state=np.random.RandomState(seed),
    )
    params.update(overrides)
    return train_trainable_columns(
        data["prompts"], data["world"], task_columns(data["prompts"], owners, 4), **params
    )


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
