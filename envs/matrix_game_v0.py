"""QTRAN's one-step non-monotonic matrix game (Son et al., 2019) as a PettingZoo ParallelEnv.

Every agent sees the same constant observation, picks one action, and the whole team receives
``payoff[joint_action]``; the episode then ends. The default payoff is the game of the LSF-SAC
paper's Table I, whose optimum (8) is hard to find for monotonic value factorisations::

    [[  8, -12, -12],
     [-12,   0,   0],
     [-12,   0,   0]]

Any payoff tensor works: its number of axes is the number of agents and the length of axis ``k``
is the number of actions of ``agent_k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from numpy.typing import ArrayLike
from pettingzoo import ParallelEnv

from marl_lsf.envs._checks import check_actions, check_render_mode

DEFAULT_PAYOFF: tuple[tuple[float, ...], ...] = (
    (8.0, -12.0, -12.0),
    (-12.0, 0.0, 0.0),
    (-12.0, 0.0, 0.0),
)


def parallel_env(
    payoff: ArrayLike | None = None,
    n_agents: int | None = None,
    render_mode: str | None = None,
) -> MatrixGameEnv:
    """Build a :class:`MatrixGameEnv` (PettingZoo's usual module-level constructor)."""
    return MatrixGameEnv(payoff=payoff, n_agents=n_agents, render_mode=render_mode)


class MatrixGameEnv(ParallelEnv[str, np.ndarray, int]):
    """A one-step cooperative matrix game.

    Args:
        payoff: array-like of finite numbers with one axis per agent; ``payoff[a_0, ..., a_{n-1}]``
            is the team reward of that joint action. Defaults to :data:`DEFAULT_PAYOFF`.
        n_agents: optional expected number of agents; when given, a payoff with a different number
            of axes is refused (catches e.g. a 2-D matrix passed for a 3-agent game).
        render_mode: ``None``, ``"ansi"`` (``render()`` returns the payoff table and the last joint
            action as text) or ``"human"`` (``render()`` prints that text).

    Observation: the constant ``float32`` vector ``[1.0]`` (shape ``(1,)``) for every agent, at
    reset and after the step; it carries no information, as in the paper. ``state()`` is the same
    constant vector. Agents are ``agent_0 .. agent_{n-1}``; ``agent_k`` has
    ``Discrete(payoff.shape[k])`` actions. After the single step every agent is terminated and
    ``agents`` is empty. ``infos`` after the step hold ``"joint_action"`` (tuple of ints) and
    ``"payoff"`` (float).

    Raises:
        ValueError: for a payoff that is not a non-empty, rectangular array of finite numbers, or
            whose number of axes differs from ``n_agents``, and for an unknown ``render_mode``.
    """

    metadata = {"name": "matrix_game_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True}

    def __init__(
        self,
        payoff: ArrayLike | None = None,
        n_agents: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.payoff = _validate_payoff(DEFAULT_PAYOFF if payoff is None else payoff, n_agents)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{k}" for k in range(self.payoff.ndim)]
        self.agents: list[str] = []
        self._observation = np.ones(1, dtype=np.float32)
        self._observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self._action_spaces = {
            agent: spaces.Discrete(n)
            for agent, n in zip(self.possible_agents, self.payoff.shape, strict=True)
        }
        self.state_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self._last_joint_action: tuple[int, ...] | None = None

    def observation_space(self, agent: str) -> spaces.Box:
        """Return the (cached) observation space of ``agent``."""
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        """Return the (cached) action space of ``agent``."""
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start the one-step episode; the game is deterministic, so ``seed`` changes nothing."""
        self.agents = self.possible_agents[:]
        self._last_joint_action = None
        return {agent: self._observation.copy() for agent in self.agents}, {
            agent: {} for agent in self.agents
        }

    def step(
        self, actions: Mapping[str, int]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Play the joint action: every agent gets ``payoff[joint_action]`` and terminates.

        Raises:
            RuntimeError: if the episode is over (or never started): call ``reset()``.
            ValueError: for a missing action, an action for an agent that is not playing, or an
                action outside the agent's action space.
        """
        check_actions(actions, self.agents, self.possible_agents, self._action_spaces)
        joint_action = tuple(int(actions[agent]) for agent in self.agents)
        reward = float(self.payoff[joint_action])
        self._last_joint_action = joint_action
        agents, self.agents = self.agents, []
        observations = {agent: self._observation.copy() for agent in agents}
        rewards = dict.fromkeys(agents, reward)
        terminations = dict.fromkeys(agents, True)
        truncations = dict.fromkeys(agents, False)
        infos = {agent: {"joint_action": joint_action, "payoff": reward} for agent in agents}
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Return the constant global state ``[1.0]``."""
        return self._observation.copy()

    def render(self) -> str | None:
        """Return (``"ansi"``) or print (``"human"``) the payoff table and the last joint action."""
        if self.render_mode is None:
            logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        last = (
            "no action played yet"
            if self._last_joint_action is None
            else f"last joint action {self._last_joint_action} -> payoff "
            f"{self.payoff[self._last_joint_action]:g}"
        )
        text = f"payoff (axis k = actions of agent_k):\n{np.array2string(self.payoff)}\n{last}"
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Nothing to release."""


def _validate_payoff(payoff: ArrayLike, n_agents: int | None) -> np.ndarray:
    """Return ``payoff`` as a float64 array, or raise a ValueError naming what is wrong with it."""
    try:
        array = np.asarray(payoff)
    except ValueError as error:
        raise ValueError(f"payoff must be a rectangular array of numbers: {error}") from None
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"payoff must contain real numbers, got dtype {array.dtype}")
    if array.ndim < 1:
        raise ValueError("payoff must have at least one axis (one per agent), got a scalar")
    if 0 in array.shape:
        raise ValueError(f"payoff has an empty axis (shape {array.shape}): every agent needs >= 1 action")
    if not np.isfinite(array).all():
        raise ValueError("payoff must be finite, got NaN or infinite entries")
    if n_agents is not None:
        if isinstance(n_agents, bool) or not isinstance(n_agents, int | np.integer) or n_agents < 1:
            raise ValueError(f"n_agents must be a positive integer, got {n_agents!r}")
        if array.ndim != n_agents:
            raise ValueError(
                f"payoff has {array.ndim} axes (shape {array.shape}) but n_agents={n_agents}: "
                "it needs one axis per agent"
            )
    return array.astype(np.float64)
