"""Rollout throughput against the number of environment copies: LSF-SAC acting on predator-prey.

Measures environment steps per second of the loop a rollout runs, without training: the LSF-SAC
``MlpPolicy`` picks actions for every env in one batched forward pass (``model.act``), then the
team vector env steps. ``n_envs = 1`` steps in-process (``"sync"``); ``n_envs > 1`` steps its
copies in gymnasium ``AsyncVectorEnv`` worker processes (``"async"``) and, for comparison,
in-process one after another (``"sync"``). All counts are measured in this one run, so the ratios
to ``n_envs = 1`` compare like with like.

    python benchmarks/throughput_n_envs.py --steps 6000 --n-envs 1 2 4
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from marl_lsf import LSFSAC
from marl_lsf.env_registry import make_env_factory
from marl_lsf.team_env import make_team_vec_env

RESULTS = Path(__file__).parent / "results"


def steps_per_second(n_envs: int, vectorization: str, steps: int, warmup: int) -> float:
    """Environment steps per second (summed over the copies) of ``model.act`` + ``vec.step``."""
    factory = make_env_factory("predator_prey")
    model = LSFSAC("MlpPolicy", factory, seed=0, device="cpu", n_threads=1)
    model.env.close()
    vec = make_team_vec_env(factory, n_envs, vectorization)
    try:
        obs = vec.reset(seed=0)
        iterations = max(steps // n_envs, 1)
        start = 0.0
        for i in range(warmup + iterations):
            if i == warmup:
                start = time.perf_counter()
            actions, _ = model.act(obs.obs, obs.avail)
            obs = vec.step(actions).next
        return iterations * n_envs / (time.perf_counter() - start)
    finally:
        vec.close()


def main() -> None:
    """Measure every ``--n-envs`` value and write ``results/throughput_n_envs.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6000, help="measured env steps per setting")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured vector steps first")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", type=Path, default=RESULTS / "throughput_n_envs.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    settings = [(n, mode) for n in args.n_envs for mode in (("async", "sync") if n > 1 else ("sync",))]
    rates = {(n, mode): steps_per_second(n, mode, args.steps, args.warmup) for n, mode in settings}
    load_after = os.getloadavg()
    base = rates.get((1, "sync"))
    lines = [
        "# Rollout throughput against n_envs (LSF-SAC MlpPolicy acting on predator-prey)",
        "",
        f"Command: `python benchmarks/throughput_n_envs.py --steps {args.steps} --warmup {args.warmup} "
        f"--n-envs {' '.join(map(str, args.n_envs))}`",
        "",
        f"Machine: {os.cpu_count()} cores, shared with other work; load average (1/5/15 min) "
        f"{'/'.join(f'{x:.2f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.2f}' for x in load_after)} after. Torch threads: 1 in the acting process. "
        "Default predator-prey (10x10 grid, 8 predators, 8 prey); no training, only `model.act` + "
        "`vec.step`. async: AsyncVectorEnv worker processes; sync: in-process, one env after another.",
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
