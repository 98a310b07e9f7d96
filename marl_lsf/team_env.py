"""The team view: any PettingZoo ``ParallelEnv`` seen as one fixed-shape, team-level environment.

Every algorithm in marl-lsf consumes environments through this module, so these conventions are
settled here once:

* observations are flattened to ``[n_agents, obs_dim]`` float32 (zero-padded when agents differ);
* the global state is ``env.state()`` when the env implements it, else the concatenation of all
  agents' observations (``TeamSpec.state_from_env`` says which);
* action masks come from either PettingZoo convention, dict observations
  ``{"observation", "action_mask"}`` or ``info[agent]["action_mask"]``, and are padded with
  unavailable actions when agents have different action counts;
* agents that leave mid-episode keep their slot: zero observation, only the no-op action 0
  available, and ``alive = False`` so every loss masks them out (SuperSuit's ``black_death`` idea);
* the team reward is one scalar per step (mean of the agents' rewards by default);
* a time limit is a truncation, so the critic bootstraps through it.

``TeamEnv`` is a ``gymnasium.Env`` so that gymnasium's vector machinery (``SyncVectorEnv`` and
``AsyncVectorEnv`` worker processes, same-step autoreset) runs several copies; ``TeamVecEnv`` turns
their stacked dict observations into the named arrays the rollout uses. ``marl_lsf.vec_env.
make_team_vec_env`` chooses and builds the vector env an algorithm trains on.

The shapes and arrays of a team view (``TeamSpec``, ``build_spec``, ``TeamObs``, ``TeamStep``)
live in ``marl_lsf.team_spec`` and are re-exported here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from pettingzoo import AECEnv, ParallelEnv

from marl_lsf.api_checks import checked_reset, checked_step
from marl_lsf.env_registry import make_env_factory
from marl_lsf.main_guard import check_main_guard
from marl_lsf.team_spec import (
    EPISODE_LENGTH_ATTRS,
    EnvError,
    TeamObs,
    TeamSpec,
    TeamStep,
    as_parallel_env,
    build_spec,
    episode_length_hint,
)

EnvFactory = Callable[[], ParallelEnv]
TeamReward = str | Callable[[Mapping[str, float]], float]

#: Keys of per-agent ``info`` dicts that report a won episode, in order of preference.
WIN_KEYS = ("battle_won", "won", "is_success")


def team_reward_fn(team_reward: TeamReward) -> Callable[[Mapping[str, float]], float]:
    """Resolve ``"mean"``, ``"sum"`` or a callable into a function of the reward dict."""
    if callable(team_reward):
        return team_reward
    if team_reward == "mean":
        return lambda rewards: float(np.mean(list(rewards.values()))) if rewards else 0.0
    if team_reward == "sum":
        return lambda rewards: float(np.sum(list(rewards.values()))) if rewards else 0.0
    raise ValueError(f"team_reward must be 'mean', 'sum' or a callable, got {team_reward!r}")


class TeamEnv(gym.Env):
    """A PettingZoo ParallelEnv as a single-team ``gymnasium.Env`` with fixed-shape arrays.

    Observation: a dict of ``obs [N, O]`` float32, ``state [S]`` float32, ``avail [N, A]`` int8
    and ``alive [N]`` int8. Action: one integer per agent slot (``MultiDiscrete``); actions for
    agents that are gone are ignored. ``info`` holds, at the end of an episode, ``won`` when the
    env reports a win (``battle_won``, ``won`` or ``is_success``), and numeric per-agent info values
    (e.g. predator-prey's ``captures``).

    Args:
        env: the ParallelEnv to wrap.
        team_reward: how per-agent rewards become the team reward: ``"mean"`` (default; identical
            rewards stay as they are), ``"sum"`` or a callable of the reward dict.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"]}

    def __init__(self, env: ParallelEnv, team_reward: TeamReward = "mean") -> None:
        self.env = as_parallel_env(env)
        self.spec_ = build_spec(self.env)
        self.render_mode = getattr(self.env, "render_mode", None)
        self._team_reward = team_reward_fn(team_reward)
        n, o, a, s = self.spec_.n_agents, self.spec_.obs_dim, self.spec_.n_actions, self.spec_.state_dim
        self.observation_space = spaces.Dict(
            {
                "obs": spaces.Box(-np.inf, np.inf, (n, o), np.float32),
                "state": spaces.Box(-np.inf, np.inf, (s,), np.float32),
                "avail": spaces.MultiBinary((n, a)),
                "alive": spaces.MultiBinary(n),
            }
        )
        self.action_space = spaces.MultiDiscrete(np.asarray(self.spec_.action_counts))
        self._t = 0
        self._live: list[str] = []
        self._slot = {agent: i for i, agent in enumerate(self.spec_.agents)}
        self.max_episode_steps = episode_length_hint(self.env)

    def _state(self, obs: np.ndarray) -> np.ndarray:
        if not self.spec_.state_from_env:
            return obs.reshape(-1)
        state = np.asarray(self.env.state(), dtype=np.float32).reshape(-1)
        if state.size != self.spec_.state_dim:
            raise EnvError(
                f"env.state() has {state.size} values at step {self._t}, expected {self.spec_.state_dim}"
            )
        if not np.isfinite(state).all():
            raise EnvError(f"env.state() contains NaN or inf at step {self._t}")
        return state

    def _observe(self, observations: Mapping[str, Any], infos: Mapping[str, Any]) -> dict[str, np.ndarray]:
        obs, avail, alive = self.spec_.encode(observations, infos, step=self._t)
        return {
            "obs": obs,
            "state": self._state(obs),
            "avail": avail.astype(np.int8),
            "alive": alive.astype(np.int8),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the wrapped env; returns the team observation dict and an empty info."""
        super().reset(seed=seed)
        self._t = 0
        observations, infos = checked_reset(self.env.reset(seed=seed, options=options))
        self._live = list(self.env.agents)
        return self._observe(observations, infos), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Step every live agent with its slot's action; returns the gymnasium 5-tuple for the team."""
        if not self._live:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        actions = {agent: int(action[self._slot[agent]]) for agent in self._live}
        self._t += 1
        observations, rewards, terminations, truncations, infos = checked_step(
            self.env.step(actions), self._t
        )
        reward = self._team_reward(rewards)
        self._live = list(self.env.agents)
        # Agents that terminated this step still report an observation, but their slot is empty now;
        # truncated agents keep theirs, since the critic bootstraps from it.
        observations = {
            agent: obs for agent, obs in observations.items() if not terminations.get(agent, False)
        }
        done = not self._live
        truncated = done and any(truncations.get(agent, False) for agent in actions)
        terminated = done and not truncated
        info: dict[str, Any] = {}
        if done:
            info = _team_info(infos)
        return self._observe(observations, infos), reward, terminated, truncated, info

    def render(self) -> Any:
        """Render the wrapped env (in its own ``render_mode``)."""
        return self.env.render()

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()


def _team_info(infos: Mapping[str, Any]) -> dict[str, Any]:
    """Numeric values of the agents' last infos (first agent wins), plus ``won`` if reported."""
    team: dict[str, Any] = {}
    for agent_info in infos.values():
        if not isinstance(agent_info, Mapping):
            continue
        for key, value in agent_info.items():
            if key not in team and isinstance(value, int | float | bool | np.number | np.bool_):
                team[key] = float(value)
    for key in WIN_KEYS:
        if key in team:
            team["won"] = team[key]
            break
    return team


class TeamVecEnv(ABC):
    """``num_envs`` team environments stepped together, with same-step autoreset."""

    spec: TeamSpec
    num_envs: int
    #: The env's episode length limit when it declares one (sizes the replay buffer), else None.
    max_episode_steps: int | None = None

    @abstractmethod
    def reset(self, seed: int | None = None) -> TeamObs:
        """Reset every env (env ``e`` gets ``seed + e``)."""

    @abstractmethod
    def step(self, actions: np.ndarray) -> TeamStep:
        """Step with ``actions [E, N]``; finished envs reset at once."""

    def render(self) -> Any:
        """Render the first env, where the env supports it."""
        raise NotImplementedError(f"{type(self).__name__} does not render")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the environments."""


def _team_obs(batch: Mapping[str, np.ndarray]) -> TeamObs:
    """Own copies of the vector env's batch (it is created with ``copy=False`` and reuses its arrays)."""
    return TeamObs(
        batch["obs"].copy(), batch["state"].copy(), batch["avail"].astype(bool), batch["alive"].astype(bool)
    )


class GymTeamVecEnv(TeamVecEnv):
    """``TeamEnv`` copies in gymnasium's ``SyncVectorEnv`` or ``AsyncVectorEnv`` (worker processes).

    Args:
        factory: zero-argument callable returning a fresh ParallelEnv.
        num_envs: number of copies.
        vectorization: ``"sync"`` (in-process) or ``"async"`` (one worker process per copy).
        team_reward: see ``TeamEnv``.
    """

    def __init__(
        self,
        factory: EnvFactory,
        num_envs: int = 1,
        vectorization: str = "sync",
        team_reward: TeamReward = "mean",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        fns = [_TeamEnvFactory(factory, team_reward) for _ in range(num_envs)]
        if vectorization == "sync":
            self.vec: gym.vector.VectorEnv = SyncVectorEnv(
                fns, copy=False, autoreset_mode=AutoresetMode.SAME_STEP
            )
        elif vectorization == "async":
            check_main_guard()
            self.vec = AsyncVectorEnv(
                fns, copy=False, autoreset_mode=AutoresetMode.SAME_STEP, context="spawn"
            )
        else:
            raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
        self.num_envs = num_envs
        self.spec = self.vec.get_attr("spec_")[0]
        self.max_episode_steps = self.vec.get_attr("max_episode_steps")[0]

    def reset(self, seed: int | None = None) -> TeamObs:
        """Reset every env (env ``e`` gets ``seed + e``)."""
        seeds = None if seed is None else [seed + e for e in range(self.num_envs)]
        batch, _ = self.vec.reset(seed=seeds)
        return _team_obs(batch)

    def step(self, actions: np.ndarray) -> TeamStep:
        """Step every env; finished ones reset at once (gymnasium's same-step autoreset)."""
        batch, reward, terminated, truncated, info = self.vec.step(actions)
        next_obs = _team_obs(batch)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        final = next_obs
        if done.any():
            final = TeamObs(*(field.copy() for field in next_obs))
            for e in np.flatnonzero(done):
                last = info["final_obs"][e]
                final.obs[e], final.state[e] = last["obs"], last["state"]
                final.avail[e], final.alive[e] = last["avail"].astype(bool), last["alive"].astype(bool)
                final_info = info.get("final_info", {})
                infos[e] = {
                    key: float(values[e])
                    for key, values in final_info.items()
                    if not key.startswith("_") and final_info[f"_{key}"][e]
                }
        return TeamStep(next_obs, final, reward.astype(np.float32), terminated, truncated, infos)

    def render(self) -> Any:
        """Render the first env."""
        return self.vec.call("render")[0]

    def close(self) -> None:
        """Close the vector env and its workers."""
        self.vec.close()


class _TeamEnvFactory:
    """Picklable ``TeamEnv`` constructor for gymnasium's worker processes."""

    def __init__(self, factory: EnvFactory, team_reward: TeamReward) -> None:
        self.factory = factory
        self.team_reward = team_reward

    def __call__(self) -> TeamEnv:
        return TeamEnv(self.factory(), self.team_reward)


def as_factory(env: ParallelEnv | EnvFactory | str) -> tuple[EnvFactory | None, ParallelEnv]:
    """Split ``env`` (an instance, a zero-argument factory or a registered name such as
    ``"predator_prey"``) into ``(factory or None, instance)``."""
    if isinstance(env, str):
        env = make_env_factory(env)
    if isinstance(env, ParallelEnv | AECEnv) or hasattr(env, "possible_agents"):
        return None, as_parallel_env(env)
    if callable(env):
        return env, as_parallel_env(env())
    raise TypeError(f"expected a PettingZoo ParallelEnv or a zero-argument factory of one, got {type(env)!r}")


__all__ = [
    "EPISODE_LENGTH_ATTRS",
    "WIN_KEYS",
    "AECEnv",
    "EnvError",
    "EnvFactory",
    "GymTeamVecEnv",
    "ParallelEnv",
    "TeamEnv",
    "TeamObs",
    "TeamReward",
    "TeamSpec",
    "TeamStep",
    "TeamVecEnv",
    "as_factory",
    "as_parallel_env",
    "build_spec",
    "episode_length_hint",
    "team_reward_fn",
]
