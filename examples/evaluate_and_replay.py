"""Load a saved agent, evaluate it, and render a replay GIF of one episode.

Run::

    python examples/evaluate_and_replay.py              # the LSF-SAC team shipped in examples/models/
    python examples/evaluate_and_replay.py my_agent.zip # an LSF-SAC agent saved for the default predator-prey

The env is the paper's predator-prey (``predator_prey_v1`` defaults: 10x10 grid, 8 predators,
8 prey, miscapture -2). Writes ``runs/replay/replay.gif`` under the current folder. The same from
the command line: ``marl-lsf eval examples/models/lsfsac_predator_prey.zip`` and
``marl-lsf replay examples/models/lsfsac_predator_prey.zip --out replay.gif``.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

from marl_lsf import LSFSAC, evaluate_policy
from marl_lsf.envs import predator_prey_v1
from marl_lsf.replay import record_episode, save_animation, step_captions

SHIPPED = Path(__file__).parent / "models" / "lsfsac_predator_prey.zip"


def main() -> None:
    """Evaluate the agent in ``sys.argv[1]`` (or the shipped one) and save a captioned replay GIF."""
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED
    model = LSFSAC.load(path, env=predator_prey_v1.parallel_env())
    result = evaluate_policy(model, predator_prey_v1.parallel_env(), n_eval_episodes=10, seed=0)
    print(
        f"{path.name} ({type(model).__name__}, {model.num_timesteps:,} steps trained): return "
        f"{result.mean_return:.2f} +/- {result.std_return:.2f} over 10 episodes, length {result.mean_length:.1f}"
    )

    recording = record_episode(model, partial(predator_prey_v1.parallel_env, render_mode="rgb_array"), seed=0)
    out = Path("runs") / "replay" / "replay.gif"
    out.parent.mkdir(parents=True, exist_ok=True)
    gif = save_animation(recording.frames, out, fps=6, captions=step_captions(recording))
    print(f"saved {gif}: {recording.length} steps, return {recording.episode_return:g}")


if __name__ == "__main__":
    main()
