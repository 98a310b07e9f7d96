"""The LSF-SAC paper's one-step matrix game (section VI-A, Table I): who finds the optimum (A, A)?

Trains LSF-SAC (library defaults), MASAC (LSF-SAC without latent messages), LSF-SAC with a 4-unit
QMIX mixing layer (instead of 32), QMIX, VDN and the paper's other baselines (OW-QMIX, CW-QMIX,
QTRAN, QPLEX, DOP; for QTRAN, Q_tot is its transformed value Q'_jt; for DOP, Q_1, Q_2 are its individual
critics and Q_tot their linear mix, while its greedy actions are its actors') on the default payoff of
``marl_lsf.envs.matrix_game_v0`` for several seeds with a fixed budget of environment steps each, then
reads out every model's greedy joint action (each agent's own greedy action, as at execution),
its payoff, and the utilities Q_1, Q_2 and Q_tot of ``marl_lsf.utility_tables``. Writes
``benchmarks/results/matrix_game.md`` (keeping its hand-written "## Experiments" section) and the
heatmap ``benchmarks/results/matrix_game_qtot.png``, rewritten after every complete seed (all the
configs of seed 0, then of seed 1, ...), so a run stopped early still leaves a results file.
``--configs`` picks configs by name and ``--name`` the stem of the files, e.g. the baselines::

    python benchmarks/matrix_game.py --workers 1 --configs OW-QMIX CW-QMIX QTRAN --name matrix_game_baselines

Run from the repository root::

    python benchmarks/matrix_game.py            # 10 seeds, 2 worker processes
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from dataclasses import dataclass, field, replace
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import torch
from runs import command as runs_command
from runs import exit_with_parent, write_keeping_section

from marl_lsf import CWQMIX, DOP, LSFSAC, OWQMIX, QMIX, QPLEX, QTRAN, VDN, MultiAgentAlgorithm, utility_tables
from marl_lsf.envs import matrix_game_v0
from marl_lsf.envs.matrix_game_v0 import DEFAULT_PAYOFF
from marl_lsf.presets import LSFSAC_ACTOR_AND_TARGET, LSFSAC_EARLIER_DEFAULTS

RESULTS = Path(__file__).parent / "results"
ACTIONS = ("A", "B", "C")
OBS = np.ones((2, 1), dtype=np.float32)
STATE = np.ones(1, dtype=np.float32)
PAYOFF = np.asarray(DEFAULT_PAYOFF)


@dataclass(frozen=True)
class Config:
    """One algorithm setting of the benchmark."""

    name: str
    algorithm: type[MultiAgentAlgorithm]
    steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)


#: Constructor arguments shared by every run: the library defaults, with a 500-step uniformly
#: random warm-up before training, and 8 games played side by side in this process per vector step
#: with one gradient step (a batch of 32 games from the replay buffer) per 8 games.
COMMON: dict[str, Any] = {"learning_starts": 500, "n_envs": 8, "vectorization": "sync", "train_freq": 8}
STEPS = 20_000
#: Epsilon as in the LSF-SAC authors' configs of every value-based algorithm (pymarl: 1.0 -> 0.05
#: linearly over 100,000 steps; their matrix-game runs were 50,000 steps): over our 20,000 steps
#: that is 1.0 -> 0.81, so the agents explore almost uniformly for the whole run.
AUTHORS_EXPLORATION: dict[str, Any] = {"exploration_fraction": 1.0, "exploration_final_eps": 0.81}

#: The LSF-SAC rows as measured: each is its changes to LSF-SAC's defaults of that time
#: (``presets.LSFSAC_EARLIER_DEFAULTS``; "LSF-SAC" is those defaults), except "LSF-SAC, defaults",
#: the defaults since the predator-prey and SMAX measurements.
EARLIER = LSFSAC_EARLIER_DEFAULTS

CONFIGS = (
    Config("LSF-SAC", LSFSAC, STEPS, dict(EARLIER)),
    Config("LSF-SAC, defaults", LSFSAC, STEPS),
    Config("MASAC (LSF-SAC, latent_dim=0)", LSFSAC, STEPS, {**EARLIER, "latent_dim": 0}),
    Config("LSF-SAC, 4-unit mixing layer", LSFSAC, STEPS, {**EARLIER, "mixer_embed_dim": 4}),
    Config(
        "LSF-SAC, epsilon-greedy acting",
        LSFSAC,
        STEPS,
        {**EARLIER, "exploration": "epsilon_greedy", "exploration_fraction": 0.5},
    ),
    Config(
        "LSF-SAC, authors' code settings",
        LSFSAC,
        STEPS,
        {
            **EARLIER,
            "exploration": "epsilon_greedy",
            "exploration_fraction": 0.5,
            "td_target": "greedy",
            "message_network": "separate",
            "latent_coef": 1e-3,
            "decoder_target": "argmax",
            "last_action_input": True,
        },
    ),
    Config("LSF-SAC, forward-KL actor", LSFSAC, STEPS, {**EARLIER, "policy_objective": "forward_kl"}),
    Config(
        "LSF-SAC, authors' exploration",
        LSFSAC,
        STEPS,
        {**EARLIER, "exploration": "epsilon_greedy", **AUTHORS_EXPLORATION},
    ),
    Config(
        "LSF-SAC, predator-prey settings",
        LSFSAC,
        STEPS,
        {**LSFSAC_ACTOR_AND_TARGET, "exploration_fraction": 0.5},
    ),
    Config("QMIX", QMIX, STEPS),
    Config("VDN", VDN, STEPS),
    Config("OW-QMIX", OWQMIX, STEPS),
    Config("CW-QMIX", CWQMIX, STEPS),
    # The Weighted QMIX code's configs (oxwhirl/wqmix) use alpha = 0.1 outside StarCraft II.
    Config("CW-QMIX, alpha 0.1", CWQMIX, STEPS, {"alpha": 0.1}),
    Config("QTRAN", QTRAN, STEPS),
    Config("QPLEX", QPLEX, STEPS),
    Config("DOP", DOP, STEPS),
    *(
        Config(f"{name}, authors' exploration", cls, STEPS, AUTHORS_EXPLORATION)
        for name, cls in (
            ("QMIX", QMIX),
            ("VDN", VDN),
            ("OW-QMIX", OWQMIX),
            ("CW-QMIX", CWQMIX),
            ("QTRAN", QTRAN),
            ("QPLEX", QPLEX),
        )
    ),
)

#: Heading of the hand-written experiments section of the results file, kept when it is rewritten.
EXPERIMENTS_HEADING = "## Experiments"


@dataclass(frozen=True)
class RunResult:
    """What one (config, seed) run produced."""

    config: str
    seed: int
    joint_action: tuple[int, ...]
    payoff: float
    utilities: tuple[np.ndarray, ...]
    joint: np.ndarray
    seconds: float


def run(config: Config, seed: int) -> RunResult:
    """Train one model on the default matrix game and read out its greedy play and tables."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = config.algorithm("MlpPolicy", matrix_game_v0.parallel_env, seed=seed, **COMMON, **config.kwargs)
    model.learn(config.steps)
    actions, _ = model.predict(OBS, deterministic=True)
    joint_action = tuple(int(a) for a in actions)
    tables = utility_tables(model, OBS, state=STATE)
    return RunResult(
        config.name,
        seed,
        joint_action,
        float(PAYOFF[joint_action]),
        tables.utilities,
        tables.joint,
        time.perf_counter() - start,
    )


def table_markdown(result: RunResult) -> str:
    """Q_tot of one run laid out like the paper's Table I (utilities as row/column headers)."""
    q1, q2 = result.utilities
    header = ["Q1 \\ Q2", *(f"{q2[b]:.1f}({ACTIONS[b]})" for b in range(3))]
    rows = ["| " + " | ".join(header) + " |", "|---|---|---|---|"]
    for a in range(3):
        cells = [f"{q1[a]:.1f}({ACTIONS[a]})", *(f"{result.joint[a, b]:.1f}" for b in range(3))]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def heatmap(tables: list[RunResult], path: Path) -> None:
    """Q_tot tables of one seed per config side by side, with the payoff for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("payoff", PAYOFF, None), *((r.config, r.joint, r.utilities) for r in tables)]
    # At most three panels a row, so the figure stays readable at the README's width.
    n_rows = -(-len(panels) // 3)
    fig, grid = plt.subplots(n_rows, 3, figsize=(9.6, 3.4 * n_rows), squeeze=False)
    for ax in grid.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, values, utilities) in zip(grid.flat, panels, strict=False):
        ax.imshow(values, cmap="viridis", vmin=-12, vmax=8)
        for a in range(3):
            for b in range(3):
                ax.text(b, a, f"{values[a, b]:.1f}", ha="center", va="center", color="w", fontsize=9)
        if utilities is None:
            ax.set_xticks(range(3), ACTIONS)
            ax.set_yticks(range(3), ACTIONS)
        else:
            ax.set_xticks(range(3), [f"{utilities[1][b]:.1f}({ACTIONS[b]})" for b in range(3)], fontsize=8)
            ax.set_yticks(range(3), [f"{utilities[0][a]:.1f}({ACTIONS[a]})" for a in range(3)], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("agent 2 (Q2)", fontsize=8)
        ax.set_ylabel("agent 1 (Q1)", fontsize=8)
    fig.suptitle("Q_tot over joint actions (seed 0 of each algorithm); the payoff first")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(
    configs: list[Config],
    results: list[RunResult],
    seeds: list[int],
    command: str,
    wall: float,
    workers: int,
    name: str,
) -> str:
    """The markdown results file."""
    lines = [
        "# Matrix game (paper section VI-A, Table I)",
        "",
        "QTRAN's one-step game `[[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]` (`marl_lsf.envs.matrix_game_v0`"
        " defaults). Each run trains one model for a fixed number of environment steps (every step"
        " is a whole game; 8 games are played side by side, then one gradient step is taken), then"
        " reads the greedy joint action of the decentralized agents (`predict(..., deterministic=True)`).",
        "",
        f"- Command: `{command}`",
        f"- Machine: {platform.machine()}, nproc = {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at the end,"
        f" Python {platform.python_version()}, torch {torch.__version__}, {workers} worker processes,"
        " torch threads = 1",
        f"- Wall time: {wall / 60:.1f} min for {len(results)} runs",
        f"- Seeds: {seeds}; shared settings: `{COMMON}`",
        "",
        "| algorithm | env steps | extra arguments | (A, A) found | median greedy payoff | greedy joint actions |",
        "|---|---|---|---|---|---|",
    ]
    for config in configs:
        runs = [r for r in results if r.config == config.name]
        found = sum(r.joint_action == (0, 0) for r in runs)
        actions = ", ".join("".join(ACTIONS[a] for a in r.joint_action) for r in runs)
        lines.append(
            f"| {config.name} | {config.steps} | `{config.kwargs or '-'}` | {found}/{len(runs)} "
            f"| {np.median([r.payoff for r in runs]):g} | {actions} |"
        )
    lines += ["", f"## Q1, Q2 and Q_tot of seed {seeds[0]} (layout of the paper's Table I)", ""]
    for config in configs:
        first = next(r for r in results if r.config == config.name and r.seed == seeds[0])
        lines += [f"**{config.name}**", "", table_markdown(first), ""]
    lines += [f"![Q_tot heatmaps]({name}_qtot.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run every config over the seeds and write the results file and the heatmap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 per algorithm")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one run each)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the .md and .png")
    parser.add_argument("--steps", type=int, default=None, help="override every budget (smoke tests)")
    parser.add_argument(
        "--configs", nargs="+", default=None, help="names of the configs to run (default: all)"
    )
    parser.add_argument("--name", default="matrix_game", help="stem of the results files")
    parser.add_argument(
        "--redraw", action="store_true", help="only redraw NAME_qtot.png from the tables in NAME.md"
    )
    args = parser.parse_args(argv)
    if args.redraw:
        heatmap(tables_from_results(args.out / f"{args.name}.md"), args.out / f"{args.name}_qtot.png")
        return
    seeds = list(range(args.seeds))
    names = [c.name for c in CONFIGS]
    if args.configs and (unknown := sorted(set(args.configs) - set(names))):
        parser.error(f"unknown configs {unknown}; choose from {names}")
    configs = [c for c in CONFIGS if not args.configs or c.name in args.configs]
    configs = [replace(c, steps=args.steps) if args.steps else c for c in configs]
    # Seed-major order, and the files rewritten after every complete seed: a run stopped early
    # (the machine is shared) leaves a results file with the same seeds for every config.
    jobs = [(config, seed) for seed in seeds for config in configs]
    args.out.mkdir(parents=True, exist_ok=True)
    command = runs_command()
    results_file = args.out / f"{args.name}.md"
    start = time.perf_counter()
    results: list[RunResult] = []
    with Pool(args.workers) as pool:
        for result in pool.imap(_run_job, jobs):
            results.append(result)
            if len(results) % len(configs):
                continue
            done = seeds[: len(results) // len(configs)]
            wall = time.perf_counter() - start
            write_keeping_section(
                results_file,
                report(configs, results, done, command, wall, args.workers, args.name),
                EXPERIMENTS_HEADING,
            )
            heatmap([r for r in results if r.seed == seeds[0]], args.out / f"{args.name}_qtot.png")


def tables_from_results(path: Path) -> list[RunResult]:
    """The seed-0 ``Q1 \\ Q2`` tables of a results file written by ``report``, as runs (for ``--redraw``)."""
    lines = path.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if not line.startswith("| Q1 \\ Q2 |"):
            continue
        config = next(lines[j].strip("*") for j in range(i - 1, -1, -1) if lines[j].startswith("**"))
        cells = [row.strip("|").split("|") for row in lines[i + 2 : i + 5]]
        number = re.compile(r"-?[\d.]+")
        q2 = np.array([float(number.match(c.strip()).group()) for c in line.strip("|").split("|")[1:]])
        q1 = np.array([float(number.match(row[0].strip()).group()) for row in cells])
        joint = np.array([[float(c) for c in row[1:]] for row in cells])
        found.append(RunResult(config, 0, (), float("nan"), (q1, q2), joint, 0.0))
    if not found:
        raise SystemExit(f"{path}: no 'Q1 \\ Q2' tables to redraw")
    return found


def _run_job(job: tuple[Config, int]) -> RunResult:
    """One pool job; the worker ends with the benchmark if that is killed."""
    exit_with_parent()
    return run(*job)


if __name__ == "__main__":
    main()
