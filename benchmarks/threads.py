"""Torch threads and the training update: 1 thread, one per core, and ``n_threads="auto"``.

Times LSF-SAC's training update (the preset of ``marl_lsf.presets`` on predator-prey, a fixed batch
of 32 episodes x 200 steps x 8 agents) in a fresh subprocess per measurement, the thread settings
interleaved, with ``--busy`` extra processes spinning on the CPU beside it the whole time (the
situation of a user whose other jobs share the cores). ``"auto"`` is the library's default
(``marl_lsf.algorithms.utils.idle_cpus``): the process's CPUs minus the 1-minute load average.

    python benchmarks/threads.py --busy 0 --reps 3      # an otherwise idle machine
    python benchmarks/threads.py --busy 3 --reps 3      # three busy processes beside it

Appends a section per run to ``results/threads.md`` (the command, the machine, the load).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

from runs import RESULTS, command, machine

CHILD = r"""
import json, sys, time
import numpy as np, torch
from marl_lsf import LSFSAC
from marl_lsf.envs import predator_prey_v1
from marl_lsf.presets import preset
setting, updates = sys.argv[1], int(sys.argv[2])
n_threads = setting if setting == "auto" else int(setting)
kwargs = {k: v for k, v in preset("predator_prey", "lsfsac").items() if k not in ("n_envs", "buffer_size")}
model = LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, seed=0, learning_starts=10**9, buffer_size=64,
               n_threads=n_threads, **kwargs)
model.learn(40 * 200)
batch = model.replay_buffer.sample(32, np.random.default_rng(0))
model._train_step(batch)
start = time.perf_counter()
for _ in range(updates):
    model._train_step(batch)
ms = 1000 * (time.perf_counter() - start) / updates
print(json.dumps({"ms": ms, "threads": torch.get_num_threads()}))
"""


def spin(stop: mp.Event) -> None:
    """Keep one CPU busy until ``stop`` is set."""
    while not stop.is_set():
        sum(range(10_000))


def measure(setting: str, updates: int) -> dict:
    """One subprocess measurement of the update with ``n_threads=setting``."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, setting, str(updates)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Command line: interleaved measurements, appended to ``results/threads.md``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--busy", type=int, default=0, help="processes spinning on the CPU beside the measurement"
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--settings", nargs="+", default=["1", str(os.cpu_count() or 1), "auto"])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    stop = mp.Event()
    spinners = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    time.sleep(65 if args.busy else 0)  # let the 1-minute load average see the spinners
    rows = []
    try:
        for rep in range(args.reps):
            for setting in args.settings:
                load = os.getloadavg()[0]
                result = measure(setting, args.updates)
                rows.append((rep, setting, result["threads"], load, result["ms"]))
                print(
                    f"rep {rep} n_threads={setting}: {result['threads']} threads, {result['ms']:.0f} ms/update"
                )
    finally:
        stop.set()
        for process in spinners:
            process.join()

    lines = [
        f"## {args.busy} spinning processes started beside the measurement (see the load column for the rest)",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}",
        "",
        "| rep | n_threads | torch threads used | load average (1 min) before | ms per update |",
        "|---:|---|---:|---:|---:|",
        *(
            f"| {rep} | {setting} | {threads} | {load:.1f} | {ms:.0f} |"
            for rep, setting, threads, load, ms in rows
        ),
        "",
        "| n_threads | median ms per update |",
        "|---|---:|",
    ]
    for setting in args.settings:
        times = sorted(ms for _, s, _, _, ms in rows if s == setting)
        lines.append(f"| {setting} | {times[len(times) // 2]:.0f} |")
    out = Path(args.out) / "threads.md"
    header = (
        ""
        if out.exists()
        else "# Torch threads and the LSF-SAC training update (predator-prey preset, fixed batch)\n\n"
    )
    with out.open("a") as handle:
        handle.write(header + "\n".join(lines) + "\n\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
