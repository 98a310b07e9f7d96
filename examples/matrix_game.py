"""Train LSF-SAC on the one-step matrix game of the paper's Table I and show what it learned.

The payoff rewards the joint action (0, 0) with 8 but punishes a lone deviation with -12, a trap for
monotonic value factorizations. Run::

    python examples/matrix_game.py

``MARL_LSF_EXAMPLE_STEPS`` sets the training budget (every episode is a single step).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from marl_lsf import LSFSAC, evaluate_policy
from marl_lsf.envs import matrix_game_v0


def main() -> None:
    """Train, then print the greedy joint action and each agent's policy."""
    steps = int(float(os.environ.get("MARL_LSF_EXAMPLE_STEPS", 5000)))
    env = matrix_game_v0.parallel_env()
    model = LSFSAC("MlpPolicy", env, batch_size=32, seed=0)
    model.learn(steps)

    observations, _ = env.reset(seed=0)
    greedy, _ = model.predict(observations, deterministic=True)
    joint = tuple(greedy[agent] for agent in env.possible_agents)
    print(f"greedy joint action {joint} -> payoff {env.payoff[joint]:g} (optimum: {env.payoff.max():g})")

    obs = torch.as_tensor(np.stack([observations[agent] for agent in env.possible_agents]))
    avail = torch.ones(len(env.possible_agents), env.payoff.shape[0], dtype=torch.bool)
    probs = model.policy_probs(obs.to(model.device), avail.to(model.device)).cpu().numpy()
    for agent, p in zip(env.possible_agents, probs, strict=True):
        print(f"policy of {agent}: " + "  ".join(f"a{a}={q:.3f}" for a, q in enumerate(p)))
    mean_return, _ = evaluate_policy(model, matrix_game_v0.parallel_env(), n_eval_episodes=10)
    print(f"mean return over 10 greedy episodes: {mean_return:g}")


if __name__ == "__main__":
    main()
