"""``sweep``: every run of a grid as a Ray task, then the summary and the learning curves."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marl_lsf.sweep.grid import SweepError, SweepGrid
from marl_lsf.sweep.run import RunResult, reusable_result, train_run
from marl_lsf.sweep.summary import plot_sweep, write_summary

#: Ray's setting of its workers' niceness (an environment variable, named in this case, read when
#: a local Ray starts; ray._private.ray_constants.RAY_WORKER_NICENESS).
RAY_WORKER_NICENESS = "RAY_worker_niceness"


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
            most ``n_envs``; in-process with one CPU), see ``marl_lsf.vec_env.make_team_vec_env``.
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
    results: list[RunResult | None] = [reusable_result(spec) for spec in specs]
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
            start_local_ray(num_cpus)
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


def start_local_ray(num_cpus: int | None) -> None:
    """``ray.init`` of a local Ray whose workers run at this process's priority.

    Ray lowers its workers' priority by default (``RAY_worker_niceness=15``) so they never slow
    its own services. A sweep's runs are the user's main work: at niceness 15 any ordinary busy
    process sharing a core takes nearly all of it from them (CFS weights 36 against 1024). Ray's
    own job submission sets the variable to 0 for its jobs' workers; here it is this process's
    niceness, unless the user set ``RAY_worker_niceness``. The variable is read when Ray starts
    and restored afterwards.
    """
    import ray

    previous = os.environ.get(RAY_WORKER_NICENESS)
    os.environ.setdefault(RAY_WORKER_NICENESS, str(os.nice(0)))
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    finally:
        if previous is None:
            del os.environ[RAY_WORKER_NICENESS]
