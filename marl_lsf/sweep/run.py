"""One run of a sweep, the body of its Ray task: train, save, evaluate, and report a ``RunResult``."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from marl_lsf.plotting import EARLIER_SUMMARY_KEY, WIN_RATE_KEYS
from marl_lsf.sweep.grid import EVAL_SEED_OFFSET, RunSpec, resolve_algorithm


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
    #: The logged key of ``curve_returns``: ``eval/mean_return``, or ``rollout/ep_rew_mean`` when
    #: the run did not evaluate (``marl-lsf plot`` reads a summary's curves under these keys).
    curve_key: str = EARLIER_SUMMARY_KEY

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
    cls = resolve_algorithm(spec.algo)
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
    key = result.curve_key = "eval/mean_return" if evaluator is not None else "rollout/ep_rew_mean"
    try:
        steps, returns = read_progress(spec.run_dir, key)
        result.curve_steps, result.curve_returns = steps.tolist(), returns.tolist()
        win_steps, wins = read_progress(spec.run_dir, WIN_RATE_KEYS[key])
        if np.array_equal(win_steps, steps):
            result.curve_win_rates = wins.tolist()
    except PlotError:
        pass  # no rows of that key (e.g. a run shorter than one episode, or no win reports)


def reusable_result(spec: RunSpec) -> RunResult | None:
    """The result of a completed run of the same settings in ``spec.run_dir``, if there is one."""
    path = Path(spec.run_dir) / "result.json"
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        result = RunResult.from_json(saved["result"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    record_only = ("marl_lsf_version", "env_settings")
    same = {k: v for k, v in saved.get("settings", {}).items() if k not in record_only} == {
        k: v for k, v in spec.settings().items() if k not in record_only
    }
    return result if same and result.ok else None
