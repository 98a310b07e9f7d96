"""Tests of the Weighted QMIX (OW-QMIX, CW-QMIX) and QTRAN-base baselines."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from marl_lsf import CWQMIX, OWQMIX, QMIX, QTRAN, WQMIX, MultiAgentAlgorithm, utility_tables
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.algorithms.qtran import qtran_nopt_loss, qtran_opt_loss
from marl_lsf.algorithms.wqmix import central_weights, optimistic_weights
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.envs import matrix_game_v0
from marl_lsf.envs.matrix_game_v0 import DEFAULT_PAYOFF
from marl_lsf.save_util import ModelFileError

OBS = np.ones((2, 1), dtype=np.float32)
STATE = np.ones(1, dtype=np.float32)
PAYOFF = torch.tensor(DEFAULT_PAYOFF)
#: Every joint action of the 3 x 3 game, row-major: [9, 2].
JOINT = torch.tensor(list(itertools.product(range(3), range(3))))


def test_optimistic_weights_are_one_exactly_where_q_tot_underestimates() -> None:
    q_tot = torch.tensor([0.0, 1.0, 2.0, -3.0, 5.0])
    y = torch.tensor([1.0, 1.0, 1.0, -2.0, 4.0])
    expected = torch.tensor([1.0, 0.3, 0.3, 1.0, 0.3])
    torch.testing.assert_close(optimistic_weights(q_tot, y, 0.3), expected)


def test_central_weights_are_one_exactly_at_the_greedy_action_or_above_its_central_value() -> None:
    is_greedy = torch.tensor([True, True, False, False, False])
    y = torch.tensor([-5.0, 5.0, 2.0, 1.0, 0.5])
    greedy_value = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    expected = torch.tensor([1.0, 1.0, 1.0, 0.75, 0.75])  # y == Q-hat*(greedy) is not above it
    torch.testing.assert_close(central_weights(is_greedy, y, greedy_value, 0.75), expected)


def _one_step_batch(actions: torch.Tensor, reward: float) -> EpisodeBatch:
    """A batch of one-step matrix games, one per row of ``actions [B, 2]``, all paid ``reward``."""
    b = actions.shape[0]
    return EpisodeBatch(
        obs=torch.ones(b, 2, 2, 1),
        state=torch.ones(b, 2, 1),
        avail=torch.ones(b, 2, 2, 3, dtype=torch.bool),
        alive=torch.ones(b, 2, 2, dtype=torch.bool),
        actions=actions[:, None],
        reward=torch.full((b, 1), reward),
        terminated=torch.ones(b, 1),
        filled=torch.ones(b, 1, dtype=torch.bool),
    )


def _greedy(model: QMIX) -> torch.Tensor:
    return torch.as_tensor(model.predict(OBS, deterministic=True)[0])


def test_cw_training_weighs_greedy_actions_and_better_targets_fully_and_the_rest_by_alpha() -> None:
    model = CWQMIX("MlpPolicy", matrix_game_v0.parallel_env, seed=0, alpha=0.2)
    assert model._train_step(_one_step_batch(_greedy(model).expand(4, 2), -1e3))["weight_mean"] == 1.0
    assert model._train_step(_one_step_batch(JOINT, 1e3))["weight_mean"] == 1.0  # y > Q-hat*(greedy)
    greedy = _greedy(model)  # after the updates above
    others = JOINT[(greedy != JOINT).any(-1)]
    assert model._train_step(_one_step_batch(others, -1e3))["weight_mean"] == pytest.approx(0.2)


def test_ow_training_weighs_underestimated_actions_fully_and_the_rest_by_alpha() -> None:
    model = OWQMIX("MlpPolicy", matrix_game_v0.parallel_env, seed=1)
    assert model.alpha == 0.5
    assert model._train_step(_one_step_batch(JOINT, 1e3))["weight_mean"] == 1.0
    assert model._train_step(_one_step_batch(JOINT, -1e3))["weight_mean"] == pytest.approx(0.5)


def _qtran_losses(utility: torch.Tensor, value: float) -> tuple[float, float]:
    """L_opt and L_nopt of two agents sharing ``utility [3]``, with Q_jt the payoff and V_jt ``value``."""
    transformed = utility[JOINT].sum(-1)  # Q'_jt of every joint action
    joint = PAYOFF[JOINT[:, 0], JOINT[:, 1]]
    greedy = utility.argmax()
    filled = torch.ones(1)
    opt = qtran_opt_loss(utility.max()[None] * 2, PAYOFF[greedy, greedy][None], torch.tensor([value]), filled)
    nopt = qtran_nopt_loss(transformed, joint, torch.full((9,), value), torch.ones(9))
    return opt.item(), nopt.item()


def test_qtran_losses_vanish_on_a_payoff_the_transformed_value_represents() -> None:
    # Q'_jt = Q_1 + Q_2 with Q_i = (4, 0, 0): equal to the payoff at the optimum (A, A) and above
    # it at every other joint action, so with V_jt = 0 both conditions of QTRAN's Theorem 1 hold.
    assert _qtran_losses(torch.tensor([4.0, 0.0, 0.0]), 0.0) == (0.0, 0.0)


def test_qtran_losses_are_positive_where_the_conditions_fail() -> None:
    opt, nopt = _qtran_losses(torch.tensor([4.0, 0.0, 0.0]), 1.0)  # Q' - Q + V = 1 at the optimum
    assert opt == pytest.approx(1.0) and nopt == 0.0
    # Utilities greedy at B: Q'_jt(A, A) = -8 is far below the payoff 8, and nothing lifts it.
    opt, nopt = _qtran_losses(torch.tensor([-4.0, 0.0, 0.0]), 0.0)
    assert opt == 0.0 and nopt > 0.0


@pytest.mark.parametrize("cls", [OWQMIX, CWQMIX, QTRAN])
def test_learns_the_matrix_game_without_error(cls: type[MultiAgentAlgorithm]) -> None:
    torch.set_num_threads(1)
    model = cls(
        "MlpPolicy", matrix_game_v0.parallel_env, seed=2, n_envs=4, vectorization="sync", batch_size=16
    )
    model.learn(400)
    logged = model.logger.name_to_value
    assert model.num_timesteps == 400 and logged["train/n_updates"] > 0
    assert np.isfinite(logged["train/td_loss"])
    tables = utility_tables(model, OBS, state=STATE)
    assert tables.joint.shape == (3, 3) and np.isfinite(tables.joint).all()


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (OWQMIX, {"alpha": 0.1}),
        (CWQMIX, {"central_mixing_embed_dim": 32}),
        (QTRAN, {"nopt_loss_coef": 0.5, "joint_embed_dim": 16}),
    ],
)
def test_save_load_round_trip(cls: type[MultiAgentAlgorithm], kwargs: dict, tmp_path: Path) -> None:
    model = cls("MlpPolicy", matrix_game_v0.parallel_env, seed=3, batch_size=8, **kwargs).learn(60)
    loaded = cls.load(model.save(tmp_path / "model.zip"), env=matrix_game_v0.parallel_env)
    assert all(getattr(loaded, key) == value for key, value in kwargs.items())
    obs = np.random.default_rng(0).normal(size=(16, 2, 1)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    for name in cls._saved_modules:
        for key, tensor in getattr(model, name).state_dict().items():
            torch.testing.assert_close(getattr(loaded, name).state_dict()[key], tensor, msg=f"{name}.{key}")


def test_another_algorithms_file_is_refused(tmp_path: Path) -> None:
    ow = OWQMIX("MlpPolicy", matrix_game_v0.parallel_env, seed=4).save(tmp_path / "ow.zip")
    with pytest.raises(ModelFileError, match="holds a 'OWQMIX' model, not CWQMIX; use OWQMIX.load"):
        CWQMIX.load(ow)
    with pytest.raises(ModelFileError, match="'OWQMIX' model, not QMIX"):
        QMIX.load(ow)
    qmix = QMIX("MlpPolicy", matrix_game_v0.parallel_env, seed=4).save(tmp_path / "qmix.zip")
    with pytest.raises(ModelFileError, match="'QMIX' model, not QTRAN"):
        QTRAN.load(qmix)
    with pytest.raises(ModelFileError, match="'QMIX' model, not WQMIX"):
        WQMIX.load(qmix)


def test_bad_arguments_are_refused_by_name() -> None:
    env = matrix_game_v0.parallel_env
    with pytest.raises(ValueError, match="weighting must be one of"):
        WQMIX("MlpPolicy", env, weighting="xw")
    with pytest.raises(ValueError, match="OWQMIX uses weighting='ow'"):
        OWQMIX("MlpPolicy", env, weighting="cw")
    with pytest.raises(ValueError, match="alpha must be in"):
        CWQMIX("MlpPolicy", env, alpha=0.0)
    with pytest.raises(ValueError, match="double_q must be True"):
        CWQMIX("MlpPolicy", env, double_q=False)
    with pytest.raises(ValueError, match="mixer='vdn'"):
        QTRAN("MlpPolicy", env, mixer="qmix")
    with pytest.raises(ValueError, match="nopt_loss_coef must be non-negative"):
        QTRAN("MlpPolicy", env, nopt_loss_coef=-1.0)


def test_registered_names_and_paper_defaults() -> None:
    assert (
        ALGORITHMS["ow_qmix"] is OWQMIX and ALGORITHMS["cw_qmix"] is CWQMIX and ALGORITHMS["qtran"] is QTRAN
    )
    env = matrix_game_v0.parallel_env
    assert CWQMIX("MlpPolicy", env).alpha == 0.75 and WQMIX("MlpPolicy", env).weighting == "ow"
    qtran = QTRAN("MlpPolicy", env)
    assert (qtran.opt_loss_coef, qtran.nopt_loss_coef) == (1.0, 0.1)
