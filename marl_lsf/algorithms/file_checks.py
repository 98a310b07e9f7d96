"""Checks of a model file's contents before ``PersistenceMixin.load`` builds anything from them.

Each check refuses what it cannot use with a ``ModelFileError`` naming the file and the field: the
saved team spec, the constructor settings (by the types of the constructors' annotations and the
ranges torch and NumPy take) and the optimizer states. Used by ``marl_lsf.algorithms.persistence``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from marl_lsf.save_util import ModelFileError
from marl_lsf.team_env import TeamSpec

#: Largest ``int`` setting a file may hold (sizes, counts, seeds): torch and NumPy take int64.
MAX_INT_SETTING = 2**63 - 1
#: Largest size of a ``float`` setting a file may hold: the networks and losses compute in float32.
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)
#: Largest size a saved space may have (an observation dimension, an action count, the state size).
_MAX_SPACE_SIZE = 2**31 - 1

#: Python types a saved setting may have, by the names in the constructors' annotations.
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "None": (type(None),),
}


def checked_spec(data: Any, path: str | Path) -> TeamSpec:
    """The team's agents and spaces saved in ``data.json``, refused with ``ModelFileError`` unless
    well formed: distinct agent names, one observation shape and one action count each, and sizes
    that are whole numbers up to ``_MAX_SPACE_SIZE`` (at least 1; the state size at least 0).
    """
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: the saved spec is missing or not a JSON object, got {short(data)}")
    try:
        spec = TeamSpec.from_json(data)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"{path}: the saved spec is malformed ({exc!r})") from exc
    n = len(spec.agents)
    sizes = [size for shape in spec.obs_shapes for size in shape] + list(spec.action_counts)
    if not (
        n > 0
        and all(isinstance(agent, str) for agent in spec.agents)
        and len(set(spec.agents)) == n
        and len(spec.obs_shapes) == len(spec.action_counts) == n
        and all(1 <= size <= _MAX_SPACE_SIZE for size in sizes)
        and 0 <= spec.state_dim <= _MAX_SPACE_SIZE
    ):
        raise ModelFileError(
            f"{path}: the saved spec is malformed: agents {short(list(spec.agents))} must be distinct "
            f"names with one observation shape and one action count each, sizes in 1..{_MAX_SPACE_SIZE} "
            f"(obs_shapes {short(list(spec.obs_shapes))}, action_counts {short(list(spec.action_counts))}, "
            f"state_dim {short(spec.state_dim)})"
        )
    return spec


def short(value: Any) -> str:
    """``repr(value)`` (of its number for a one-element tensor), cut to a length that fits an error line."""
    text = repr(_scalar(value))
    return text if len(text) <= 60 else text[:57] + "..."


#: Adam's per-group settings a loaded optimizer state must hold as finite non-negative numbers.
_OPTIMIZER_NUMBERS = ("lr", "eps", "weight_decay")


def check_optimizer_state(optimizer: torch.optim.Optimizer, name: str, path: str | Path) -> None:
    """Refuse a loaded optimizer state that would fail, or train on garbage, at the first update.

    ``Optimizer.load_state_dict`` checks only the number of parameters per group; this checks that
    every per-parameter state tensor (Adam's moments) has its parameter's shape, that step counts
    are finite and non-negative, and that the groups' learning rate, ``eps``, ``weight_decay`` and
    ``betas`` are numbers in range. Raises ``ModelFileError`` naming the field.
    """
    for g, group in enumerate(optimizer.param_groups):
        for key in _OPTIMIZER_NUMBERS:
            if not _finite_non_negative(value := group.get(key, 0.0)):
                raise ModelFileError(
                    f"{path}: {name} param_groups/{g}/{key} must be a finite number >= 0, got {short(value)}"
                )
        betas = group.get("betas", (0.0, 0.0))
        if not (
            isinstance(betas, tuple | list)
            and len(betas) == 2
            and all(_finite_non_negative(b, 1) for b in betas)
        ):
            raise ModelFileError(
                f"{path}: {name} param_groups/{g}/betas must be two numbers in [0, 1), got {short(betas)}"
            )
        for i, param in enumerate(group["params"]):
            for key, value in optimizer.state.get(param, {}).items():
                if key == "step" and not _finite_non_negative(value):
                    raise ModelFileError(
                        f"{path}: {name} state of parameter {i} (group {g}) has step {short(value)}, "
                        "not a finite number >= 0"
                    )
                if key != "step" and isinstance(value, torch.Tensor) and value.shape != param.shape:
                    raise ModelFileError(
                        f"{path}: {name} state {key} of parameter {i} (group {g}) has shape "
                        f"{tuple(value.shape)}, its parameter {tuple(param.shape)}"
                    )


def _finite_non_negative(value: Any, below: float = math.inf) -> bool:
    """Whether ``value`` (a number or a one-element tensor, not a bool) lies in ``[0, below)``."""
    value = _scalar(value)
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value < below


def _scalar(value: Any) -> Any:
    """The number in a one-element tensor (optimizers save ``step`` as one); anything else as is."""
    return value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value


def checked_params(cls: type, params: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """The saved settings, each checked against its constructor annotation's JSON types and ranges.

    Raises ``ModelFileError`` naming the first setting of another type, a number that is not
    finite, an ``int`` setting (a size, a count or a seed) outside ``0..MAX_INT_SETTING``, a
    ``float`` setting larger in size than float32 holds (the networks and losses compute in
    float32), or a negative learning rate. A whole float for an ``int`` setting (``1e4`` passed
    as ``learning_starts``) becomes an int, and an int for a ``float`` setting a float. Settings
    without such an annotation are left to the constructor.
    """
    annotations: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        annotations.update({k: str(v) for k, v in getattr(init, "__annotations__", {}).items()})
    checked = dict(params)
    for key, value in params.items():
        names = [name.strip() for name in annotations.get(key, "").split("|")]
        allowed = tuple(t for name in names for t in _SETTING_TYPES.get(name, ()))
        if not allowed:
            continue
        if isinstance(value, float) and int in allowed and float not in allowed and value.is_integer():
            value = checked[key] = int(value)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        fits = bool in allowed if isinstance(value, bool) else isinstance(value, allowed)
        if not fits or (isinstance(value, float) and not math.isfinite(value)):
            expected = " or ".join(n for n in names if n in _SETTING_TYPES)
            kind = f"a finite {expected}" if int in allowed else f"a {expected}"
            raise ModelFileError(f"{path}: model setting {key!r} must be {kind}, got {short(value)}")
        if not numeric:
            continue
        if "float" not in names and not 0 <= value <= MAX_INT_SETTING:
            raise ModelFileError(
                f"{path}: model setting {key!r} must be a whole number in 0..{MAX_INT_SETTING}, got {short(value)}"
            )
        if "float" in names and not abs(value) <= _FLOAT32_MAX:
            raise ModelFileError(
                f"{path}: model setting {key!r} must be at most {_FLOAT32_MAX:.4g} in size (float32), got {short(value)}"
            )
        if "float" in names and isinstance(value, int) and "int" not in names:
            checked[key] = float(value)  # 10**30 would overflow where it meets a float32 tensor
        if key.endswith("learning_rate") and value < 0:
            raise ModelFileError(f"{path}: model setting {key!r} must be >= 0, got {short(value)}")
    return checked
