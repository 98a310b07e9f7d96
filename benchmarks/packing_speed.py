"""The LSF-SAC update with its per-step networks on the real steps only, against the padded batch.

A batch pads its episodes to the longest one; once a predator-prey team hunts, most episodes end
long before the 200-step limit while an occasional one runs to it. This script takes the episode
lengths of the team shipped in ``examples/models/`` (greedy, ``--episodes`` test episodes, so the
lengths of a trained team's epsilon-greedy play late in a run, roughly), cuts a fixed batch of 32
predator-prey episodes to 32 of those lengths, and times the update of the predator-prey preset
(one torch thread) with step packing (``marl_lsf.algorithms.packing``) on and off, alternating in
one process. CPU time (user + system) per update.

    python benchmarks/packing_speed.py --reps 6
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from runs import RESULTS, command, machine, preset_model_and_batch

from marl_lsf import LSFSAC, evaluate_policy
from marl_lsf.algorithms.packing import StepPacking
from marl_lsf.envs import predator_prey_v1

SHIPPED = Path(__file__).resolve().parents[1] / "examples" / "models" / "lsfsac_predator_prey.zip"


def main() -> None:
    """Command line: alternating measurements, written to ``results/packing_speed.md``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--updates", type=int, default=2, help="updates per measurement")
    parser.add_argument("--episodes", type=int, default=32, help="test episodes of the shipped team")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    torch.set_num_threads(1)
    shipped = LSFSAC.load(SHIPPED, env=predator_prey_v1.parallel_env, n_threads=1)
    result = evaluate_policy(
        shipped, predator_prey_v1.parallel_env, n_eval_episodes=args.episodes, deterministic=True
    )
    lengths = np.asarray(result.episode_lengths)

    model, batch = preset_model_and_batch()
    cut = torch.as_tensor(np.resize(lengths, 32))
    batch = batch._replace(
        filled=batch.filled & (torch.arange(batch.filled.shape[1])[None, :] < cut[:, None])
    )
    fill = float(batch.filled.float().mean())

    packed_steps = model._step_packing
    settings = {"padded batch": lambda b: StepPacking(b.filled, enabled=False), "packed steps": packed_steps}
    rows = []
    model._train_step(batch)
    for rep in range(args.reps):
        for name, packing in settings.items():
            model._step_packing = packing
            cpu = time.process_time()
            for _ in range(args.updates):
                model._train_step(batch)
            rows.append((rep, name, 1000 * (time.process_time() - cpu) / args.updates))
            print(f"rep {rep} {name}: {rows[-1][2]:.0f} ms CPU per update")

    medians = {}
    for name in settings:
        times = sorted(ms for _, n, ms in rows if n == name)
        medians[name] = times[len(times) // 2]
    lines = [
        "# The LSF-SAC update on the real steps only (step packing) against the padded batch",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}",
        "",
        f"Episode lengths: the shipped team's {len(lengths)} greedy test episodes (mean {lengths.mean():.0f}, "
        f"max {lengths.max()}), cut into a batch of 32 predator-prey episodes: {fill:.0%} of its "
        f"{batch.filled.numel():,} transition slots are real. Predator-prey preset, one torch thread, "
        f"{args.updates} updates per measurement, the two alternating in one process.",
        "",
        "| rep | networks run on | CPU ms per update |",
        "|---:|---|---:|",
        *(f"| {rep} | {name} | {ms:.0f} |" for rep, name, ms in rows),
        "",
        "| networks run on | median CPU ms per update |",
        "|---|---:|",
        *(f"| {name} | {ms:.0f} |" for name, ms in medians.items()),
        "",
        f"Ratio of the medians (packed / padded): **{medians['packed steps'] / medians['padded batch']:.2f}**.",
        "",
    ]
    out = Path(args.out) / "packing_speed.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
