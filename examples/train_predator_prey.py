"""The demo (``make demo``): a trained LSF-SAC team on the paper's predator-prey, then a short run of your own.

1. Loads the team shipped in ``examples/models/``: LSF-SAC with its latent messages (one
   dimension, ``latent_dim=1``), trained for 1M environment steps with the
   ``("predator_prey", "lsfsac")`` preset's settings but QMIX's mixer and a 500-episode buffer
   (seed 0 of that row of the README's benchmark), evaluates it
   against a random team on 16 test episodes and renders one episode to ``runs/demo/replay.gif``.
2. Trains a fresh LSF-SAC with the same preset for ``MARL_LSF_EXAMPLE_STEPS`` steps (default
   10,000, which fits the demo in five minutes on two busy cores; the shipped team needed 1M),
   with a progress bar (a line of progress every 15 s when the output is not a terminal),
   logging to ``runs/demo/progress.csv`` and drawing its training return to
   ``runs/demo/curve.png``, then saves it to ``runs/demo/``, reloads it and checks the reloaded
   team acts identically.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

from marl_lsf import LSFSAC, evaluate_policy, evaluate_random_policy
from marl_lsf.callbacks import ProgressLogCallback
from marl_lsf.checkpoint import configure_logger
from marl_lsf.envs import predator_prey_v1
from marl_lsf.plotting import PlotError, plot_curves, read_progress
from marl_lsf.presets import preset
from marl_lsf.replay import record_episode, save_animation, step_captions

SHIPPED = Path(__file__).parent / "models" / "lsfsac_predator_prey.zip"
OUT = Path("runs") / "demo"
STEPS = int(float(os.environ.get("MARL_LSF_EXAMPLE_STEPS", 10_000)))
EVAL_EPISODES = 16


def main() -> None:
    """Evaluate and replay the shipped team, then train, save, reload and evaluate a short run."""
    console = Console()
    OUT.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]LSF-SAC on predator-prey (10x10 grid, 8 predators, 8 prey, miscapture -2)")

    shipped = LSFSAC.load(SHIPPED, env=predator_prey_v1.parallel_env())
    trained = evaluate_policy(shipped, predator_prey_v1.parallel_env(), EVAL_EPISODES, seed=100)
    random = evaluate_random_policy(predator_prey_v1.parallel_env(), EVAL_EPISODES, seed=100)
    recording = record_episode(
        shipped, partial(predator_prey_v1.parallel_env, render_mode="rgb_array"), seed=3
    )
    gif = save_animation(recording.frames, OUT / "replay.gif", fps=6, captions=step_captions(recording))

    console.print(f"training a fresh LSF-SAC for {STEPS:,} steps with the predator-prey preset")
    model = LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, seed=0, **preset("predator_prey", "lsfsac"))
    model.set_logger(configure_logger(OUT, ["csv"], resume_step=-1))  # a fresh progress.csv
    start = time.perf_counter()
    if sys.stdout.isatty():
        model.learn(STEPS, progress_bar=True)
    else:  # piped or in a log file: a progress bar would show nothing until the end
        model.learn(STEPS, callback=ProgressLogCallback(interval_s=15))
    seconds = time.perf_counter() - start
    model.logger.close()
    try:
        curve = plot_curves(
            {"LSF-SAC, this run": [read_progress(OUT, "rollout/ep_rew_mean")]},
            OUT / "curve.png",
            ylabel="training return (epsilon-greedy, mean of recent episodes)",
            title=f"predator-prey, {model.n_envs} envs, preset settings",
        )
        curve_line = f"training curve of this run: {curve} (log: {OUT / 'progress.csv'})"
    except PlotError as exc:  # a budget shorter than one episode
        curve_line = f"no training curve ({exc})"
    fresh = evaluate_policy(model, predator_prey_v1.parallel_env(), EVAL_EPISODES, seed=100)
    path = model.save(OUT / "lsfsac_predator_prey.zip")
    again = evaluate_policy(LSFSAC.load(path), predator_prey_v1.parallel_env(), EVAL_EPISODES, seed=100)

    table = Table(title=f"Test return over {EVAL_EPISODES} greedy episodes (the maximum is 40)")
    for column in ("team", "mean return", "std", "mean length"):
        table.add_column(column)
    rows = (
        ("random policy", random),
        (f"LSF-SAC, shipped ({shipped.num_timesteps:,} steps)", trained),
        (f"LSF-SAC, this run ({model.num_timesteps:,} steps)", fresh),
        ("LSF-SAC, this run reloaded", again),
    )
    for name, result in rows:
        table.add_row(
            name, f"{result.mean_return:.1f}", f"{result.std_return:.1f}", f"{result.mean_length:.0f}"
        )
    console.print(table)
    console.print(
        f"replay of the shipped team: {gif} ({recording.length} steps, return {recording.episode_return:g})"
    )
    console.print(curve_line)
    console.print(f"this run: {seconds:.0f} s ({model.num_timesteps / seconds:.0f} steps/s), saved to {path}")
    console.print(
        f"reloaded team acts identically: {fresh.episode_returns == again.episode_returns}", soft_wrap=True
    )


if __name__ == "__main__":
    main()
