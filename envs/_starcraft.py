"""The SMAC conventions shared by ``marl_lsf.envs.smac_v1`` and ``marl_lsf.envs.smax_v0`` (private).

Agents are ``agent_0 .. agent_{n-1}``; an observation is ``{"observation": float32 [obs_dim],
"action_mask": int8 [n_actions]}``; an action must be available in the agent's mask; every acting
agent gets the team reward; an agent whose unit dies terminates and leaves ``agents``; the end of
the battle terminates (or, at the time limit, truncates) every remaining agent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableSequence, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from marl_lsf.envs._checks import check_acting_agents


class StarCraftSpaces:
    """The agents and spaces of the SMAC conventions, for a ParallelEnv to list before ``ParallelEnv``.

    The env calls :meth:`_init_spaces` in its ``__init__``; every agent has the same spaces.
    """

    possible_agents: list[str]
    agents: list[str]
    n_actions: int
    state_space: spaces.Box

    def _init_spaces(self, n_agents: int, obs_dim: int, state_dim: int, n_actions: int) -> None:
        """Set ``possible_agents``, an empty ``agents``, ``n_actions`` and the spaces."""
        self.n_actions = n_actions
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents = []
        self._obs_space = spaces.Dict(
            {
                "observation": spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
                "action_mask": spaces.Box(0, 1, (n_actions,), np.int8),
            }
        )
        self._action_space = spaces.Discrete(n_actions)
        self.state_space = spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)

    def observation_space(self, agent: str) -> spaces.Dict:
        """``Dict(observation=Box(obs_dim) float32, action_mask=Box(0, 1, (n_actions,)) int8)``."""
        self._check_agent(agent)
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Discrete:
        """``Discrete(n_actions)`` in the battle's action layout (see the env's module docstring)."""
        self._check_agent(agent)
        return self._action_space

    def _check_agent(self, agent: str) -> None:
        """Raise a ValueError unless ``agent`` is one of ``possible_agents``."""
        if agent not in self.possible_agents:
            raise ValueError(f"unknown agent {agent!r}; agents are {self.possible_agents}")


def observations(
    agents: Sequence[str], possible_agents: Sequence[str], obs: Sequence[Any], mask: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """The dict observations of ``agents``.

    Args:
        agents: the agents to observe, in the order of ``possible_agents``.
        possible_agents: every agent; agent ``possible_agents[i]`` is unit ``i``.
        obs: per-unit observations (``obs[i]`` is converted to a flat float32 array, without a copy
            when it already is one).
        mask: ``[n_units, n_actions]`` int8 action masks; the observations hold views of its rows,
            so pass an array that nothing else writes to.
    """
    result = {}
    for agent in agents:
        i = possible_agents.index(agent)
        result[agent] = {
            "observation": np.asarray(obs[i], dtype=np.float32).reshape(-1),
            "action_mask": mask[i],
        }
    return result


def fill_actions(
    actions: Mapping[str, Any],
    live_agents: Sequence[str],
    possible_agents: Sequence[str],
    avail: np.ndarray,
    out: MutableSequence[int] | np.ndarray,
) -> None:
    """Check a step's actions and write each into ``out`` at its unit's index.

    Every live agent needs an action and no other agent may have one (see
    :func:`marl_lsf.envs._checks.check_acting_agents`; agents no longer live are called dead). Each action is
    converted with ``int()``, must lie in ``[0, n_actions)`` and must be available in ``avail``.
    Entries of ``out`` for dead units are left as they are (the caller fills them with the no-op).

    Args:
        actions: a step's actions, keyed by agent.
        live_agents: the agents playing this step.
        possible_agents: every agent; agent ``possible_agents[i]`` is unit ``i``.
        avail: ``[n_units, n_actions]`` availability masks of the current observation.
        out: one action per unit, written in place.

    Raises:
        RuntimeError: when no agent is live (before ``reset()`` or after the battle ended).
        ValueError: for actions of unknown or dead agents, a live agent with no action, or an action
            out of range or not available.
    """
    check_acting_agents(actions, live_agents, possible_agents, gone="dead")
    n_actions = avail.shape[1]
    for agent, action in actions.items():
        i = possible_agents.index(agent)
        a = int(action)
        if not 0 <= a < n_actions:
            raise ValueError(f"action {a} of {agent!r} is out of range [0, {n_actions})")
        if not avail[i, a]:
            raise ValueError(
                f"action {a} of {agent!r} is not available; available: {np.flatnonzero(avail[i]).tolist()}"
            )
        out[i] = a


def end_of_step(
    acting: Sequence[str], died: Collection[str], reward: float, terminated: bool, truncated: bool
) -> tuple[dict[str, float], dict[str, bool], dict[str, bool], list[str]]:
    """Rewards, terminations and truncations of the agents that acted, and the agents still live.

    Every acting agent gets ``reward``; an agent whose unit died terminates; a ``terminated`` battle
    terminates every other acting agent and a ``truncated`` one truncates them; after either, no
    agent is live.
    """
    rewards = dict.fromkeys(acting, reward)
    terminations = {agent: agent in died or terminated for agent in acting}
    truncations = {agent: truncated and agent not in died for agent in acting}
    live = [] if terminated or truncated else [agent for agent in acting if agent not in died]
    return rewards, terminations, truncations, live
