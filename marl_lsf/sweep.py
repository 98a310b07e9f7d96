"""Sweeps: algorithms x environments x seeds x overrides, one Ray task per training run.

A grid comes from a YAML file (see ``examples/sweep.yaml``) or from command-line arguments::

    algos: [lsfsac, qmix]
    envs: [{name: predator_prey, kwargs: {n_prey: 4}}]
    seeds: [0, 1, 2]
    timesteps: 2e5
    overrides: [{}, {latent_dim: 0}]   # constructor keyword arguments, one variant each
    eval_episodes: 8

Every run trains in its own Ray task (``cpus_per_run`` CPUs and as many torch threads,
``gpus_per_run`` GPUs) and writes a run folder ``<results>/<algo>/<env>/<override-tag>/seed_<s>/`` like
``marl-lsf train`` does: ``run.json`` (its settings), ``progress.csv`` (Stable-Baselines3's CSV
logger, with a greedy evaluation row every ``eval_freq`` steps), ``model.zip`` and
``result.json`` (the final greedy evaluation), or ``error.txt`` when it failed. A run that fails
is reported with its error and the others go on. The driver then writes ``<results>/summary.md``
(final test return and win rate per cell: median and min-max over seeds), ``summary.json`` and
learning-curve PNGs (median line, min-max band over seeds) for each environment.

Runs whose folder already holds a successful ``result.json`` with the same settings are not run
again, so an interrupted sweep continues where it stopped.

Without an address, ``sweep`` starts Ray on this machine; with one (or ``RAY_ADDRESS``) it joins
that cluster. Run folders are written where each task runs, so on a cluster ``results_dir``
should be on a filesystem every node shares; the summary and plots are written by the driver
from what the tasks return, so they are complete either way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: Keys a grid file may have.
GRID_KEYS = frozenset(
    {
        "algos",
        "envs",
        "seeds",
        "timesteps",
        "overrides",
        "eval_episodes",
        "eval_freq",
        "policy",
        "algo_kwargs",
    }
)
#: Offset of the evaluation seed from the training seed (the same convention as ``marl-lsf train``).
EVAL_SEED_OFFSET = 10_000
#: Evaluations per run when the grid does not set ``eval_freq``.
DEFAULT_EVALUATIONS = 10


class SweepError(ValueError):
    """An invalid grid, or a sweep that cannot start (e.g. Ray is not installed)."""


# -- the grid -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvEntry:
    """One environment of a grid: a name ``marl_lsf.env_registry`` accepts and its constructor kwargs."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep (picklable: it travels to a Ray task)."""

    algo: str
    env: EnvEntry
    env_label: str
    seed: int
    overrides: dict[str, Any]
    timesteps: int
    eval_episodes: int
    eval_freq: int
    policy: str
    algo_kwargs: dict[str, Any]
    run_dir: str

    @property
    def tag(self) -> str:
        """Folder-safe name of the override variant (``default`` for no overrides)."""
        return _tag(self.overrides) if self.overrides else "default"

    def settings(self) -> dict[str, Any]:
        """The run's ``run.json``, in the format ``marl-lsf train`` writes (so ``eval``/``replay`` work)."""
        from marl_lsf import __version__

        kwargs = {**self.algo_kwargs, **self.overrides}
        return {
            "algo": self.algo,
            "env": self.env.name,
            "env_kwargs": self.env.kwargs,
            "policy": self.policy,
            "seed": self.seed,
            "timesteps": self.timesteps,
            "n_envs": int(kwargs.pop("n_envs", 1)),
            "algo_kwargs": kwargs,
            "eval_freq": self.eval_freq,
            "eval_episodes": self.eval_episodes,
            "checkpoint_freq": 0,
            "overrides": self.overrides,
            "marl_lsf_version": __version__,
        }


@dataclass(frozen=True)
class SweepGrid:
    """Algorithms x environments x seeds x override variants, with a common training budget.

    Args:
        algos: algorithm names (``lsfsac``, ``qmix``, ``vdn``: any ``marl_lsf`` algorithm class,
            case-insensitive).
        envs: the environments.
        seeds: training seeds; evaluation uses ``seed + 10000``.
        timesteps: environment steps per run.
        overrides: variants of constructor keyword arguments; ``{}`` is the algorithm's defaults.
        eval_episodes: greedy episodes of each evaluation (periodic and final).
        eval_freq: environment steps between the evaluations that make the learning curves;
            None: ``timesteps // 10``; 0: no periodic evaluation (curves from training returns).
        policy: ``"MlpPolicy"`` or ``"RnnPolicy"``.
        algo_kwargs: constructor keyword arguments of every run (overrides are applied on top).
    """

    algos: tuple[str, ...]
    envs: tuple[EnvEntry, ...]
    seeds: tuple[int, ...]
    timesteps: int
    overrides: tuple[dict[str, Any], ...] = ({},)
    eval_episodes: int = 8
    eval_freq: int | None = None
    policy: str = "MlpPolicy"
    algo_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("algos", "envs", "seeds", "overrides"):
            if not getattr(self, name):
                raise SweepError(f"the grid's {name} list is empty")
        for algo in self.algos:
            _algorithm(algo)
        labels = self.env_labels()
        if len(set(labels)) != len(labels):
            raise SweepError(f"the grid lists an environment twice: {labels}")
        tags = [_tag(o) if o else "default" for o in self.overrides]
        if len(set(tags)) != len(tags):
            raise SweepError(f"the grid lists an override variant twice: {tags}")
        if self.timesteps < 1 or self.eval_episodes < 1:
            raise SweepError("timesteps and eval_episodes must be >= 1")
        if self.eval_freq is not None and self.eval_freq < 0:
            raise SweepError(f"eval_freq must be >= 0, got {self.eval_freq}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepGrid:
        """A grid from a parsed YAML/JSON mapping (see the module docstring for the keys).

        Raises:
            SweepError: for unknown or missing keys and values of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise SweepError(f"a grid is a mapping of {sorted(GRID_KEYS)}, got {type(data).__name__}")
        unknown = set(data) - GRID_KEYS
        if unknown:
            raise SweepError(f"unknown grid keys {sorted(unknown)}; valid keys: {sorted(GRID_KEYS)}")
        missing = [key for key in ("algos", "envs", "seeds", "timesteps") if key not in data]
        if missing:
            raise SweepError(f"the grid lacks {', '.join(missing)}")
        try:
            eval_freq = data.get("eval_freq")
            return cls(
                algos=tuple(str(a).lower() for a in _as_list(data["algos"], "algos")),
                envs=tuple(_env_entry(e) for e in _as_list(data["envs"], "envs")),
                seeds=tuple(_whole(s, "seeds") for s in _as_list(data["seeds"], "seeds")),
                timesteps=_whole(data["timesteps"], "timesteps"),
                overrides=tuple(
                    _mapping(o, "overrides") for o in _as_list(data.get("overrides", [{}]), "overrides")
                ),
                eval_episodes=_whole(data.get("eval_episodes", 8), "eval_episodes"),
                eval_freq=None if eval_freq is None else _whole(eval_freq, "eval_freq"),
                policy=str(data.get("policy", "MlpPolicy")),
                algo_kwargs=_mapping(data.get("algo_kwargs", {}), "algo_kwargs"),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SweepError):
                raise
            raise SweepError(f"invalid grid: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepGrid:
        """A grid from a YAML file.

        Raises:
            SweepError: for a missing file, invalid YAML or an invalid grid.
        """
        return cls.from_dict(_read_yaml(path))

    def env_labels(self) -> list[str]:
        """Folder-safe names of the envs: the name, plus the kwargs where two envs share a name."""
        names = [env.name for env in self.envs]
        return [
            _slug(env.name) + (f"-{_tag(env.kwargs)}" if names.count(env.name) > 1 else "")
            for env in self.envs
        ]

    def runs(self, results_dir: str | Path) -> list[RunSpec]:
        """Every run of the grid, with its folder ``<results>/<algo>/<env>/<tag>/seed_<s>``."""
        root = Path(results_dir).resolve()
        eval_freq = (
            max(self.timesteps // DEFAULT_EVALUATIONS, 1) if self.eval_freq is None else self.eval_freq
        )
        runs = []
        for algo in self.algos:
            for env, label in zip(self.envs, self.env_labels(), strict=True):
                for overrides in self.overrides:
                    tag = _tag(overrides) if overrides else "default"
                    for seed in self.seeds:
                        run_dir = root / _slug(algo) / label / tag / f"seed_{seed}"
                        runs.append(
                            RunSpec(
                                algo,
                                env,
                                label,
                                seed,
                                dict(overrides),
                                self.timesteps,
                                self.eval_episodes,
                                eval_freq,
                                self.policy,
                                dict(self.algo_kwargs),
                                str(run_dir),
                            )
                        )
        return runs


def _read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"no grid file at {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SweepError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise SweepError(f"{path} does not hold a mapping of {sorted(GRID_KEYS)}")
    return dict(data)


def _as_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str | int | float | dict):
        return [value]
    raise SweepError(f"grid key {name!r} must be a list, got {type(value).__name__}")


def _whole(value: Any, name: str) -> int:
    number = float(value)  # YAML reads 2e5 as a string; float() takes both
    if not number.is_integer():
        raise SweepError(f"grid key {name!r} needs whole numbers, got {value!r}")
    return int(number)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SweepError(f"grid key {name!r} needs mappings of keyword arguments, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _env_entry(value: Any) -> EnvEntry:
    if isinstance(value, str):
        return EnvEntry(value)
    if isinstance(value, Mapping) and "name" in value and set(value) <= {"name", "kwargs"}:
        return EnvEntry(str(value["name"]), _mapping(value.get("kwargs"), "envs.kwargs"))
    raise SweepError(f"an env is a name or {{name: ..., kwargs: {{...}}}}, got {value!r}")


def _slug(text: str) -> str:
    """``text`` with every character that is not safe in a folder name replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9.,_=+-]", "_", text)


def _tag(kwargs: Mapping[str, Any]) -> str:
    """A stable, folder-safe name of keyword arguments: ``latent_dim=0,n_critics=2``."""
    return _slug(",".join(f"{k}={json.dumps(kwargs[k], sort_keys=True)}" for k in sorted(kwargs)))


def _algorithm(name: str) -> type:
    """The algorithm class of ``name`` (see ``marl_lsf.algorithms.algorithm_class``)."""
    from marl_lsf.algorithms import algorithm_class

    try:
        return algorithm_class(name)
    except ValueError as exc:
        raise SweepError(str(exc)) from None


# -- one run --------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What a run reports back to the driver: its final evaluation, learning curve, or its error."""

    algo: str
    env: str
    tag: str
    seed: int
    run_dir: str
    ok: bool
    error: str | None = None
    timesteps: int = 0
    wall_s: float = 0.0
    mean_return: float | None = None
    std_return: float | None = None
    win_rate: float | None = None
    mean_length: float | None = None
    #: Learning curve: environment steps and the evaluation (or training) return, and win rate.
    curve_steps: list[float] = field(default_factory=list)
    curve_returns: list[float] = field(default_factory=list)
    curve_win_rates: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of this result."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        """Inverse of ``to_json``."""
        return cls(**data)


def train_run(spec: RunSpec, device: str = "cpu", n_threads: int = 1) -> RunResult:
    """Train, save and evaluate one run in this process; every exception becomes a failed result.

    Writes ``run.json``, ``progress.csv``, ``model.zip`` and ``result.json`` (or ``error.txt``)
    into ``spec.run_dir``. This is the body of each Ray task; call it directly to run a grid
    one run after another.
    """
    import torch

    torch.set_num_threads(n_threads)
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("error.txt", "result.json", "progress.csv"):
        (run_dir / stale).unlink(missing_ok=True)
    settings = spec.settings()
    (run_dir / "run.json").write_text(json.dumps(settings, indent=2) + "\n")
    result = RunResult(spec.algo, spec.env_label, spec.tag, spec.seed, spec.run_dir, ok=False)
    start = time.perf_counter()
    try:
        _train(spec, settings, device, n_threads, result)
        result.ok = True
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        (run_dir / "error.txt").write_text(traceback.format_exc())
    result.wall_s = time.perf_counter() - start
    if result.ok:
        (run_dir / "result.json").write_text(
            json.dumps({"settings": settings, "result": result.to_json()}, indent=2) + "\n"
        )
    return result


def _train(spec: RunSpec, settings: dict[str, Any], device: str, n_threads: int, result: RunResult) -> None:
    from marl_lsf.callbacks import EvalCallback
    from marl_lsf.checkpoint import configure_logger
    from marl_lsf.env_registry import make_env_factory
    from marl_lsf.evaluation import evaluate_policy
    from marl_lsf.plotting import PlotError, read_progress

    factory = make_env_factory(spec.env.name, **spec.env.kwargs)
    cls = _algorithm(spec.algo)
    kwargs = {"n_threads": n_threads, "device": device, **settings["algo_kwargs"]}
    model = cls(spec.policy, factory, n_envs=settings["n_envs"], seed=spec.seed, **kwargs)
    model.set_logger(configure_logger(spec.run_dir, ["csv"]))
    eval_seed = spec.seed + EVAL_SEED_OFFSET
    evaluator = (
        EvalCallback(factory, spec.eval_freq, spec.eval_episodes, seed=eval_seed) if spec.eval_freq else None
    )
    try:
        model.learn(spec.timesteps, callback=evaluator)
    finally:
        model.env.close()
        model.logger.close()
    model.save(Path(spec.run_dir) / "model.zip")
    if evaluator is not None and evaluator.history:
        final = evaluator.history[-1][1]
    else:
        final = evaluate_policy(model, factory, spec.eval_episodes, deterministic=True, seed=eval_seed)
    result.timesteps = model.num_timesteps
    result.mean_return, result.std_return = final.mean_return, final.std_return
    result.win_rate, result.mean_length = final.win_rate, final.mean_length
    key = "eval/mean_return" if evaluator is not None else "rollout/ep_rew_mean"
    try:
        steps, returns = read_progress(spec.run_dir, key)
        result.curve_steps, result.curve_returns = steps.tolist(), returns.tolist()
        win_steps, wins = read_progress(spec.run_dir, key.replace("mean_return", "win_rate"))
        if np.array_equal(win_steps, steps):
            result.curve_win_rates = wins.tolist()
    except PlotError:
        pass  # no rows of that key (e.g. a run shorter than one episode, or no win reports)


def _reusable(spec: RunSpec) -> RunResult | None:
    """The result of a completed run of the same settings in ``spec.run_dir``, if there is one."""
    path = Path(spec.run_dir) / "result.json"
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        result = RunResult.from_json(saved["result"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    current = spec.settings()
    same = {k: v for k, v in saved.get("settings", {}).items() if k != "marl_lsf_version"} == {
        k: v for k, v in current.items() if k != "marl_lsf_version"
    }
    return result if same and result.ok else None


# -- the sweep --------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """The outcome of a sweep: every run's result and the files the driver wrote."""

    runs: list[RunResult]
    results_dir: Path
    summary_md: Path
    summary_json: Path
    plots: list[Path]
    wall_s: float

    @property
    def failed(self) -> list[RunResult]:
        """The runs that raised (their ``error`` says why)."""
        return [r for r in self.runs if not r.ok]

    @property
    def ok(self) -> bool:
        """True when every run succeeded."""
        return not self.failed


def sweep(
    grid: SweepGrid | Mapping[str, Any],
    results_dir: str | Path,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    verbose: int = 0,
) -> SweepResult:
    """Run every run of ``grid`` as a Ray task, then write the summary table and the learning curves.

    Args:
        grid: the runs, as a ``SweepGrid`` or a mapping of the grid file's keys.
        results_dir: the folder of the run folders, ``summary.md``, ``summary.json`` and the plots.
        address: a Ray cluster to join (e.g. ``ray://head:10001`` or ``auto``); None joins
            ``RAY_ADDRESS`` when it is set, else starts Ray on this machine. Joins only when Ray is
            not initialized in this process already (then that Ray is used and left running).
        num_cpus: CPUs of a Ray started here (None: all of this machine's); ignored when joining.
        cpus_per_run: CPUs Ray reserves for each run; torch uses that many threads, rounded down,
            at least one, and a run with ``n_envs > 1`` collects in that many rollout workers (at
            most ``n_envs``; in-process with one CPU), see ``marl_lsf.team_env.make_team_vec_env``.
        gpus_per_run: GPUs for each run (fractions share a GPU, e.g. 0.25 packs 4 runs on one).
            With GPUs the runs train with ``device="cuda"``; without, on the CPU.
        verbose: 1 prints a line per finished run.

    Returns:
        A ``SweepResult`` with one ``RunResult`` per run, in grid order; failed runs have
        ``ok=False`` and their ``error``.

    Raises:
        SweepError: for an invalid grid, or when Ray is not installed.
    """
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise SweepError("sweeps run on Ray: pip install 'marl-lsf[ray]'") from exc
    if not isinstance(grid, SweepGrid):
        grid = SweepGrid.from_dict(grid)
    start = time.perf_counter()
    results_dir = Path(results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    specs = grid.runs(results_dir)
    results: list[RunResult | None] = [_reusable(spec) for spec in specs]
    if verbose and any(results):
        print(f"{sum(r is not None for r in results)} of {len(specs)} runs are done already; reusing them")
    device = "cuda" if gpus_per_run > 0 else "cpu"
    n_threads = max(1, math.floor(cpus_per_run)) if device == "cpu" else 1
    started_here = not ray.is_initialized()
    if started_here:
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        task = ray.remote(train_run).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        pending = {
            task.remote(spec, device, n_threads): i for i, spec in enumerate(specs) if results[i] is None
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                results[i] = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the worker died (e.g. out of memory)
                spec = specs[i]
                results[i] = RunResult(
                    spec.algo,
                    spec.env_label,
                    spec.tag,
                    spec.seed,
                    spec.run_dir,
                    ok=False,
                    error=_first_line(exc),
                )
            if verbose:
                print(_progress_line(results[i], len(specs) - len(pending), len(specs)), flush=True)
    finally:
        if started_here:
            ray.shutdown()
    final = [r for r in results if r is not None]
    summary_md = write_summary(final, results_dir)
    plots = plot_sweep(final, results_dir)
    return SweepResult(
        final, results_dir, summary_md, results_dir / "summary.json", plots, time.perf_counter() - start
    )


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"


def _progress_line(result: RunResult, done: int, total: int) -> str:
    what = f"{result.algo} / {result.env} / {result.tag} / seed {result.seed}"
    if not result.ok:
        return f"[{done}/{total}] FAILED {what}: {result.error}"
    win = "" if result.win_rate is None else f", win rate {result.win_rate:.2f}"
    return f"[{done}/{total}] {what}: test return {result.mean_return:.3f}{win} ({result.wall_s:.0f} s)"


# -- aggregation ------------------------------------------------------------------------------------


def _cells(results: Sequence[RunResult]) -> dict[tuple[str, str, str], list[RunResult]]:
    cells: dict[tuple[str, str, str], list[RunResult]] = {}
    for result in results:
        cells.setdefault((result.algo, result.env, result.tag), []).append(result)
    return cells


def _median_range(values: Sequence[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


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
    for (algo, env, tag), cell in _cells(results).items():
        ok = [r for r in cell if r.ok]
        returns = [r.mean_return for r in ok if r.mean_return is not None]
        wins = [r.win_rate for r in ok if r.win_rate is not None]
        steps = f"{int(np.median([r.timesteps for r in ok])):,}" if ok else "-"
        wall = f"{np.median([r.wall_s for r in ok]):.1f}" if ok else "-"
        lines.append(
            f"| {algo} | {env} | {tag} | {len(ok)}/{len(cell)} | {_median_range(returns)} "
            f"| {_median_range(wins)} | {steps} | {wall} |"
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


# -- command line -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marl-lsf sweep",
        description=(
            "Train algorithms x environments x seeds x overrides, one Ray task per run, and write "
            "RESULTS/summary.md, summary.json and learning-curve plots. The grid comes from a YAML "
            "file and/or the options below, which replace the file's values."
        ),
    )
    parser.add_argument("config", nargs="?", metavar="YAML", help="grid file (see examples/sweep.yaml)")
    parser.add_argument("--results", metavar="DIR", default="runs/sweep", help="results folder")
    parser.add_argument("--algos", nargs="+", metavar="ALGO", help="algorithms, e.g. lsfsac qmix")
    parser.add_argument("--envs", nargs="+", metavar="ENV", help="environment names, e.g. predator_prey")
    parser.add_argument(
        "--env-kwargs", metavar="JSON", help="constructor kwargs of the --envs environments (a JSON object)"
    )
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="training seeds")
    parser.add_argument("--timesteps", type=float, help="environment steps per run (2e5 style allowed)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor argument of every run (VALUE is read as YAML: 0.001, true, [64, 64]); repeatable",
    )
    parser.add_argument(
        "--override",
        action="append",
        metavar="JSON",
        help="an override variant (JSON object of constructor kwargs); repeat for several, '{}' for the defaults",
    )
    parser.add_argument("--eval-episodes", type=int, help="greedy episodes per evaluation (default 8)")
    parser.add_argument("--eval-freq", type=int, help="steps between evaluations (default timesteps/10)")
    parser.add_argument(
        "--policy", choices=["MlpPolicy", "RnnPolicy"], help="agent network (default MlpPolicy)"
    )
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of a local Ray (default: all)")
    parser.add_argument("--cpus-per-run", type=float, default=1, help="CPUs per run (default 1)")
    parser.add_argument(
        "--gpus-per-run", type=float, default=0, help="GPUs per run, fractions allowed (default 0: CPU)"
    )
    return parser


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SweepError(f"{option}: invalid JSON {text!r} ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise SweepError(f"{option}: expected a JSON object, got {text!r}")
    return value


def _key_values(items: Sequence[str]) -> dict[str, Any]:
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SweepError(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SweepError(f"--set {item!r}: invalid value ({exc})") from exc
    return values


def grid_from_args(args: argparse.Namespace) -> SweepGrid:
    """The grid of the YAML file (if any) with the command-line options replacing its values."""
    data: dict[str, Any] = _read_yaml(args.config) if args.config else {}
    env_kwargs = _json_object(args.env_kwargs, "--env-kwargs") if args.env_kwargs else {}
    if args.envs:
        data["envs"] = [{"name": name, "kwargs": env_kwargs} for name in args.envs]
    elif env_kwargs:
        raise SweepError("--env-kwargs needs --envs")
    options = {
        "algos": args.algos,
        "seeds": args.seeds,
        "timesteps": args.timesteps,
        "eval_episodes": args.eval_episodes,
        "eval_freq": args.eval_freq,
        "policy": args.policy,
        "overrides": [_json_object(o, "--override") for o in args.override] if args.override else None,
    }
    data.update({key: value for key, value in options.items() if value is not None})
    if args.set:
        data["algo_kwargs"] = {**_mapping(data.get("algo_kwargs"), "algo_kwargs"), **_key_values(args.set)}
    return SweepGrid.from_dict(data)


def _rich_table(result: SweepResult) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(
            f"Sweep: {len(result.runs)} runs in {result.wall_s:.0f} s (median [min, max] over seeds)"
        )
    )
    for name in ("algorithm", "environment", "overrides"):
        table.add_column(name, overflow="fold")
    for name in ("runs ok", "test return", "win rate"):
        table.add_column(name, justify="right", no_wrap=True)
    for (algo, env, tag), cell in _cells(result.runs).items():
        ok = [r for r in cell if r.ok]
        returns = [r.mean_return for r in ok if r.mean_return is not None]
        wins = [r.win_rate for r in ok if r.win_rate is not None]
        style = None if len(ok) == len(cell) else "red"
        cells = (algo, env, tag, f"{len(ok)}/{len(cell)}", _median_range(returns), _median_range(wins))
        table.add_row(*(escape(text) for text in cells), style=style)
    return table


def cli_main(argv: list[str]) -> int:
    """``marl-lsf sweep``: run a grid; exit 0 when every run succeeded, 1 when some failed, 2 on bad input."""
    from rich.console import Console
    from rich.markup import escape

    args = _parser().parse_args(argv)
    console, err_console = Console(), Console(stderr=True)
    try:
        grid = grid_from_args(args)
        with console.status(f"training {len(grid.runs(args.results))} runs on Ray"):
            result = sweep(
                grid,
                args.results,
                address=args.address,
                num_cpus=args.num_cpus,
                cpus_per_run=args.cpus_per_run,
                gpus_per_run=args.gpus_per_run,
            )
    except SweepError as exc:
        err_console.print(f"[bold red]marl-lsf sweep: error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2
    console.print(_rich_table(result))
    for run in result.failed:
        console.print(
            f"[red]FAILED[/] {escape(f'{run.algo} / {run.env} / {run.tag} / seed {run.seed}: {run.error}')}",
            soft_wrap=True,
        )
    console.print(
        f"{len(result.runs) - len(result.failed)} of {len(result.runs)} runs succeeded; "
        f"summary in {result.summary_md}",
        soft_wrap=True,
    )
    return 0 if result.ok else 1
