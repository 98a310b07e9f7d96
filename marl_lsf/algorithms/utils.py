"""Helpers of the algorithms: their optimizer, the exploration schedule and the algorithms' self-type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

import torch
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule, get_device

if TYPE_CHECKING:
    from marl_lsf.algorithms.base import MultiAgentAlgorithm

#: The type of ``self`` in methods that return it (``learn``) or build it (``load``).
SelfAlgorithm = TypeVar("SelfAlgorithm", bound="MultiAgentAlgorithm")


def resolve_device(device: torch.device | str) -> torch.device:
    """The torch device of ``device``: ``"auto"`` is CUDA when available, else the CPU
    (Stable-Baselines3's ``get_device``).

    Unlike ``get_device``, which falls back to the CPU, a CUDA device asked for by name on a
    machine without one is an error: a run the user meant for the GPU does not train on the CPU.

    Raises:
        ValueError: an unknown device name, or a CUDA device where torch sees no GPU.
    """
    if not isinstance(device, torch.device) and device != "auto":
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if isinstance(device, torch.device) and device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} asked for, but torch {torch.__version__} sees no CUDA GPU on this "
            "machine; use 'cpu' or 'auto'"
        )
    return get_device(device)


def adam(params: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam with torch's fused implementation where the parameters' device supports it (CPU and
    CUDA in current torch: one kernel for all parameters instead of a loop over them), else the
    default implementation. Both compute the same update up to float rounding.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr)


def epsilon_schedule(fraction: float, initial_eps: float, final_eps: float) -> Schedule:
    """Stable-Baselines3's DQN exploration schedule: epsilon decays linearly from ``initial_eps`` to
    ``final_eps`` over the first ``fraction`` of the run, then stays there.

    Raises:
        ValueError: ``fraction`` outside (0, 1] or an epsilon outside [0, 1], each named.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"exploration_fraction must be in (0, 1], got {fraction}")
    for name, eps in (("exploration_initial_eps", initial_eps), ("exploration_final_eps", final_eps)):
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {eps}")
    return LinearSchedule(initial_eps, final_eps, fraction)
