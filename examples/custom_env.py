"""Write your own PettingZoo ParallelEnv and train LSF-SAC on it.

Two agents on a line must meet: each step costs -0.1, meeting on the same cell pays +1 and ends
the episode. Each agent sees only its own position and the other's. Run::

    python examples/custom_env.py

``MARL_LSF_EXAMPLE_STEPS`` sets the training budget.
"""

from __future__ import annotations

import os

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.test import parallel_api_test

from marl_lsf import LSFSAC, evaluate_policy


class MeetEnv(ParallelEnv):
    """Two agents on a line of ``size`` cells; actions: 0 left, 1 stay, 2 right."""

    metadata = {"name": "meet_v0", "render_modes": ["ansi"]}

    def __init__(self, size: int = 7, max_cycles: int = 20, render_mode: str | None = None) -> None:
        self.size, self.max_cycles, self.render_mode = size, max_cycles, render_mode
        self.possible_agents = ["alice", "bob"]
        self._observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self._action_space = spaces.Discrete(3)

    def observation_space(self, agent: str) -> spaces.Box:
        """Own position and the other agent's, scaled to [0, 1]."""
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        """Left, stay, right."""
        return self._action_space

    def _observe(self) -> dict[str, np.ndarray]:
        scaled = (self.pos / (self.size - 1)).astype(np.float32)
        return {"alice": scaled, "bob": scaled[::-1].copy()}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Place the agents on two different random cells."""
        self.agents, self.t = list(self.possible_agents), 0
        self.pos = np.random.default_rng(seed).choice(self.size, size=2, replace=False)
        return self._observe(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        """Move both agents; the team is rewarded when they share a cell."""
        for i, agent in enumerate(self.possible_agents):
            self.pos[i] = np.clip(self.pos[i] + actions[agent] - 1, 0, self.size - 1)
        self.t += 1
        met = bool(self.pos[0] == self.pos[1])
        out_of_time = self.t >= self.max_cycles and not met
        agents, self.agents = self.agents, [] if met or out_of_time else self.agents
        return (
            self._observe(),
            {agent: 1.0 if met else -0.1 for agent in agents},
            {agent: met for agent in agents},
            {agent: out_of_time for agent in agents},
            {agent: {"won": met} for agent in agents},
        )

    def render(self) -> str:
        """The line as text: A alice, B bob, X both."""
        cells = ["."] * self.size
        cells[self.pos[0]], cells[self.pos[1]] = "A", "X" if self.pos[0] == self.pos[1] else "B"
        return "".join(cells)


def main() -> None:
    """Check the env against PettingZoo's API test, train on it, evaluate."""
    steps = int(float(os.environ.get("MARL_LSF_EXAMPLE_STEPS", 20_000)))
    parallel_api_test(MeetEnv(), num_cycles=100)
    model = LSFSAC("MlpPolicy", MeetEnv, n_envs=1, seed=0)
    model.learn(steps)
    result = evaluate_policy(model, MeetEnv(), n_eval_episodes=20)
    print(f"mean return {result.mean_return:.2f}, met in {result.win_rate:.0%} of the episodes")


if __name__ == "__main__":
    main()
