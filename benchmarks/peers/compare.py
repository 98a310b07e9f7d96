"""Side-by-side throughput of marl-lsf and BenchMARL on PettingZoo MPE simple_spread (discrete, 3 agents).

Run with marl-lsf's python after ``benchmarks/peers/setup_benchmarl.sh``:

    .venv/bin/python benchmarks/peers/compare.py --frames 30000 --reps 3

Runs the two sides as subprocesses, one at a time and interleaved (marl-lsf QMIX, BenchMARL QMIX,
marl-lsf LSF-SAC, BenchMARL MASAC, repeated ``--reps`` times, repetition ``r`` with seed
``--seed + r`` on both sides), each with ``OMP_NUM_THREADS=1`` and one torch thread, and writes
``benchmarks/results/peers_simple_spread.md`` (``peers_simple_spread_defaults.md`` with
``--defaults``): the command, the machine, frames per second per repetition and pair with the
ratio marl-lsf / BenchMARL, and the returns reached. BenchMARL runs from its own virtual
environment (``--benchmarl-python``); it is never imported here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import common

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: The compared pairs: (label, marl-lsf algorithm, BenchMARL algorithm).
PAIRS = (("QMIX", "qmix", "qmix"), ("LSF-SAC vs MASAC", "lsfsac", "masac"))


def default_benchmarl_python() -> Path:
    """BenchMARL's interpreter: ``$BENCHMARL_VENV/bin/python``, else ``../benchmarl-venv`` beside the repository."""
    venv = os.environ.get("BENCHMARL_VENV") or str(REPO.parent / "benchmarl-venv")
    return Path(venv) / "bin" / "python"


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=common.DEFAULT_FRAMES, help="frames per run (default: %(default)s)"
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions of the four runs (default: %(default)s)"
    )
    parser.add_argument("--defaults", action="store_true", help="each library's own defaults, not equal work")
    parser.add_argument("--frames-per-batch", type=int, help="equal-work iteration size, for smoke tests")
    parser.add_argument(
        "--updates-per-batch", type=int, help="equal-work updates per iteration, for smoke tests"
    )
    parser.add_argument(
        "--eval-episodes", type=int, default=common.EVAL_EPISODES, help="(default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first repetition (default: %(default)s)"
    )
    parser.add_argument(
        "--count-flops",
        action="store_true",
        help="count each run's floating-point operations per update (slows the runs: frames/s then "
        "measures nothing)",
    )
    parser.add_argument("--benchmarl-python", type=Path, default=default_benchmarl_python())
    parser.add_argument(
        "--out", type=Path, help="results file (default: benchmarks/results/peers_simple_spread*.md)"
    )
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be positive")
    if args.defaults and (args.frames_per_batch or args.updates_per_batch):
        parser.error("--frames-per-batch and --updates-per-batch shape equal-work mode only")
    if not args.benchmarl_python.exists():
        parser.error(f"{args.benchmarl_python} not found: run benchmarks/peers/setup_benchmarl.sh first")
    if args.out is None:
        args.out = RESULTS / (
            "peers_simple_spread_defaults.md" if args.defaults else "peers_simple_spread.md"
        )
    return args


def side_command(python: Path, script: str, algorithm: str, seed: int, args: argparse.Namespace) -> list[str]:
    """The command line of one side's run."""
    command = [str(python), str(HERE / script), "--algorithm", algorithm, "--frames", str(args.frames)]
    command += ["--seed", str(seed), "--eval-episodes", str(args.eval_episodes)]
    if args.defaults:
        command.append("--defaults")
    if args.count_flops:
        command.append("--count-flops")
    for flag, value in (
        ("--frames-per-batch", args.frames_per_batch),
        ("--updates-per-batch", args.updates_per_batch),
    ):
        if value is not None:
            command += [flag, str(value)]
    return command


def run_side(command: list[str]) -> dict[str, Any]:
    """Run one side with one OpenMP/MKL thread; returns its JSON result line (exits on failure)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    print("$", shlex.join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"run failed with status {done.returncode}: {shlex.join(command)}")
    result = json.loads(lines[-1])
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, or the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def load() -> str:
    """The 1/5/15-minute load averages."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def number(value: float | None, digits: int = 1) -> str:
    """A table cell: the value with thousands separators, or a dash when missing."""
    return "-" if value is None else f"{value:,.{digits}f}"


def report(args: argparse.Namespace, reps: list[dict[str, dict[str, Any]]], loads: tuple[str, str]) -> str:
    """The markdown results: command, machine, throughput table, returns table, raw result lines."""
    first = reps[0]
    ours, theirs = first["marl-lsf qmix"], first["benchmarl qmix"]
    mode = "each library's own defaults" if args.defaults else "equal work"
    lines = [
        f"# marl-lsf vs BenchMARL {theirs['version']} on MPE simple_spread ({mode})",
        "",
        f"Command: `python {shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        "",
        f"Machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores; load average (1/5/15 min) "
        f"{loads[0]} before, {loads[1]} after. Python {platform.python_version()}; marl-lsf "
        f"{ours['version']} with torch {ours['torch']}; BenchMARL {theirs['version']} with torch "
        f"{theirs['torch']} in its own virtual environment. Runs one at a time, interleaved, each a fresh "
        "process with OMP_NUM_THREADS=1 and one torch thread, CPU only.",
        "",
        f"Task: simple_spread_v3, {common.N_AGENTS} agents, discrete actions, {common.EPISODE_STEPS}-step "
        f"episodes, local_ratio {common.LOCAL_RATIO} (marl-lsf from `{ours['env_module']}`, BenchMARL "
        "through torchrl's PettingZooEnv). Budget: "
        f"{args.frames:,} frames per run (a frame is one step of one env). Timed: `learn()` / "
        "`Experiment.run()` only (not construction, not the evaluation afterwards).",
        "",
    ]
    if args.defaults:
        lines.append(
            f"Settings: each library's defaults. marl-lsf: its constructor's ({ours['n_envs']} env, "
            f"{ours['hidden_dim']}-wide MLPs, {ours['gradient_steps']} update of "
            f"{ours['batch_transitions'] // common.EPISODE_STEPS} episodes per {ours['train_freq']} "
            f"episode collected). BenchMARL: `base_experiment.yaml` ({theirs['n_envs']} envs, "
            f"{theirs['frames_per_batch']:,} frames then {theirs['updates_per_batch']:,} updates of "
            f"{theirs['batch_transitions']} frames per iteration, {theirs['mlp_cells']} MLPs). Both: "
            "discrete actions, no evaluation or logging while training; benchmarks/peers/README.md has the details."
        )
    else:
        lines.append(
            f"Settings (equal work): {ours['n_envs']} envs on both sides; per {theirs['frames_per_batch']:,} "
            f"frames {theirs['updates_per_batch']:,} gradient updates; BenchMARL samples "
            f"{theirs['batch_transitions']} transitions per update, marl-lsf whole episodes "
            f"({ours['batch_transitions']} transitions; train_freq={ours['train_freq']} episodes, "
            f"gradient_steps={ours['gradient_steps']}); 256-wide two-layer MLPs; 1M-frame replay memory; "
            "LSF-SAC with two critics like MASAC's two Q-networks. Learning settings are each library's own; "
            "benchmarks/peers/README.md lists what differs."
        )
    lines += [
        "",
        "## Throughput (frames per second of training, collection and updates together)",
        "",
        "| rep | seed | pair | marl-lsf frames/s | BenchMARL frames/s | ratio marl-lsf / BenchMARL | updates (marl-lsf / BenchMARL) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    window = (args.frames_per_batch or common.FRAMES_PER_BATCH) // common.EPISODE_STEPS
    ratios: dict[str, list[float]] = {label: [] for label, _, _ in PAIRS}
    for index, results in enumerate(reps):
        for label, ours_algo, theirs_algo in PAIRS:
            a, b = results[f"marl-lsf {ours_algo}"], results[f"benchmarl {theirs_algo}"]
            ratio = a["frames_per_s"] / b["frames_per_s"]
            ratios[label].append(ratio)
            lines.append(
                f"| {index + 1} | {args.seed + index} | {label} | {number(a['frames_per_s'])} | "
                f"{number(b['frames_per_s'])} | {ratio:.2f} | {a['updates']:,} / {b['updates']:,} |"
            )
    lines += ["", "Median ratio over the repetitions: "]
    lines[-1] += (
        "; ".join(f"{label} {statistics.median(values):.2f}" for label, values in ratios.items()) + "."
    )
    if args.count_flops:
        lines += flops_section(reps)
    lines += [
        "",
        "## Returns reached",
        "",
        "Mean episode return per agent (the sum over the episode of the agents' mean reward): `train` over "
        f"the last {window} training episodes (BenchMARL: the episodes of its last batch), `eval` over "
        f"{args.eval_episodes} greedy episodes after training. "
        "With this budget and each library's own learning settings these are a sanity check, not a "
        "comparison of learning.",
        "",
        "| rep | library | algorithm | frames | updates | wall s | train return | eval return |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for index, results in enumerate(reps):
        for result in results.values():
            lines.append(
                f"| {index + 1} | {result['library']} | {result['algorithm']} | {result['frames']:,} | "
                f"{result['updates']:,} | {result['wall_s']:.1f} | {number(result['train_return'], 2)} | "
                f"{number(result['eval_return'], 2)} |"
            )
    lines += ["", "## Result lines", "", "```"]
    lines += [json.dumps(result) for results in reps for result in results.values()]
    lines += ["```", ""]
    return "\n".join(lines)


def flops_section(reps: list[dict[str, dict[str, Any]]]) -> list[str]:
    """Markdown lines: each pair's floating-point operations per update (training and collection)."""
    lines = [
        "",
        "## Arithmetic per update (`--count-flops`)",
        "",
        "Floating-point operations of each run's training (collection included), counted with the "
        "formulas of `torch.utils.flop_counter` (matrix products, forward and backward), divided by its "
        "updates. Counting slows the runs, so their frames/s above measure nothing.",
        "",
        "| rep | pair | marl-lsf GFLOP/update | BenchMARL GFLOP/update | ratio marl-lsf / BenchMARL |",
        "|---:|---|---:|---:|---:|",
    ]
    for index, results in enumerate(reps):
        for label, ours_algo, theirs_algo in PAIRS:
            a = results[f"marl-lsf {ours_algo}"]["gflop_per_update"]
            b = results[f"benchmarl {theirs_algo}"]["gflop_per_update"]
            lines.append(f"| {index + 1} | {label} | {a:.3f} | {b:.3f} | {a / b:.2f} |")
    return lines


def main() -> None:
    """Run the repetitions and write the results file."""
    args = parse_args()
    before = load()
    reps: list[dict[str, dict[str, Any]]] = []
    for rep in range(args.reps):
        seed = args.seed + rep
        results: dict[str, dict[str, Any]] = {}
        for _, ours_algo, theirs_algo in PAIRS:
            results[f"marl-lsf {ours_algo}"] = run_side(
                side_command(Path(sys.executable), "marl_lsf_side.py", ours_algo, seed, args)
            )
            results[f"benchmarl {theirs_algo}"] = run_side(
                side_command(args.benchmarl_python, "benchmarl_side.py", theirs_algo, seed, args)
            )
        reps.append(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(args, reps, (before, load())))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
