"""Predator-prey with capture punishment and pymarl's action masks, as a PettingZoo ParallelEnv.

The rules are those of :mod:`marl_lsf.envs.predator_prey_v0` (pymarl's ``stag_hunt`` with the
``pred_prey_punish`` settings, the LSF-SAC paper's section VI-B). What v1 adds is pymarl's
available actions, published in PettingZoo's dict observation form
``{"observation": view, "action_mask": mask}``:

* a move (right, down, left, up) is available only if its target cell is inside the grid (a move
  into another unit stays available and is blocked, as in v0);
* ``STAY`` is always available;
* ``CATCH`` is available only with a live prey in the predator's 4-neighbourhood.

A masked action is refused with a ``ValueError``. Frozen predators leave the episode (they
terminate, as in v0), so they have no mask; pymarl keeps them with only the no-op available,
which the library's team view does for every agent that has left.

Why a new version: in v0 every action is always legal, so a ``CATCH`` far from any prey is a
learnable no-op and moves into the wall cost nothing; pymarl's learners, and the published results
on this task (the LSF-SAC paper's figure 3; WQMIX's reruns), see the masked action sets. v0 stays
importable for runs and models made with it.

``PredatorPreyEnv.make_team_vec_env(num_envs)`` returns :class:`marl_lsf.envs._predator_prey_vec.
PredatorPreyVecEnv`, which steps ``num_envs`` copies together in NumPy array operations and gives
exactly the team view of as many copies of this env; ``marl_lsf.vec_env.make_team_vec_env`` uses it
automatically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from marl_lsf.envs import predator_prey_v0
from marl_lsf.envs.predator_prey_v0 import _MOVES, ACTION_NAMES, CATCH, DOWN, LEFT, RIGHT, STAY, UP

if TYPE_CHECKING:
    from marl_lsf.envs._predator_prey_vec import PredatorPreyVecEnv

__all__ = ["ACTION_NAMES", "CATCH", "DOWN", "LEFT", "RIGHT", "STAY", "UP", "PredatorPreyEnv", "parallel_env"]

_MOVE_DELTAS = np.array(_MOVES[:4], dtype=np.int64)  # [4, 2] (row, col) of right, down, left, up


class PredatorPreyEnv(predator_prey_v0.PredatorPreyEnv):
    """Predator-prey (the rules of v0) with pymarl's action masks in dict observations.

    Takes the arguments of :class:`marl_lsf.envs.predator_prey_v0.PredatorPreyEnv`. Each observation is
    ``{"observation": float32 (2r+1, 2r+1, 2) view, "action_mask": int8 (6,)}``, the mask as in the
    module docstring; ``state()``, rewards, terminations and infos are v0's.

    Raises:
        ValueError: v0's argument and action errors, and for an action the agent's current mask
            makes unavailable.
    """

    metadata = {**predator_prey_v0.PredatorPreyEnv.metadata, "name": "predator_prey_v1"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_kwargs = dict(kwargs)
        view_space = self._observation_space
        self._observation_space = spaces.Dict(
            {
                "observation": view_space,
                "action_mask": spaces.Box(0, 1, shape=(len(ACTION_NAMES),), dtype=np.int8),
            }
        )
        self._observation_spaces = dict.fromkeys(self.possible_agents, self._observation_space)
        self._masks = np.ones((self.n_predators, len(ACTION_NAMES)), dtype=np.int8)

    def observation_space(self, agent: str) -> spaces.Dict:
        """Return the (cached) dict observation space of ``agent``."""
        return self._observation_spaces[agent]

    def make_team_vec_env(self, num_envs: int = 1) -> PredatorPreyVecEnv:
        """``num_envs`` copies of this env (same arguments) stepped together by NumPy array operations.

        Equivalent to ``marl_lsf.team_env.GymTeamVecEnv`` over ``TeamEnv`` copies of this env, seed for
        seed and float for float; see :mod:`marl_lsf.envs._predator_prey_vec`.
        """
        # Imported here, not at the top: that module imports this one.
        from marl_lsf.envs._predator_prey_vec import PredatorPreyVecEnv

        return PredatorPreyVecEnv(num_envs, **self._init_kwargs)

    def step(self, actions: Any) -> tuple[dict, dict, dict, dict, dict]:
        """v0's step, after refusing any action that the agent's mask makes unavailable.

        Raises:
            ValueError: v0's action errors, or an unavailable action (named with the agent).
        """
        for agent in self.agents:
            action = actions.get(agent) if hasattr(actions, "get") else None
            mask = self._masks[self._agent_index[agent]]
            if isinstance(action, int | np.integer) and 0 <= action < len(ACTION_NAMES) and not mask[action]:
                available = ", ".join(ACTION_NAMES[a] for a in np.flatnonzero(mask))
                raise ValueError(
                    f"action {int(action)} ({ACTION_NAMES[action]}) of agent {agent!r} is not "
                    f"available now (available: {available}); read observation['action_mask']"
                )
        return super().step(actions)

    def _observations(self, indices: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """v0's views of the predators ``indices``, each with its action mask."""
        views = super()._observations(indices)
        self._update_masks()
        return {
            agent: {"observation": view, "action_mask": self._masks[self._agent_index[agent]].copy()}
            for agent, view in views.items()
        }

    def _update_masks(self) -> None:
        """Masks of every predator for the current grid (frozen ones keep their last mask)."""
        size = self.grid_size
        live = np.flatnonzero(self._predator_alive)
        targets = self._predator_pos[live, None, :] + _MOVE_DELTAS[None]  # [L, 4, 2]
        inside = ((targets >= 0) & (targets < size)).all(-1)
        rows, cols = np.clip(targets, 0, size - 1).transpose(2, 0, 1)
        prey_next_to = (inside & (self._cells[rows, cols] == predator_prey_v0._PREY)).any(-1)
        self._masks[live, :4] = inside
        self._masks[live, STAY] = 1
        self._masks[live, CATCH] = prey_next_to


parallel_env = PredatorPreyEnv
"""PettingZoo's usual module-level constructor (the class itself: same arguments)."""
