"""LSF-SAC behaviour: decentralized execution, masks, loss isolation, learning, PettingZoo envs, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv
from torch import nn

from marl_lsf import LSFSAC, QMIX, EvaluationResult, evaluate_policy
from marl_lsf.callbacks import EvalCallback
from marl_lsf.envs import matrix_game_v0, predator_prey_v0
from marl_lsf.nets import LatentCritic
from marl_lsf.team_env import EnvError


def tiny_predator_prey(**kwargs: int) -> ParallelEnv:
    """A 5x5 predator-prey with 2 predators, 1 prey and 20-step episodes."""
    defaults = {"grid_size": 5, "n_predators": 2, "n_prey": 1, "max_cycles": 20}
    return predator_prey_v0.parallel_env(**(defaults | kwargs))


class MaskedEnv(ParallelEnv):
    """Three agents with random action masks in dict observations; episodes of 5 steps."""

    metadata = {"name": "masked_v0"}

    def __init__(self, n_actions: int = 6, seed: int = 0) -> None:
        self.possible_agents = ["a", "b", "c"]
        self.n_actions = n_actions
        self._rng = np.random.default_rng(seed)
        self._spaces = {
            agent: spaces.Dict(
                {
                    "observation": spaces.Box(-1.0, 1.0, (4,), np.float32),
                    "action_mask": spaces.Box(0, 1, (n_actions,), np.int8),
                }
            )
            for agent in self.possible_agents
        }
        self.last_masks: dict[str, np.ndarray] = {}

    def observation_space(self, agent: str) -> spaces.Space:
        return self._spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(self.n_actions)

    def _observe(self) -> dict[str, dict[str, np.ndarray]]:
        obs = {}
        for agent in self.agents:
            mask = (self._rng.random(self.n_actions) < 0.4).astype(np.int8)
            mask[self._rng.integers(self.n_actions)] = 1
            self.last_masks[agent] = mask
            obs[agent] = {"observation": self._rng.uniform(-1, 1, 4).astype(np.float32), "action_mask": mask}
        return obs

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.t = 0
        return self._observe(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for agent, action in actions.items():
            if not self.last_masks[agent][action]:
                raise AssertionError(f"unavailable action {action} for {agent}")
        self.t += 1
        done = self.t >= 5
        rewards = {agent: float(actions[agent] == 0) for agent in self.agents}
        obs = self._observe()
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: done for agent in self.agents}
        infos = {agent: {} for agent in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos


@pytest.mark.parametrize("policy", ["MlpPolicy", "RnnPolicy"])
def test_decentralized_execution_ignores_other_agents_observations(policy: str) -> None:
    model = LSFSAC(policy, tiny_predator_prey(n_predators=3), seed=0)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 2, (3, 5, 5, 2)).astype(np.float32)
    # predict's state: the GRU's hidden state, then (last_action_input) the one-hot last action.
    hidden = rng.normal(size=(3, model.hidden_dim)).astype(np.float32) if policy == "RnnPolicy" else None
    state = None if hidden is None else np.concatenate([hidden, np.zeros((3, 6), np.float32)], axis=1)
    avail = torch.ones(1, 3, 6, dtype=torch.bool)

    def probs(observation: np.ndarray) -> torch.Tensor:
        flat = torch.as_tensor(observation.reshape(1, 3, -1))
        h = None if hidden is None else torch.as_tensor(hidden[None])
        with torch.no_grad():
            logits, _ = model.actor(model.actor_inputs(flat)[:, None], h)
        return torch.softmax(logits.masked_fill(~avail[:, None], -1e9), -1)[0, 0]

    base = probs(obs)
    changed = obs.copy()
    changed[1:] = rng.integers(0, 2, changed[1:].shape)
    assert torch.equal(probs(changed)[0], base[0])
    assert not torch.allclose(probs(changed)[1:], base[1:])
    actions, _ = model.predict(obs, state=state, deterministic=True)
    actions_changed, _ = model.predict(changed, state=state, deterministic=True)
    assert actions[0] == actions_changed[0]


@pytest.mark.parametrize("policy", ["MlpPolicy", "RnnPolicy"])
def test_sampled_and_greedy_actions_respect_random_masks(policy: str) -> None:
    model = LSFSAC(policy, MaskedEnv(), seed=1, learning_starts=0, batch_size=4)
    rng = np.random.default_rng(2)
    obs = torch.as_tensor(rng.uniform(-1, 1, (500, 3, 4)).astype(np.float32))
    avail = torch.as_tensor(rng.random((500, 3, 6)) < 0.3)
    avail[torch.arange(500), :, torch.as_tensor(rng.integers(0, 6, 500))] = True
    for deterministic in (False, True):
        with torch.no_grad():
            actions, _ = model.policy(obs, avail, None, deterministic)
        assert avail.gather(-1, actions.unsqueeze(-1)).all()
    # And inside training: MaskedEnv raises on any unavailable action.
    model.learn(300)
    result = evaluate_policy(model, MaskedEnv(seed=3), n_eval_episodes=5, deterministic=False)
    assert result.mean_length == 5


def _batch(model: LSFSAC) -> object:
    model.learn(200)
    return model.replay_buffer.sample(4, np.random.default_rng(0))


def _grads(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("n_critics", [1, 2])
def test_each_loss_moves_only_its_parameters(n_critics: int) -> None:
    model = LSFSAC("RnnPolicy", tiny_predator_prey(), seed=0, n_critics=n_critics, batch_size=4)
    batch = _batch(model)
    critic_modules = [model.critics, model.mixers]

    def zero() -> None:
        for module in [model.actor, *critic_modules]:
            module.zero_grad(set_to_none=True)
        model.log_ent_coef.grad = None

    zero()
    pi, log_pi = model.policy_distribution(batch)
    td_loss, latent_loss, q_values, _ = model.critic_losses(batch, pi, log_pi)
    (td_loss + latent_loss).backward()
    assert _grads(model.actor) == 0.0
    assert _grads(model.critics) > 0.0 and _grads(model.mixers) > 0.0
    assert model.log_ent_coef.grad is None

    zero()
    pi, log_pi = model.policy_distribution(batch)
    model.actor_loss(batch, pi, log_pi, q_values).backward()
    assert _grads(model.actor) > 0.0
    assert all(_grads(module) == 0.0 for module in critic_modules)
    assert model.log_ent_coef.grad is None

    zero()
    loss, _ = model.temperature_loss(batch, pi.detach(), log_pi.detach())
    loss.backward()
    assert model.log_ent_coef.grad is not None
    assert _grads(model.actor) == 0.0 and all(_grads(module) == 0.0 for module in critic_modules)


def test_policy_update_leaves_critic_and_mixer_unchanged_and_td_update_leaves_actor() -> None:
    model = LSFSAC("MlpPolicy", tiny_predator_prey(), seed=0, batch_size=4)
    batch = _batch(model)
    before = {
        name: [p.detach().clone() for p in getattr(model, name).parameters()]
        for name in ("actor", "critics", "mixers")
    }

    pi, log_pi = model.policy_distribution(batch)
    td_loss, latent_loss, q_values, _ = model.critic_losses(batch, pi, log_pi)
    model.critic_optimizer.zero_grad()
    (td_loss + latent_loss).backward()
    model.critic_optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(model.actor.parameters(), before["actor"], strict=True))
    assert not all(
        torch.equal(a, b) for a, b in zip(model.critics.parameters(), before["critics"], strict=True)
    )

    critic_after = [p.detach().clone() for p in model.critics.parameters()]
    mixer_after = [p.detach().clone() for p in model.mixers.parameters()]
    model.actor_optimizer.zero_grad()
    model.actor_loss(batch, pi, log_pi, q_values).backward()
    model.actor_optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(model.critics.parameters(), critic_after, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(model.mixers.parameters(), mixer_after, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(model.actor.parameters(), before["actor"], strict=True))


def test_learns_a_cooperative_matrix_game_optimum() -> None:
    """A 2-agent game whose optimum (2, 2) is worth 10; miscoordination around it is cheap."""
    payoff = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 10.0]])
    model = LSFSAC("MlpPolicy", matrix_game_v0.parallel_env(payoff=payoff), seed=0, learning_starts=100)
    model.learn(1500)
    obs, _ = matrix_game_v0.parallel_env(payoff=payoff).reset(seed=0)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions == {"agent_0": 2, "agent_1": 2}
    assert evaluate_policy(model, matrix_game_v0.parallel_env(payoff=payoff), 5).mean_return == 10.0


@pytest.mark.parametrize(
    "policy,kwargs",
    [
        ("MlpPolicy", {"latent_dim": 0}),
        ("MlpPolicy", {"ent_coef": 1.0}),
        ("RnnPolicy", {"n_critics": 2, "mixer": "vdn"}),
        ("RnnPolicy", {"td_lambda": 0.0, "tau": 1.0, "target_update_interval": 5}),
    ],
)
def test_ablations_run(policy: str, kwargs: dict) -> None:
    model = LSFSAC(policy, tiny_predator_prey(), seed=0, batch_size=4, **kwargs)
    model.learn(200)
    assert model._n_updates > 0
    assert np.isfinite(evaluate_policy(model, tiny_predator_prey(), 2).mean_return)


def test_trains_on_mpe2_simple_spread() -> None:
    from mpe2 import simple_spread_v3

    model = LSFSAC("MlpPolicy", simple_spread_v3.parallel_env(max_cycles=25), seed=0, batch_size=8)
    model.learn(1500)
    result = evaluate_policy(model, simple_spread_v3.parallel_env(max_cycles=25), 3)
    assert result.mean_length == 25 and np.isfinite(result.mean_return)
    assert model.spec.state_from_env


def test_trains_on_pettingzoo_pursuit() -> None:
    from pettingzoo.sisl import pursuit_v5

    def make() -> ParallelEnv:
        return pursuit_v5.parallel_env(max_cycles=30, n_pursuers=3, n_evaders=2, x_size=8, y_size=8)

    model = LSFSAC("RnnPolicy", make(), seed=0, batch_size=4)
    model.learn(600)
    result = evaluate_policy(model, make(), 2)
    assert np.isfinite(result.mean_return) and result.mean_length <= 30


def test_refuses_continuous_actions_naming_the_agent() -> None:
    from mpe2 import simple_spread_v3

    with pytest.raises(EnvError, match="agent_0.*Discrete"):
        LSFSAC("MlpPolicy", simple_spread_v3.parallel_env(continuous_actions=True))


def test_refuses_aec_env_and_says_how_to_convert() -> None:
    from mpe2 import simple_spread_v3

    with pytest.raises(TypeError, match="aec_to_parallel"):
        LSFSAC("MlpPolicy", simple_spread_v3.env())


def test_observation_of_another_shape_is_an_error() -> None:
    class Shifty(MaskedEnv):
        def _observe(self) -> dict:
            obs = super()._observe()
            if getattr(self, "t", 0) >= 2:
                obs["b"]["observation"] = np.zeros(5, dtype=np.float32)
            return obs

    model = LSFSAC("MlpPolicy", Shifty(), seed=0)
    with pytest.raises(EnvError, match=r"agent 'b' observation has shape \(5,\) at step 2.*\(4,\)"):
        model.learn(50)


def test_predict_input_errors() -> None:
    model = LSFSAC("MlpPolicy", tiny_predator_prey(n_predators=3))
    obs = np.zeros((3, 5, 5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="expected \\(3, 5, 5, 2\\)"):
        model.predict(obs[:2])
    with pytest.raises(ValueError, match="empty observation dict"):
        model.predict({})
    with pytest.raises(EnvError, match="unknown agents \\['predator_9'\\]"):
        model.predict({"predator_9": obs[0]})
    actions, state = model.predict({"predator_0": obs[0], "predator_2": obs[2]})
    # The state an MlpPolicy returns is the one-hot last action (last_action_input, the default).
    assert set(actions) == {"predator_0", "predator_2"} and state.shape == (3, 6)
    assert (
        LSFSAC("MlpPolicy", tiny_predator_prey(n_predators=3), last_action_input=False).predict(obs)[1]
        is None
    )


def test_predict_dict_batched_and_recurrent_state() -> None:
    model = LSFSAC("RnnPolicy", tiny_predator_prey(), seed=0)
    env = tiny_predator_prey()
    obs, _ = env.reset(seed=0)
    actions, state = model.predict(obs, deterministic=True)
    memory = model.hidden_dim + 6  # the GRU's hidden state and the one-hot last action
    assert set(actions) == set(env.agents) and state.shape == (2, memory)
    _, state2 = model.predict(obs, state=state, deterministic=True)
    assert not np.allclose(state, state2)
    _, state3 = model.predict(obs, state=state, episode_start=True, deterministic=True)
    assert np.allclose(state3, state)
    batch = np.stack([np.stack([obs[a] for a in env.possible_agents])] * 4)
    actions, states = model.predict(batch, deterministic=True)
    assert actions.shape == (4, 2) and states.shape == (4, 2, memory)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="unknown policy 'CnnPolicy'"):
        LSFSAC("CnnPolicy", tiny_predator_prey())
    with pytest.raises(ValueError, match="ent_coef"):
        LSFSAC("MlpPolicy", tiny_predator_prey(), ent_coef="auto_x")
    with pytest.raises(ValueError, match="n_critics"):
        LSFSAC("MlpPolicy", tiny_predator_prey(), n_critics=3)
    with pytest.raises(ValueError, match="q_messages must be one of"):
        LSFSAC("MlpPolicy", tiny_predator_prey(), q_messages="mode")
    with pytest.raises(ValueError, match="n_envs > 1 needs a zero-argument factory"):
        LSFSAC("MlpPolicy", tiny_predator_prey(), n_envs=2)
    with pytest.raises(ValueError, match="total_timesteps"):
        LSFSAC("MlpPolicy", tiny_predator_prey()).learn(10.5)


def test_learn_accepts_float_steps_logs_and_counts() -> None:
    model = LSFSAC("MlpPolicy", lambda: tiny_predator_prey(), seed=0, batch_size=4)
    model.learn(1e2, log_interval=1)
    assert model.num_timesteps == 100
    assert model.logger.name_to_value or model._episode_num == 5


def test_trains_on_a_supersuit_wrapped_env() -> None:
    import supersuit

    def make() -> ParallelEnv:
        return supersuit.frame_stack_v1(tiny_predator_prey(), 3)

    model = LSFSAC("MlpPolicy", make, seed=0, batch_size=4)
    assert model.spec.obs_shapes[0] == (5, 5, 6)
    model.learn(200)
    assert evaluate_policy(model, make(), 2).mean_length == 20


def test_messages_carry_the_senders_policy() -> None:
    """The message loss (eq. 12) makes each agent's outgoing messages predict its own action.

    Agent j's policy here is a function of its observation bit; after training the message loss
    alone, the decoder reads j's action off the messages j sends (cross-entropy near 0), so the
    messages j sends to the other agent differ with j's bit: the receiver's critic gets j's policy.
    """
    torch.manual_seed(0)
    critic = LatentCritic(in_dim=2, n_agents=2, n_actions=2, hidden_dim=32, latent_dim=3)
    optimizer = torch.optim.Adam(critic.parameters(), lr=3e-3)
    bits = torch.randint(0, 2, (256, 1, 2))
    x = torch.stack([bits.float(), 1 - bits.float()], dim=-1)  # [B, T=1, N, 2]
    labels = nn.functional.one_hot(bits, 2).float()  # agent j's policy: action = its bit
    for _ in range(300):
        _, latent, _ = critic(x)
        log_q_psi = torch.log_softmax(latent.decoder_logits, -1)
        loss = -(labels * log_q_psi).sum(-1).mean() + 1e-3 * 0.5 * latent.mu.pow(2).sum((-2, -1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _, latent, _ = critic(x, sample=False)
    assert (latent.decoder_logits.argmax(-1) == bits).float().mean() > 0.99
    for sender, receiver in ((0, 1), (1, 0)):
        sent = latent.mu[:, 0, sender, receiver]  # [B, d]
        gap = (sent[bits[:, 0, sender] == 1].mean(0) - sent[bits[:, 0, sender] == 0].mean(0)).norm()
        assert gap > 1.0, f"messages {sender}->{receiver} do not depend on the sender's policy"


@pytest.mark.parametrize("q_messages", ["sample", "mean"])
def test_q_head_reads_sampled_messages_or_their_means(q_messages: str) -> None:
    """The decoder always reads sampled messages; the Q-head reads samples or, with ``"mean"``, the means."""
    torch.manual_seed(0)
    critic = LatentCritic(in_dim=4, n_agents=3, n_actions=5, latent_dim=2, q_messages=q_messages)
    x = torch.randn(2, 3, 3, 4)
    (q_1, latent_1, _), (q_2, latent_2, _) = critic(x), critic(x)
    q_mean, _, _ = critic(x, sample=False)
    assert not torch.allclose(latent_1.decoder_logits, latent_2.decoder_logits)
    assert torch.equal(latent_1.mu, latent_2.mu)
    if q_messages == "mean":
        assert torch.equal(q_1, q_2) and torch.equal(q_1, q_mean)
    else:
        assert not torch.allclose(q_1, q_2) and not torch.allclose(q_1, q_mean)


def test_temperature_has_its_own_learning_rate() -> None:
    model = LSFSAC("MlpPolicy", tiny_predator_prey(), seed=0, batch_size=4, ent_coef_learning_rate=0.01)
    model.learn(100)
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == 0.01
    assert model.critic_optimizer.param_groups[0]["lr"] == model.actor_optimizer.param_groups[0]["lr"] == 5e-4
    assert model._params()["ent_coef_learning_rate"] == 0.01


def test_best_model_comes_from_a_trained_evaluation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The evaluation at step 0 is of the untrained model: best_model.zip comes from a later one,
    # even when the untrained team scored higher (here 10 at step 0, then 1 and 2).
    scores = iter([10.0, 1.0, 2.0])
    monkeypatch.setattr(
        "marl_lsf.callbacks.evaluate_policy", lambda *_, **__: EvaluationResult([next(scores)], [1], [])
    )
    model = QMIX("MlpPolicy", matrix_game_v0.parallel_env(), hidden_dim=8, batch_size=4, seed=0)
    evaluation = EvalCallback(matrix_game_v0.parallel_env, 8, 2, best_model_save_path=tmp_path, seed=0)
    model.learn(16, callback=evaluation)
    assert [(step, result.mean_return) for step, result in evaluation.history] == [
        (0, 10.0),
        (8, 1.0),
        (16, 2.0),
    ]
    assert QMIX.load(tmp_path / "best_model.zip").num_timesteps == 16
    assert evaluation.best_mean_return == 2.0
