"""Load a saved agent, evaluate it, and render a replay GIF of one episode.

Run::

    python examples/evaluate_and_replay.py              # trains and saves pp_agent.zip first
    python examples/evaluate_and_replay.py my_agent.zip # an agent saved for the same env

The env is a small predator-prey (6x6 grid, 3 predators, 2 prey). ``MARL_LSF_EXAMPLE_STEPS`` sets
the budget of the training that runs when no model file is given. The same from the command line:
``marl-lsf eval run/model.zip`` and ``marl-lsf replay run/model.zip --out replay.gif``.
"""

from __future__ import annotations

import os
import sys
from functools import partial

from marl_lsf import LSFSAC, evaluate_policy
from marl_lsf.envs import predator_prey_v0
from marl_lsf.replay import record_episode, save_gif

make_env = partial(predator_prey_v0.parallel_env, grid_size=6, n_predators=3, n_prey=2, max_cycles=50)


def main() -> None:
    """Evaluate the agent in ``sys.argv[1]`` (or a freshly trained one) and save ``replay.gif``."""
    if len(sys.argv) > 1:
        path = sys.argv[1]
    else:
        steps = int(float(os.environ.get("MARL_LSF_EXAMPLE_STEPS", 50_000)))
        path = LSFSAC("RnnPolicy", make_env, seed=0).learn(steps).save("pp_agent.zip")
        print(f"trained for {steps} steps and saved {path}")

    model = LSFSAC.load(path)
    result = evaluate_policy(model, make_env, n_eval_episodes=10)
    print(
        f"return {result.mean_return:.2f} +/- {result.std_return:.2f}, episode length {result.mean_length:.1f}"
    )

    recording = record_episode(model, partial(make_env, render_mode="rgb_array"), seed=0)
    gif = save_gif(recording.frames, "replay.gif", fps=4)
    print(f"saved {gif}: {recording.length} steps, return {recording.episode_return:g}")


if __name__ == "__main__":
    main()
