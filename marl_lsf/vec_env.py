"""Building the vector env an algorithm trains on: an env's own batched one, gymnasium's, or rollout workers.

This is the one place that knows every kind of ``TeamVecEnv`` (``marl_lsf.team_env`` and
``marl_lsf.rollout`` do not import each other): ``make_team_vec_env`` picks among them.
"""

from __future__ import annotations

import os
import sys

from marl_lsf.rollout import WorkerTeamVecEnv
from marl_lsf.team_env import (
    EnvFactory,
    GymTeamVecEnv,
    ParallelEnv,
    TeamReward,
    TeamVecEnv,
    as_factory,
)

#: The ``vectorization`` values ``make_team_vec_env`` accepts.
VECTORIZATIONS = ("auto", "sync", "async", "workers")


def make_team_vec_env(
    env: ParallelEnv | EnvFactory | str,
    n_envs: int = 1,
    vectorization: str = "auto",
    team_reward: TeamReward = "mean",
) -> TeamVecEnv:
    """Build the ``TeamVecEnv`` an algorithm trains on.

    ``env`` is a ParallelEnv instance or a zero-argument factory. An env class may provide its own
    batched implementation through a ``make_team_vec_env(num_envs)`` method (SMAX steps many
    battles in one jitted call, predator-prey v1 all copies in NumPy array operations), which
    ``"auto"`` uses with the default ``team_reward="mean"``; otherwise, or when another
    ``vectorization`` is asked for, ``n_envs`` copies run

    * ``"sync"``: in this process, one after another (gymnasium's ``SyncVectorEnv``);
    * ``"async"``: one gymnasium ``AsyncVectorEnv`` worker process per copy, the learner acting for
      all of them every step;
    * ``"workers"``: in rollout worker processes that act with their own copy of the policy and
      report a chunk of steps at a time (``marl_lsf.rollout.WorkerTeamVecEnv``), one worker per
      core at most.

    ``"auto"`` picks ``"workers"`` when ``n_envs > 1``, a factory was given and this process may use
    two CPUs or more, else ``"sync"``. A round trip between processes costs 0.1-0.3 ms, more than a
    cheap env step (a predator-prey team step takes ~0.2 ms), so ``"async"`` only pays off for
    expensive envs, while rollout workers pay it once per chunk
    (``benchmarks/results/throughput_n_envs.md``).
    """
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"vectorization must be one of {VECTORIZATIONS}, got {vectorization!r}")
    factory, instance = as_factory(env)
    native = getattr(instance, "make_team_vec_env", None)
    if native is not None and vectorization == "auto" and team_reward == "mean":
        return native(num_envs=n_envs)
    if factory is None:
        if n_envs > 1:
            raise ValueError(
                "n_envs > 1 needs a zero-argument factory that builds a fresh env, e.g. "
                "`LSFSAC('MlpPolicy', lambda: predator_prey_v0.parallel_env(), n_envs=4)`"
            )
        factory = _Once(instance)
    if vectorization == "auto":
        parallel = n_envs > 1 and not isinstance(factory, _Once) and available_cpus() > 1
        vectorization = "workers" if parallel else "sync"
    if vectorization == "workers":
        return WorkerTeamVecEnv(factory, n_envs, min(n_envs, available_cpus()), team_reward)
    return GymTeamVecEnv(factory, n_envs, vectorization, team_reward)


def available_cpus() -> int:
    """CPUs this process may use: its reservation inside a Ray task, else its affinity mask (or the CPU count)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        reserved = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if reserved:
            return max(1, int(reserved))
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Once:
    """A factory that hands out one existing env instance (for ``n_envs=1`` with an instance)."""

    def __init__(self, env: ParallelEnv) -> None:
        self.env = env

    def __call__(self) -> ParallelEnv:
        return self.env


__all__ = ["VECTORIZATIONS", "available_cpus", "make_team_vec_env"]
