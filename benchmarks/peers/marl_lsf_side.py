"""marl-lsf's side of the peer benchmark: QMIX or LSF-SAC on PettingZoo MPE simple_spread (discrete).

Run with marl-lsf's python:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peers/marl_lsf_side.py --algorithm qmix

Trains one model with ``learn(frames)`` and prints one JSON line: library, algorithm, mode,
frames, gradient updates, wall seconds of ``learn``, frames per second, the mean return of the
last batch's worth of training episodes and of greedy evaluation episodes run afterwards with
``marl_lsf.evaluate_policy`` (not timed). One torch thread, CPU, no logging.

Equal-work mode (the default) does BenchMARL's work per iteration (``common``): 10 envs in this
process (``vectorization="sync"``), and per 6000 frames (240 episodes of 25 steps) 1000 gradient
updates on batches of 5 episodes (125 transitions; marl-lsf samples whole episodes), 256-wide
networks, a replay memory of 40,000 episodes (1M frames). ``train_freq`` counts completed
episodes, which end 10 at a time, so the updates are spread as the smallest whole number of
rounds that divides a batch evenly: 125 updates after every 30 episodes. LSF-SAC runs with
``n_critics=2``, as BenchMARL's MASAC has two Q-networks. The learning settings (learning rate,
exploration, temperature, TD(lambda)) stay marl-lsf's. ``--defaults`` uses the constructor
defaults as they are (one env, 64-wide networks, one update of 32 episodes per episode).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import common
import torch

import marl_lsf
from marl_lsf import LSFSAC, QMIX, evaluate_policy
from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.team_env import ParallelEnv

ALGORITHMS: dict[str, type[MultiAgentAlgorithm]] = {"qmix": QMIX, "lsfsac": LSFSAC}
#: Where simple_spread lives: the MPE2 package, or PettingZoo before 1.25 moved it there.
ENV_MODULES = ("mpe2.simple_spread_v3", "pettingzoo.mpe.simple_spread_v3")


def env_factory() -> tuple[Callable[[], ParallelEnv], str]:
    """A factory of this benchmark's simple_spread env, and the module it comes from."""
    for name in ENV_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return functools.partial(module.parallel_env, **common.env_kwargs()), name
    raise SystemExit(
        f"simple_spread_v3 not found: install mpe2 (or pettingzoo[mpe]<1.25); tried {ENV_MODULES}"
    )


def training_cadence(episodes_per_batch: int, updates_per_batch: int) -> tuple[int, int]:
    """``(train_freq, gradient_steps)`` giving ``updates_per_batch`` updates per ``episodes_per_batch`` episodes.

    Episodes end ``N_ENVS`` at a time, and ``learn`` trains ``gradient_steps`` times per
    ``train_freq`` episodes ended (rounded down), so ``train_freq`` is the smallest multiple of
    ``N_ENVS`` that divides the batch into phases of a whole number of updates each.
    """
    for train_freq in range(common.N_ENVS, episodes_per_batch + 1, common.N_ENVS):
        if episodes_per_batch % train_freq == 0 and updates_per_batch * train_freq % episodes_per_batch == 0:
            return train_freq, updates_per_batch * train_freq // episodes_per_batch
    raise ValueError(f"{episodes_per_batch} episodes per batch is not a multiple of {common.N_ENVS} envs")


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Constructor arguments beyond env, seed and device for the chosen mode."""
    if args.defaults:
        return {}
    frames_per_batch = args.frames_per_batch or common.FRAMES_PER_BATCH
    train_freq, gradient_steps = training_cadence(
        frames_per_batch // common.EPISODE_STEPS, args.updates_per_batch or common.UPDATES_PER_BATCH
    )
    kwargs: dict[str, Any] = {
        "n_envs": common.N_ENVS,
        "vectorization": "sync",
        "hidden_dim": common.HIDDEN_DIM,
        "batch_size": round(common.TRAIN_BATCH_TRANSITIONS / common.EPISODE_STEPS),
        "buffer_size": common.MEMORY_FRAMES // common.EPISODE_STEPS,
        "learning_starts": 0,
        "train_freq": train_freq,
        "gradient_steps": gradient_steps,
    }
    if args.algorithm == "lsfsac":
        kwargs["n_critics"] = 2
    return kwargs


def main() -> None:
    """Train, evaluate and print the result line."""
    args = common.parse_args(tuple(ALGORITHMS), __doc__.splitlines()[0])
    if args.defaults and (args.frames_per_batch or args.updates_per_batch):
        raise SystemExit("--frames-per-batch and --updates-per-batch shape equal-work mode only")
    torch.set_num_threads(1)
    factory, env_module = env_factory()
    kwargs = model_kwargs(args)
    start = time.perf_counter()
    model = ALGORITHMS[args.algorithm](
        "MlpPolicy", factory, seed=args.seed, device="cpu", n_threads=1, **kwargs
    )
    setup_s = time.perf_counter() - start
    # The training return covers the episodes of the last batch (240 by default), as BenchMARL's does.
    model.ep_info_buffer = deque(
        maxlen=(args.frames_per_batch or common.FRAMES_PER_BATCH) // common.EPISODE_STEPS
    )
    start = time.perf_counter()
    with common.counted_flops(args.count_flops) as counted:
        model.learn(args.frames)
    wall_s = time.perf_counter() - start
    evaluation = evaluate_policy(
        model, factory, n_eval_episodes=args.eval_episodes, deterministic=True, seed=args.seed + 1
    )
    train_returns = [episode["r"] for episode in model.ep_info_buffer]
    common.emit(
        {
            "library": "marl-lsf",
            "version": marl_lsf.__version__,
            "algorithm": args.algorithm,
            "mode": "defaults" if args.defaults else "equal",
            "frames": model.num_timesteps,
            "updates": model._n_updates,
            "wall_s": round(wall_s, 3),
            "frames_per_s": round(model.num_timesteps / wall_s, 1),
            "setup_s": round(setup_s, 3),
            "n_envs": model.n_envs,
            "train_freq": model.train_freq,
            "gradient_steps": model.gradient_steps,
            "batch_transitions": model.batch_size * common.EPISODE_STEPS,
            "hidden_dim": model.hidden_dim,
            "train_return": common.finite_or_none(
                sum(train_returns) / len(train_returns) if train_returns else None
            ),
            "eval_return": common.finite_or_none(evaluation.mean_return),
            "eval_episodes": len(evaluation.episode_returns),
            "env_module": env_module,
            "torch": torch.__version__,
            **common.flop_fields(counted, model._n_updates),
        }
    )


if __name__ == "__main__":
    main()
