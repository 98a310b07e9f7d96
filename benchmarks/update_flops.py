"""Floating-point operations of one training update at the peers' equal-work setting.

    python benchmarks/update_flops.py

Counts, with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions, forward
and backward), the work of one ``_train_step`` of each model on one batch at the setting of
``benchmarks/peers`` (MPE simple_spread, 3 agents, 256-wide networks, 5 episodes x 25 steps, LSF-SAC
with two critics), so a frames/s ratio against another library can be read against the arithmetic
each update does. The count does not depend on the machine or its load. Results go to
``results/update_flops_simple_spread.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from runs import RESULTS, command, machine
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import marl_lsf_side as side  # noqa: E402 (benchmarks/peers)

import marl_lsf  # noqa: E402

#: (label, class name, extra arguments) of the models counted.
MODELS = [
    ("LSF-SAC (two critics, the peers' setting)", "LSFSAC", {}),
    ("LSF-SAC without messages (latent_dim=0: MASAC with a QMIX mixer)", "LSFSAC", {"latent_dim": 0}),
    ("QMIX", "QMIX", {}),
]


def update_flops(algo: str, extra: dict) -> tuple[float, dict[str, int]]:
    """(GFLOP of one update, parameters per network) of ``algo`` at the peers' equal-work setting."""
    factory, _ = side.env_factory()
    kwargs = side.model_kwargs(
        argparse.Namespace(
            defaults=False, frames_per_batch=None, updates_per_batch=None, algorithm=algo.lower()
        )
    )
    model = getattr(marl_lsf, algo)(
        "MlpPolicy", factory, seed=0, device="cpu", **{**kwargs, "learning_starts": 10**9, **extra}
    )
    model.learn(500)
    batch = model.replay_buffer.sample(model.batch_size, np.random.default_rng(0))
    with FlopCounterMode(display=False) as counter:
        model._train_step(batch)
    networks = {
        name: sum(p.numel() for p in getattr(model, name).parameters())
        for name in ("actor", "critics", "mixers", "q_net", "mixer")
        if hasattr(model, name)
    }
    return counter.get_total_flops() / 1e9, networks


def main() -> None:
    """Command line: count every model's update and write the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        "# Arithmetic of one training update at the peers' equal-work setting (simple_spread)",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()} (the count does not depend on it).",
        "",
        "| model | GFLOP per update | parameters |",
        "|---|---:|---|",
    ]
    for label, algo, extra in MODELS:
        gflop, networks = update_flops(algo, extra)
        sizes = ", ".join(f"{name} {count:,}" for name, count in networks.items())
        lines.append(f"| {label} | {gflop:.3f} | {sizes} |")
        print(lines[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "update_flops_simple_spread.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
