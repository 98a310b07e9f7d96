"""Predator-prey benchmarks: LSF-SAC learning curve vs random play, and throughput/memory.

    python benchmarks/predator_prey.py curve --steps 150000 --seeds 0 1 2 --processes 3
    python benchmarks/predator_prey.py throughput

``curve`` trains one LSF-SAC per seed (in parallel processes), evaluates the greedy team every
``--eval-every`` steps on ``--eval-episodes`` test episodes, and writes the median with a min-max
band over seeds (PNG), the table (markdown) and the raw numbers (CSV) under ``--out``.
``throughput`` measures environment steps per second of the raw env with random actions and of
the team view with the policy acting (MlpPolicy and RnnPolicy), training updates per second, and
the peak memory of a default training run, and writes a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from envs import predator_prey_v0
from marl_lsf import LSFSAC, evaluate_random_policy
from marl_lsf.callbacks import EvalCallback
from marl_lsf.plotting import plot_curves
from marl_lsf.team_env import make_team_vec_env

RESULTS = Path(__file__).parent / "results"


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {mp.cpu_count()} cores, torch {torch.__version__}"


def train_seed(args: tuple[int, int, int, int, str]) -> dict:
    """Train one seed with periodic greedy evaluation; returns its curve and wall time."""
    seed, steps, eval_every, eval_episodes, policy = args
    torch.set_num_threads(1)
    model = LSFSAC(policy, predator_prey_v0.parallel_env, seed=seed)
    callback = EvalCallback(predator_prey_v0.parallel_env, eval_every, eval_episodes, seed=1000)
    start = time.perf_counter()
    model.learn(steps, callback=callback)
    wall = time.perf_counter() - start
    curve = [(step, result.mean_return) for step, result in callback.history]
    return {"seed": seed, "curve": curve, "wall": wall, "updates": model._n_updates}


def run_curve(args: argparse.Namespace) -> None:
    """Learning curve over seeds, with the random policy's test return for reference."""
    jobs = [(seed, args.steps, args.eval_every, args.eval_episodes, args.policy) for seed in args.seeds]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.processes) as pool:
        runs = pool.map(train_seed, jobs)
    total_wall = time.perf_counter() - start
    random = evaluate_random_policy(predator_prey_v0.parallel_env(), args.eval_episodes * 2, seed=1000)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"predator_prey_{args.policy.lower()}"
    with open(out / f"{stem}.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["seed", "env_steps", "test_return"])
        for run in runs:
            writer.writerows((run["seed"], step, value) for step, value in run["curve"])
    curves = [
        (np.array([s for s, _ in run["curve"]]), np.array([v for _, v in run["curve"]])) for run in runs
    ]
    x_max = max(c[0][-1] for c in curves)
    plot_curves(
        {
            f"LSF-SAC ({args.policy})": curves,
            "random policy": [(np.array([0, x_max]), np.full(2, random.mean_return))],
        },
        out / f"{stem}.png",
        xlabel="environment steps",
        ylabel=f"test return (mean of {args.eval_episodes} greedy episodes)",
        title=f"Predator-prey 10x10, 8 predators / 8 prey: median and min-max over {len(runs)} seeds",
    )
    grid = sorted({step for run in runs for step, _ in run["curve"]})
    lines = [
        f"# Predator-prey learning curve: LSF-SAC ({args.policy}) vs random play",
        "",
        f"Command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`",
        f"Machine: {_machine()}; {len(runs)} seeds in {args.processes} processes, 1 torch thread each.",
        f"Wall time: {total_wall / 60:.1f} min in all; per seed "
        + ", ".join(f"{run['wall'] / 60:.1f} min ({run['updates']} updates)" for run in runs)
        + ".",
        f"Random policy test return: {random.mean_return:.1f} +- {random.std_return:.1f} "
        f"over {len(random.episode_returns)} episodes. The maximum possible return is 40.",
        "",
        f"![curve]({stem}.png)",
        "",
        "| env steps | median test return | min | max |",
        "|---:|---:|---:|---:|",
    ]
    for step in grid:
        values = [value for run in runs for s, value in run["curve"] if s == step]
        lines.append(f"| {step:,} | {np.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _steps_per_second(fn, steps: int) -> float:
    fn(steps // 10)
    start = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - start)


def run_throughput(args: argparse.Namespace) -> None:
    """Raw env vs policy-acting throughput, updates/s and peak memory, measured in one run."""
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    env = predator_prey_v0.parallel_env()
    env.reset(seed=0)

    def raw(n: int) -> None:
        for _ in range(n):
            if not env.agents:
                env.reset()
            env.step({agent: int(rng.integers(6)) for agent in env.agents})

    rows = [("raw env, random actions (PettingZoo dicts)", _steps_per_second(raw, args.steps), None)]
    updates = {}
    for policy in ("MlpPolicy", "RnnPolicy"):
        model = LSFSAC(policy, predator_prey_v0.parallel_env, seed=0)
        vec = make_team_vec_env(predator_prey_v0.parallel_env, 1, "sync")
        state = {"obs": vec.reset(seed=0), "hidden": None}

        def acting(n: int, model: LSFSAC = model, vec=vec, state=state) -> None:
            for _ in range(n):
                actions, state["hidden"] = model.act(state["obs"].obs, state["obs"].avail, state["hidden"])
                step = vec.step(actions)
                state["obs"] = step.next

        rows.append((f"team view + {policy} acting", _steps_per_second(acting, args.steps), None))
        model.learn(40 * 200)
        start = time.perf_counter()
        model.train(args.updates, model.batch_size)
        updates[policy] = args.updates / (time.perf_counter() - start)
    base = rows[0][1]
    buffer = model.replay_buffer
    bytes_per_episode = sum(v[0].nbytes for v in buffer.storage.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "# Predator-prey throughput and memory (default settings)",
        "",
        f"Command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`",
        f"Machine: {_machine()}; torch threads: {args.threads}. All figures from this one run.",
        "",
        "| what | env steps/s | ratio to raw env |",
        "|---|---:|---:|",
        *(f"| {name} | {value:,.0f} | {value / base:.2f} |" for name, value, _ in rows),
        "",
        "| training update (batch of 32 episodes x 200 steps x 8 agents) | updates/s |",
        "|---|---:|",
        *(f"| {policy} | {value:.2f} |" for policy, value in updates.items()),
        "",
        f"Peak resident memory of this process (both models, 40 stored episodes each): {peak_mb:,.0f} MB.",
        f"Replay storage per 200-step episode: {bytes_per_episode / 2**20:.2f} MB, so the default "
        f"buffer_size=5000 episodes holds at most {bytes_per_episode * 5000 / 2**30:.2f} GB when full "
        "(pages are committed only as episodes fill them).",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "predator_prey_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    """Command line of the predator-prey benchmarks."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    curve = sub.add_parser("curve", help="learning curve over seeds")
    curve.add_argument("--steps", type=int, default=150_000)
    curve.add_argument("--eval-every", type=int, default=10_000)
    curve.add_argument("--eval-episodes", type=int, default=16)
    curve.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    curve.add_argument("--processes", type=int, default=3)
    curve.add_argument("--policy", default="MlpPolicy", choices=["MlpPolicy", "RnnPolicy"])
    curve.add_argument("--out", default=str(RESULTS))
    throughput = sub.add_parser("throughput", help="steps/s, updates/s and memory")
    throughput.add_argument("--steps", type=int, default=4000)
    throughput.add_argument("--updates", type=int, default=10)
    throughput.add_argument("--threads", type=int, default=1)
    throughput.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    run_curve(args) if args.command == "curve" else run_throughput(args)


if __name__ == "__main__":
    main()
