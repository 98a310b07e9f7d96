"""Wall time of a sweep on a local Ray against the same runs one after another in this process.

Four LSF-SAC runs (predator-prey, seeds 0-3) train twice: first in-process, one after another,
through ``marl_lsf.sweep.train_run`` (the body of each Ray task), then with
``marl_lsf.sweep.sweep`` on a local Ray of ``--num-cpus`` CPUs, one CPU and one torch thread per
run. The sweep's time includes starting and stopping Ray and writing the summary and plots.

    python benchmarks/sweep_speedup.py --timesteps 3000 --num-cpus 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from marl_lsf.sweep import SweepGrid, sweep, train_run

RESULTS = Path(__file__).parent / "results"


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Time both ways of running the grid and write ``results/sweep_speedup.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=3000, help="environment steps per run")
    parser.add_argument("--runs", type=int, default=4, help="runs (seeds 0..runs-1)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--out", type=Path, default=RESULTS / "sweep_speedup.md")
    args = parser.parse_args()
    grid = SweepGrid.from_dict(
        {
            "algos": ["lsfsac"],
            "envs": ["predator_prey"],
            "seeds": list(range(args.runs)),
            "timesteps": args.timesteps,
            "eval_episodes": 2,
            "eval_freq": args.timesteps // 2,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        load_start = _load()
        start = time.perf_counter()
        sequential = [train_run(spec) for spec in grid.runs(Path(tmp) / "sequential")]
        sequential_s = time.perf_counter() - start
        load_middle = _load()
        start = time.perf_counter()
        swept = sweep(grid, Path(tmp) / "ray", num_cpus=args.num_cpus)
        sweep_s = time.perf_counter() - start
        load_end = _load()
    failed = [r.error for r in sequential + swept.runs if not r.ok]
    if failed:
        raise SystemExit(f"runs failed: {failed}")
    run_times = ", ".join(f"{r.wall_s:.1f}" for r in sequential)
    ray_run_times = ", ".join(f"{r.wall_s:.1f}" for r in swept.runs)
    lines = [
        "# Sweep speedup: local Ray against one run after another",
        "",
        f"Command: `python benchmarks/sweep_speedup.py --timesteps {args.timesteps} --runs {args.runs} "
        f"--num-cpus {args.num_cpus}`",
        "",
        f"{args.runs} LSF-SAC MlpPolicy runs on default predator-prey (10x10, 8 predators, 8 prey), "
        f"{args.timesteps} steps each with 2 greedy evaluations of 2 episodes, one torch thread per run. "
        f"Machine: {os.cpu_count()} cores, shared with other work; load average (1/5/15 min) "
        f"{load_start} at the start, {load_middle} between the two, {load_end} at the end.",
        "",
        "| how | wall time (s) | per-run training time (s) |",
        "|---|---:|---|",
        f"| one after another, in-process (`train_run`) | {sequential_s:.1f} | {run_times} |",
        f"| `sweep` on local Ray, num_cpus={args.num_cpus} (incl. Ray start/stop, summary, plots) "
        f"| {sweep_s:.1f} | {ray_run_times} |",
        "",
        f"Speedup: **{sequential_s / sweep_s:.2f}x**.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
