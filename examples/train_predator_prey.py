"""Train LSF-SAC on the paper's predator-prey, compare with a random team, save, reload, re-evaluate.

This is what ``make demo`` runs. The step budget defaults to 60,000 environment steps (a few
minutes on a laptop-class CPU); set ``MARL_LSF_EXAMPLE_STEPS`` to change it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from marl_lsf import LSFSAC, evaluate_policy, evaluate_random_policy
from marl_lsf.envs import predator_prey_v1

STEPS = int(float(os.environ.get("MARL_LSF_EXAMPLE_STEPS", 60_000)))
EVAL_EPISODES = 8 if STEPS >= 10_000 else 2


def main() -> None:
    """Train, evaluate against random play, save, reload and evaluate the reloaded model."""
    console = Console()
    console.rule("[bold]LSF-SAC on predator-prey (10x10 grid, 8 predators, 8 prey)")
    # 8 env copies stepped together by the env's NumPy batched form; one update per 8 episodes.
    model = LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, n_envs=8, train_freq=8, seed=0, verbose=0)
    start = time.perf_counter()
    model.learn(STEPS, progress_bar=True)
    train_seconds = time.perf_counter() - start

    trained = evaluate_policy(model, predator_prey_v1.parallel_env(), EVAL_EPISODES, seed=100)
    random = evaluate_random_policy(predator_prey_v1.parallel_env(), EVAL_EPISODES, seed=100)
    path = Path(tempfile.mkdtemp(prefix="marl-lsf-demo-")) / "lsfsac_predator_prey.zip"
    model.save(path)
    reloaded = LSFSAC.load(path, env=predator_prey_v1.parallel_env())
    again = evaluate_policy(reloaded, predator_prey_v1.parallel_env(), EVAL_EPISODES, seed=100)

    table = Table(title=f"Test return over {EVAL_EPISODES} episodes (the maximum is 40)")
    for column in ("team", "mean return", "std", "mean length"):
        table.add_column(column)
    for name, result in (("random policy", random), ("LSF-SAC", trained), ("LSF-SAC, reloaded", again)):
        table.add_row(
            name, f"{result.mean_return:.1f}", f"{result.std_return:.1f}", f"{result.mean_length:.0f}"
        )
    console.print(table)
    console.print(
        f"trained {model.num_timesteps:,} steps ({model._n_updates:,} updates) in {train_seconds:.0f} s "
        f"({model.num_timesteps / train_seconds:.0f} steps/s); saved to {path}; "
        f"reloaded model's actions identical: {trained.episode_returns == again.episode_returns}"
    )


if __name__ == "__main__":
    main()
