"""What a sweep's driver writes from its runs' results: ``summary.md``, ``summary.json`` and plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from marl_lsf.sweep.run import RunResult


def group_by_cell(results: Sequence[RunResult]) -> dict[tuple[str, str, str], list[RunResult]]:
    """The results by ``(algorithm, environment, override tag)`` cell, in the order they first appear."""
    cells: dict[tuple[str, str, str], list[RunResult]] = {}
    for result in results:
        cells.setdefault((result.algo, result.env, result.tag), []).append(result)
    return cells


def median_range(values: Sequence[float]) -> str:
    """``median [min, max]`` of ``values`` to three decimals (one value alone; ``-`` for none)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def cell_outcomes(cell: Sequence[RunResult]) -> tuple[list[RunResult], list[float], list[float]]:
    """A cell's successful runs, and their final test returns and win rates where they report them."""
    ok = [r for r in cell if r.ok]
    returns = [r.mean_return for r in ok if r.mean_return is not None]
    wins = [r.win_rate for r in ok if r.win_rate is not None]
    return ok, returns, wins


def write_summary(results: Sequence[RunResult], results_dir: str | Path) -> Path:
    """Write ``summary.md`` (one row per algorithm / env / override cell) and ``summary.json``.

    A cell shows the final greedy test return and win rate as ``median [min, max]`` over its
    successful seeds; failed runs are counted in the cell and listed with their errors below.
    Returns the path of ``summary.md``.
    """
    results_dir = Path(results_dir)
    lines = [
        "# Sweep summary",
        "",
        "Final greedy evaluation of each run; median [min, max] over seeds.",
        "",
        "| algorithm | environment | overrides | runs ok | test return | win rate | steps/run | wall s/run |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (algo, env, tag), cell in group_by_cell(results).items():
        ok, returns, wins = cell_outcomes(cell)
        steps = f"{int(np.median([r.timesteps for r in ok])):,}" if ok else "-"
        wall = f"{np.median([r.wall_s for r in ok]):.1f}" if ok else "-"
        lines.append(
            f"| {algo} | {env} | {tag} | {len(ok)}/{len(cell)} | {median_range(returns)} "
            f"| {median_range(wins)} | {steps} | {wall} |"
        )
    failed = [r for r in results if not r.ok]
    if failed:
        lines += ["", "## Failed runs", "", "| run | error |", "|---|---|"]
        for r in failed:
            error = (r.error or "unknown error").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r.algo} / {r.env} / {r.tag} / seed {r.seed} | {error} |")
    path = results_dir / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    (results_dir / "summary.json").write_text(json.dumps([r.to_json() for r in results], indent=2) + "\n")
    return path


def plot_sweep(results: Sequence[RunResult], results_dir: str | Path) -> list[Path]:
    """Learning curves per environment: ``curves_<env>.png`` (return) and ``win_rate_<env>.png``.

    One line per algorithm and override variant: the median over seeds with a min-max band, as in
    the LSF-SAC paper's figures. Environments without any curve point get no plot. Returns the
    paths written.
    """
    from marl_lsf.plotting import PlotError, plot_curves

    results_dir = Path(results_dir)
    written = []
    by_env: dict[str, list[RunResult]] = {}
    for result in results:
        if result.ok and result.curve_steps:
            by_env.setdefault(result.env, []).append(result)
    for env, runs in by_env.items():
        for kind, attr, ylabel in (
            ("curves", "curve_returns", "test return (greedy)"),
            ("win_rate", "curve_win_rates", "test win rate"),
        ):
            groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
            for r in runs:
                values = getattr(r, attr)
                if values:
                    label = r.algo if r.tag == "default" else f"{r.algo} ({r.tag})"
                    groups.setdefault(label, []).append((np.asarray(r.curve_steps), np.asarray(values)))
            if groups:
                try:
                    written.append(
                        plot_curves(
                            groups, results_dir / f"{kind}_{env}.png", "environment steps", ylabel, env
                        )
                    )
                except PlotError:
                    continue
    return written
