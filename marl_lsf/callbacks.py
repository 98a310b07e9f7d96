"""Callbacks for marl-lsf training runs, on Stable-Baselines3's ``BaseCallback``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from marl_lsf.evaluation import EvaluationResult, evaluate_policy
from marl_lsf.team_env import EnvFactory, ParallelEnv, TeamVecEnv, make_team_vec_env


class EvalCallback(BaseCallback):
    """Evaluate the decentralized policies every ``eval_freq`` environment steps.

    Logs ``eval/mean_return``, ``eval/std_return``, ``eval/mean_ep_length`` and ``eval/win_rate``
    (when the env reports wins) to the model's logger, keeps every result in ``self.history``
    as ``(num_timesteps, EvaluationResult)``, and saves the best model to ``best_model_save_path``.

    Args:
        eval_env: a ParallelEnv, a factory of one, or a ``TeamVecEnv``, separate from the training env.
        eval_freq: environment steps between evaluations (counted over all training envs).
        n_eval_episodes: episodes per evaluation.
        deterministic: greedy actions during evaluation.
        best_model_save_path: where to save the best model (None: do not save).
        on_result: called with ``(num_timesteps, result)`` after each evaluation.
        seed: seed of each evaluation's first reset (the same episodes every time).
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
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be >= 1, got {eval_freq}")
        self.eval_env = (
            eval_env if isinstance(eval_env, TeamVecEnv) else make_team_vec_env(eval_env, 1, "sync")
        )
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.deterministic = deterministic
        self.best_model_save_path = best_model_save_path
        self.on_result = on_result
        self.seed = seed
        self.history: list[tuple[int, EvaluationResult]] = []
        self.best_mean_return = float("-inf")
        self._next_eval = 0

    def _on_training_start(self) -> None:
        self._next_eval = self.num_timesteps + self.eval_freq
        self.evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._next_eval += self.eval_freq
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1][0] != self.num_timesteps:
            self.evaluate()

    def evaluate(self) -> EvaluationResult:
        """Run one evaluation now and record it."""
        result = evaluate_policy(
            self.model, self.eval_env, self.n_eval_episodes, self.deterministic, self.seed
        )
        self.history.append((self.num_timesteps, result))
        self.logger.record("eval/mean_return", result.mean_return)
        self.logger.record("eval/std_return", result.std_return)
        self.logger.record("eval/mean_ep_length", result.mean_length)
        if result.win_rate is not None:
            self.logger.record("eval/win_rate", result.win_rate)
        if self.verbose >= 1:
            print(f"eval at {self.num_timesteps} steps: {result!r}")
        if result.mean_return > self.best_mean_return:
            self.best_mean_return = result.mean_return
            if self.best_model_save_path is not None:
                self.model.save(Path(self.best_model_save_path) / "best_model.zip")
        if self.on_result is not None:
            self.on_result(self.num_timesteps, result)
        return result
