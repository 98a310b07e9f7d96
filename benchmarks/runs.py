"""Shared machinery of the learning-curve benchmarks: one training run per process, curves, tables.

A ``Job`` names an algorithm, an environment (by the names ``marl-lsf`` accepts), a seed and a
budget. ``run_jobs`` trains the jobs in a process pool (one torch thread each), evaluating the
greedy team every ``eval_every`` steps with ``marl_lsf.callbacks.EvalCallback``; a job may also
stop at a wall-clock limit, and its curve then ends where it got to.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import re
import shlex
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Job:
    """One training run of a learning-curve benchmark."""

    algo: str
    env: str
    seed: int
    steps: int
    eval_every: int
    eval_episodes: int
    policy: str = "MlpPolicy"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    time_limit: float | None = None
    name: str | None = None
    save_dir: str | None = None

    @property
    def label(self) -> str:
        """The curve group this run belongs to: ``name``, else the algorithm and its extra arguments."""
        if self.name is not None:
            return self.name
        return run_label(
            self.algo, {k: v for k, v in self.algo_kwargs.items() if k not in ("n_envs", "device")}
        )


def run_label(algo: str, kwargs: dict[str, Any]) -> str:
    """``"ALGO"``, or ``"ALGO (k=v,...)"`` with the given constructor arguments, sorted."""
    extra = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    return algo + (f" ({extra})" if extra else "")


def write_keeping_section(path: Path, text: str, heading: str) -> None:
    """Write a results file, keeping its hand-written section from ``heading`` to the end, if any."""
    previous = path.read_text() if path.exists() else ""
    kept = previous[previous.find(heading) :] if heading in previous else ""
    path.write_text(text + kept)


class WallClockLimit(BaseCallback):
    """Stop training after ``seconds`` of wall time."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.deadline = time.monotonic() + seconds

    def _on_step(self) -> bool:
        return time.monotonic() < self.deadline


def machine() -> str:
    """A one-line description of this machine."""
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores (load {load:.1f} at the end), "
        f"Python {platform.python_version()}, torch {torch.__version__}{gpu}"
    )


def command() -> str:
    """The command line that is running, for the results files."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def exit_with_parent(poll_seconds: float = 5.0) -> None:
    """End this worker process when the benchmark that started it is gone (killed, even with SIGKILL).

    A pool worker otherwise keeps training for up to an hour after its parent died, on cores that
    the next benchmark needs. A daemon thread polls the parent's pid (one per process).
    """
    if any(thread.name == "exit-with-parent" for thread in threading.enumerate()):
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def run_job(job: Job) -> dict[str, Any]:
    """Train one job with periodic evaluation; returns its curve (or its error) and wall time."""
    import torch

    exit_with_parent()

    import marl_lsf
    from marl_lsf.callbacks import EvalCallback
    from marl_lsf.env_registry import make_env_factory

    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        factory = make_env_factory(job.env, **job.env_kwargs)
        algo = getattr(marl_lsf, job.algo)
        model = algo(job.policy, factory, seed=job.seed, **job.algo_kwargs)
        walls: list[float] = []

        def on_result(step: int, result: Any) -> None:
            walls.append(time.perf_counter() - start)
            print(
                f"[{job.label} seed {job.seed}] step {step:,}: test return {result.mean_return:.1f} "
                f"({walls[-1] / 60:.1f} min)",
                flush=True,
            )

        evaluation = EvalCallback(
            factory, job.eval_every, job.eval_episodes, seed=10_000 + job.seed, on_result=on_result
        )
        callbacks: list[BaseCallback] = [evaluation]
        if job.time_limit is not None:
            callbacks.append(WallClockLimit(job.time_limit))
        model.learn(job.steps, callback=callbacks)
        if job.save_dir is not None:
            digest = hashlib.sha1(job.label.encode()).hexdigest()[:8]
            slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", job.label)[:60]
            model.save(Path(job.save_dir) / f"{slug}_{digest}_seed{job.seed}.zip")
    except Exception:  # a benchmark reports a failed run instead of losing the others
        return {"job": job, "error": traceback.format_exc(limit=3), "wall": time.perf_counter() - start}
    history = evaluation.history
    return {
        "job": job,
        "steps": [step for step, _ in history],
        "returns": [result.mean_return for _, result in history],
        "win_rates": [result.win_rate for _, result in history],
        "walls": walls,
        "wall": time.perf_counter() - start,
        "num_timesteps": model.num_timesteps,
        "updates": model._n_updates,
    }


def run_jobs(jobs: list[Job], processes: int, progress: Path | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` in ``processes`` spawned worker processes (not daemonic, so a run may start env workers).

    With ``progress``, each finished run's curve is appended to that file as one JSON line as soon
    as it ends (and printed), so a long benchmark that is stopped keeps what it measured.
    """
    with ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in as_completed(futures):
            run = future.result()
            line = {key: value for key, value in run.items() if key != "job"} | {
                "label": run["job"].label,
                "seed": run["job"].seed,
                "env": run["job"].env,
            }
            print(json.dumps(line), flush=True)
            if progress is not None:
                with progress.open("a") as file:
                    file.write(json.dumps(line) + "\n")
        return [future.result() for future in futures]


def curves(runs: list[dict[str, Any]], metric: str) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Group successful runs' ``metric`` curves (``returns`` or ``win_rates``) by label."""
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for run in runs:
        if "error" not in run and run["steps"]:
            groups.setdefault(run["job"].label, []).append(
                (np.array(run["steps"]), np.array(run[metric], float))
            )
    return groups


def summary_rows(runs: list[dict[str, Any]], metric: str) -> list[str]:
    """Markdown rows: per label, final metric median [min, max], steps reached and wall time."""
    rows = []
    labels = sorted({run["job"].label for run in runs})
    for label in labels:
        mine = [run for run in runs if run["job"].label == label]
        done = [run for run in mine if "error" not in run and run["steps"]]
        errors = [run for run in mine if "error" in run]
        if done:
            finals = [run[metric][-1] for run in done]
            best = [max(run[metric]) for run in done]
            rows.append(
                f"| {label} | {len(done)} | {np.median(finals):.2f} [{min(finals):.2f}, {max(finals):.2f}] "
                f"| {np.median(best):.2f} | {int(np.median([run['num_timesteps'] for run in done])):,} "
                f"| {np.median([run['wall'] for run in done]) / 60:.1f} |"
            )
        for run in errors:
            last = run["error"].strip().splitlines()[-1]
            rows.append(f"| {label} (seed {run['job'].seed}) | failed | {last} | | | |")
    return rows


SUMMARY_HEADER = [
    "| algorithm | seeds | final (median [min, max]) | best (median) | env steps reached (median) | wall min (median) |",
    "|---|---:|---|---:|---:|---:|",
]


def preset_model_and_batch(seed: int = 0, algo: str = "lsfsac") -> tuple[Any, Any]:
    """A predator-prey model (one torch thread) with one fixed batch of 32 episodes of random play
    (200 steps x 8 agents): what the update-speed benchmarks time. ``algo``'s predator-prey preset
    where it has one, else the schedule of QMIX's (``PYMARL_PREDATOR_PREY_SCHEDULE``)."""
    import torch

    from marl_lsf.algorithms import ALGORITHMS
    from marl_lsf.envs import predator_prey_v1
    from marl_lsf.presets import PRESETS, PYMARL_PREDATOR_PREY_SCHEDULE

    torch.set_num_threads(1)
    settings = PRESETS.get(("predator_prey", algo), PYMARL_PREDATOR_PREY_SCHEDULE)
    kwargs = {k: v for k, v in settings.items() if k not in ("n_envs", "buffer_size")}
    model = ALGORITHMS[algo](
        "MlpPolicy",
        predator_prey_v1.parallel_env,
        seed=seed,
        learning_starts=10**9,
        buffer_size=64,
        n_threads=1,
        **kwargs,
    )
    model.learn(40 * 200)
    return model, model.replay_buffer.sample(32, np.random.default_rng(seed))
