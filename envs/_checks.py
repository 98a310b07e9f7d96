"""Argument and action checks shared by the PettingZoo envs of this package (private).

The step-time checks run on every ``step()``: they only do more than a membership test per agent
when something is wrong, and they copy nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces


def check_render_mode(render_mode: str | None, render_modes: Sequence[str]) -> None:
    """Raise a ValueError unless ``render_mode`` is ``None`` or one of ``render_modes``."""
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode={render_mode!r} is not supported; use one of {render_modes} or None")


def check_acting_agents(
    actions: Mapping[str, Any],
    live_agents: Sequence[str],
    possible_agents: Collection[str],
    gone: str = "finished",
) -> None:
    """Check that ``actions`` has a key for every live agent and for no other agent.

    Args:
        actions: a step's actions, keyed by agent.
        live_agents: the agents playing this step (the env's ``agents``).
        possible_agents: every agent of the env (the env's ``possible_agents``).
        gone: how the error message names agents that are known but no longer live, e.g. ``"dead"``.

    Raises:
        RuntimeError: when no agent is live (before ``reset()`` or after the episode ended).
        ValueError: for actions of agents that are unknown or no longer live, or a live agent with
            no action.
    """
    if not live_agents:
        raise RuntimeError(
            "step() called with no live agents (before reset() or after the episode ended): "
            "call reset() to start an episode"
        )
    missing = [agent for agent in live_agents if agent not in actions]
    if len(actions) + len(missing) != len(live_agents):
        live = set(live_agents)
        unknown = [agent for agent in actions if agent not in possible_agents]
        not_live = [agent for agent in actions if agent in possible_agents and agent not in live]
        problems = []
        if unknown:
            problems.append(f"unknown {unknown} (unknown agents; the agents are {list(possible_agents)})")
        if not_live:
            problems.append(f"{gone} {not_live} (live agents: {list(live_agents)})")
        raise ValueError(f"actions given for agents that are not live: {'; '.join(problems)}")
    if missing:
        names = ", ".join(repr(agent) for agent in missing)
        raise ValueError(f"missing action for live agent {names}: no action given, every live agent must act")


def check_actions(
    actions: Mapping[str, Any],
    live_agents: Sequence[str],
    possible_agents: Collection[str],
    action_spaces: Mapping[str, spaces.Discrete],
    gone: str = "finished",
    action_names: Sequence[str] = (),
) -> None:
    """Check a step's actions: one per live agent (see :func:`check_acting_agents`), each in its space.

    An action must be an element of the agent's ``Discrete`` space as gymnasium's ``contains``
    decides: a Python or numpy integer in range (so ``2.0`` or ``"2"`` are refused).

    Args:
        actions: a step's actions, keyed by agent.
        live_agents: the agents playing this step (the env's ``agents``).
        possible_agents: every agent of the env (the env's ``possible_agents``).
        action_spaces: the action space of every live agent.
        gone: how the error message names agents that are known but no longer live.
        action_names: names of the actions, listed in the error message for an action out of space.

    Raises:
        RuntimeError: when no agent is live (before ``reset()`` or after the episode ended).
        ValueError: for actions of agents that are unknown or no longer live, a live agent with no
            action, or an action outside its agent's space.
    """
    check_acting_agents(actions, live_agents, possible_agents, gone)
    for agent in live_agents:
        space, action = action_spaces[agent], actions[agent]
        # A plain int in range is what the team view sends every step: decided without ``contains``.
        in_range = type(action) is int and space.start <= action < space.start + space.n
        if not in_range and not space.contains(action):
            names = f" (0..{len(action_names) - 1}: {', '.join(action_names)})" if action_names else ""
            raise ValueError(
                f"action {actions[agent]!r} of agent {agent!r} is outside its action space {space}{names}"
            )


def check_vector_actions(actions: Any, num_envs: int, n_agents: int) -> np.ndarray:
    """``actions`` as an integer array of shape ``(num_envs, n_agents)``, as a batched env's ``step`` takes them.

    Raises:
        ValueError: for another shape or a non-integer dtype, naming what was expected.
    """
    array = np.asarray(actions)
    expected = (num_envs, n_agents)
    if array.shape != expected:
        raise ValueError(f"actions have shape {array.shape}, expected {expected} (num_envs, n_agents)")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"actions must be integers, got dtype {array.dtype}")
    return array
