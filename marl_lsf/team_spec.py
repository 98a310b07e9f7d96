"""The shapes of a team view: a PettingZoo ``ParallelEnv``'s spaces as one ``TeamSpec``, and its arrays.

``build_spec`` derives a ``TeamSpec`` from an env's spaces once and refuses what the algorithms
cannot handle (non-Discrete actions, non-Box observations, AEC or single-agent envs);
``TeamSpec.encode`` turns a PettingZoo observation dict into the padded ``[n_agents, ...]``
arrays with their action masks. ``TeamObs`` and ``TeamStep`` are the arrays of ``E`` team
environments stepped together. ``marl_lsf.team_env`` builds the team environments on these and
re-exports every name here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv


class EnvError(ValueError):
    """An environment that the team view cannot handle, or that returned invalid data."""


@dataclass(frozen=True)
class TeamSpec:
    """Fixed shapes of a team view, derived once from a ParallelEnv's spaces.

    Saved with every model (as JSON) so that a loaded model can check the env it is given.
    """

    agents: tuple[str, ...]
    obs_shapes: tuple[tuple[int, ...], ...]
    action_counts: tuple[int, ...]
    state_dim: int
    state_from_env: bool
    mask_source: str

    @property
    def n_agents(self) -> int:
        """Number of agent slots (``len(possible_agents)``)."""
        return len(self.agents)

    @property
    def obs_dim(self) -> int:
        """Flattened, padded observation size."""
        return max(math.prod(shape) for shape in self.obs_shapes)

    @property
    def n_actions(self) -> int:
        """Padded number of discrete actions."""
        return max(self.action_counts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of this spec."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TeamSpec:
        """Inverse of ``to_json``."""
        return cls(
            agents=tuple(data["agents"]),
            obs_shapes=tuple(tuple(int(d) for d in s) for s in data["obs_shapes"]),
            action_counts=tuple(int(n) for n in data["action_counts"]),
            state_dim=int(data["state_dim"]),
            state_from_env=bool(data["state_from_env"]),
            mask_source=str(data["mask_source"]),
        )

    def mismatch(self, other: TeamSpec) -> str | None:
        """Describe how ``other`` differs in agents or spaces from this spec, or None if compatible."""
        for field in ("agents", "obs_shapes", "action_counts", "state_dim"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine != theirs:
                return f"{field}: model has {mine}, env has {theirs}"
        return None

    # -- conversion of PettingZoo dicts into arrays (shared by TeamEnv and predict) ---------------

    def encode(
        self,
        observations: Mapping[str, Any],
        infos: Mapping[str, Any] | None = None,
        *,
        step: int | None = None,
        require_all: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Turn a PettingZoo observation dict into ``(obs [N, O], avail [N, A], alive [N])``.

        Agents absent from ``observations`` are treated as gone (zero obs, no-op only, not alive)
        unless ``require_all`` is set, in which case a missing agent is an error.
        """
        n, obs_dim, n_actions = self.n_agents, self.obs_dim, self.n_actions
        unknown = set(observations) - set(self.agents)
        if unknown:
            raise EnvError(f"observations for unknown agents {sorted(unknown)}; expected {list(self.agents)}")
        obs = np.zeros((n, obs_dim), dtype=np.float32)
        avail = np.zeros((n, n_actions), dtype=bool)
        alive = np.zeros(n, dtype=bool)
        where = "" if step is None else f" at step {step}"
        for i, agent in enumerate(self.agents):
            raw = observations.get(agent)
            if raw is None:
                if require_all:
                    raise EnvError(f"no observation for agent {agent!r}; expected all of {list(self.agents)}")
                avail[i, 0] = True
                continue
            mask = None
            if isinstance(raw, Mapping):
                mask = raw.get("action_mask")
                raw = raw["observation"]
            elif infos is not None and isinstance(infos.get(agent), Mapping):
                mask = infos[agent].get("action_mask")
            array = np.asarray(raw, dtype=np.float32)
            if array.shape != self.obs_shapes[i]:
                raise EnvError(
                    f"agent {agent!r} observation has shape {array.shape}{where}, "
                    f"but its observation space has shape {self.obs_shapes[i]}"
                )
            obs[i, : array.size] = array.reshape(-1)
            count = self.action_counts[i]
            if mask is None:
                avail[i, :count] = True
            else:
                mask = np.asarray(mask).reshape(-1).astype(bool)
                if mask.size != count:
                    raise EnvError(
                        f"agent {agent!r} action mask has {mask.size} entries{where}, expected {count}"
                    )
                if not mask.any():
                    raise EnvError(f"agent {agent!r} has no available action{where}")
                avail[i, :count] = mask
            alive[i] = True
        if not np.isfinite(obs).all():  # one test for all agents (absent ones are zeros)
            agent = self.agents[int(np.flatnonzero(~np.isfinite(obs).all(axis=1))[0])]
            raise EnvError(f"agent {agent!r} observation contains NaN or inf{where}")
        return obs, avail, alive


def as_parallel_env(env: Any) -> ParallelEnv:
    """``env`` itself when it is a PettingZoo ParallelEnv; a ``TypeError`` saying what to do otherwise."""
    if isinstance(env, AECEnv):
        raise TypeError(
            "got a PettingZoo AEC environment; marl-lsf needs the parallel API. Convert it with "
            "`pettingzoo.utils.conversions.aec_to_parallel(env)` or use the env's `parallel_env()` "
            "constructor."
        )
    if isinstance(env, gym.Env):
        raise TypeError("got a single-agent gymnasium.Env; marl-lsf needs a PettingZoo ParallelEnv")
    if not all(hasattr(env, name) for name in ("possible_agents", "reset", "step", "observation_space")):
        raise TypeError(
            f"expected a PettingZoo ParallelEnv (or a zero-argument factory of one), got {type(env)!r}"
        )
    return env


def build_spec(env: ParallelEnv) -> TeamSpec:
    """Derive the ``TeamSpec`` of a ParallelEnv from its spaces; refuse what LSF-SAC cannot handle."""
    env = as_parallel_env(env)
    agents = tuple(env.possible_agents)
    if not agents:
        raise EnvError("the environment has no possible_agents")
    obs_shapes: list[tuple[int, ...]] = []
    action_counts: list[int] = []
    mask_source = "none"
    for agent in agents:
        act_space = env.action_space(agent)
        if not isinstance(act_space, spaces.Discrete):
            raise EnvError(
                f"agent {agent!r} has action space {act_space}; LSF-SAC, QMIX and VDN need Discrete "
                "actions (continuous control is not supported)"
            )
        if act_space.start != 0:
            raise EnvError(
                f"agent {agent!r} has a Discrete action space starting at {act_space.start}; expected 0"
            )
        obs_space = env.observation_space(agent)
        if isinstance(obs_space, spaces.Dict):
            if "observation" not in obs_space.spaces:
                raise EnvError(f"agent {agent!r} has a Dict observation space without an 'observation' key")
            if "action_mask" in obs_space.spaces:
                mask_source = "observation"
            obs_space = obs_space["observation"]
        if not isinstance(obs_space, spaces.Box):
            raise EnvError(
                f"agent {agent!r} has observation space {obs_space}; expected a Box (or a Dict with one)"
            )
        obs_shapes.append(tuple(int(d) for d in obs_space.shape))
        action_counts.append(int(act_space.n))
    state_space = getattr(env, "state_space", None)
    state_from_env = isinstance(state_space, spaces.Box)
    if state_from_env:
        state_dim = math.prod(state_space.shape)
    else:
        state_dim = len(agents) * max(math.prod(s) for s in obs_shapes)
    return TeamSpec(agents, tuple(obs_shapes), tuple(action_counts), state_dim, state_from_env, mask_source)


#: Attributes that declare an episode length limit (PettingZoo, SMAC, SMAX spellings).
EPISODE_LENGTH_ATTRS = ("max_cycles", "episode_limit", "max_steps", "max_episode_steps")


def episode_length_hint(env: ParallelEnv) -> int | None:
    """The env's episode length limit from common attribute names, or None."""
    target = getattr(env, "unwrapped", env)
    for name in EPISODE_LENGTH_ATTRS:
        value = getattr(target, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class TeamObs(NamedTuple):
    """Team observations of ``E`` environments."""

    obs: np.ndarray  # [E, N, O] float32
    state: np.ndarray  # [E, S] float32
    avail: np.ndarray  # [E, N, A] bool
    alive: np.ndarray  # [E, N] bool


class TeamStep(NamedTuple):
    """The result of stepping ``E`` environments with same-step autoreset.

    ``next`` is what the agents act on next (a fresh episode's first observation where an
    episode ended); ``final`` is the observation each transition ended in (equal to ``next``
    where the episode goes on). ``infos[e]`` is the team info of env ``e`` (empty mid-episode).
    """

    next: TeamObs
    final: TeamObs
    reward: np.ndarray  # [E] float32
    terminated: np.ndarray  # [E] bool
    truncated: np.ndarray  # [E] bool
    infos: list[dict[str, Any]]
