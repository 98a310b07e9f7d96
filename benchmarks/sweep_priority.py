"""A sweep run's speed beside one other busy process: Ray's default worker niceness against the sweep's.

Ray starts its workers at niceness 15 unless ``RAY_worker_niceness`` says otherwise; the sweep's
``start_local_ray`` starts them at the caller's niceness. This script pins a busy process (one
torch thread doing matrix products, as a training run does, at the caller's niceness) and a
local Ray's task to the same CPU, and times a fixed amount of the same work in the task, once
with each way of starting Ray, ``--reps`` rounds. Linux only (CPU affinity).

    python benchmarks/sweep_priority.py --reps 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from pathlib import Path

import ray
import torch
from runs import RESULTS, command, machine, write_keeping_section

from marl_lsf.sweep.driver import start_local_ray


def work(products: int) -> tuple[float, float]:
    """``(wall s, CPU s)`` of ``products`` 256x256 matrix products with tanh, on one torch thread."""
    torch.set_num_threads(1)
    x = torch.randn(256, 256)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(products):
        x = torch.tanh(x @ x)
    return time.perf_counter() - wall, time.process_time() - cpu


def busy(cpu: int) -> None:
    """The other process: the same work forever, pinned to ``cpu``."""
    os.sched_setaffinity(0, {cpu})
    while True:
        work(1000)


def timed_in_ray(products: int, cpu: int, ours: bool) -> tuple[float, float, int]:
    """``(wall s, CPU s, worker niceness)`` of ``work(products)`` in a task of a fresh local Ray on ``cpu``."""
    if ours:
        start_local_ray(1)
    else:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="WARNING")

    def task() -> tuple[float, float, int]:
        os.sched_setaffinity(0, {cpu})
        return (*work(products), os.nice(0))

    try:
        return ray.get(ray.remote(task).remote())
    finally:
        ray.shutdown()


def main() -> None:
    """Time the task both ways beside the busy process and write ``results/sweep_priority.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=3000, help="matrix products per timing")
    parser.add_argument("--reps", type=int, default=2, help="rounds of both timings")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU both processes are pinned to")
    parser.add_argument("--out", type=Path, default=RESULTS / "sweep_priority.md")
    args = parser.parse_args()
    other = mp.get_context("spawn").Process(target=busy, args=(args.cpu,), daemon=True)
    other.start()
    rows = []
    try:
        for rep in range(args.reps):
            for ours in (False, True):
                wall, cpu_s, niceness = timed_in_ray(args.products, args.cpu, ours)
                how = "`start_local_ray` (the sweep's)" if ours else "`ray.init` (Ray's default)"
                rows.append(f"| {rep} | {how} | {niceness} | {cpu_s:.2f} | {wall:.2f} | {wall / cpu_s:.1f} |")
    finally:
        other.terminate()
    lines = [
        "# A sweep run's speed beside one busy process on the same CPU",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}. A busy process (one torch thread of 256x256 matrix products, niceness "
        f"{os.nice(0)}) and the Ray task share CPU {args.cpu}; the task does {args.products} such "
        "products. Fair sharing of one CPU between two busy processes is wall/CPU = 2.",
        "",
        "| round | how Ray was started | worker niceness | task CPU s | task wall s | wall / CPU |",
        "|---:|---|---:|---:|---:|---:|",
        *rows,
    ]
    write_keeping_section(args.out, "\n".join(lines) + "\n", "## Reading")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
