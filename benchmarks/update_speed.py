"""Time of one training update on a fixed predator-prey batch, this tree against an older one.

    git worktree add /tmp/baseline 04f1e57
    python benchmarks/update_speed.py --baseline /tmp/baseline --reps 3
    python benchmarks/update_speed.py --baseline /tmp/baseline --task simple_spread --updates 300
    python benchmarks/update_speed.py --baseline /tmp/baseline --algos DOP --updates 3 --name update_speed_dop

Each measurement runs in a fresh subprocess with one torch thread, this tree and the baseline tree
interleaved: the model (LSF-SAC with the settings both trees share, i.e. SAC's soft target,
sampled acting, shared message encoder, and QMIX) is built with seed 0, a buffer of 40
random-action episodes of the v0 predator-prey (the env both trees have) is collected, one batch
of 32 episodes x 200 steps x 8 agents is drawn, and ``--updates`` updates on that batch are
timed after one warm-up update. The first update's losses are printed by both trees, so equal
results (up to float rounding) are checked in the same run. Results go to
``results/update_speed.md``.

``--task simple_spread`` times the peers' equal-work setting instead (benchmarks/peers: MPE
simple_spread, 256-wide networks, batches of 5 episodes x 25 steps, LSF-SAC with two critics),
where an update takes milliseconds, so what surrounds the loss (sampling, the target networks'
update) counts: ``train(updates)`` is timed, after 2,000 env steps of collection without
training. Results go to ``results/update_speed_simple_spread.md``.
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
algo, updates, task = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cls = getattr(marl_lsf, algo)
if task == "simple_spread":
    import argparse
    sys.path.insert(0, "benchmarks/peers")
    import marl_lsf_side as side
    factory, _ = side.env_factory()
    kwargs = side.model_kwargs(argparse.Namespace(
        defaults=False, frames_per_batch=None, updates_per_batch=None, algorithm=algo.lower()))
    model = cls("MlpPolicy", factory, seed=0, device="cpu", **{**kwargs, "learning_starts": 10**9})
    model.learn(2000)
    first = model._train_step(model.replay_buffer.sample(model.batch_size, np.random.default_rng(0)))
    start = time.perf_counter()
    model.train(updates, model.batch_size)
else:
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

#: Each task's results-file title.
TASKS = {
    "predator_prey": "One training update on a fixed predator-prey batch (32 episodes x 200 steps x 8 agents)",
    "simple_spread": "Training updates at the peers' equal-work setting (simple_spread, 5 episodes x 25 steps, "
    "256-wide; sampling and target update included)",
}


def measure(tree: Path, algo: str, updates: int, task: str) -> dict:
    """One subprocess measurement of ``algo`` on ``task`` in the source tree ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, algo, str(updates), task],
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
    parser.add_argument("--task", choices=TASKS, default="predator_prey")
    parser.add_argument("--algos", nargs="+", default=["LSFSAC", "QMIX"], help="classes of marl_lsf to time")
    parser.add_argument("--name", default=None, help="stem of the results file (default: by task)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    trees = {"baseline": Path(args.baseline).resolve(), "this tree": here}
    baseline_commit = subprocess.run(
        ["git", "-C", str(trees["baseline"]), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"# {TASKS[args.task]}",
        "",
        f"Command: `{command()}` (baseline: commit {baseline_commit})",
        f"Machine: {machine()}; one torch thread, one subprocess per measurement, the trees interleaved.",
        "",
        "| algorithm | rep | baseline ms/update | this tree ms/update | ratio (this / baseline) |",
        "|---|---:|---:|---:|---:|",
    ]
    checks = []
    for algo in args.algos:
        ratios = []
        for rep in range(args.reps):
            result = {name: measure(tree, algo, args.updates, args.task) for name, tree in trees.items()}
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
    name = args.name or ("update_speed" if args.task == "predator_prey" else f"update_speed_{args.task}")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
