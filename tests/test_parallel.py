"""Parallel rollouts: ``n_envs > 1`` (env worker processes or rollout workers) collects the same
episodes as ``n_envs = 1``.

``CountdownEnv`` is a deterministic toy: each episode's length is drawn from the env's own seeded
generator and its return equals its length whatever the agents do, so the episodes a run must
collect are known in advance (env ``e`` of a vector is reset with ``seed + e``, later resets
continue its generator).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3.common.callbacks import BaseCallback

from marl_lsf import LSFSAC, vec_env
from marl_lsf.env_registry import make_env_factory
from marl_lsf.rollout import WorkerTeamVecEnv

MIN_LENGTH, MAX_LENGTH = 2, 7


class CountdownEnv(ParallelEnv):
    """Two agents; episodes last ``L`` steps, ``L`` drawn uniformly from 2..7 at every reset.

    Every live agent gets reward 1 per step, so the team return is ``L``. Observation
    ``[t, L, agent index]``. Agent ``b`` leaves (terminates) one step early when ``L > 3``;
    the episode ends by termination when ``L`` is even and by truncation when it is odd.
    """

    metadata = {"name": "countdown_v0"}

    def __init__(self) -> None:
        self.possible_agents = ["a", "b"]
        self._rng = np.random.default_rng()
        self._obs_space = spaces.Box(0.0, 10.0, (3,), np.float32)
        self._t = 0
        self._length = MIN_LENGTH

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(3)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            agent: np.array([self._t, self._length, i], dtype=np.float32)
            for i, agent in enumerate(self.possible_agents)
            if agent in self.agents
        }

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._length = int(self._rng.integers(MIN_LENGTH, MAX_LENGTH + 1))
        self._t = 0
        self.agents = list(self.possible_agents)
        return self._obs(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self._t += 1
        rewards = {agent: 1.0 for agent in self.agents}
        end = self._t >= self._length
        b_leaves = self._length > 3 and self._t == self._length - 1
        terminations = {agent: end and self._length % 2 == 0 for agent in self.agents}
        truncations = {agent: end and self._length % 2 == 1 for agent in self.agents}
        if b_leaves and "b" in self.agents:
            terminations["b"] = True
        observations = self._obs()
        infos = {agent: {} for agent in self.agents}
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        return observations, rewards, terminations, truncations, infos


def reference_lengths(seed: int, n: int) -> list[int]:
    """The first ``n`` episode lengths of a ``CountdownEnv`` first reset with ``seed``."""
    env = CountdownEnv()
    lengths = []
    for i in range(n):
        env.reset(seed=seed if i == 0 else None)
        lengths.append(env._length)
    return lengths


class EpisodeRecorder(BaseCallback):
    """Records ``(env index, length, return)`` of every finished episode and every action taken."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[tuple[int, int, float]] = []
        self.actions: list[np.ndarray] = []

    def _on_step(self) -> bool:
        done = self.locals["done"]
        finished = list(self.model.ep_info_buffer)[len(self.model.ep_info_buffer) - done.size :]
        self.episodes += [(int(e), int(info["l"]), info["r"]) for e, info in zip(done, finished, strict=True)]
        self.actions.append(self.locals["actions"].copy())
        return True


def collect(
    n_envs: int, vectorization: str, seed: int, steps: int, **kwargs: Any
) -> tuple[LSFSAC, EpisodeRecorder]:
    """Train LSF-SAC on ``CountdownEnv`` copies for ``steps`` steps, recording the episodes."""
    model = LSFSAC(
        "MlpPolicy",
        CountdownEnv,
        n_envs=n_envs,
        vectorization=vectorization,
        seed=seed,
        batch_size=4,
        hidden_dim=16,
        device="cpu",
        **kwargs,
    )
    recorder = EpisodeRecorder()
    try:
        model.learn(steps, callback=recorder)
    finally:
        model.env.close()
    return model, recorder


def per_env(recorder: EpisodeRecorder, n_envs: int) -> list[list[tuple[int, float]]]:
    """The recorded ``(length, return)`` of each env's episodes, in order."""
    return [[(length, ret) for e, length, ret in recorder.episodes if e == env] for env in range(n_envs)]


@pytest.mark.parametrize("vectorization", ["async", "workers"])
def test_worker_processes_collect_the_episodes_of_n_envs_1(vectorization: str) -> None:
    """Env ``e`` of a vector in worker processes replays a single env seeded ``seed + e``; lengths differ."""
    seed, steps = 5, 80
    single, single_rec = collect(1, "sync", seed, steps)
    double, double_rec = collect(2, vectorization, seed, steps)
    assert double.env is not None and type(double.env.vec).__name__ == "AsyncVectorEnv"
    assert isinstance(double.env, WorkerTeamVecEnv) == (vectorization == "workers")
    assert double._n_updates > 0 and double.num_timesteps == steps

    (single_eps,) = per_env(single_rec, 1)
    env_eps = per_env(double_rec, 2)
    for episodes, env_seed in ((single_eps, seed), (env_eps[0], seed), (env_eps[1], seed + 1)):
        lengths = [length for length, _ in episodes]
        assert lengths == reference_lengths(env_seed, len(lengths))
        assert all(ret == length for length, ret in episodes)  # return = length, policy-independent
    # Env 0 of the vector is the single env: same episodes; env 1 is another draw of the same law.
    assert env_eps[0] == single_eps[: len(env_eps[0])]
    assert env_eps[0] != env_eps[1]
    for eps in (single_eps, env_eps[0] + env_eps[1]):
        assert {length for length, _ in eps} <= set(range(MIN_LENGTH, MAX_LENGTH + 1))
    # Both runs collected the same number of steps, in complete episodes plus the unfinished ones.
    assert sum(length for length, _ in single_eps) <= steps
    assert sum(length for length, _ in env_eps[0] + env_eps[1]) <= steps


def test_replay_buffer_stores_each_episode_whole_with_its_own_ending() -> None:
    """Episodes of different lengths from two envs are stored with their last observation and ending."""
    model, recorder = collect(2, "sync", seed=11, steps=40, buffer_size=64, learning_starts=40)
    buffer = model.replay_buffer
    stored = len(buffer)
    assert stored == len(recorder.episodes)
    batch = buffer.get(np.arange(stored))
    for k, (_, length, _) in enumerate(recorder.episodes):
        assert buffer.lengths[k] == length
        truncated = length % 2 == 1
        obs = batch.obs[k, : length + 1, 0].numpy()
        assert np.array_equal(obs[:length, 0], np.arange(length))
        assert np.all(obs[:length, 1] == length)
        # The last observation is this episode's own (the autoreset's first one goes to the next
        # episode): kept after a truncation, for bootstrapping; an empty slot after a termination.
        assert np.array_equal(obs[length], [length, length, 0] if truncated else [0, 0, 0])
        assert batch.filled[k].sum() == length
        assert batch.reward[k, :length].sum() == length
        assert batch.terminated[k, length - 1] == float(not truncated)
        assert batch.terminated[k, : length - 1].sum() == 0
        # Agent a is alive to the end (and after a truncation); b leaves at step L - 1 when L > 3.
        t = np.arange(length + 1)
        alive_a = (t < length) | truncated
        alive_b = alive_a & (t < length - 1) if length > 3 else alive_a
        assert np.array_equal(batch.alive[k, : length + 1, 0].numpy(), alive_a)
        assert np.array_equal(batch.alive[k, : length + 1, 1].numpy(), alive_b)


def tiny_predator_prey_factory() -> Any:
    """A 5x5 predator-prey with 2 predators and 15-step episodes, as a picklable factory."""
    # v0: every action is always available, so the tests below can script any action.
    return make_env_factory(
        "marl_lsf.envs.predator_prey_v0:parallel_env", grid_size=5, n_predators=2, n_prey=1, max_cycles=15
    )


def run_predator_prey(
    seed: int, vectorization: str, n_envs: int = 2
) -> tuple[list[np.ndarray], list[dict], torch.Tensor]:
    """Actions, episode statistics and final actor parameters of a short LSF-SAC run (90 steps)."""
    model = LSFSAC(
        "RnnPolicy",
        tiny_predator_prey_factory(),
        n_envs=n_envs,
        vectorization=vectorization,
        seed=seed,
        batch_size=2,
        hidden_dim=16,
        device="cpu",
    )
    recorder = EpisodeRecorder()
    try:
        model.learn(90, callback=recorder)
    finally:
        model.env.close()
    params = torch.cat([p.detach().flatten() for p in model.actor.parameters()])
    return recorder.actions, list(model.ep_info_buffer), params


def test_a_fixed_seed_reproduces_a_parallel_run() -> None:
    """Same seed: the same sampled actions, episodes and weights, with worker processes or without."""
    actions, episodes, params = run_predator_prey(3, "async")
    actions_again, episodes_again, params_again = run_predator_prey(3, "async")
    actions_sync, episodes_sync, params_sync = run_predator_prey(3, "sync")
    assert len(actions) == 45 and len(episodes) == 6  # 90 steps: 3 episodes of 15 steps per env
    for other_actions, other_episodes, other_params in (
        (actions_again, episodes_again, params_again),
        (actions_sync, episodes_sync, params_sync),
    ):
        assert all(np.array_equal(a, b) for a, b in zip(actions, other_actions, strict=True))
        assert episodes == other_episodes
        assert torch.equal(params, other_params)
    other_seed_actions, _, other_seed_params = run_predator_prey(4, "sync")
    assert not all(np.array_equal(a, b) for a, b in zip(actions, other_seed_actions, strict=True))
    assert not torch.equal(params, other_seed_params)


def test_a_fixed_seed_reproduces_a_rollout_worker_run() -> None:
    """Rollout workers sample with their own seeded generators: a seed fixes the whole run."""
    actions, episodes, params = run_predator_prey(3, "workers")
    actions_again, episodes_again, params_again = run_predator_prey(3, "workers")
    assert len(actions) == 45 and len(episodes) == 6  # 90 steps: 3 episodes of 15 steps per env
    assert all(np.array_equal(a, b) for a, b in zip(actions, actions_again, strict=True))
    assert episodes == episodes_again
    assert torch.equal(params, params_again)
    other_seed_actions, _, _ = run_predator_prey(4, "workers")
    assert not all(np.array_equal(a, b) for a, b in zip(actions, other_seed_actions, strict=True))


def test_rollout_workers_act_with_the_learners_current_policy() -> None:
    """Every chunk is acted with the policy the learner has when it asks (weights and warm-up)."""
    model = LSFSAC(
        "MlpPolicy",
        tiny_predator_prey_factory(),
        n_envs=3,
        vectorization="workers",
        seed=0,
        exploration_initial_eps=0.0,  # greedy on the actor from the start
        exploration_final_eps=0.0,
    )
    try:
        # One worker per CPU this process may use, at most one per env copy.
        assert isinstance(model.env, WorkerTeamVecEnv)
        assert model.env.num_workers == min(3, vec_env.available_cpus())
        model.env.reset(seed=0)
        with torch.no_grad():  # an actor that always picks "catch"
            model.actor.head.bias.copy_(torch.tensor([0.0, 0, 0, 0, 0, 100.0]))
        rollout = model.env.collect(model.policy, n_steps=20, random_steps=0)
        assert rollout.actions.shape == (20, 3, 2) and (rollout.actions == 5).all()
        # The warm-up's uniformly random actions come first, then the policy's.
        rollout = model.env.collect(model.policy, n_steps=20, random_steps=10)
        assert len(np.unique(rollout.actions[:10])) == 6 and (rollout.actions[10:] == 5).all()
        # The per-step interface steps the same envs (evaluation uses it).
        step = model.env.step(np.full((3, 2), 4))
        assert step.reward.shape == (3,) and step.next.obs.shape == (3, 2, 50)
    finally:
        model.env.close()


@pytest.mark.filterwarnings("ignore:.*(Received the following error|Raising the last exception):UserWarning")
def test_an_env_error_in_a_rollout_worker_reaches_the_learner() -> None:
    """A worker's env that fails makes ``learn`` raise that error, with its message."""
    model = LSFSAC("MlpPolicy", FailingEnv, n_envs=2, vectorization="workers", seed=0)
    try:
        with pytest.raises(RuntimeError, match="the env broke at step 3"):
            model.learn(100)
    finally:
        model.env.close()


class FailingEnv(CountdownEnv):
    """A ``CountdownEnv`` whose third step raises."""

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        if self._t == 2:
            raise RuntimeError("the env broke at step 3")
        return super().step(actions)


def test_a_fixed_seed_reproduces_a_single_env_run() -> None:
    """n_envs = 1: the same seed gives the same actions, episode statistics and weights."""
    actions, episodes, params = run_predator_prey(3, "sync", n_envs=1)
    actions_again, episodes_again, params_again = run_predator_prey(3, "sync", n_envs=1)
    assert len(actions) == 90 and len(episodes) == 6  # 90 steps: 6 episodes of 15 steps
    assert all(np.array_equal(a, b) for a, b in zip(actions, actions_again, strict=True))
    assert episodes == episodes_again
    assert torch.equal(params, params_again)


@pytest.mark.parametrize(
    ("cpus", "n_envs", "expected"),
    [
        (2, 1, ("sync", 1)),
        (1, 4, ("sync", 4)),
        (2, 2, ("workers", 2)),
        (2, 5, ("workers", 2)),
        (16, 8, ("workers", 8)),
    ],
)
def test_auto_vectorization_uses_one_rollout_worker_per_core(
    monkeypatch: pytest.MonkeyPatch, cpus: int, n_envs: int, expected: tuple[str, int]
) -> None:
    """``"auto"``: rollout workers (at most one per core) when there are two cores or more, else in-process."""
    chosen: list[tuple[str, int]] = []
    monkeypatch.setattr(vec_env, "available_cpus", lambda: cpus)
    monkeypatch.setattr(
        vec_env, "GymTeamVecEnv", lambda factory, n, vectorization, reward: chosen.append((vectorization, n))
    )
    monkeypatch.setattr(
        vec_env, "WorkerTeamVecEnv", lambda factory, n, workers, reward: chosen.append(("workers", workers))
    )
    vec_env.make_team_vec_env(CountdownEnv, n_envs, "auto")
    assert chosen == [expected]


def test_an_unknown_vectorization_is_refused() -> None:
    with pytest.raises(ValueError, match="vectorization must be one of"):
        vec_env.make_team_vec_env(CountdownEnv, 2, "threads")


def test_inside_a_ray_task_the_cpus_are_the_tasks_reservation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run in a sweep's Ray task sizes its rollout workers by the CPUs Ray reserved for it."""

    class Context:
        def get_assigned_resources(self) -> dict[str, float]:
            return {"CPU": 3.0}

    class FakeRay:
        @staticmethod
        def is_initialized() -> bool:
            return True

        @staticmethod
        def get_runtime_context() -> Context:
            return Context()

    monkeypatch.setitem(sys.modules, "ray", FakeRay)
    assert vec_env.available_cpus() == 3
