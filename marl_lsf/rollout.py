"""Rollouts: acting in the environments, in the learner's process or in rollout worker processes.

Two ways to collect from ``n_envs`` environment copies:

* **In the learner** (``vectorization="sync"`` or ``"async"``, and every env with its own batched
  form such as SMAX): each vector step, the learner picks the actions of every env in one batched
  forward pass (:func:`rollout_step`) and the ``TeamVecEnv`` steps them, in-process or in
  gymnasium's ``AsyncVectorEnv`` workers. Training can follow any step.
* **In rollout workers** (``vectorization="workers"``, :class:`WorkerTeamVecEnv`): every worker
  process holds a share of the env copies *and a copy of the acting policy*, and collects a whole
  chunk of vector steps on its own before it reports back, so acting and stepping run in parallel
  on every core and a round trip between processes is paid once per chunk (``CHUNK_STEPS``
  vector steps) rather than once per step (RLlib's rollout workers follow the same plan). The workers are gymnasium
  ``AsyncVectorEnv`` worker processes, driven through ``AsyncVectorEnv.call``; the learner sends the
  current policy with every chunk request and replays the returned steps into its replay buffer,
  episode statistics and callbacks one vector step at a time, as if it had stepped them itself.
  The policy a chunk is collected with is the one of its start: training happens between chunks.

On a machine with few cores and a cheap env, a process round trip per step costs more than the
env step it moves (``benchmarks/results/throughput_n_envs.md``), which is why worker processes
that only step envs do not pay off there, while rollout workers do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv

from marl_lsf.main_guard import check_main_guard
from marl_lsf.nets.policies import ActingPolicy
from marl_lsf.team_env import (
    EnvFactory,
    GymTeamVecEnv,
    TeamObs,
    TeamReward,
    TeamStep,
    TeamVecEnv,
)

#: Vector steps a rollout worker collects per round trip: the policy acting in a chunk is at most
#: this many steps old, and the ~1 ms round trip is spread over this many env steps.
CHUNK_STEPS = 64


def random_actions(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random available actions ``[E, N]`` for masks ``avail [E, N, A]`` (never a masked one)."""
    return np.where(avail, rng.random(avail.shape), -1.0).argmax(-1)


def rollout_step(
    policy: ActingPolicy,
    env: TeamVecEnv,
    obs: TeamObs,
    hidden: torch.Tensor | None,
    explore_randomly: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, TeamStep, torch.Tensor | None]:
    """One vector step: act (uniformly at random during the warm-up, else with ``policy``), step the envs.

    Returns ``(actions, step, hidden)``; the recurrent state of envs whose episode ended is zeroed.
    """
    if explore_randomly:
        actions = random_actions(obs.avail, rng)
    else:
        actions, hidden = policy.act(obs.obs, obs.avail, hidden, deterministic=False)
    step = env.step(actions)
    if hidden is not None:
        done = step.terminated | step.truncated
        if done.any():
            hidden[torch.as_tensor(done, device=hidden.device)] = 0.0
    return actions, step, hidden


class Rollout(NamedTuple):
    """``K`` consecutive vector steps of ``E`` envs, stacked on a leading time axis."""

    actions: np.ndarray  # [K, E, N]
    next: TeamObs  # fields [K, E, ...]
    final: TeamObs  # fields [K, E, ...]
    reward: np.ndarray  # [K, E]
    terminated: np.ndarray  # [K, E]
    truncated: np.ndarray  # [K, E]
    infos: list[list[dict[str, Any]]]  # K lists of E dicts

    @property
    def num_steps(self) -> int:
        """Number of vector steps ``K``."""
        return self.actions.shape[0]

    @property
    def episodes(self) -> int:
        """Number of episodes that ended in these steps (over all envs)."""
        return int((self.terminated | self.truncated).sum())

    @classmethod
    def stack(cls, steps: list[tuple[np.ndarray, TeamStep]]) -> Rollout:
        """Stack ``(actions, step)`` pairs into one rollout."""
        actions = np.stack([a for a, _ in steps])
        fields = [s for _, s in steps]
        return cls(
            actions,
            TeamObs(*(np.stack(parts) for parts in zip(*(s.next for s in fields), strict=True))),
            TeamObs(*(np.stack(parts) for parts in zip(*(s.final for s in fields), strict=True))),
            np.stack([s.reward for s in fields]),
            np.stack([s.terminated for s in fields]),
            np.stack([s.truncated for s in fields]),
            [s.infos for s in fields],
        )

    @classmethod
    def concatenate(cls, parts: list[Rollout]) -> Rollout:
        """Join the rollouts of disjoint groups of envs (collected over the same steps) along the env axis."""
        if len(parts) == 1:
            return parts[0]

        def join(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(arrays, axis=1)

        return cls(
            join([p.actions for p in parts]),
            TeamObs(*(join(list(f)) for f in zip(*(p.next for p in parts), strict=True))),
            TeamObs(*(join(list(f)) for f in zip(*(p.final for p in parts), strict=True))),
            join([p.reward for p in parts]),
            join([p.terminated for p in parts]),
            join([p.truncated for p in parts]),
            [sum(infos, []) for infos in zip(*(p.infos for p in parts), strict=True)],
        )

    def steps(self) -> Iterator[tuple[np.ndarray, TeamStep]]:
        """The vector steps in order, as ``(actions [E, N], TeamStep)``."""
        for k in range(self.actions.shape[0]):
            yield (
                self.actions[k],
                TeamStep(
                    TeamObs(*(field[k] for field in self.next)),
                    TeamObs(*(field[k] for field in self.final)),
                    self.reward[k],
                    self.terminated[k],
                    self.truncated[k],
                    self.infos[k],
                ),
            )


class RolloutWorker(gym.Env):
    """What one rollout worker process runs: ``num_envs`` env copies in-process and a policy copy.

    It lives inside a gymnasium ``AsyncVectorEnv`` worker (as that worker's "env"), so gymnasium
    starts, drives and shuts down the process; ``WorkerTeamVecEnv`` calls its ``reset_envs``,
    ``collect`` and ``step_envs`` methods through ``AsyncVectorEnv.call``. ``reset``/``step`` of the
    ``gymnasium.Env`` interface are not used.

    Args:
        factory: zero-argument callable returning a fresh ParallelEnv.
        num_envs: env copies in this worker.
        first_env: index of this worker's first env in the whole vector (env ``first_env + i`` is
            seeded ``seed + first_env + i``).
        team_reward: see ``TeamEnv``.
    """

    def __init__(self, factory: EnvFactory, num_envs: int, first_env: int, team_reward: TeamReward) -> None:
        torch.set_num_threads(1)
        self.envs = GymTeamVecEnv(factory, num_envs, "sync", team_reward)
        self.first_env = first_env
        single = self.envs.vec.single_observation_space
        self.observation_space, self.action_space = single, self.envs.vec.single_action_space
        self.spec_ = self.envs.spec
        self.max_episode_steps = self.envs.max_episode_steps
        self._obs: TeamObs | None = None
        self._hidden: torch.Tensor | None = None
        self._rng = np.random.default_rng()

    def reset_envs(self, seed: int | None) -> TeamObs:
        """Reset this worker's envs (and seed its random generators) from the vector's ``seed``."""
        if seed is not None:
            own_seed = seed + self.first_env
            self._rng = np.random.default_rng(own_seed)
            torch.manual_seed(own_seed)
        self._obs = self.envs.reset(None if seed is None else seed + self.first_env)
        self._hidden = None
        return self._obs

    def collect(self, policy: ActingPolicy, n_steps: int, random_steps: int) -> Rollout:
        """Act with ``policy`` for ``n_steps`` vector steps (the first ``random_steps`` uniformly at random)."""
        if self._obs is None:
            raise RuntimeError("collect() called before reset_envs()")
        steps = []
        obs, hidden = self._obs, self._hidden
        for k in range(n_steps):
            actions, step, hidden = rollout_step(policy, self.envs, obs, hidden, k < random_steps, self._rng)
            steps.append((actions, step))
            obs = step.next
        self._obs, self._hidden = obs, hidden
        return Rollout.stack(steps)

    def step_envs(self, actions: np.ndarray) -> Rollout:
        """Step this worker's envs with their slice of the vector's ``actions``; a one-step rollout."""
        own = actions[self.first_env : self.first_env + self.envs.num_envs]
        step = self.envs.step(own)
        self._obs = step.next
        return Rollout.stack([(own, step)])

    def render(self) -> Any:
        """Render this worker's first env."""
        return self.envs.render()

    def close(self) -> None:
        """Close this worker's envs."""
        self.envs.close()


class _RolloutWorkerFactory:
    """Picklable ``RolloutWorker`` constructor for gymnasium's worker processes."""

    def __init__(self, factory: EnvFactory, num_envs: int, first_env: int, team_reward: TeamReward) -> None:
        self.factory = factory
        self.num_envs = num_envs
        self.first_env = first_env
        self.team_reward = team_reward

    def __call__(self) -> RolloutWorker:
        return RolloutWorker(self.factory, self.num_envs, self.first_env, self.team_reward)


class WorkerTeamVecEnv(TeamVecEnv):
    """``num_envs`` env copies spread over ``num_workers`` rollout worker processes (see the module docstring).

    ``collect(policy, n_steps, random_steps)`` is the fast path (``collect_async`` then
    ``collect_wait`` lets the learner work while the workers collect); ``step(actions)`` also
    works (one round trip per step, as gymnasium's ``AsyncVectorEnv``), e.g. for ``evaluate_policy``.

    Args:
        factory: zero-argument callable returning a fresh ParallelEnv.
        num_envs: number of env copies.
        num_workers: worker processes (at most ``num_envs``); the copies are split as evenly as possible.
        team_reward: see ``TeamEnv``.
    """

    def __init__(
        self, factory: EnvFactory, num_envs: int, num_workers: int, team_reward: TeamReward = "mean"
    ) -> None:
        if not 1 <= num_workers <= num_envs:
            raise ValueError(f"num_workers must be between 1 and num_envs={num_envs}, got {num_workers}")
        groups = np.array_split(np.arange(num_envs), num_workers)
        fns = [_RolloutWorkerFactory(factory, len(g), int(g[0]), team_reward) for g in groups]
        check_main_guard()
        self.vec = AsyncVectorEnv(fns, shared_memory=False, copy=False, context="spawn")
        self.num_envs = num_envs
        self.num_workers = num_workers
        self.spec = self.vec.get_attr("spec_")[0]
        self.max_episode_steps = self.vec.get_attr("max_episode_steps")[0]
        self.chunk_steps = CHUNK_STEPS
        self.pending = False

    def reset(self, seed: int | None = None) -> TeamObs:
        """Reset every env (env ``e`` gets ``seed + e``) and seed each worker's acting from it."""
        parts = self.vec.call("reset_envs", seed)
        return TeamObs(*(np.concatenate(f) for f in zip(*parts, strict=True)))

    def collect(self, policy: ActingPolicy, n_steps: int, random_steps: int = 0) -> Rollout:
        """``n_steps`` vector steps acted in the workers with a copy of ``policy`` (on the CPU)."""
        self.collect_async(policy, n_steps, random_steps)
        return self.collect_wait()

    def collect_async(self, policy: ActingPolicy, n_steps: int, random_steps: int = 0) -> None:
        """Start ``collect`` in the workers and return at once; ``collect_wait`` gets the rollout."""
        if policy.network.head.weight.device.type != "cpu":
            policy = copy.deepcopy(policy).cpu()
        self.vec.call_async("collect", policy, n_steps, random_steps)
        self.pending = True

    def collect_wait(self) -> Rollout:
        """The rollout of the chunk started by ``collect_async``, once every worker has sent its part."""
        self.pending = False
        return Rollout.concatenate(list(self.vec.call_wait()))

    def step(self, actions: np.ndarray) -> TeamStep:
        """Step every env with ``actions [E, N]`` (one round trip to every worker)."""
        rollout = Rollout.concatenate(list(self.vec.call("step_envs", np.asarray(actions))))
        return next(rollout.steps())[1]

    def render(self) -> Any:
        """Render the first env."""
        return self.vec.call("render")[0]

    def close(self) -> None:
        """Shut the workers down."""
        self.vec.close()
