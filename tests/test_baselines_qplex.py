"""Tests of the QPLEX baseline: its duplex dueling Q_tot, the IGM property, training, save/load, the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from marl_lsf import QMIX, QPLEX, utility_tables
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.cli import main
from marl_lsf.envs import matrix_game_v0
from marl_lsf.envs.matrix_game_v0 import DEFAULT_PAYOFF
from marl_lsf.nets import DuplexDuelingMixer
from marl_lsf.save_util import ModelFileError

OBS = np.ones((2, 1), dtype=np.float32)
STATE = np.ones(1, dtype=np.float32)
PAYOFF = torch.tensor(DEFAULT_PAYOFF)
#: Every joint action of the 3 x 3 game, row-major: [9, 2].
JOINT = torch.tensor(list(itertools.product(range(3), range(3))))
#: A 3-agent game with 3, 4 and 2 actions (padded to 4), for mixers of more than two agents.
SHAPE = (3, 4, 2)


def _three_agent_model(**kwargs: object) -> QPLEX:
    env = lambda: matrix_game_v0.parallel_env(payoff=np.zeros(SHAPE))  # noqa: E731
    return QPLEX("MlpPolicy", env, seed=0, **kwargs)


def _hand_q_tot(
    mixer: DuplexDuelingMixer, q: torch.Tensor, actions: torch.Tensor, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q_tot, lambda and w recomputed from the mixer's layers: sum_i V_i' + sum_i lambda_i A_i'."""
    w = mixer.hyper_w(state).abs() + 1e-10
    b = mixer.hyper_b(state)
    v = q.max(-1).values
    q_taken = q.gather(-1, actions[..., None])[..., 0]
    onehot = torch.nn.functional.one_hot(actions, q.shape[-1]).float().flatten(-2)
    lam = torch.zeros_like(v)
    for key, agent, action in zip(mixer.keys, mixer.agent_weights, mixer.action_weights, strict=True):
        lam += (
            (key(state).abs() + 1e-10)
            * torch.sigmoid(agent(state))
            * torch.sigmoid(action(torch.cat([state, onehot], -1)))
        )
    v_transformed = w * v + b  # V_i' = w_i V_i + b_i
    a_transformed = w * (q_taken - v)  # A_i' = w_i A_i
    return v_transformed.sum(-1) + (lam * a_transformed).sum(-1), lam, w


def test_q_tot_is_the_transformed_values_plus_the_lambda_weighted_advantages() -> None:
    model = _three_agent_model()
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(6, 3, 4, generator=gen)
    actions = torch.randint(0, 4, (6, 3), generator=gen)
    state = torch.randn(6, model.spec.state_dim, generator=gen)
    with torch.no_grad():
        expected, lam, _ = _hand_q_tot(model.mixer, q, actions, state)
        got = model.joint_value(q, actions, state)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(
            model.mixer.advantage_weights(state, torch.nn.functional.one_hot(actions, 4).float()), lam
        )
    # The target mixer is a separate copy: moving the online one leaves the target's values.
    with torch.no_grad():
        for p in model.mixer.parameters():
            p.add_(0.5)
        assert not torch.allclose(model.joint_value(q, actions, state), got)
        torch.testing.assert_close(model.joint_value(q, actions, state, target=True), got)


def test_lambda_is_positive_and_w_non_negative() -> None:
    mixer = _three_agent_model(attention_heads=3, attention_layers=3).mixer
    gen = torch.Generator().manual_seed(1)
    state = 5.0 * torch.randn(2000, mixer.hyper_w[0].in_features, generator=gen)
    actions = torch.nn.functional.one_hot(torch.randint(0, 4, (2000, 3), generator=gen), 4).float()
    with torch.no_grad():
        w, _ = mixer.transformation(state)
        lam = mixer.advantage_weights(state, actions)
    assert w.shape == lam.shape == (2000, 3)
    assert (w >= 0).all() and (w > 0).all()
    assert (lam > 0).all()


def test_igm_the_agents_greedy_actions_maximize_q_tot() -> None:
    model = _three_agent_model()
    gen = torch.Generator().manual_seed(2)
    grid = torch.tensor(list(itertools.product(*(range(n) for n in SHAPE))))  # [24, 3]
    avail = torch.arange(4) < torch.tensor(SHAPE)[:, None]  # [3, 4]: the padded actions are unavailable
    for _ in range(5):
        q = torch.randn(3, 4, generator=gen)
        state = torch.randn(1, generator=gen).expand(len(grid), -1)
        with torch.no_grad():
            q_tot = model.joint_value(q.expand(len(grid), -1, -1), grid, state, avail)
            w, b = model.mixer.transformation(state[0])
        greedy = q.masked_fill(~avail, -torch.inf).argmax(-1)
        at_greedy = (grid == greedy).all(-1)
        v_transformed = w * q.masked_fill(~avail, -torch.inf).max(-1).values + b
        # A_i' = 0 at the greedy joint action, so Q_tot = sum_i V_i' there ...
        torch.testing.assert_close(q_tot[at_greedy], v_transformed.sum()[None])
        # ... and every other joint action has some A_i' < 0 with lambda_i > 0: strictly lower.
        assert (q_tot[~at_greedy] < q_tot[at_greedy]).all()


def test_the_mixer_represents_the_non_monotonic_payoff_at_greedy_utilities() -> None:
    # Utilities greedy at A, Q_i = (1, 0, 0), held fixed; only the mixer learns the 9 payoffs. No
    # monotonic mixer can: it would need Q_tot(A, B) = -12 < Q_tot(B, B) = 0 although Q_1(A) > Q_1(B).
    # QPLEX's lambda scales the (negative) advantages of the joint action to any value below 8.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mixer = DuplexDuelingMixer(2, 3, 1)
    q = torch.tensor([1.0, 0.0, 0.0]).expand(9, 2, 3)
    q_taken = q.gather(-1, JOINT[..., None])[..., 0]
    q_max = torch.ones(9, 2)
    onehot = torch.nn.functional.one_hot(JOINT, 3).float()
    state = torch.ones(9, 1)
    target = PAYOFF[JOINT[:, 0], JOINT[:, 1]].float()
    optimizer = torch.optim.Adam(mixer.parameters(), lr=1e-2)
    for _ in range(300):
        loss = (mixer(q_taken, q_max, onehot, state) - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        q_tot = mixer(q_taken, q_max, onehot, state)
    assert (q_tot - target).abs().max() < 0.5
    assert q_tot.argmax() == 0  # (A, A), the utilities' greedy joint action


def test_learns_saves_loads_and_refuses_a_qmix_file(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    kwargs = {"attention_heads": 2, "attention_layers": 1, "hypernet_embed_dim": 16}
    model = QPLEX(
        "MlpPolicy",
        matrix_game_v0.parallel_env,
        seed=3,
        n_envs=4,
        vectorization="sync",
        batch_size=16,
        **kwargs,
    )
    model.learn(200)
    logged = model.logger.name_to_value
    assert model.num_timesteps == 200 and logged["train/n_updates"] > 0
    assert np.isfinite(logged["train/td_loss"])
    tables = utility_tables(model, OBS, state=STATE)
    assert np.unravel_index(tables.joint.argmax(), (3, 3)) == tables.greedy_joint_action()

    loaded = QPLEX.load(model.save(tmp_path / "qplex.zip"), env=matrix_game_v0.parallel_env)
    assert all(getattr(loaded, key) == value for key, value in kwargs.items())
    assert loaded.mixer_kind == "qplex"
    obs = np.random.default_rng(0).normal(size=(16, 2, 1)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    for name in QPLEX._saved_modules:
        for key, tensor in getattr(model, name).state_dict().items():
            torch.testing.assert_close(getattr(loaded, name).state_dict()[key], tensor, msg=f"{name}.{key}")
    np.testing.assert_allclose(utility_tables(loaded, OBS, state=STATE).joint, tables.joint)

    qmix = QMIX("MlpPolicy", matrix_game_v0.parallel_env, seed=4).save(tmp_path / "qmix.zip")
    with pytest.raises(ModelFileError, match="holds a 'QMIX' model, not QPLEX; use QMIX.load") as error:
        QPLEX.load(qmix)
    assert "\n" not in str(error.value)
    with pytest.raises(ModelFileError, match="'QPLEX' model, not QMIX"):
        QMIX.load(tmp_path / "qplex.zip")


def test_cli_name_trains_a_qplex_run(tmp_path: Path) -> None:
    assert ALGORITHMS["qplex"] is QPLEX
    out = tmp_path / "run"
    argv = ["train", "--env", "matrix_game", "--algo", "qplex", "--timesteps", "16", "--out", str(out)]
    argv += ["--device", "cpu", "--quiet", "--algo-kwargs", "batch_size=4", "attention_heads=2"]
    assert main(argv) == 0
    assert json.loads((out / "run.json").read_text())["algo"] == "qplex"
    model = QPLEX.load(out / "model.zip")
    assert model.num_timesteps == 16 and model.attention_heads == 2


def test_bad_arguments_are_refused_by_name() -> None:
    env = matrix_game_v0.parallel_env
    with pytest.raises(ValueError, match="mixer='qplex'"):
        QPLEX("MlpPolicy", env, mixer="qmix")
    with pytest.raises(ValueError, match="attention_heads must be a positive integer"):
        QPLEX("MlpPolicy", env, attention_heads=0)
    with pytest.raises(ValueError, match="attention_layers must be 1, 2 or 3"):
        QPLEX("MlpPolicy", env, attention_layers=4)
    with pytest.raises(ValueError, match="mixer must be 'qmix' or 'vdn'"):
        QMIX("MlpPolicy", env, mixer="qplex")
    model = QPLEX("MlpPolicy", env)
    assert (model.attention_heads, model.attention_layers, model.attention_embed_dim) == (4, 2, 64)
    assert model.hypernet_embed_dim == 64 and model.double_q
