"""What both sides of the peer benchmark share: the task, the equal-work settings, the command line, the result line.

Standard library only: ``benchmarl_side.py`` imports it from BenchMARL's virtual environment and
``marl_lsf_side.py`` and ``compare.py`` from marl-lsf's, each as a sibling module of the script.

The equal-work configuration is BenchMARL's off-policy iteration: collect ``FRAMES_PER_BATCH``
frames from ``N_ENVS`` environments, then run ``UPDATES_PER_BATCH`` gradient updates on batches
of ``TRAIN_BATCH_TRANSITIONS`` transitions sampled from a replay memory of ``MEMORY_FRAMES``
frames, with ``HIDDEN_DIM``-wide two-layer MLPs. A frame is one step of one environment (all
agents together), the unit both libraries count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any

#: PettingZoo MPE simple_spread, discrete actions: agents, episode length, reward mix.
N_AGENTS = 3
EPISODE_STEPS = 25
LOCAL_RATIO = 0.5
#: Equal-work settings (BenchMARL's default off-policy experiment configuration).
N_ENVS = 10
FRAMES_PER_BATCH = 6000
UPDATES_PER_BATCH = 1000
TRAIN_BATCH_TRANSITIONS = 128
MEMORY_FRAMES = 1_000_000
HIDDEN_DIM = 256
#: Greedy evaluation episodes after training (not timed).
EVAL_EPISODES = 20
#: Budget of one run in frames.
DEFAULT_FRAMES = 30_000


def env_kwargs() -> dict[str, Any]:
    """Constructor arguments of ``simple_spread_v3`` for this benchmark (the same in both libraries)."""
    return {
        "N": N_AGENTS,
        "local_ratio": LOCAL_RATIO,
        "max_cycles": EPISODE_STEPS,
        "continuous_actions": False,
    }


def parse_args(algorithms: tuple[str, ...], description: str) -> argparse.Namespace:
    """Parse one side's command line and check the iteration shape.

    ``frames_per_batch`` and ``updates_per_batch`` stay None where not given: each side then
    uses its mode's own values. In equal-work mode ``frames`` must be a whole number of batches
    and a batch a whole number of rounds of episodes of the ``N_ENVS`` environments.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--algorithm", choices=algorithms, required=True)
    parser.add_argument(
        "--frames", type=int, default=DEFAULT_FRAMES, help="frames to collect (default: %(default)s)"
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="the library's own default configuration instead of the equal-work one",
    )
    parser.add_argument(
        "--frames-per-batch",
        type=int,
        help=f"frames collected per iteration (default: {FRAMES_PER_BATCH}); smaller for smoke tests",
    )
    parser.add_argument(
        "--updates-per-batch",
        type=int,
        help=f"gradient updates per iteration (default: {UPDATES_PER_BATCH}); smaller for smoke tests",
    )
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument(
        "--count-flops",
        action="store_true",
        help="count the training's floating-point operations (torch's FlopCounterMode; slows it, "
        "so its frames/s is not a speed measurement)",
    )
    args = parser.parse_args()
    if args.frames < 1 or args.eval_episodes < 1:
        parser.error("--frames and --eval-episodes must be positive")
    for name in ("frames_per_batch", "updates_per_batch"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if not args.defaults:
        batch = args.frames_per_batch or FRAMES_PER_BATCH
        round_frames = N_ENVS * EPISODE_STEPS
        if batch % round_frames or args.frames % batch:
            parser.error(
                f"in equal-work mode --frames-per-batch must be a multiple of {round_frames} "
                f"({N_ENVS} envs x {EPISODE_STEPS} steps) and --frames a multiple of it; "
                f"got {batch} and {args.frames}"
            )
    return args


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None when it is missing, NaN or infinite (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@contextlib.contextmanager
def counted_flops(enabled: bool) -> Iterator[dict[str, float]]:
    """Count the block's floating-point operations when ``enabled``; the yielded dict then gets ``"gflop"``.

    Every aten operation that ``torch.utils.flop_counter`` has a formula for (matrix products and
    convolutions, forward and backward) is counted by a dispatch mode with those formulas. Not
    ``FlopCounterMode`` itself: its module tracker fails on TensorDict modules (BenchMARL's).
    torch is imported here so that this module stays importable without it.
    """
    counted: dict[str, float] = {}
    if not enabled:
        yield counted
        return
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Counter() as counter:
        yield counted
    counted["gflop"] = counter.total / 1e9


def flop_fields(counted: dict[str, float], updates: int) -> dict[str, Any]:
    """The result-line fields of a count by ``counted_flops`` (none when nothing was counted)."""
    if "gflop" not in counted:
        return {}
    return {
        "gflop": round(counted["gflop"], 3),
        "gflop_per_update": round(counted["gflop"] / max(updates, 1), 4),
    }


def emit(result: dict[str, Any]) -> None:
    """Print the one JSON result line that ``compare.py`` reads (the last line starting with ``{``)."""
    print(json.dumps(result, sort_keys=False), flush=True)
