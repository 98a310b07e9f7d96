"""The training update with its per-step networks on the real steps only, against the padded batch.

A batch pads its episodes to the longest one; once a predator-prey team hunts, most episodes end
long before the 200-step limit while an occasional one runs to it. This script takes the episode
lengths of the team shipped in ``examples/models/`` (greedy, ``--episodes`` test episodes, so the
lengths of a trained team's epsilon-greedy play late in a run, roughly), cuts a fixed batch of 32
predator-prey episodes to 32 of those lengths, and times the update of each ``--algos``
algorithm's predator-prey preset (else QMIX's schedule; one torch thread) with step packing
(``marl_lsf.algorithms.packing``: agent networks on the real steps, mixers and the other per-step
networks of the state on the filled transitions) on and off, alternating in one process. CPU time
(user + system) per update.

    python benchmarks/packing_speed.py --reps 6 --algos lsfsac qmix qtran dop qplex cw_qmix
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from runs import RESULTS, command, machine, preset_model_and_batch, write_keeping_section

from marl_lsf import LSFSAC, evaluate_policy
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.algorithms.packing import StepPacking
from marl_lsf.envs import predator_prey_v1

SHIPPED = Path(__file__).resolve().parents[1] / "examples" / "models" / "lsfsac_predator_prey.zip"


def _measure(
    algo: str, cut: torch.Tensor, reps: int, updates: int
) -> tuple[float, list[tuple[int, str, float]]]:
    """``(share of real slots, [(rep, way, CPU ms per update)])`` of ``algo``'s update on the cut batch."""
    model, batch = preset_model_and_batch(algo=algo)
    batch = batch._replace(
        filled=batch.filled & (torch.arange(batch.filled.shape[1])[None, :] < cut[:, None])
    )
    packed = (model._step_packing, model._mixer_packing)
    padded = (
        lambda b: StepPacking(b.filled, enabled=False),
        lambda b, next_step=False: StepPacking(b.filled, enabled=False, next_step=next_step),
    )
    settings = {"padded batch": padded, "packed steps": packed}
    rows = []
    model._train_step(batch)
    for rep in range(reps):
        for name, (agents, mixers) in settings.items():
            model._step_packing, model._mixer_packing = agents, mixers
            cpu = time.process_time()
            for _ in range(updates):
                model._train_step(batch)
            rows.append((rep, name, 1000 * (time.process_time() - cpu) / updates))
            print(f"{algo} rep {rep} {name}: {rows[-1][2]:.0f} ms CPU per update")
    return float(batch.filled.float().mean()), rows


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    """Command line: alternating measurements, written to ``results/packing_speed.md``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--updates", type=int, default=2, help="updates per measurement")
    parser.add_argument("--episodes", type=int, default=32, help="test episodes of the shipped team")
    parser.add_argument("--algos", nargs="+", default=["lsfsac"], choices=sorted(ALGORITHMS))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    torch.set_num_threads(1)
    shipped = LSFSAC.load(SHIPPED, env=predator_prey_v1.parallel_env, n_threads=1)
    result = evaluate_policy(
        shipped, predator_prey_v1.parallel_env, n_eval_episodes=args.episodes, deterministic=True
    )
    lengths = np.asarray(result.episode_lengths)
    cut = torch.as_tensor(np.resize(lengths, 32))

    measured = {algo: _measure(algo, cut, args.reps, args.updates) for algo in args.algos}
    fill = next(iter(measured.values()))[0]
    table = ["| algorithm | padded batch (median CPU ms) | packed steps (median CPU ms) | packed / padded |"]
    table.append("|---|---:|---:|---:|")
    details = ["| algorithm | rep | networks run on | CPU ms per update |", "|---|---:|---|---:|"]
    for algo, (_, rows) in measured.items():
        padded = _median([ms for _, name, ms in rows if name == "padded batch"])
        packed = _median([ms for _, name, ms in rows if name == "packed steps"])
        table.append(f"| {algo} | {padded:.0f} | {packed:.0f} | **{packed / padded:.2f}** |")
        details += [f"| {algo} | {rep} | {name} | {ms:.0f} |" for rep, name, ms in rows]
    lines = [
        "# The update on the real steps only (step packing) against the padded batch",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}",
        "",
        f"Episode lengths: the shipped team's {len(lengths)} greedy test episodes (mean {lengths.mean():.0f}, "
        f"max {lengths.max()}), cut into a batch of 32 predator-prey episodes: {fill:.0%} of its "
        f"{cut.numel() * 200:,} transition slots are real. Each algorithm's predator-prey preset (else QMIX's "
        f"schedule), MlpPolicy, one torch thread, {args.updates} updates per measurement, the two ways "
        "alternating in one process.",
        "",
        *table,
        "",
        "Every measurement:",
        "",
        *details,
        "",
    ]
    out = Path(args.out) / "packing_speed.md"
    write_keeping_section(out, "\n".join(lines), "## Reading")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
