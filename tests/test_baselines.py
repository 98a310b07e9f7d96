"""Tests of the QMIX and VDN baselines and of the utility read-out in marl_lsf/analysis.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from marl_lsf import LSFSAC, QMIX, VDN, utility_tables
from marl_lsf.envs import matrix_game_v0
from marl_lsf.save_util import ModelFileError

#: An additive game: the joint optimum (A, A) = 10 is also each agent's best action whatever the
#: other does, so both additive (VDN) and monotonic (QMIX) factorizations represent it exactly.
ADDITIVE_PAYOFF = [[10.0, 6.0], [6.0, 2.0]]
OBS = np.ones((2, 1), dtype=np.float32)
STATE = np.ones(1, dtype=np.float32)


def _game() -> matrix_game_v0.MatrixGameEnv:
    return matrix_game_v0.parallel_env(payoff=ADDITIVE_PAYOFF)


@pytest.fixture(scope="module", params=[QMIX, VDN], ids=["qmix", "vdn"])
def trained(request: pytest.FixtureRequest) -> QMIX:
    torch.set_num_threads(1)
    model = request.param("MlpPolicy", _game, seed=0, batch_size=16, learning_rate=2e-3)
    return model.learn(400)


def test_learns_additive_matrix_game(trained: QMIX) -> None:
    actions, _ = trained.predict(OBS, deterministic=True)
    assert tuple(actions) == (0, 0)
    tables = utility_tables(trained, OBS, state=STATE)
    assert tables.greedy_joint_action() == (0, 0)
    assert tables.joint[0, 0] == pytest.approx(10.0, abs=1.5)


def test_vdn_joint_value_is_the_sum_of_utilities() -> None:
    model = VDN("MlpPolicy", _game, seed=1)
    tables = utility_tables(model, OBS, state=STATE)
    q1, q2 = tables.utilities
    np.testing.assert_allclose(tables.joint, q1[:, None] + q2[None, :], rtol=1e-6, atol=1e-6)


def test_qmix_mixer_weights_are_non_negative() -> None:
    model = QMIX("MlpPolicy", _game, seed=2)
    w1, _, w2, _ = model.mixer.weights(torch.randn(256, model.spec.state_dim) * 10)
    assert w1.shape == (256, 2, model.mixer_embed_dim)
    assert (w1 >= 0).all() and (w2 >= 0).all()


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = QMIX("MlpPolicy", _game, seed=3, exploration_final_eps=0.1).learn(50)
    path = model.save(tmp_path / "qmix.zip")
    loaded = QMIX.load(path, env=_game)
    assert loaded.exploration_final_eps == 0.1 and loaded.mixer_kind == "qmix"
    obs = np.random.default_rng(0).normal(size=(8, 2, 1)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    np.testing.assert_array_equal(
        utility_tables(model, OBS, state=STATE).joint, utility_tables(loaded, OBS, state=STATE).joint
    )


def test_loading_with_the_wrong_class_fails_clearly(tmp_path: Path) -> None:
    path = QMIX("MlpPolicy", _game, seed=4).save(tmp_path / "qmix.zip")
    with pytest.raises(ModelFileError, match="'QMIX' model, not LSFSAC"):
        LSFSAC.load(path)
    with pytest.raises(ModelFileError, match="not VDN"):
        VDN.load(path)


def test_vdn_refuses_a_mixing_network() -> None:
    with pytest.raises(ValueError, match="mixer='qmix'"):
        VDN("MlpPolicy", _game, mixer="qmix")


def test_epsilon_schedule_decays() -> None:
    model = QMIX("MlpPolicy", _game, seed=5, exploration_fraction=0.5, exploration_final_eps=0.1)
    assert model.exploration_rate == 1.0
    model._current_progress_remaining = 0.75
    assert model.exploration_rate == pytest.approx(0.55)
    model.learn(100)
    assert model.exploration_rate == pytest.approx(0.1)
    greedy = model.predict(np.ones((500, 2, 1), dtype=np.float32), deterministic=True)[0]
    explored = model.predict(np.ones((500, 2, 1), dtype=np.float32), deterministic=False)[0]
    assert 0.0 < (explored != greedy).mean() < 0.2


def test_lsfsac_tables_read_the_critic_with_message_means() -> None:
    model = LSFSAC("MlpPolicy", matrix_game_v0.parallel_env, seed=6, mixer="vdn")
    tables = utility_tables(model, {"agent_0": np.ones(1), "agent_1": np.ones(1)}, state=STATE)
    q1, q2 = tables.utilities
    assert q1.shape == q2.shape == (3,) and tables.joint.shape == (3, 3)
    np.testing.assert_allclose(tables.joint, q1[:, None] + q2[None, :], rtol=1e-6, atol=1e-6)
    assert "| Q1 \\ Q2 |" in tables.markdown()
    np.testing.assert_array_equal(tables.joint, utility_tables(model, OBS, state=STATE).joint)


def test_target_networks_follow_polyak_updates_as_stable_baselines3_computes_them() -> None:
    from stable_baselines3.common.utils import polyak_update

    from marl_lsf.algorithms.utils import TargetNetworks

    torch.manual_seed(0)
    online, target, reference = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    reference.load_state_dict(target.state_dict())
    start = [p.clone() for p in target.parameters()]
    targets = TargetNetworks([(online, target)])
    for tau in (0.005, 0.3):
        targets.update(tau)
        polyak_update(online.parameters(), reference.parameters(), tau)
        for mine, theirs in zip(target.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(mine, theirs)
    assert not any(torch.equal(a, b) for a, b in zip(target.parameters(), start, strict=True))
    targets.update(1.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters(), strict=True))
    assert targets.tracks([(online, target)]) and not targets.tracks([(online, reference)])
    with pytest.raises(ValueError, match="online network's parameters"):
        TargetNetworks([(online, torch.nn.Linear(3, 5))])


def test_a_replaced_target_network_is_the_one_updated() -> None:
    import copy

    model = QMIX("MlpPolicy", _game, seed=0, batch_size=4, tau=1.0, target_update_interval=1)
    model.learn(16)
    assert model._n_updates > 0, "the targets were updated (and their parameter lists gathered) before"
    model.q_net_target = copy.deepcopy(model.q_net_target)
    with torch.no_grad():
        for param in model.q_net_target.parameters():
            param.zero_()
    model.train(1, 4)
    pairs = zip(model.q_net_target.parameters(), model.q_net.parameters(), strict=True)
    assert all(torch.equal(target, online) for target, online in pairs)
