"""Predator-prey benchmarks: LSF-SAC learning curve vs random play, and throughput/memory.

    python benchmarks/predator_prey.py curve --steps 150000 --seeds 0 1 2 --processes 3
    python benchmarks/predator_prey.py throughput --reps 3

``curve`` trains one LSF-SAC per seed (in parallel processes), evaluates the greedy team every
``--eval-every`` steps on ``--eval-episodes`` test episodes, and writes the median with a min-max
band over seeds (PNG), the table (markdown) and the raw numbers (CSV) under ``--out``.
``throughput`` measures environment steps per second of the raw env with random actions and of
the team view with the policy acting (MlpPolicy and RnnPolicy), training updates per second, and
the peak memory of a default training run, and writes a markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from runs import RESULTS, SUMMARY_HEADER, Job, command, curves, machine, run_jobs, summary_rows

from marl_lsf import LSFSAC, evaluate_random_policy
from marl_lsf.envs import predator_prey_v1
from marl_lsf.plotting import plot_curves
from marl_lsf.vec_env import make_team_vec_env

#: Greedy test returns at 1M steps of pymarl's implementations on this env (pred_prey_punish),
#: from a public rerun reported on the WQMIX repository's issue tracker (oxwhirl/wqmix issue 3,
#: epsilon annealed over 1M steps, 3 runs each; RNN agents with last action and id).
PUBLIC_RERUN = [
    "Public rerun of pymarl's implementations at 1M steps (oxwhirl/wqmix issue 3; epsilon 1 -> 0.05 "
    "over 1M steps, GRU agents): QTRAN 38.1, CW-QMIX 37.5, OW-QMIX 36.8, VDN 36.7, QPLEX 36.2, "
    "QMIX 33.6 (runs 38.0, 30.2, 36.0), MASAC 0, COMA 0.",
]


def run_curve(args: argparse.Namespace) -> None:
    """Learning curve over seeds, with the random policy's test return for reference."""
    jobs = [
        Job(
            algo,
            "predator_prey",
            seed,
            args.steps,
            args.eval_every,
            args.eval_episodes,
            args.policy,
            env_kwargs=args.env_kwargs,
            algo_kwargs={"n_envs": args.n_envs, "device": args.device, **variant},
            time_limit=args.time_limit,
            save_dir=args.save_models,
        )
        for algo in args.algos
        for variant in args.variants
        for seed in args.seeds
    ]
    stem = args.name or f"predator_prey_{args.policy.lower()}"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runs = run_jobs(jobs, args.processes, progress=Path(args.out) / f"{stem}.runs.jsonl")
    random = evaluate_random_policy(
        predator_prey_v1.parallel_env(**args.env_kwargs), args.eval_episodes * 2, seed=10_000
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    groups = curves(runs, "returns")
    x_max = max((c[0][-1] for group in groups.values() for c in group), default=args.steps)
    groups["random policy"] = [(np.array([0, x_max]), np.full(2, random.mean_return))]
    plot_curves(
        groups,
        out / f"{stem}.png",
        ylabel=f"test return (mean of {args.eval_episodes} greedy episodes)",
        title=f"Predator-prey {args.env_kwargs or '(default)'}: median and min-max over {len(args.seeds)} seeds",
    )
    done = [run for run in runs if "error" not in run]
    lines = [
        f"# Predator-prey learning curves ({args.policy}) vs random play",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}; {len(jobs)} runs ({len(args.seeds)} seeds of each setting) in {args.processes} processes, 1 torch thread each, "
        f"networks on {args.device}, {args.n_envs} env copies per run.",
        f"Random policy test return: {random.mean_return:.1f} +- {random.std_return:.1f} over "
        f"{len(random.episode_returns)} episodes. The maximum possible return is 40.",
        "",
        *SUMMARY_HEADER,
        *summary_rows(runs, "returns"),
        "",
        *PUBLIC_RERUN,
        "",
        f"![curve]({stem}.png)",
        "",
        "| env steps | " + " | ".join(f"{run['job'].label} seed {run['job'].seed}" for run in done) + " |",
        "|---:|" + "---:|" * len(done),
    ]
    for i, step in enumerate(done[0]["steps"] if done else []):
        values = [f"{run['returns'][i]:.1f}" if i < len(run["returns"]) else "" for run in done]
        lines.append(f"| {step:,} | " + " | ".join(values) + " |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _steps_per_second(fn, steps: int) -> float:
    fn(steps // 10)
    start = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - start)


def run_throughput(args: argparse.Namespace) -> None:
    """Raw env vs policy-acting throughput (1 and 8 env copies), updates/s and peak memory, in one run.

    The raw env and every acting configuration are timed in turn, ``--reps`` rounds; each ratio is
    the median over rounds of that round's steps/s over the raw env's, so load from other
    processes on a shared machine falls on both sides of it.
    """
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    env = predator_prey_v1.parallel_env()
    current = {"obs": env.reset(seed=0)[0]}

    def raw(n: int) -> None:
        for _ in range(n):
            if not env.agents:
                current["obs"] = env.reset()[0]
            actions = {
                agent: int(rng.choice(np.flatnonzero(current["obs"][agent]["action_mask"])))
                for agent in env.agents
            }
            current["obs"] = env.step(actions)[0]

    configs = [("raw env, random available actions (PettingZoo dicts)", raw)]
    models = {}
    for policy in ("MlpPolicy", "RnnPolicy"):
        model = models[policy] = LSFSAC(policy, predator_prey_v1.parallel_env, seed=0)
        for n_envs, vectorization, how in (
            (1, "sync", "generic team view"),
            (1, "auto", "batched"),
            (8, "auto", "batched"),
        ):
            vec = make_team_vec_env(predator_prey_v1.parallel_env, n_envs, vectorization)
            state = {"obs": vec.reset(seed=0), "memory": None}

            def acting(n: int, model: LSFSAC = model, vec=vec, state=state) -> None:
                for _ in range(-(-n // vec.num_envs)):
                    actions, state["memory"] = model.act(
                        state["obs"].obs, state["obs"].avail, state["memory"]
                    )
                    step = vec.step(actions)
                    state["obs"] = step.next

            name = f"{how} ({type(vec).__name__}), {n_envs} env{'s' if n_envs > 1 else ''}, {policy} acting"
            configs.append((name, acting))
    speeds = np.array([[_steps_per_second(fn, args.steps) for _, fn in configs] for _ in range(args.reps)])
    rows = [
        (name, float(np.median(speeds[:, i])), float(np.median(speeds[:, i] / speeds[:, 0])))
        for i, (name, _) in enumerate(configs)
    ]
    updates = {}
    for policy, model in models.items():
        model.learn(40 * 200)
        start = time.perf_counter()
        model.train(args.updates, model.batch_size)
        updates[policy] = args.updates / (time.perf_counter() - start)
    buffer = models["MlpPolicy"].replay_buffer
    bytes_per_episode = sum(v[0].nbytes for v in buffer.storage.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    full_mb = _full_buffer_peak_mb()
    lines = [
        "# Predator-prey (v1) throughput and memory (default settings)",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}; torch threads: {args.threads}. All figures from this one run: "
        f"{args.reps} rounds, each timing every row in turn; medians over rounds, the ratio per round.",
        "",
        "| what | env steps/s | ratio to raw env |",
        "|---|---:|---:|",
        *(f"| {name} | {value:,.0f} | {ratio:.2f} |" for name, value, ratio in rows),
        "",
        "| training update (batch of 32 episodes x 200 steps x 8 agents) | updates/s |",
        "|---|---:|",
        *(f"| {policy} | {value:.2f} |" for policy, value in updates.items()),
        "",
        f"Peak resident memory of this process (both models, 40 stored episodes each): {peak_mb:,.0f} MB.",
        f"Replay storage per 200-step episode: {bytes_per_episode / 2**20:.2f} MB (observations and state "
        f"in float16, which holds predator-prey's 0/1 grids exactly), so the default buffer_size=5000 "
        f"episodes holds {bytes_per_episode * 5000 / 2**30:.2f} GB when full.",
        f"Peak resident memory of a default MlpPolicy training process with its buffer full (every "
        f"page of the 5000 episodes written, then training updates): {full_mb:,.0f} MB.",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "predator_prey_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _full_buffer_peak_mb() -> float:
    """Peak memory of a default training process whose replay buffer is full (measured in a child)."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_fill_buffer_and_train).result()


def _fill_buffer_and_train() -> float:
    torch.set_num_threads(1)
    model = LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, seed=0)
    model.learn(400)
    buffer = model.replay_buffer
    for array in buffer.storage.values():
        array[...] = 1
    buffer.lengths[:] = buffer.max_steps
    buffer.full = True
    model.train(3, model.batch_size)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    curve.add_argument("--time-limit", type=float, default=None, help="wall seconds per seed")
    curve.add_argument("--algos", nargs="+", default=["LSFSAC"], help="LSFSAC, QMIX, VDN")
    curve.add_argument(
        "--variants",
        nargs="+",
        type=json.loads,
        default=[{}],
        help="JSON dicts of constructor arguments to compare",
    )
    curve.add_argument("--name", default=None, help="stem of the result files")
    curve.add_argument(
        "--env-kwargs", type=json.loads, default={}, help="JSON dict of predator-prey arguments"
    )
    curve.add_argument("--n-envs", type=int, default=1, help="env copies per run (worker processes)")
    curve.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda, auto)")
    curve.add_argument("--out", default=str(RESULTS))
    curve.add_argument("--save-models", default=None, help="folder to save each run's final model in")
    throughput = sub.add_parser("throughput", help="steps/s, updates/s and memory")
    throughput.add_argument("--steps", type=int, default=4000)
    throughput.add_argument("--updates", type=int, default=10)
    throughput.add_argument("--threads", type=int, default=1)
    throughput.add_argument("--reps", type=int, default=3, help="rounds of timing every row in turn")
    throughput.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    run_curve(args) if args.command == "curve" else run_throughput(args)


if __name__ == "__main__":
    main()
