"""Learning curves: median over seeds with a min-max band, from run folders or raw arrays.

``plot_curves`` is the drawing primitive (the benchmarks reuse it); ``load_run_curves`` reads run
folders written by ``marl-lsf train`` (``progress.csv`` from Stable-Baselines3's CSV logger and
``run.json`` with the run's settings), searching sub-folders such as a sweep's, and groups them
into experiments: runs whose settings differ only in the seed, labelled by what differs. A
sweep's ``summary.json`` stands in for its run folders (``find_runs``): it keeps every run's
evaluation curves, so sweeps whose run folders are gone, or on the machines of a Ray cluster,
can still be plotted together.
"""

from __future__ import annotations

import csv
import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

#: Column of ``progress.csv`` used as the x axis.
STEP_KEY = "time/total_timesteps"
#: Points of the common x grid that the curves of a group are interpolated onto.
GRID_POINTS = 200
#: Characters per line of a legend entry: longer labels (a sweep's many differing settings) are
#: wrapped, so the legend stays inside the figure instead of squeezing the axes off its edge.
LEGEND_WIDTH = 48

#: ``run.json`` settings that do not set runs apart as experiments (runs differing only here are seeds).
IGNORED_SETTINGS = ("seed",)

Curve = tuple[np.ndarray, np.ndarray]

#: ``summary.json`` fields of a sweep's run that are its settings (as a run folder's ``run.json``).
SUMMARY_SETTINGS = ("algo", "env", "tag", "seed")
#: The win-rate key logged beside each return key a sweep's learning curve can come from.
WIN_RATE_KEYS = {"eval/mean_return": "eval/win_rate", "rollout/ep_rew_mean": "rollout/win_rate"}
#: The key of a ``summary.json`` return curve written before summaries named it (an evaluation's
#: unless that sweep set ``eval_freq: 0``).
EARLIER_SUMMARY_KEY = "eval/mean_return"


class PlotError(ValueError):
    """Nothing to plot: no run folders, no logs, or no values for the requested key."""


@dataclass(frozen=True)
class SummaryRun:
    """One run of a sweep's ``summary.json``: its settings and curves, where a run folder is not at hand.

    ``read_settings`` and ``read_progress`` accept it in place of a run folder.

    Args:
        source: where it comes from, ``"<summary.json>#<row>"`` (its label when it has no settings).
        settings: ``algo``, ``env``, ``tag`` (the sweep's override variant) and ``seed``.
        curves: logged key -> ``(steps, values)``: the sweep's return curve under the key it was
            read from (``eval/mean_return``, or ``rollout/ep_rew_mean`` for a sweep that did not
            evaluate) and, where the runs report wins, its win-rate curve.
    """

    source: str
    settings: dict[str, Any]
    curves: dict[str, Curve]

    def __str__(self) -> str:
        return self.source


#: A run folder, or a run of a sweep's ``summary.json``.
Run = str | Path | SummaryRun


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
        name = legend_label(label, len(cleaned))
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
    wrapped = any("\n" in label for label in ax.get_legend_handles_labels()[1])
    fig.tight_layout()
    if wrapped:
        # Long labels go below the x label, where they cover no curve; the saved image grows to hold them.
        label_box = ax.xaxis.label.get_window_extent(fig.canvas.get_renderer())
        below = ax.transAxes.inverted().transform((0.0, label_box.y0))[1]
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, below - 0.02), fontsize="small")
    else:
        ax.legend()
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight" if wrapped else None)
    plt.close(fig)
    return path


def legend_label(label: str, n_curves: int) -> str:
    """``"label (n=K)"`` wrapped to lines of at most ``LEGEND_WIDTH`` characters, breaking at spaces."""
    return textwrap.fill(
        f"{label} (n={n_curves})", LEGEND_WIDTH, break_long_words=False, break_on_hyphens=False
    )


def common_last_step(groups: Mapping[str, Sequence[Curve]]) -> float | None:
    """The largest step every curve of every group reached (None when there is no point).

    Runs cut at different steps (by a wall-time limit, say) are compared there, not at their ends.
    """
    ends = [float(np.max(x)) for curves in groups.values() for x, y in curves if np.asarray(x).size]
    return min(ends) if ends else None


def value_at(curves: Sequence[Curve], step: float) -> float | None:
    """The median over ``curves`` of their value at ``step``, linearly interpolated between logged points.

    A curve counts only where ``step`` lies within its logged steps; None when none covers it.
    """
    values = []
    for x, y in curves:
        x, y = _clean(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        if x.size and x[0] <= step <= x[-1]:
            values.append(float(np.interp(step, x, y)))
    return float(np.median(values)) if values else None


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


def read_progress(run_dir: Run, key: str) -> Curve:
    """``(steps, values)`` of ``key`` in a run folder's ``progress.csv`` (rows without it skipped).

    Raises:
        PlotError: when the folder has no ``progress.csv`` or the file has no ``key`` column (a
            ``SummaryRun``: when it holds no curve of ``key``).
    """
    if isinstance(run_dir, SummaryRun):
        if key not in run_dir.curves:
            raise PlotError(
                f"{run_dir} has no curve of {key!r}; it has {', '.join(run_dir.curves) or 'none'}"
            )
        return run_dir.curves[key]
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


def find_run_folders(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders (those holding a ``progress.csv``) among ``paths`` and in every folder below them.

    A sweep's output (``<results>/<algo>/<env>/<variant>/seed_<n>``) is found from its top folder.

    Raises:
        PlotError: when a path is not a folder, or no run folder is found.
    """
    folders: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise PlotError(f"{path} is not a folder")
        folders += sorted(found.parent for found in path.rglob("progress.csv"))
    if not folders:
        raise PlotError(f"no run folders (with a progress.csv) in or below {', '.join(map(str, paths))}")
    return list(dict.fromkeys(folders))


def find_runs(paths: Sequence[str | Path]) -> list[Run]:
    """``find_run_folders`` of the folders among ``paths``, and the runs of the ``.json`` files among
    them, read as a sweep's ``summary.json`` (``read_sweep_summary``), in the order given.

    Raises:
        PlotError: as ``find_run_folders`` and ``read_sweep_summary`` raise it.
    """
    runs: list[Run] = []
    for raw in paths:
        path = Path(raw)
        runs += read_sweep_summary(path) if path.suffix == ".json" else find_run_folders([path])
    unique: dict[str, Run] = {}
    for run in runs:
        unique.setdefault(str(run), run)
    return list(unique.values())


def read_sweep_summary(path: str | Path) -> list[SummaryRun]:
    """The finished runs of a sweep's ``summary.json`` that have a learning curve.

    Raises:
        PlotError: when the file cannot be read, is not a list of a sweep's run results, or has no
            run with a curve.
    """
    try:
        rows = json.loads(Path(path).read_text())
    except OSError as exc:
        raise PlotError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlotError(f"{path}: not a JSON file ({exc})") from None
    needed = {*SUMMARY_SETTINGS, "ok", "curve_steps", "curve_returns"}
    if not isinstance(rows, list) or not all(isinstance(row, dict) and needed <= set(row) for row in rows):
        raise PlotError(
            f"{path}: not a sweep's summary.json (a list of run results with {', '.join(sorted(needed))})"
        )
    runs = []
    for index, row in enumerate(rows):
        steps = np.asarray(row["curve_steps"], dtype=float)
        if not row["ok"] or not steps.size:
            continue
        key = row.get("curve_key", EARLIER_SUMMARY_KEY)
        curves = {key: (steps, np.asarray(row["curve_returns"], dtype=float))}
        if row.get("curve_win_rates") and key in WIN_RATE_KEYS:
            curves[WIN_RATE_KEYS[key]] = (steps, np.asarray(row["curve_win_rates"], dtype=float))
        settings = {name: row[name] for name in SUMMARY_SETTINGS}
        runs.append(SummaryRun(f"{path}#{index}", settings, curves))
    if not runs:
        raise PlotError(f"{path}: no finished run with a learning curve")
    return runs


def read_settings(run_dir: Run) -> dict[str, Any] | None:
    """A run folder's ``run.json`` settings, or None when it has none (or not a JSON object)."""
    if isinstance(run_dir, SummaryRun):
        return dict(run_dir.settings)
    path = Path(run_dir) / "run.json"
    try:
        settings = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return settings if isinstance(settings, dict) else None


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as ``{"algo_kwargs.latent_dim": "0", ...}``: dotted keys, values as JSON text.

    An empty mapping sets nothing, so ``env_kwargs: {}`` and a missing ``env_kwargs`` are alike.
    """
    flat: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{name}."))
        else:
            flat[name] = json.dumps(value, sort_keys=True)
    return flat


def group_runs(
    run_dirs: Sequence[Run],
    label_by: Sequence[str] | None = None,
    ignore: Sequence[str] = IGNORED_SETTINGS,
) -> dict[str, list[Path | SummaryRun]]:
    """Group run folders into experiments, each labelled by what sets it apart.

    By default runs are one group when every ``run.json`` setting other than those in ``ignore``
    (the seed) is equal, nested settings included (``algo_kwargs``, ``env_kwargs``, a sweep's
    ``overrides``); a label names the settings that differ between the groups (``algo`` and
    ``env`` by value, others as ``name=value``, ``default`` where a run does not set it), or the
    algorithm and env when there is one group. A run without ``run.json`` is a group of its own,
    labelled by its folder. With ``label_by``, runs are grouped by those top-level fields only and
    labelled by their values.
    """
    keyed: dict[tuple[str, ...], list[Path | SummaryRun]] = {}
    flat_of: dict[tuple[str, ...], dict[str, str] | None] = {}
    for raw in run_dirs:
        run_dir = raw if isinstance(raw, SummaryRun) else Path(raw)
        settings = read_settings(run_dir)
        if settings is None:
            key: tuple[str, ...] = ("folder", str(run_dir))
            flat = None
        elif label_by is not None:
            flat = {name: _display(settings.get(name)) for name in label_by}
            key = tuple(flat[name] for name in label_by)
        else:
            flat = {k: v for k, v in flatten_settings(settings).items() if k.partition(".")[0] not in ignore}
            key = tuple(sorted(f"{k}={v}" for k, v in flat.items()))
        keyed.setdefault(key, []).append(run_dir)
        flat_of.setdefault(key, flat)
    labels = _group_labels(flat_of, explicit=label_by is not None)
    return {labels[key]: runs for key, runs in keyed.items()}


def _display(value: Any) -> str:
    """A setting's value as a label shows it: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _group_labels(
    flat_of: Mapping[tuple[str, ...], dict[str, str] | None], explicit: bool
) -> dict[tuple[str, ...], str]:
    """The label of every group key (see ``group_runs``)."""
    if explicit:
        return {key: " / ".join(key) if flat is not None else key[1] for key, flat in flat_of.items()}
    known = [flat for flat in flat_of.values() if flat is not None]
    names = sorted({name for flat in known for name in flat})
    varying = [name for name in names if len({flat.get(name) for flat in known}) > 1]
    varying.sort(key=lambda name: (name not in ("algo", "env"), name))
    if not varying:
        varying = [name for name in ("algo", "env") if name in names]
    leaves = [name.rpartition(".")[2] for name in varying]
    labels = {}
    for key, flat in flat_of.items():
        if flat is None:
            labels[key] = key[1]
            continue
        parts: list[str] = []
        for name, leaf in zip(varying, leaves, strict=True):
            shown = leaf if _same_everywhere(known, varying, leaf) else name
            value = flat.get(name)
            text = "default" if value is None else _display(json.loads(value))
            part = text if name in ("algo", "env") else f"{shown}={text}"
            if part not in parts:
                parts.append(part)
        labels[key] = " / ".join(parts) or "runs"
    return labels


def _same_everywhere(known: Sequence[Mapping[str, str]], varying: Sequence[str], leaf: str) -> bool:
    """Whether every varying setting named ``leaf`` (under any parent) has one value within each run."""
    names = [name for name in varying if name.rpartition(".")[2] == leaf]
    return all(len({flat.get(name) for name in names}) == 1 for flat in known)


def shared_setup(run_dirs: Sequence[Run]) -> str:
    """What every run has in common of its algorithm and env, for a figure title.

    E.g. ``"lsfsac on predator_prey (n_prey=4)"``, ``"on predator_prey (env defaults)"`` when the
    algorithms differ, ``""`` when the runs share neither, or one has no ``run.json``.
    """
    settings = [read_settings(run_dir) for run_dir in run_dirs]
    if not settings or None in settings:
        return ""
    flats = [flatten_settings(one) for one in settings if one is not None]

    def shared(name: str) -> str | None:
        values = {flat.get(name) for flat in flats}
        return None if len(values) != 1 or None in values else _display(json.loads(values.pop()))

    algo, env = shared("algo"), shared("env")
    if env is None:
        return algo or ""
    env_names = sorted({name for flat in flats for name in flat if name.startswith("env_kwargs.")})
    if any(shared(name) is None for name in env_names):
        kwargs = "varying env settings"
    else:
        kwargs = ", ".join(f"{name.partition('.')[2]}={shared(name)}" for name in env_names) or "env defaults"
    return f"{algo + ' ' if algo else ''}on {env} ({kwargs})"


def load_run_curves(
    run_dirs: Sequence[Run], key: str, label_by: Sequence[str] | None = None
) -> dict[str, list[Curve]]:
    """The ``key`` curves of run folders, grouped as ``group_runs`` groups them.

    Folders that lack ``key`` are skipped; a ``PlotError`` is raised only when none has it.
    """
    groups: dict[str, list[Curve]] = {}
    problems = []
    for label, runs in group_runs(run_dirs, label_by).items():
        for run_dir in runs:
            try:
                curve = read_progress(run_dir, key)
            except PlotError as exc:
                problems.append(str(exc))
                continue
            if curve[0].size:
                groups.setdefault(label, []).append(curve)
    if not groups:
        detail = f": {problems[0]}" if problems else ""
        raise PlotError(f"no run has values of {key!r}{detail}")
    return groups
