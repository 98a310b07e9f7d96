"""Checks of what a PettingZoo ``ParallelEnv`` returns, naming the rule, the agent and the step it breaks.

PettingZoo's parallel API: ``reset(seed, options) -> (observations, infos)`` and
``step(actions) -> (observations, rewards, terminations, truncations, infos)``, each a dict keyed
by agent name, every reward a number. An env that breaks it would otherwise fail deep inside the
team view with an error that names none of these.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from marl_lsf.team_spec import EnvError

#: Names of the parts of ``step``'s return value, in order.
STEP_PARTS = ("observations", "rewards", "terminations", "truncations", "infos")


def checked_reset(result: Any) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``(observations, infos)`` of ``env.reset(...)``; raises ``EnvError`` when it is not that pair of dicts."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise EnvError(
            f"env.reset() returned {_describe(result)}; PettingZoo's parallel API returns the pair "
            "(observations, infos)"
        )
    for name, part in zip(("observations", "infos"), result, strict=True):
        if not isinstance(part, Mapping):
            raise EnvError(
                f"env.reset() returned {name} as {_describe(part)}, expected a dict keyed by agent"
            )
    return result


def checked_step(result: Any, step: int) -> tuple[Mapping[str, Any], ...]:
    """The five dicts of ``env.step(...)`` at episode step ``step``, every reward a finite number.

    Raises:
        EnvError: a return value that is not five dicts, or a reward that is not a finite number,
            naming the part, the agent and the step.
    """
    if not (isinstance(result, tuple) and len(result) == len(STEP_PARTS)):
        raise EnvError(
            f"env.step() returned {_describe(result)} at step {step}; PettingZoo's parallel API returns "
            f"the 5-tuple ({', '.join(STEP_PARTS)})"
        )
    for name, part in zip(STEP_PARTS, result, strict=True):
        if not isinstance(part, Mapping):
            raise EnvError(
                f"env.step() returned {name} as {_describe(part)} at step {step}, expected a dict keyed by agent"
            )
    for agent, value in result[1].items():
        if not isinstance(value, numbers.Real):
            raise EnvError(f"agent {agent!r} reward at step {step} is {_describe(value)}, expected a number")
        if not math.isfinite(value):
            raise EnvError(f"agent {agent!r} reward is {value} at step {step}")
    return result


def _describe(value: Any) -> str:
    """A short description of a value for an error message: its type, and its length or shape."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} values"
    return "None" if value is None else f"a {type(value).__name__}"
