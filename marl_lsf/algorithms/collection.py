"""Rollout collection of ``MultiAgentAlgorithm``: environment steps into the replay buffer and the log.

``RolloutCollectionMixin`` steps the training envs (acting in this process, or taking chunks of
steps from rollout workers, see ``marl_lsf.rollout``), records every vector step in the replay
buffer, the episode statistics, the log and the callbacks, and writes the rollout statistics.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from marl_lsf.buffer import EpisodeReplayBuffer
from marl_lsf.nets.policies import ActingPolicy
from marl_lsf.rollout import WorkerTeamVecEnv, rollout_step
from marl_lsf.team_env import TeamObs, TeamStep, TeamVecEnv


class RolloutCollectionMixin:
    """Collecting steps for ``MultiAgentAlgorithm.learn`` and logging the episodes they end.

    Uses the host's env, acting ``policy``, replay buffer, counters, episode statistics and logger.
    """

    env: TeamVecEnv | None
    policy: ActingPolicy
    replay_buffer: EpisodeReplayBuffer
    logger: Logger
    n_envs: int
    train_freq: int
    learning_starts: int
    num_timesteps: int
    start_time: int
    ep_info_buffer: deque[dict[str, float]]
    _episode_num: int
    _num_timesteps_at_start: int
    _episode_return: np.ndarray
    _episode_length: np.ndarray
    _last_obs: TeamObs | None
    _hidden: torch.Tensor | None
    _rng: np.random.Generator

    def _collect_rollouts(
        self, callback: BaseCallback, total_timesteps: int, log_interval: int
    ) -> tuple[int, bool]:
        """Collect until ``train_freq`` episodes end (or the budget is spent).

        Each vector step, acted here or in rollout workers (``_next_steps``), is recorded in the
        replay buffer, the episode statistics, the log and the callbacks, in that order. A
        callback that stops training in the middle of a workers' chunk leaves steps unrecorded:
        the envs then start afresh at the next ``learn``.
        """
        episodes = 0
        while episodes < self.train_freq and self.num_timesteps < total_timesteps:
            for actions, step in self._next_steps(total_timesteps, episodes):
                self.num_timesteps += self.n_envs
                self.replay_buffer.add(actions, step)
                done = self._track_episodes(step)
                episodes += done.size
                self._last_obs = step.next
                # Count episodes and write the log before the callbacks, so a checkpoint taken there agrees
                # with the buffer and the log (a run resumed from it neither skips nor repeats a log row).
                episodes_before = self._episode_num
                self._episode_num += int(done.size)
                if log_interval and self._episode_num // log_interval > episodes_before // log_interval:
                    self.dump_logs()
                callback.update_locals(locals())
                if not callback.on_step():
                    if isinstance(self.env, WorkerTeamVecEnv):
                        if self.env.pending:
                            self.env.collect_wait()
                        self._last_obs = None
                    return episodes, False
        return episodes, True

    def _next_steps(self, total_timesteps: int, episodes: int) -> Iterable[tuple[np.ndarray, TeamStep]]:
        """The next vector steps as ``(actions, step)``: one acted here, or a chunk from the rollout workers.

        Actions are uniformly random while fewer than ``learning_starts`` steps have been taken.
        ``episodes`` have ended in this collection phase so far.
        """
        if isinstance(self.env, WorkerTeamVecEnv):
            return self._worker_steps(self.env, total_timesteps, episodes)
        actions, step, self._hidden = rollout_step(
            self.policy,
            self.env,
            self._last_obs,
            self._hidden,
            self.num_timesteps < self.learning_starts,
            self._rng,
        )
        return ((actions, step),)

    def _worker_steps(
        self, env: WorkerTeamVecEnv, total_timesteps: int, episodes: int
    ) -> Iterable[tuple[np.ndarray, TeamStep]]:
        """The next chunk of the rollout workers (``marl_lsf.rollout.CHUNK_STEPS`` vector steps at most).

        When no training can come before the chunk after it (too few episodes end in this one, or
        the warm-up goes on) the workers start that chunk at once, while this one is recorded: it
        is acted with the same policy, and the same random warm-up, as it would be if asked for
        afterwards.
        """

        def start(timesteps: int) -> None:
            steps_left = -(-(total_timesteps - timesteps) // self.n_envs)
            random_steps = max(0, -(-(self.learning_starts - timesteps) // self.n_envs))
            env.collect_async(self.policy, min(env.chunk_steps, steps_left), random_steps)

        if not env.pending:
            start(self.num_timesteps)
        rollout = env.collect_wait()
        after = self.num_timesteps + rollout.num_steps * self.n_envs
        trains_next = episodes + rollout.episodes >= self.train_freq and after >= self.learning_starts
        if not trains_next and after < total_timesteps:
            start(after)
        return rollout.steps()

    def _track_episodes(self, step: TeamStep) -> np.ndarray:
        self._episode_return += step.reward
        self._episode_length += 1
        done = np.flatnonzero(step.terminated | step.truncated)
        for e in done:
            info = {"r": float(self._episode_return[e]), "l": int(self._episode_length[e])}
            if "won" in step.infos[e]:
                info["won"] = float(step.infos[e]["won"])
            self.ep_info_buffer.append(info)
        self._episode_return[done] = 0.0
        self._episode_length[done] = 0
        return done

    def dump_logs(self) -> None:
        """Record rollout statistics and time, then write the logger's outputs."""
        elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / elapsed)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", float(np.mean([ep["r"] for ep in self.ep_info_buffer])))
            self.logger.record("rollout/ep_len_mean", float(np.mean([ep["l"] for ep in self.ep_info_buffer])))
            wins = [ep["won"] for ep in self.ep_info_buffer if "won" in ep]
            if wins:
                self.logger.record("rollout/win_rate", float(np.mean(wins)))
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)
        self._logged_at = self.num_timesteps
