"""The training update with glibc's malloc defaults against ``reuse_freed_memory``, in one process.

``marl_lsf.algorithms.utils.reuse_freed_memory`` (called by ``learn``) raises glibc's mmap and
trim thresholds so that freed tensors stay in the heap for the next update instead of being
returned to the kernel and faulted in again. This script times LSF-SAC's update (the predator-prey
preset, one fixed batch of 32 episodes x 200 steps x 8 agents, one torch thread) with the two
settings alternating in the same process (``mallopt`` at glibc's static defaults, 128 KiB, against
the library's values), so both see the same model, batch and machine load. CPU time (user +
system) and minor page faults per update; the update's results are the same by construction (only
where memory comes from changes). Linux with glibc only.

    python benchmarks/memory_reuse.py --reps 8
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import resource
import time
from pathlib import Path

from runs import RESULTS, command, machine, preset_model_and_batch

from marl_lsf.algorithms.utils import reuse_freed_memory

#: glibc's ``mallopt`` parameter numbers and its static default for both thresholds.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, GLIBC_DEFAULT = -1, -3, 128 << 10


def glibc_defaults() -> None:
    """Set glibc's malloc thresholds back to its static defaults."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT)
    libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT)


def main() -> None:
    """Command line: alternating measurements, written to ``results/memory_reuse.md``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--updates", type=int, default=2, help="updates per measurement")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    model, batch = preset_model_and_batch()
    model._train_step(batch)
    settings = {"glibc defaults": glibc_defaults, "reuse_freed_memory": reuse_freed_memory}
    rows = []
    for rep in range(args.reps):
        for name, apply in settings.items():
            apply()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            cpu = time.process_time()
            for _ in range(args.updates):
                model._train_step(batch)
            ms = 1000 * (time.process_time() - cpu) / args.updates
            per_update = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / args.updates
            rows.append((rep, name, ms, per_update, os.getloadavg()[0]))
            print(f"rep {rep} {name}: {ms:.0f} ms CPU, {per_update:,.0f} page faults per update")

    lines = [
        "# The training update with glibc's malloc defaults against `reuse_freed_memory`",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}",
        "",
        "LSF-SAC predator-prey preset, one fixed batch (32 episodes x 200 steps x 8 agents), one torch "
        f"thread, {args.updates} updates per measurement, the two settings alternating in one process.",
        "",
        "| rep | malloc | CPU ms per update | page faults per update | load average (1 min) |",
        "|---:|---|---:|---:|---:|",
        *(
            f"| {rep} | {name} | {ms:.0f} | {faults:,.0f} | {load:.1f} |"
            for rep, name, ms, faults, load in rows
        ),
        "",
        "| malloc | median CPU ms per update | median page faults per update |",
        "|---|---:|---:|",
    ]
    medians = {}
    for name in settings:
        ms = sorted(r[2] for r in rows if r[1] == name)
        faults = sorted(r[3] for r in rows if r[1] == name)
        medians[name] = ms[len(ms) // 2]
        lines.append(f"| {name} | {medians[name]:.0f} | {faults[len(faults) // 2]:,.0f} |")
    ratio = medians["reuse_freed_memory"] / medians["glibc defaults"]
    lines += ["", f"Ratio of the medians (reuse / defaults): **{ratio:.2f}**.", ""]
    out = Path(args.out) / "memory_reuse.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
