"""Callbacks for marl-lsf training runs, on Stable-Baselines3's ``BaseCallback``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from stable_baselines3.common.callbacks import BaseCallback

from marl_lsf.evaluation import EvaluationResult, evaluate_policy
from marl_lsf.team_env import EnvFactory, ParallelEnv, TeamVecEnv
from marl_lsf.vec_env import make_team_vec_env


class EvalCallback(BaseCallback):
    """Evaluate the decentralized policies at the start of training and every ``eval_freq`` environment steps.

    Evaluations fall on the multiples of ``eval_freq`` (also when ``learn`` continues a run), plus
    one at the start of training (unless ``evaluate_at_start`` is False or this callback evaluated
    at that step already) and one at its end when the last one was earlier. Each logs
    ``eval/mean_return``, ``eval/std_return``, ``eval/mean_ep_length`` and ``eval/win_rate`` (when
    the env reports wins) with ``time/total_timesteps`` and dumps the logger at the current step, so
    every evaluation is a row of ``progress.csv`` (as with Stable-Baselines3's ``EvalCallback``).
    Every result is kept in ``self.history`` as ``(num_timesteps, EvaluationResult)``, and the best
    model so far is saved as ``best_model.zip`` in ``best_model_save_path`` (from the evaluations
    after training has started: the one at step 0 is of the untrained model).

    The evaluation env computes the team reward as the training env does (the model's
    ``team_reward``). An env built here from a factory is closed when training ends (and built
    again by the next ``learn``); an env instance or ``TeamVecEnv`` passed in is left open.

    Args:
        eval_env: a ParallelEnv, a factory of one, or a ``TeamVecEnv``, separate from the training env.
        eval_freq: environment steps between evaluations (counted over all training envs).
        n_eval_episodes: episodes per evaluation.
        deterministic: greedy actions during evaluation.
        best_model_save_path: folder where ``best_model.zip`` is saved (None: do not save).
        on_result: called with ``(num_timesteps, result)`` after each evaluation.
        seed: seed of each evaluation's first reset (the same episodes every time).
        evaluate_at_start: evaluate when training starts. A resumed run passes False: the run it
            continues has logged the evaluation at its checkpoint's step already.
        verbose: 1 prints each evaluation.
    """

    def __init__(
        self,
        eval_env: ParallelEnv | EnvFactory | TeamVecEnv,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 32,
        deterministic: bool = True,
        best_model_save_path: str | Path | None = None,
        on_result: Callable[[int, EvaluationResult], None] | None = None,
        seed: int | None = 0,
        evaluate_at_start: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq < 1 or n_eval_episodes < 1:
            raise ValueError(
                f"eval_freq and n_eval_episodes must be >= 1, got {eval_freq}, {n_eval_episodes}"
            )
        self.eval_source = eval_env
        self.eval_env: TeamVecEnv | None = eval_env if isinstance(eval_env, TeamVecEnv) else None
        self._builds_env = not isinstance(eval_env, TeamVecEnv) and not hasattr(eval_env, "possible_agents")
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.deterministic = deterministic
        self.best_model_save_path = None if best_model_save_path is None else Path(best_model_save_path)
        self.on_result = on_result
        self.seed = seed
        self.evaluate_at_start = evaluate_at_start
        self.history: list[tuple[int, EvaluationResult]] = []
        self.best_mean_return = float("-inf")
        self._next_eval = 0

    def _on_training_start(self) -> None:
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        if self.evaluate_at_start and not (self.history and self.history[-1][0] == self.num_timesteps):
            self.evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            # With several training envs a step may pass more than one multiple of eval_freq.
            self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1][0] != self.num_timesteps:
            self.evaluate()
        if self._builds_env and self.eval_env is not None:
            self.eval_env.close()
            self.eval_env = None

    def evaluate(self) -> EvaluationResult:
        """Run one evaluation now, log it as a row at the current step and record it."""
        if self.eval_env is None:
            self.eval_env = make_team_vec_env(self.eval_source, 1, "auto", self.model.team_reward)
        result = evaluate_policy(
            self.model, self.eval_env, self.n_eval_episodes, self.deterministic, self.seed
        )
        self.history.append((self.num_timesteps, result))
        self.logger.record("eval/mean_return", result.mean_return)
        self.logger.record("eval/std_return", result.std_return)
        self.logger.record("eval/mean_ep_length", result.mean_length)
        if result.win_rate is not None:
            self.logger.record("eval/win_rate", result.win_rate)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if self.verbose >= 1:
            print(f"eval at {self.num_timesteps} steps: {result!r}")
        # The evaluation before any training step is a reference row, not a candidate best model.
        if self.num_timesteps > 0 and result.mean_return > self.best_mean_return:
            self.best_mean_return = result.mean_return
            if self.best_model_save_path is not None:
                self.best_model_save_path.mkdir(parents=True, exist_ok=True)
                self.model.save(self.best_model_save_path / "best_model.zip")
        if self.on_result is not None:
            self.on_result(self.num_timesteps, result)
        return result


def _now() -> float:
    """Seconds on a monotonic clock (one place, so tests can set the time)."""
    return time.perf_counter()


def _duration(seconds: float) -> str:
    """``h:mm:ss`` (``m:ss`` under an hour)."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLogCallback(BaseCallback):
    """Progress as plain lines, one every ``interval_s`` seconds: for output that is not a terminal.

    ``learn(progress_bar=True)`` redraws one terminal line, so in a pipe or a log file
    (``make demo > demo.log``, a batch job) nothing shows until training ends. This callback
    prints lines instead, each with the env steps done of the run's total, the rate in env steps
    per second over the last interval and over the whole call (timed here, from the first step
    of this ``learn`` call), the time spent and the time left at the rate so far; and a last line
    when training ends. Usage: ``model.learn(n, callback=ProgressLogCallback())``, or
    ``progress_bar=sys.stdout.isatty()`` with this callback when it is not.

    Args:
        interval_s: seconds between lines (0: a line at every vector step).
        file: where the lines go (default: ``sys.stdout`` at the time of printing), flushed
            after each line.
        verbose: Stable-Baselines3's callback verbosity (unused).
    """

    def __init__(self, interval_s: float = 30.0, file: TextIO | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        self.interval_s = interval_s
        self.file = file
        self._start_time = self._last_time = 0.0
        self._start_steps = self._last_steps = self._total = 0

    def _print(self, line: str) -> None:
        print(line, file=self.file or sys.stdout, flush=True)

    def _on_training_start(self) -> None:
        self._start_time = self._last_time = _now()
        self._start_steps = self._last_steps = self.num_timesteps
        self._total = int(self.locals.get("total_timesteps", 0))

    def _on_step(self) -> bool:
        now = _now()
        if now - self._last_time >= self.interval_s:
            recent = (self.num_timesteps - self._last_steps) / max(now - self._last_time, 1e-9)
            self._print(self._line(now) + f" ({recent:,.0f} in the last {now - self._last_time:.0f} s)")
            self._last_time, self._last_steps = now, self.num_timesteps
        return True

    def _line(self, now: float) -> str:
        """``step done/total (p%), R steps/s, T elapsed, ~L left``: the whole call's rate."""
        elapsed = now - self._start_time
        done = self.num_timesteps - self._start_steps
        rate = done / elapsed if elapsed > 0 else 0.0
        line = f"step {self.num_timesteps:,}/{self._total:,}"
        if self._total > 0:
            line += f" ({100 * min(self.num_timesteps / self._total, 1.0):.0f}%)"
        line += f", {rate:,.0f} steps/s, {_duration(elapsed)} elapsed"
        if rate > 0 and self._total > self.num_timesteps:
            line += f", ~{_duration((self._total - self.num_timesteps) / rate)} left"
        return line

    def _on_training_end(self) -> None:
        self._print("done: " + self._line(_now()))
