"""SMAX (JaxMARL's SMAC) benchmark: LSF-SAC vs QMIX, test win rate over environment steps.

    python benchmarks/smax.py --maps 3m 2s3z --runs LSFSAC 'LSFSAC:{"latent_dim":0}' QMIX \\
        --seeds 0 1 2 --steps 1000000 --eval-every 25000 --time-limit 600 --processes 2

(the command of ``results/smax.md``, from before ``q_messages``: its LSF-SAC rows are
``'LSFSAC:{"q_messages":"sample"}'`` today; 89 minutes on 2 cores; on a GPU machine add
``--device cuda`` and more ``--processes``). LSF-SAC with today's defaults:

    python benchmarks/smax.py --maps 3m 2s3z --runs LSFSAC --seeds 0 1 2 --steps 2000000 \
        --eval-every 25000 --time-limit 900 --processes 2 --name smax_q_messages

Each run (a ``--runs`` entry: an algorithm, optionally with JSON constructor overrides as in
``LSFSAC:{"target_entropy_scale":0.2}``; a map; a seed) trains in its own process with
``RnnPolicy`` and ``--n-envs`` battles stepped in one vmapped JAX call; the greedy team is tested
every ``--eval-every`` steps on ``--eval-episodes`` battles. The settings are pymarl's SMAC
defaults (``SETTINGS``). Writes, per map, a PNG of the median test win rate with a min-max band
over seeds, and a markdown summary with the command, machine, steps and wall time to a 0.9 win rate
(keeping the file's hand-written "## Reading" section).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from runs import (
    RESULTS,
    SUMMARY_HEADER,
    Job,
    command,
    curves,
    machine,
    run_jobs,
    run_label,
    summary_rows,
    write_keeping_section,
)

from marl_lsf.plotting import plot_curves

#: Every run: pymarl's SMAC settings (RNN agents, 5,000-episode buffer, batches of 32 episodes,
#: TD(lambda=0.6) as in the LSF-SAC authors' codebase, learning rate 5e-4), with one gradient
#: step per 4 finished episodes (pymarl's parallel runner takes one per 8).
COMMON: dict[str, Any] = {
    "buffer_size": 5000,
    "batch_size": 32,
    "td_lambda": 0.6,
    "learning_rate": 5e-4,
    "train_freq": 4,
}

#: Per algorithm, on top of ``COMMON``. QMIX: pymarl's epsilon annealed from 1 to 0.05 over
#: 50,000 steps (set from ``--steps`` as a fraction) and hard target updates every 200 updates.
#: LSF-SAC: a target entropy of 0.2 log|available actions| (the library's 0.5 kept the training
#: policy near-random in battles) and a faster temperature (with ~10,000 gradient steps in a run,
#: log(alpha) at 5e-4 lags the policy: the entropy collapsed early and overshot later).
SETTINGS: dict[str, dict[str, Any]] = {
    "LSFSAC": {"target_entropy_scale": 0.2, "ent_coef_learning_rate": 5e-3},
    "QMIX": {"exploration_final_eps": 0.05, "target_update_interval": 200, "tau": 1.0},
}
EPSILON_ANNEAL_STEPS = 50_000

#: Heading of a results file's hand-written section, kept when the file is rewritten.
READING_HEADING = "## Reading (hand-written)"


def parse_run(spec: str) -> tuple[str, dict[str, Any]]:
    """``"ALGO"`` or ``"ALGO:{json}"`` -> ``(algo, overrides)``."""
    algo, _, overrides = spec.partition(":")
    if algo not in SETTINGS:
        raise SystemExit(f"unknown algorithm {algo!r} in --runs; expected one of {sorted(SETTINGS)}")
    return algo, json.loads(overrides) if overrides else {}


def finished_runs(path: Path, eval_every: int, eval_episodes: int) -> list[dict[str, Any]]:
    """The runs of a ``.runs.jsonl`` progress file, as ``run_jobs`` returns them (the job rebuilt from its label)."""
    runs = []
    for line in path.read_text().splitlines():
        run = json.loads(line)
        label, seed, env = run.pop("label"), run.pop("seed"), run.pop("env")
        job = Job(label.split(" ")[0], env, seed, run["num_timesteps"], eval_every, eval_episodes, name=label)
        runs.append(run | {"job": job})
    return runs


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--maps", nargs="+", default=["3m"])
    parser.add_argument("--runs", nargs="+", default=["LSFSAC", "QMIX"], help="ALGO or ALGO:{json overrides}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1_000_000, help="step budget of each run")
    parser.add_argument("--eval-every", type=int, default=20_000)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda, auto)")
    parser.add_argument("--time-limit", type=float, default=None, help="wall seconds per run")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--name", default="smax", help="stem of the result files")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--from-runs",
        default=None,
        help="write the results from the finished runs of this .runs.jsonl file (of a stopped benchmark) "
        "instead of training; --maps, --eval-every and --eval-episodes as in its command",
    )
    args = parser.parse_args()

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    specs = [parse_run(spec) for spec in args.runs]
    epsilon_fraction = min(1.0, EPSILON_ANNEAL_STEPS / args.steps)
    jobs = []
    for map_name in args.maps:
        for algo, overrides in specs:
            settings = COMMON | SETTINGS[algo] | overrides
            if algo == "QMIX":
                settings.setdefault("exploration_fraction", epsilon_fraction)
            for seed in args.seeds:
                jobs.append(
                    Job(
                        algo,
                        f"smax:{map_name}",
                        seed,
                        args.steps,
                        args.eval_every,
                        args.eval_episodes,
                        policy="RnnPolicy",
                        algo_kwargs={"n_envs": args.n_envs, "device": args.device, **settings},
                        time_limit=args.time_limit,
                        name=run_label(algo, overrides),
                    )
                )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.from_runs is None:
        runs = run_jobs(jobs, args.processes, progress=Path(args.out) / f"{args.name}.runs.jsonl")
    else:
        runs = finished_runs(Path(args.from_runs), args.eval_every, args.eval_episodes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# SMAX: LSF-SAC vs QMIX (test win rate of the greedy team)",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}; {args.processes} processes, 1 torch thread each, JAX on the CPU, "
        f"networks on {args.device}.",
        f"Settings: RnnPolicy, n_envs={args.n_envs} battles per vmapped call, {COMMON}; "
        f"QMIX: {SETTINGS['QMIX']}, epsilon 1 -> 0.05 over {EPSILON_ANNEAL_STEPS:,} steps; LSF-SAC: "
        f"{SETTINGS['LSFSAC']}; {args.eval_episodes} greedy test battles every {args.eval_every:,} steps.",
        "",
    ]
    for map_name in args.maps:
        mine = [run for run in runs if run["job"].env == f"smax:{map_name}"]
        png = out / f"{args.name}_{map_name}.png"
        groups = curves(mine, "win_rates")
        if groups:
            plot_curves(
                groups, png, ylabel="test win rate", title=f"SMAX {map_name}: median and min-max over seeds"
            )
        lines += [f"## {map_name}", "", *SUMMARY_HEADER, *summary_rows(mine, "win_rates"), ""]
        if groups:
            lines += [f"![{map_name}]({png.name})", ""]
        for run in mine:
            if "error" not in run and run["steps"]:
                reached = next(
                    (
                        (step, wall)
                        for step, win, wall in zip(run["steps"], run["win_rates"], run["walls"], strict=True)
                        if win >= 0.9
                    ),
                    None,
                )
                first = (
                    "not reached" if reached is None else f"{reached[0]:,} steps ({reached[1] / 60:.1f} min)"
                )
                lines.append(
                    f"- {run['job'].label} seed {run['job'].seed}: test win rate >= 0.9 first at {first}; "
                    f"final {run['win_rates'][-1]:.2f}; {run['num_timesteps']:,} steps, {run['updates']:,} "
                    f"updates in {run['wall'] / 60:.1f} min"
                )
        lines.append("")
    write_keeping_section(out / f"{args.name}.md", "\n".join(lines) + "\n", READING_HEADING)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
