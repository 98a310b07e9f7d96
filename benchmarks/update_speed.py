"""Time of one training update on a fixed predator-prey batch, this tree against an older one.

    git worktree add /tmp/baseline 04f1e57
    python benchmarks/update_speed.py --baseline /tmp/baseline --reps 3

Each measurement runs in a fresh subprocess with one torch thread, this tree and the baseline tree
interleaved: the model (LSF-SAC with the settings both trees share, i.e. SAC's soft target,
sampled acting, shared message encoder, and QMIX) is built with seed 0, a buffer of 40
random-action episodes of the v0 predator-prey (the env both trees have) is collected, one batch
of 32 episodes x 200 steps x 8 agents is drawn, and ``--updates`` updates on that batch are
timed after one warm-up update. The first update's losses are printed by both trees, so equal
results (up to float rounding) are checked in the same run. Results go to
``results/update_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from runs import RESULTS, command, machine

CHILD = r"""
import inspect, json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
import marl_lsf
try:
    from marl_lsf.envs import predator_prey_v0
except ImportError:  # a baseline tree from before the envs moved under marl_lsf
    from envs import predator_prey_v0
algo, updates = sys.argv[1], int(sys.argv[2])
cls = getattr(marl_lsf, algo)
wanted = {"td_target": "soft", "exploration": "sample", "message_network": "shared", "decoder_target": "soft"}
accepted = inspect.signature(cls.__init__).parameters
kwargs = {k: v for k, v in wanted.items() if k in accepted}
model = cls("MlpPolicy", predator_prey_v0.parallel_env, seed=0, learning_starts=10**9, buffer_size=64, **kwargs)
model.learn(40 * 200)
batch = model.replay_buffer.sample(32, np.random.default_rng(0))
first = model._train_step(batch)
start = time.perf_counter()
for _ in range(updates):
    model._train_step(batch)
elapsed = time.perf_counter() - start
print(json.dumps({"ms": 1000 * elapsed / updates, "first": first}))
"""


def measure(tree: Path, algo: str, updates: int) -> dict:
    """One subprocess measurement of ``algo`` in the source tree ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, algo, str(updates)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Command line: interleaved measurements of both trees, written as a markdown table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="source tree of the older version (a git worktree)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    trees = {"baseline": Path(args.baseline).resolve(), "this tree": here}
    baseline_commit = subprocess.run(
        ["git", "-C", str(trees["baseline"]), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# One training update on a fixed predator-prey batch (32 episodes x 200 steps x 8 agents)",
        "",
        f"Command: `{command()}` (baseline: commit {baseline_commit})",
        f"Machine: {machine()}; one torch thread, one subprocess per measurement, the trees interleaved.",
        "",
        "| algorithm | rep | baseline ms/update | this tree ms/update | ratio (this / baseline) |",
        "|---|---:|---:|---:|---:|",
    ]
    checks = []
    for algo in ("LSFSAC", "QMIX"):
        ratios = []
        for rep in range(args.reps):
            result = {name: measure(tree, algo, args.updates) for name, tree in trees.items()}
            ratio = result["this tree"]["ms"] / result["baseline"]["ms"]
            ratios.append(ratio)
            lines.append(
                f"| {algo} | {rep} | {result['baseline']['ms']:.0f} | {result['this tree']['ms']:.0f} | {ratio:.2f} |"
            )
            print(lines[-1], flush=True)
            if rep == 0:
                for key, old in result["baseline"]["first"].items():
                    new = result["this tree"]["first"].get(key)
                    checks.append(f"| {algo} | {key} | {old:.6g} | {new if new is None else f'{new:.6g}'} |")
        lines.append(f"| {algo} | median | | | **{np.median(ratios):.2f}** |")
    lines += [
        "",
        "Equal results: the first update's logged values in both trees (same seed, same batch).",
        "",
        "| algorithm | value | baseline | this tree |",
        "|---|---|---:|---:|",
        *checks,
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "update_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
