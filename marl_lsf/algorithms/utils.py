"""Helpers of the algorithms: their device and threads, optimizer, exploration schedule and self-type."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
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


def check_positive(**values: int) -> None:
    """Raise a ``ValueError`` naming the first of ``values`` that is not a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def idle_cpus() -> int:
    """The CPUs this process may run on that other processes leave idle, at least 1.

    The CPUs of the process's affinity mask minus the busy ones, clamped to ``[1, CPUs]``; busy is
    the system's 1-minute load average (rounded), or, where lower, the tasks running right now
    besides this one (Linux's ``/proc/loadavg``), since the average still counts, for a minute,
    jobs that have just ended. It is the ``n_threads="auto"`` rule: torch's default of one
    thread per core collapses when other processes share the cores, while on an idle machine the
    update gains from every core (benchmarks/results/threads.md in the repository). Processes
    started together (a sweep) should pass their threads explicitly, as ``marl-lsf sweep`` does.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        busy = float(round(os.getloadavg()[0]))
    except (AttributeError, OSError):  # no load average on this platform
        busy = 0.0
    running = _running_tasks()
    if running is not None:
        busy = min(busy, running - 1)
    return max(1, min(cpus, cpus - int(busy)))


def _running_tasks() -> int | None:
    """Tasks running or runnable now, this one included (``/proc/loadavg``'s fourth field), or None."""
    try:
        with open("/proc/loadavg") as handle:
            return int(handle.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def resolve_threads(n_threads: int | str | None) -> int | None:
    """Torch CPU threads for ``n_threads``: an int as given, ``"auto"`` per ``idle_cpus``, None to
    leave torch's setting alone.

    Raises:
        ValueError: anything else, or a count below 1.
    """
    if n_threads is None:
        return None
    if n_threads == "auto":
        return idle_cpus()
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive int, 'auto' or None, got {n_threads!r}")
    return n_threads


#: glibc's mallopt parameters and the values ``reuse_freed_memory`` sets: the largest mmap threshold
#: glibc accepts on 64-bit systems (32 MiB; ``HEAP_MAX_SIZE / 2``) and a 1 GiB trim threshold.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES, _TRIM_THRESHOLD_BYTES = 32 << 20, 1 << 30


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep the memory of freed large tensors for reuse; returns whether it could.

    By default glibc gives every allocation above a (dynamic) threshold of 128 KiB-32 MiB its own
    fresh pages from the kernel and returns them on free, so each training update faults its
    ~100 MB of activations and gradients in again, page by page, zero-filled by the kernel
    (25,000-60,000 page faults per LSF-SAC update on a predator-prey batch). With the mmap
    threshold at its maximum and a 1 GiB trim threshold the freed blocks stay in the heap and the
    next update reuses them (PyTorch's CPU tuning guide recommends jemalloc or tcmalloc for the
    same reason; this needs neither). The process's resident memory then stays at its training
    peak until it ends. Process-wide and idempotent; does nothing off glibc (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    )


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


class TargetNetworks:
    """Polyak averaging of target networks towards their online networks in one fused update.

    ``target <- (1 - tau) target + tau online`` for every parameter, as Stable-Baselines3's
    ``polyak_update``, but as one ``torch._foreach_lerp_`` over the parameters of every pair
    (the update of torch's own ``swa_utils.get_ema_multi_avg_fn``) instead of two tensor ops per
    parameter, and with the parameter lists gathered once rather than at every update. At
    ``tau = 1`` the targets become exact copies (``lerp`` returns its end point at weight 1).

    Args:
        pairs: ``(online, target)`` modules of identical structure.
    """

    def __init__(self, pairs: Iterable[tuple[torch.nn.Module, torch.nn.Module]]) -> None:
        self.pairs = list(pairs)
        self.online = [p for online, _ in self.pairs for p in online.parameters()]
        self.target = [p for _, target in self.pairs for p in target.parameters()]
        if len(self.online) != len(self.target) or any(
            p.shape != q.shape for p, q in zip(self.online, self.target, strict=True)
        ):
            raise ValueError("each target network must have its online network's parameters")

    def tracks(self, pairs: Iterable[tuple[torch.nn.Module, torch.nn.Module]]) -> bool:
        """Whether ``pairs`` are the very modules these lists were gathered from."""
        mine, theirs = self.pairs, list(pairs)
        return len(mine) == len(theirs) and all(
            a is c and b is d for (a, b), (c, d) in zip(mine, theirs, strict=True)
        )

    @torch.no_grad()
    def update(self, tau: float) -> None:
        """Move every target parameter ``tau`` of the way towards its online parameter."""
        torch._foreach_lerp_(self.target, self.online, tau)
