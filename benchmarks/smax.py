"""SMAX (JaxMARL's SMAC) benchmark: LSF-SAC vs QMIX, test win rate over environment steps.

    python benchmarks/smax.py --maps 3m 2s3z --seeds 0 1 2 --steps 200000 --processes 12

Each (algorithm, map, seed) trains in its own process with ``RnnPolicy`` and ``n_envs`` battles
stepped in one vmapped JAX call; the greedy team is tested every ``--eval-every`` steps on
``--eval-episodes`` battles. Writes, per map, a PNG of the median test win rate with a min-max
band over seeds, and a markdown summary with the command, machine and wall times.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from runs import RESULTS, SUMMARY_HEADER, Job, command, curves, machine, run_jobs, summary_rows

from marl_lsf.plotting import plot_curves


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--maps", nargs="+", default=["3m", "2s3z"])
    parser.add_argument("--algos", nargs="+", default=["LSFSAC", "QMIX"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda, auto)")
    parser.add_argument("--time-limit", type=float, default=None, help="wall seconds per run")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    jobs = [
        Job(
            algo,
            f"smax:{map_name}",
            seed,
            args.steps,
            args.eval_every,
            args.eval_episodes,
            policy="RnnPolicy",
            algo_kwargs={"n_envs": args.n_envs, "device": args.device},
            time_limit=args.time_limit,
        )
        for map_name in args.maps
        for algo in args.algos
        for seed in args.seeds
    ]
    runs = run_jobs(jobs, args.processes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# SMAX: LSF-SAC vs QMIX (test win rate of the greedy team)",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}; {args.processes} processes, 1 torch thread each, JAX on the CPU.",
        f"Settings: RnnPolicy, n_envs={args.n_envs} battles per vmapped call, networks on {args.device}, "
        "other settings default; "
        f"{args.eval_episodes} test battles every {args.eval_every:,} steps.",
        "",
    ]
    for map_name in args.maps:
        mine = [run for run in runs if run["job"].env == f"smax:{map_name}"]
        png = out / f"smax_{map_name}.png"
        groups = curves(mine, "win_rates")
        if groups:
            plot_curves(
                groups,
                png,
                ylabel="test win rate",
                title=f"SMAX {map_name}: median and min-max over seeds",
            )
        lines += [f"## {map_name}", "", *SUMMARY_HEADER, *summary_rows(mine, "win_rates"), ""]
        if groups:
            lines += [f"![{map_name}]({png.name})", ""]
        for run in mine:
            if "error" not in run and run["steps"]:
                reached = next(
                    (s for s, w in zip(run["steps"], run["win_rates"], strict=True) if w >= 0.9), None
                )
                lines.append(
                    f"- {run['job'].algo} seed {run['job'].seed}: win rate >= 0.9 first at "
                    f"{'not reached' if reached is None else f'{reached:,} steps'}; "
                    f"{run['num_timesteps']:,} steps, {run['updates']:,} updates in {run['wall'] / 60:.1f} min"
                )
        lines.append("")
    (out / "smax.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
