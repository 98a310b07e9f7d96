"""Evaluation of trained agents on a PettingZoo env, Stable-Baselines3 style."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.rollout import random_actions
from marl_lsf.team_env import EnvFactory, ParallelEnv, TeamObs, TeamVecEnv
from marl_lsf.vec_env import make_team_vec_env


class EvaluationResult(tuple):
    """``(mean_return, std_return)`` like Stable-Baselines3's ``evaluate_policy``, plus details.

    Unpacks as two numbers; also has ``win_rate`` (None when the env reports no wins),
    ``mean_length``, ``episode_returns``, ``episode_lengths`` and ``episode_wins``.
    """

    def __new__(
        cls, episode_returns: list[float], episode_lengths: list[int], episode_wins: list[float]
    ) -> EvaluationResult:
        """Summarise per-episode results."""
        result = super().__new__(cls, (float(np.mean(episode_returns)), float(np.std(episode_returns))))
        result.episode_returns = episode_returns
        result.episode_lengths = episode_lengths
        result.episode_wins = episode_wins
        return result

    @property
    def mean_return(self) -> float:
        """Mean team return over the episodes."""
        return self[0]

    @property
    def std_return(self) -> float:
        """Standard deviation of the team return."""
        return self[1]

    @property
    def win_rate(self) -> float | None:
        """Fraction of episodes won, or None if the env does not report wins."""
        return float(np.mean(self.episode_wins)) if self.episode_wins else None

    @property
    def mean_length(self) -> float:
        """Mean episode length."""
        return float(np.mean(self.episode_lengths))

    def __repr__(self) -> str:
        win = "" if self.win_rate is None else f", win_rate={self.win_rate:.3f}"
        return f"EvaluationResult(mean_return={self[0]:.3f}, std_return={self[1]:.3f}{win}, mean_length={self.mean_length:.1f})"


def evaluate_policy(
    model: MultiAgentAlgorithm,
    env: ParallelEnv | EnvFactory | TeamVecEnv,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    seed: int | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> EvaluationResult:
    """Run ``n_eval_episodes`` episodes with the model's decentralized policies.

    Args:
        model: a trained algorithm.
        env: a ParallelEnv, a factory of one, or a ``TeamVecEnv`` (several episodes at once).
        n_eval_episodes: episodes to run.
        deterministic: greedy actions (True) or sampled ones.
        seed: seed of the first reset.
        callback: called after every step with a dict of ``obs``, ``actions``, ``step`` (the
            ``TeamStep``) and ``vec_env`` (e.g. to render frames).

    Returns:
        An ``EvaluationResult``: unpacks as ``mean_return, std_return``; has ``win_rate``.
    """
    if n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes must be >= 1, got {n_eval_episodes}")
    vec_env = env if isinstance(env, TeamVecEnv) else make_team_vec_env(env, 1, "auto", model.team_reward)
    problem = model.spec.mismatch(vec_env.spec)
    if problem is not None:
        raise ValueError(f"the evaluation env does not match the model's spaces ({problem})")
    hidden = None

    def policy(obs: TeamObs, done: np.ndarray) -> np.ndarray:
        nonlocal hidden
        if hidden is not None:
            hidden[torch.as_tensor(done)] = 0.0
        actions, hidden = model.act(obs.obs, obs.avail, hidden, deterministic)
        return actions

    return run_episodes(vec_env, policy, n_eval_episodes, seed, callback)


def run_episodes(
    vec_env: TeamVecEnv,
    policy: Callable[[TeamObs, np.ndarray], np.ndarray],
    n_episodes: int,
    seed: int | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> EvaluationResult:
    """Run ``n_episodes`` complete episodes with ``policy(obs, done_last_step) -> actions [E, N]``."""
    returns: list[float] = []
    lengths: list[int] = []
    wins: list[float] = []
    running_return = np.zeros(vec_env.num_envs)
    running_length = np.zeros(vec_env.num_envs, dtype=np.int64)
    obs = vec_env.reset(seed=seed)
    done = np.zeros(vec_env.num_envs, dtype=bool)
    while len(returns) < n_episodes:
        actions = policy(obs, done)
        step = vec_env.step(actions)
        if callback is not None:
            callback({"obs": obs, "actions": actions, "step": step, "vec_env": vec_env})
        running_return += step.reward
        running_length += 1
        done = step.terminated | step.truncated
        for e in np.flatnonzero(done):
            if len(returns) < n_episodes:
                returns.append(float(running_return[e]))
                lengths.append(int(running_length[e]))
                if "won" in step.infos[e]:
                    wins.append(float(step.infos[e]["won"]))
        running_return[done], running_length[done] = 0.0, 0
        obs = step.next
    return EvaluationResult(returns, lengths, wins)


def evaluate_random_policy(
    env: ParallelEnv | EnvFactory | TeamVecEnv, n_eval_episodes: int = 10, seed: int | None = None
) -> EvaluationResult:
    """The baseline every trained team should beat: uniformly random available actions."""
    if n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes must be >= 1, got {n_eval_episodes}")
    vec_env = env if isinstance(env, TeamVecEnv) else make_team_vec_env(env, 1, "auto")
    rng = np.random.default_rng(seed)
    return run_episodes(vec_env, lambda obs, _: random_actions(obs.avail, rng), n_eval_episodes, seed)
