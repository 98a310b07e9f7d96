"""Tests of the DOP baseline (Wang et al., ICLR 2021): its linear critic, targets, policy gradient and API."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from marl_lsf import DOP, QMIX, utility_tables
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.algorithms.dop import decomposed_policy_loss, epsilon_mixed_log_probs
from marl_lsf.algorithms.targets import tree_backup_returns
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.cli import load_model, main
from marl_lsf.envs import matrix_game_v0
from marl_lsf.save_util import ModelFileError

OBS = np.ones((2, 1), dtype=np.float32)
STATE = np.ones(1, dtype=np.float32)
#: Small networks so that every test is quick on a busy CPU.
SMALL = {"hidden_dim": 8, "critic_hidden_dim": 8, "mixer_embed_dim": 4}


def _model(**kwargs: object) -> DOP:
    torch.set_num_threads(1)
    return DOP("MlpPolicy", matrix_game_v0.parallel_env, **{"seed": 0, **SMALL, **kwargs})


def _batch(seed: int = 0) -> EpisodeBatch:
    """Two hand-made episodes of a 2-agent, 3-action team with a 2-dim state: one of 3 steps (truncated,
    agent 1 dead at the last step with only its no-op available), one of 1 step (terminated) padded to 3.
    """
    g = torch.Generator().manual_seed(seed)
    avail = torch.ones(2, 4, 2, 3, dtype=torch.bool)
    avail[0, 1, 0, 2] = False  # agent 0 may not take action 2 at step 1
    alive = torch.ones(2, 4, 2, dtype=torch.bool)
    alive[0, 3, 1] = False
    avail[0, 3, 1] = torch.tensor([True, False, False])
    actions = torch.tensor([[[0, 2], [1, 1], [2, 0]], [[1, 0], [0, 0], [0, 0]]])
    return EpisodeBatch(
        obs=torch.randn(2, 4, 2, 1, generator=g),
        state=torch.randn(2, 4, 1, generator=g),
        avail=avail,
        alive=alive,
        actions=actions,
        reward=torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.0, 0.0]]),
        terminated=torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
        filled=torch.tensor([[True, True, True], [True, False, False]]),
    )


def test_q_tot_is_exactly_the_k_weighted_sum_of_the_individual_critics_plus_b() -> None:
    model = _model(seed=1)
    batch = _batch()
    mixer = model.mixer
    state = batch.state[:, :-1] * 10.0  # far from 0, where every weight is exercised
    batch = batch._replace(state=torch.cat([state, batch.state[:, -1:]], dim=1))
    with torch.no_grad():
        q_tot = model.joint_q(batch)  # [B, T]
        q = model.individual_q(batch)[:, :-1]  # [B, T, N, A]
        for b_, t in batch.filled.nonzero().tolist():  # the transitions (padding is left at 0)
            s = batch.state[b_, t]
            w1 = (mixer.hyper_w1.weight @ s + mixer.hyper_w1.bias).abs().reshape(2, 4)
            w2 = (mixer.hyper_w2.weight @ s + mixer.hyper_w2.bias).abs()
            k = w1 @ w2
            b1 = mixer.hyper_b1.weight @ s + mixer.hyper_b1.bias
            bias = b1 @ w2 + mixer.value(s)[0]
            assert (k >= 0).all()
            utilities = [q[b_, t, i, batch.actions[b_, t, i]] * batch.alive[b_, t, i] for i in range(2)]
            expected = k[0] * utilities[0] + k[1] * utilities[1] + bias
            torch.testing.assert_close(q_tot[b_, t], expected)
        k, _ = mixer.weights(torch.randn(512, 1) * 100.0)
        assert (k >= 0).all()


def test_the_critic_reads_state_observation_and_id_with_the_state_projected_once_per_step() -> None:
    model = _model(seed=2, critic_hidden_dim=16)
    batch = _batch()
    ids = torch.eye(2).expand(2, 4, 2, 2)
    concatenated = torch.cat([batch.state.unsqueeze(-2).expand(2, 4, 2, 1), batch.obs, ids], dim=-1)
    expected, _ = model.critic(concatenated)  # the slow way: the whole input through every agent's copy
    q = model.critic_q(batch.obs, batch.state)
    torch.testing.assert_close(q, expected)
    weights = torch.randn_like(q)
    expected_grads = torch.autograd.grad((expected * weights).sum(), list(model.critic.parameters()))
    grads = torch.autograd.grad((q * weights).sum(), list(model.critic.parameters()))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
    # On a batch, the target copy (still equal to the critic) on the real steps, zeros on the padding.
    real = torch.arange(4)[None, :] <= batch.filled.sum(1, keepdim=True)
    q_target = model.individual_q(batch, target=True)
    torch.testing.assert_close(q_target[real], expected.detach()[real])
    assert (q_target[~real] == 0).all()
    with pytest.raises(TypeError, match="feed-forward torso"):
        DOP("RnnPolicy", matrix_game_v0.parallel_env, seed=0, **SMALL).actor.forward_shared(
            batch.state, batch.obs
        )


def test_the_policy_loss_gradient_on_the_logits_is_k_times_the_advantage_times_the_score() -> None:
    # One step, two agents; with pi = softmax(logits), grad log pi(a) = onehot(a) - pi.
    logits = torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.0, -0.5]], requires_grad=True)
    q = torch.tensor([[1.0, 4.0, -2.0], [0.5, 0.0, 3.0]])
    k = torch.tensor([0.7, 2.0])
    actions = torch.tensor([1, 2])
    loss = decomposed_policy_loss(torch.log_softmax(logits, -1), q, k, actions, torch.ones(2), 2.0)
    (grad,) = torch.autograd.grad(loss, logits)
    pi = torch.softmax(logits, -1).detach()
    advantage = q[[0, 1], actions] - (pi * q).sum(-1)  # Q_i(a_i) - sum_a pi_i(a) Q_i(a)
    score = torch.nn.functional.one_hot(actions, 3) - pi
    torch.testing.assert_close(grad, -(k * advantage)[:, None] * score / 2.0)


def test_the_actor_gradient_equals_the_decomposed_formula() -> None:
    # grad = E_t[sum_i k_i(s) grad log pi_i(a_i | tau_i) (Q_i(tau, a_i) - sum_a pi_i(a) Q_i(tau, a))],
    # with pi = (1 - eps) softmax + eps U over the available actions, written out step by step.
    model = _model(seed=2)
    batch, eps = _batch(seed=2), 0.3
    params = list(model.actor.parameters())
    loss, _ = model.actor_loss(batch, eps)
    grads = torch.autograd.grad(loss, params)

    logits, _ = model.actor(model.actor_inputs(batch.obs, batch.actions))
    with torch.no_grad():
        q = model.individual_q(batch)
        k, _ = model.mixer.weights(batch.state)
    total, steps = torch.zeros(()), 0
    for b_, t in itertools.product(range(2), range(3)):
        if not batch.filled[b_, t]:
            continue
        steps += 1
        for i in range(2):
            if not batch.alive[b_, t, i]:
                continue
            mask = batch.avail[b_, t, i]
            soft = torch.softmax(logits[b_, t, i].masked_fill(~mask, -torch.inf), -1)
            pi = (1 - eps) * soft + eps * mask.float() / mask.sum()
            a = batch.actions[b_, t, i]
            advantage = q[b_, t, i, a] - (pi.detach() * q[b_, t, i]).sum()
            total = total + k[b_, t, i] * advantage * torch.log(pi[a])
    expected = torch.autograd.grad(-total / steps, params)
    assert steps == 4
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_tree_backup_targets_on_hand_numbers() -> None:
    # Episode 1: 3 steps, terminated at the end. Episode 2: 1 step, padding after it must not leak.
    reward = torch.tensor([[1.0, 2.0, 3.0], [1.0, 99.0, 99.0]])
    terminated = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    filled = torch.tensor([[True, True, True], [True, False, False]])
    q_taken = torch.tensor([[4.0, 5.0, 6.0], [2.0, 50.0, 50.0]])
    expected_next = torch.tensor([[10.0, 20.0, 30.0], [7.0, 7.0, 7.0]])
    trace = torch.tensor([[0.5, 0.25, 0.1], [1.0, 1.0, 1.0]])

    def targets(n: int) -> torch.Tensor:
        return tree_backup_returns(reward, terminated, filled, q_taken, expected_next, trace, 0.5, 0.8, n)

    # delta = r + gamma (1 - d) E_pi Q' - Q = (2, 7, -3) and (-1); gamma lambda = 0.4.
    # y_0 = 4 + 2 + 0.4 * 0.25 * 7 + 0.16 * 0.25 * 0.1 * (-3); y_1 = 5 + 7 + 0.4 * 0.1 * (-3); y_2 = 6 - 3.
    torch.testing.assert_close(targets(5), torch.tensor([[6.688, 11.88, 3.0], [1.0, 0.0, 0.0]]))
    torch.testing.assert_close(targets(2), torch.tensor([[6.7, 11.88, 3.0], [1.0, 0.0, 0.0]]))
    # One step: expected SARSA, r + gamma (1 - d) E_pi Q'.
    torch.testing.assert_close(targets(1), torch.tensor([[6.0, 12.0, 3.0], [1.0, 0.0, 0.0]]))


def _joint_expectation(model: DOP, batch: EpisodeBatch, pi: torch.Tensor, b_: int, t: int) -> torch.Tensor:
    """E_pi[Q_tot^-(s_t, .)] by enumerating every joint action (what the linear mixer avoids)."""
    q = model.individual_q(batch, target=True)[b_, t]
    total = torch.zeros(())
    for joint in itertools.product(range(3), range(3)):
        utilities = torch.stack([q[i, a] * batch.alive[b_, t, i] for i, a in enumerate(joint)])
        prob = torch.prod(torch.stack([pi[b_, t, i, a] for i, a in enumerate(joint)]))
        total = total + prob * model.mixer_target(utilities, batch.state[b_, t])
    return total


def test_the_critics_targets_are_the_tree_backup_and_td_lambda_of_the_target_critic() -> None:
    model = _model(seed=3, gamma=0.9, tree_backup_lambda=0.5, tree_backup_steps=3, td_lambda=0.0)
    batch = _batch(seed=3)
    with torch.no_grad():
        pi, _ = model.policy_distribution(batch, 0.2)
        y_tb = model.tree_backup_targets(batch, pi)
        y_on = model.on_policy_targets(batch, pi)
        q_target = model.individual_q(batch, target=True)

        def q_tot(b_: int, t: int) -> torch.Tensor:
            taken = q_target[b_, t].gather(-1, batch.actions[b_, t, :, None]).squeeze(-1)
            return model.mixer_target(taken * batch.alive[b_, t], batch.state[b_, t])

        def trace(b_: int, t: int) -> torch.Tensor:
            probs = pi[b_, t].gather(-1, batch.actions[b_, t, :, None]).squeeze(-1)
            return torch.where(batch.alive[b_, t], probs, 1.0).prod()

        r = batch.reward
        # Episode 0 (3 steps, truncated: the last step bootstraps from E_pi Q_tot^-(s_3)).
        delta = [
            r[0, t] + 0.9 * _joint_expectation(model, batch, pi, 0, t + 1) - q_tot(0, t) for t in range(3)
        ]
        gl = 0.9 * 0.5
        expected_tb = [
            q_tot(0, 0)
            + delta[0]
            + gl * trace(0, 1) * delta[1]
            + gl**2 * trace(0, 1) * trace(0, 2) * delta[2],
            q_tot(0, 1) + delta[1] + gl * trace(0, 2) * delta[2],
            q_tot(0, 2) + delta[2],
        ]
        torch.testing.assert_close(y_tb[0], torch.stack(expected_tb))
        # Episode 1 (1 step, terminated): y = r.
        torch.testing.assert_close(y_tb[1], torch.tensor([3.0, 0.0, 0.0]))
        # On-policy TD(0): r_t + gamma Q_tot^-(s_{t+1}, a_{t+1}), E_pi Q_tot^-(s_3) after the last action.
        expected_on = [
            r[0, 0] + 0.9 * q_tot(0, 1),
            r[0, 1] + 0.9 * q_tot(0, 2),
            r[0, 2] + 0.9 * _joint_expectation(model, batch, pi, 0, 3),
        ]
        torch.testing.assert_close(y_on[0], torch.stack(expected_on))
        torch.testing.assert_close(y_on[1], torch.tensor([3.0, 0.0, 0.0]))


def test_epsilon_mixed_probabilities_are_a_distribution_over_the_available_actions() -> None:
    log_pi = torch.log_softmax(torch.tensor([[5.0, 0.0, -3.0, 1.0]]), -1)
    avail = torch.tensor([[True, True, False, True]])
    masked = torch.where(avail, torch.log_softmax(log_pi.masked_fill(~avail, -torch.inf), -1), -1e9)
    assert torch.equal(epsilon_mixed_log_probs(masked, avail, 0.0), masked)
    probs = epsilon_mixed_log_probs(masked, avail, 0.4).exp()
    expected = 0.6 * masked.exp() + 0.4 * avail.float() / 3
    torch.testing.assert_close(probs, expected)
    assert probs[0, 2] == 0.0
    torch.testing.assert_close(epsilon_mixed_log_probs(masked, avail, 1.0).exp(), avail.float() / 3)


def test_masked_actions_are_never_chosen() -> None:
    model = _model(seed=4)
    model.policy.exploration_rate.fill_(0.5)
    with torch.no_grad():
        model.actor.head.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))  # the actor prefers action C
    obs = np.random.default_rng(0).normal(size=(500, 2, 1)).astype(np.float32)
    masks = np.ones((500, 2, 3), dtype=bool)
    masks[:, 0, 2] = False  # agent 0 may not take C
    masks[:, 1, :2] = False  # agent 1 may only take C
    for deterministic in (False, True):
        actions, _ = model.predict(obs, deterministic=deterministic, action_masks=masks)
        assert (actions[:, 0] != 2).all() and (actions[:, 1] == 2).all()
    sampled, _ = model.predict(obs, action_masks=masks)
    assert set(np.unique(sampled[:, 0])) == {0, 1}  # epsilon explores the available actions


def test_trains_saves_loads_and_refuses_other_algorithms_files(tmp_path: Path) -> None:
    model = _model(
        seed=5, batch_size=4, on_policy_batch_size=4, learning_starts=40, n_envs=4, vectorization="sync"
    )
    model.learn(120)
    logged = model.logger.name_to_value
    assert model.num_timesteps == 120 and logged["train/n_updates"] > 0
    for key in ("critic_loss", "tb_loss", "on_policy_loss", "actor_loss", "entropy"):
        assert np.isfinite(logged[f"train/{key}"]), key
    tables = utility_tables(model, OBS, state=STATE)
    assert tables.joint.shape == (3, 3) and np.isfinite(tables.joint).all()

    loaded = DOP.load(model.save(tmp_path / "dop.zip"), env=matrix_game_v0.parallel_env)
    assert (loaded.critic_hidden_dim, loaded.on_policy_batch_size, loaded.td_lambda) == (8, 4, 0.8)
    obs = np.random.default_rng(0).normal(size=(16, 2, 1)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    for name in DOP._saved_modules:
        for key, tensor in getattr(model, name).state_dict().items():
            torch.testing.assert_close(getattr(loaded, name).state_dict()[key], tensor, msg=f"{name}.{key}")
    np.testing.assert_array_equal(tables.joint, utility_tables(loaded, OBS, state=STATE).joint)

    qmix = QMIX("MlpPolicy", matrix_game_v0.parallel_env, seed=5, hidden_dim=8).save(tmp_path / "qmix.zip")
    with pytest.raises(ModelFileError, match="holds a 'QMIX' model, not DOP; use QMIX.load") as refused:
        DOP.load(qmix)
    assert "\n" not in str(refused.value)
    with pytest.raises(ModelFileError, match="'DOP' model, not QMIX"):
        QMIX.load(tmp_path / "dop.zip")


def test_cli_trains_dop_by_name(tmp_path: Path) -> None:
    assert ALGORITHMS["dop"] is DOP
    out = tmp_path / "run"
    argv = ["train", "--env", "matrix_game", "--algo", "dop", "--timesteps", "24", "--out", str(out)]
    argv += ["--device", "cpu", "--quiet", "--algo-kwargs", *(f"{k}={v}" for k, v in SMALL.items())]
    argv += ["batch_size=4", "on_policy_batch_size=4"]
    assert main(argv) == 0
    assert json.loads((out / "run.json").read_text())["algo"] == "dop"
    assert isinstance(load_model(out / "model.zip"), DOP)


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mixer= is unused"):
        _model(mixer="vdn")
    with pytest.raises(ValueError, match="tree_backup_steps must be a positive integer"):
        _model(tree_backup_steps=0)
    with pytest.raises(ValueError, match="tree_backup_lambda must be in"):
        _model(tree_backup_lambda=1.5)
    with pytest.raises(ValueError, match="off_policy_coef must be in"):
        _model(off_policy_coef=-0.1)
    assert _model().tree_backup_weight == pytest.approx(32 / 48)
    assert _model(off_policy_coef=0.25).tree_backup_weight == 0.25
