"""Learning curves: median over seeds with a min-max band, from run folders or raw arrays.

``plot_curves`` is the drawing primitive (the benchmarks reuse it); ``load_run_curves`` reads run
folders written by ``marl-lsf train`` (``progress.csv`` from Stable-Baselines3's CSV logger and
``run.json`` with the run's settings) and groups them by settings such as algorithm and env.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

#: Column of ``progress.csv`` used as the x axis.
STEP_KEY = "time/total_timesteps"
#: Points of the common x grid that the curves of a group are interpolated onto.
GRID_POINTS = 200

Curve = tuple[np.ndarray, np.ndarray]


class PlotError(ValueError):
    """Nothing to plot: no run folders, no logs, or no values for the requested key."""


def plot_curves(
    groups: dict[str, list[Curve]],
    path: str | Path,
    xlabel: str = "environment steps",
    ylabel: str = "return",
    title: str = "",
) -> Path:
    """Draw one median line with a min-max band per group and save the figure.

    Args:
        groups: label -> list of ``(x, y)`` curves (one per seed). The curves of a group are
            interpolated onto a common grid spanning the x range that all of them cover (their
            union when they do not overlap); a group of one curve is drawn as is.
        path: image file to write (PNG, SVG, PDF: any format matplotlib knows by suffix).
        xlabel: x axis label.
        ylabel: y axis label.
        title: figure title.

    Returns:
        The path written.

    Raises:
        PlotError: when no group has a point to draw.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for label, curves in groups.items():
        cleaned = [_clean(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in curves]
        cleaned = [(x, y) for x, y in cleaned if x.size]
        if not cleaned:
            continue
        grid, ys = _common_grid(cleaned)
        median = np.median(ys, axis=0)
        name = f"{label} (n={len(cleaned)})"
        (line,) = ax.plot(grid, median, label=name, marker="o" if grid.size == 1 else None)
        if len(cleaned) > 1:
            ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), color=line.get_color(), alpha=0.2)
        drawn += 1
    if not drawn:
        plt.close(fig)
        raise PlotError("no curve has any finite point to draw")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _clean(x: np.ndarray, y: np.ndarray) -> Curve:
    """Finite points only, sorted by x."""
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], y[keep][order]


def _common_grid(curves: list[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """``(grid, ys [n_curves, len(grid)])``: all curves interpolated onto one x grid."""
    if len(curves) == 1:
        x, y = curves[0]
        return x, y[None]
    lo, hi = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if lo > hi:
        lo, hi = min(x[0] for x, _ in curves), max(x[-1] for x, _ in curves)
    grid = np.linspace(lo, hi, GRID_POINTS) if hi > lo else np.array([lo])
    return grid, np.stack([np.interp(grid, x, y) for x, y in curves])


def read_progress(run_dir: str | Path, key: str) -> Curve:
    """``(steps, values)`` of ``key`` in a run folder's ``progress.csv`` (rows without it skipped).

    Raises:
        PlotError: when the folder has no ``progress.csv`` or the file has no ``key`` column.
    """
    path = Path(run_dir) / "progress.csv"
    if not path.is_file():
        raise PlotError(f"{run_dir} has no progress.csv (is it a `marl-lsf train` run folder?)")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0]) if rows else set()
    if key not in columns:
        raise PlotError(f"{path} has no column {key!r}; columns: {', '.join(sorted(columns)) or 'none'}")
    xs, ys = [], []
    for row in rows:
        x, y = _number(row.get(STEP_KEY)), _number(row.get(key))
        if math.isfinite(x) and math.isfinite(y):
            xs.append(x)
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def _number(text: str | None) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def run_label(run_dir: str | Path, label_by: Sequence[str]) -> str:
    """The group label of a run: its ``run.json`` values of ``label_by`` (or the folder name)."""
    settings_path = Path(run_dir) / "run.json"
    if not settings_path.is_file():
        return Path(run_dir).name
    settings = json.loads(settings_path.read_text())
    parts = []
    for name in label_by:
        value = settings.get(name)
        parts.append(json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value))
    return " / ".join(parts)


def load_run_curves(
    run_dirs: Sequence[str | Path], key: str, label_by: Sequence[str] = ("algo", "env")
) -> dict[str, list[Curve]]:
    """Group the ``key`` curves of run folders by their ``run.json`` settings ``label_by``.

    Folders that lack ``key`` are skipped; a ``PlotError`` is raised only when none has it.
    """
    groups: dict[str, list[Curve]] = {}
    problems = []
    for run_dir in run_dirs:
        try:
            curve = read_progress(run_dir, key)
        except PlotError as exc:
            problems.append(str(exc))
            continue
        if curve[0].size:
            groups.setdefault(run_label(run_dir, label_by), []).append(curve)
    if not groups:
        detail = f": {problems[0]}" if problems else ""
        raise PlotError(f"no run has values of {key!r}{detail}")
    return groups
