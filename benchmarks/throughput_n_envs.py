"""Rollout throughput against the number of environment copies: LSF-SAC acting on predator-prey.

Measures environment steps per second of the library's own collection loop with the policy
acting: ``LSFSAC("MlpPolicy", ..., train_freq=10**9).learn(steps)`` never reaches a training
phase, so every second goes to acting, stepping the envs and recording the steps (replay buffer,
episode statistics, callbacks). Each ``n_envs`` runs with every vectorization: ``sync`` (copies
in this process, one batched forward pass per step), ``async`` (gymnasium ``AsyncVectorEnv`` env
workers, the learner acting every step) and ``workers`` (rollout workers acting with their own
policy copy, a chunk of steps at a time). A first ``learn`` warms each model up (worker start,
first allocations) and is not timed. All rates come from this one run, so the ratios to
``n_envs = 1`` compare like with like.

    python benchmarks/throughput_n_envs.py --steps 12000 --n-envs 1 2 4
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from stable_baselines3.common.callbacks import BaseCallback

from marl_lsf import LSFSAC
from marl_lsf.env_registry import make_env_factory

RESULTS = Path(__file__).parent / "results"
MODES = ("sync", "async", "workers")


class StepTimer(BaseCallback):
    """Records the time and step count of every recorded vector step of a ``learn`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] = (0.0, 0)

    def _on_step(self) -> bool:
        self.last = (time.perf_counter(), self.num_timesteps)
        if self.first is None:
            self.first = self.last
        return True

    def rate(self) -> float:
        """Environment steps per second from the first recorded vector step to the last."""
        if self.first is None:
            raise RuntimeError("no step was recorded")
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])


def steps_per_second(n_envs: int, vectorization: str, steps: int) -> float:
    """Environment steps per second (summed over the copies) collected by ``learn`` without training.

    ``learn`` ends with one update (its last phase ends without ``train_freq`` episodes, so it
    trains once); that update comes after the last recorded step and is not timed.
    """
    factory = make_env_factory("predator_prey")
    model = LSFSAC(
        "MlpPolicy",
        factory,
        n_envs=n_envs,
        vectorization=vectorization,
        train_freq=10**9,
        seed=0,
        device="cpu",
    )
    try:
        model.learn(min(steps, 400 * n_envs))
        timer = StepTimer()
        model.learn(steps, callback=timer)
        return timer.rate()
    finally:
        model.env.close()


def main() -> None:
    """Measure every ``--n-envs`` value and write ``results/throughput_n_envs.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12000, help="measured env steps per setting")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", type=Path, default=RESULTS / "throughput_n_envs.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    settings = [(n, mode) for n in args.n_envs for mode in (MODES if n > 1 else ("sync",))]
    rates = {(n, mode): steps_per_second(n, mode, args.steps) for n, mode in settings}
    load_after = os.getloadavg()
    base = rates.get((1, "sync"))
    lines = [
        "# Rollout throughput against n_envs (LSF-SAC MlpPolicy acting on predator-prey)",
        "",
        f"Command: `python benchmarks/throughput_n_envs.py --steps {args.steps} "
        f"--n-envs {' '.join(map(str, args.n_envs))}`",
        "",
        f"Machine: {os.cpu_count()} cores; load average (1/5/15 min) "
        f"{'/'.join(f'{x:.2f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.2f}' for x in load_after)} after. One torch thread per process. Default "
        "predator-prey (10x10 grid, 8 predators, 8 prey, 200-step episodes). What is timed: "
        "`learn(steps)` of a model that never trains (`train_freq=10**9`), i.e. acting with the "
        "policy, stepping the envs and recording every step in the replay buffer, statistics and "
        "callbacks. sync: copies in the learner's process; async: gymnasium `AsyncVectorEnv` env "
        "workers, the learner acting each step; workers: rollout workers (one per core at most) "
        "acting with their own policy copy, one 64-step chunk per round trip.",
        "",
        "| n_envs | vectorization | env steps/s | ratio to n_envs=1 |",
        "|---:|---|---:|---:|",
    ]
    for (n, mode), rate in rates.items():
        ratio = f"{rate / base:.2f}" if base else "-"
        lines.append(f"| {n} | {mode} | {rate:,.0f} | {ratio} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
