"""Predator-prey with capture punishment (LSF-SAC paper, section VI-B) as a PettingZoo ParallelEnv.

This is pymarl's ``stag_hunt`` environment with the ``pred_prey_punish`` settings: predators on a
bounded square grid must catch prey *together*. Positions are ``(row, col)``; row 0 is the top
row, col 0 the left column; "down" increases the row and "right" increases the column.

One step:

1. Predators act one after another in a random order (drawn from the env's generator). A move
   (right, down, left, up) into the grid edge, another predator or a prey is blocked and becomes
   a no-op; ``STAY`` and ``CATCH`` keep the predator in place.
2. Captures are resolved on the positions after the moves. A prey is captured when at least
   ``min_catchers`` predators in its 4-neighbourhood used ``CATCH`` this step: the team gets
   ``capture_reward``, the prey is removed, and those catching predators freeze: they terminate
   this step, leave ``agents`` and vanish from the grid (state and other predators' views).
   Prey are resolved one at a time in a random order (as in pymarl's ``stag_hunt``): a predator
   next to several prey that uses ``CATCH`` counts as a catcher for each of them until a capture
   freezes it; a frozen predator no longer counts for the prey resolved after it, so one predator
   never helps capture two prey and every capture costs ``min_catchers`` predators. A prey with
   some, but fewer than ``min_catchers``, adjacent (still unfrozen) catching predators costs the
   team ``miscapture_punishment`` (once per such prey) and changes nothing else. ``CATCH`` with no
   prey adjacent has no effect.
3. Each remaining prey, in a random order, moves to a uniformly random free neighbouring cell
   (4-neighbourhood, inside the grid, not occupied) or stays if none is free.

Every predator that was live at the start of the step gets the same team reward in that step's
dict. The episode terminates (for every remaining predator) when all prey are caught or all
predators are frozen, and is truncated for every remaining predator after ``max_cycles`` steps.
With the defaults each capture freezes at least two of the eight predators, so the best possible
return is 40.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from numpy.lib.stride_tricks import sliding_window_view
from pettingzoo import ParallelEnv

from marl_lsf.envs._checks import check_actions, check_render_mode

RIGHT, DOWN, LEFT, UP, STAY, CATCH = range(6)
"""Action indices of every predator's ``Discrete(6)`` action space."""
ACTION_NAMES: tuple[str, ...] = ("right", "down", "left", "up", "stay", "catch")
"""Human-readable names of the actions, indexed like the action space."""

# (row, col) displacement of each action; STAY and CATCH do not move.
_MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0), (0, 0), (0, 0))
_NEIGHBOURS = _MOVES[:4]
_EMPTY, _PREDATOR, _PREY = 0, 1, 2

_CELL_PX = 40
#: Colour index of a frozen predator in ``rgb_array`` frames: drawn at its last cell while that
#: cell stays empty (a frozen predator has left the world, as in pymarl's ``remove_frozen``).
_FROZEN = 3
_COLOURS = {
    _EMPTY: (255, 255, 255),
    _PREDATOR: (31, 119, 180),
    _PREY: (214, 39, 40),
    _FROZEN: (174, 199, 232),
}
_GRID_LINE = (160, 160, 160)


class PredatorPreyEnv(ParallelEnv[str, np.ndarray, int]):
    """Cooperative predator-prey on a bounded grid; the rules are in the module docstring.

    Args:
        grid_size: side of the square grid.
        n_predators: number of predators (the agents ``predator_0 .. predator_{n-1}``).
        n_prey: number of prey (scripted, random walkers).
        view_radius: each predator sees the ``(2 * view_radius + 1)`` square window centred on it.
        capture_reward: team reward per captured prey.
        miscapture_punishment: team reward per prey that fewer than ``min_catchers`` adjacent
            predators tried to catch (negative to punish).
        min_catchers: adjacent predators using ``CATCH`` needed to capture a prey (1 to 4).
        max_cycles: the episode is truncated after this many steps.
        render_mode: ``None``, ``"ansi"`` (text grid: ``P`` predator, ``p`` prey, ``.`` empty),
            ``"human"`` (prints that text) or ``"rgb_array"`` (``uint8`` image, 20 px per cell).

    Observation of a predator: ``float32`` array of shape ``(2r+1, 2r+1, 2)`` with values in
    ``{0, 1}``: channel 0 marks predators (the observer itself at the centre), channel 1 prey;
    cells outside the grid read as empty. ``state()``: the whole grid, ``(grid_size, grid_size, 2)``
    with the same channels. Actions: ``Discrete(6)``, see :data:`RIGHT` .. :data:`CATCH`; every
    action is always legal (a blocked move is a no-op), so there are no action masks.
    ``infos[agent]`` holds ``"captures"`` (prey captured so far this episode) and ``"step"``
    (steps taken so far this episode).

    ``reset(seed, options)`` places the units at random, without overlaps, using a generator
    seeded by ``seed``. For hand-built positions pass ``options={"predators": [[row, col], ...],
    "prey": [[row, col], ...]}`` (either key or both; a missing one is placed at random on free
    cells); each must list one in-grid cell per unit with no overlaps, else ``ValueError``. Other
    option keys are ignored.

    Raises:
        ValueError: for invalid arguments (non-positive sizes, negative ``view_radius``, more units
            than cells, ``min_catchers`` outside 1..min(4, n_predators), non-finite rewards,
            ``max_cycles < 1``, an unknown ``render_mode``).
    """

    metadata = {
        "name": "predator_prey_v0",
        "render_modes": ["ansi", "human", "rgb_array"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        grid_size: int = 10,
        n_predators: int = 8,
        n_prey: int = 8,
        view_radius: int = 2,
        capture_reward: float = 10.0,
        miscapture_punishment: float = -2.0,
        min_catchers: int = 2,
        max_cycles: int = 200,
        render_mode: str | None = None,
    ) -> None:
        for name, value, minimum in (
            ("grid_size", grid_size, 1),
            ("n_predators", n_predators, 1),
            ("n_prey", n_prey, 1),
            ("view_radius", view_radius, 0),
            ("max_cycles", max_cycles, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if n_predators + n_prey > grid_size * grid_size:
            raise ValueError(
                f"{n_predators} predators + {n_prey} prey do not fit on a {grid_size}x{grid_size} grid"
            )
        if not 1 <= min_catchers <= min(4, n_predators):
            raise ValueError(
                f"min_catchers must be between 1 and min(4, n_predators={n_predators}) "
                f"(a prey has 4 neighbours), got {min_catchers!r}"
            )
        if not (np.isfinite(capture_reward) and np.isfinite(miscapture_punishment)):
            raise ValueError(
                f"rewards must be finite, got capture_reward={capture_reward!r}, "
                f"miscapture_punishment={miscapture_punishment!r}"
            )
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.grid_size = int(grid_size)
        self.n_predators = int(n_predators)
        self.n_prey = int(n_prey)
        self.view_radius = int(view_radius)
        self.capture_reward = float(capture_reward)
        self.miscapture_punishment = float(miscapture_punishment)
        self.min_catchers = int(min_catchers)
        self.max_cycles = int(max_cycles)
        self.render_mode = render_mode

        self.possible_agents = [f"predator_{i}" for i in range(self.n_predators)]
        self.agents: list[str] = []
        self._agent_index = {agent: i for i, agent in enumerate(self.possible_agents)}
        view = 2 * self.view_radius + 1
        self._observation_space = spaces.Box(0.0, 1.0, shape=(view, view, 2), dtype=np.float32)
        self._action_space = spaces.Discrete(len(ACTION_NAMES))
        self._observation_spaces = dict.fromkeys(self.possible_agents, self._observation_space)
        self._action_spaces = dict.fromkeys(self.possible_agents, self._action_space)
        self.state_space = spaces.Box(0.0, 1.0, shape=(self.grid_size, self.grid_size, 2), dtype=np.float32)

        self._rng = np.random.default_rng()
        # Positions as (row, col) int arrays; frozen predators and caught prey keep their last
        # position but are marked dead and removed from the occupancy grid.
        self._predator_pos = np.zeros((self.n_predators, 2), dtype=np.int64)
        self._prey_pos = np.zeros((self.n_prey, 2), dtype=np.int64)
        self._predator_alive = np.zeros(self.n_predators, dtype=bool)
        self._prey_alive = np.zeros(self.n_prey, dtype=bool)
        self._cells = np.zeros((self.grid_size, self.grid_size), dtype=np.int8)
        # Two-channel grid padded with view_radius empty cells on every side, so the view centred
        # on grid cell (row, col) is the window whose top-left padded cell is (row, col).
        self._planes = np.zeros((self.grid_size + 2 * self.view_radius,) * 2 + (2,), dtype=np.float32)
        self._windows = sliding_window_view(self._planes, (view, view), axis=(0, 1))
        self._steps = 0
        self._captures = 0

    def observation_space(self, agent: str) -> spaces.Box:
        """Return the (cached) observation space of ``agent``."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        """Return the (cached) action space of ``agent``."""
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode with units at random (or given, see the class docstring) cells."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        options = options or {}
        cells = self.grid_size * self.grid_size
        taken = np.zeros(cells, dtype=bool)
        fixed = {}
        for key, count in (("predators", self.n_predators), ("prey", self.n_prey)):
            if key in options:
                fixed[key] = self._validate_positions(key, options[key], count)
                flat = fixed[key][:, 0] * self.grid_size + fixed[key][:, 1]
                if taken[flat].any():
                    raise ValueError(f"options[{key!r}] overlaps the positions of the other units")
                taken[flat] = True
        free = np.flatnonzero(~taken)
        n_random = self.n_predators * ("predators" not in fixed) + self.n_prey * ("prey" not in fixed)
        random_cells = iter(self._rng.choice(free, size=n_random, replace=False))
        for key, count in (("predators", self.n_predators), ("prey", self.n_prey)):
            if key not in fixed:
                flat = np.fromiter(random_cells, dtype=np.int64, count=count)
                fixed[key] = np.stack(np.divmod(flat, self.grid_size), axis=1)
        self._predator_pos = fixed["predators"]
        self._prey_pos = fixed["prey"]
        self._predator_alive[:] = True
        self._prey_alive[:] = True
        self._cells[:] = _EMPTY
        self._cells[self._predator_pos[:, 0], self._predator_pos[:, 1]] = _PREDATOR
        self._cells[self._prey_pos[:, 0], self._prey_pos[:, 1]] = _PREY
        self._steps = 0
        self._captures = 0
        self.agents = self.possible_agents[:]
        observations = self._observations(np.arange(self.n_predators))
        infos = {agent: self._info() for agent in self.agents}
        if self.render_mode == "human":
            self.render()
        return observations, infos

    def step(
        self, actions: Mapping[str, int]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Advance one step (moves, captures, prey moves); see the module docstring.

        Raises:
            RuntimeError: if no episode is running: call ``reset()``.
            ValueError: for a missing action, an action for an agent that is not live (frozen,
                finished or unknown), or an action outside ``Discrete(6)``.
        """
        check_actions(
            actions,
            self.agents,
            self._agent_index,
            self._action_spaces,
            gone="frozen or finished",
            action_names=ACTION_NAMES,
        )
        live = np.flatnonzero(self._predator_alive)
        chosen = np.full(self.n_predators, STAY, dtype=np.int64)
        for agent in self.agents:
            chosen[self._agent_index[agent]] = actions[agent]

        self._move_predators(live, chosen)
        reward, frozen = self._resolve_captures(chosen)
        self._move_prey()
        self._steps += 1

        frozen_set = set(frozen.tolist())
        done = not self._prey_alive.any() or not self._predator_alive.any()
        truncated = not done and self._steps >= self.max_cycles
        agents = self.agents
        self.agents = (
            [] if done or truncated else [a for a in agents if self._agent_index[a] not in frozen_set]
        )

        observations = self._observations(live)
        rewards = dict.fromkeys(agents, reward)
        terminations = {a: done or self._agent_index[a] in frozen_set for a in agents}
        truncations = {a: truncated and self._agent_index[a] not in frozen_set for a in agents}
        infos = {agent: self._info() for agent in agents}
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Return the whole grid, ``(grid_size, grid_size, 2)`` float32 (predators, prey)."""
        self._fill_planes()
        lo = self.view_radius
        return self._planes[lo : lo + self.grid_size, lo : lo + self.grid_size].copy()

    def render(self) -> str | np.ndarray | None:
        """Return the grid as text (``"ansi"``), print it (``"human"``) or draw it (``"rgb_array"``)."""
        if self.render_mode is None:
            logger.warn("render() called without a render_mode; pass e.g. render_mode='rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            palette = np.array([_COLOURS[k] for k in (_EMPTY, _PREDATOR, _PREY, _FROZEN)], dtype=np.uint8)
            codes = self._cells.copy()
            if codes.any():  # after reset: show the frozen catchers where they stopped
                rows, cols = self._predator_pos[~self._predator_alive].T
                codes[rows, cols] = np.where(codes[rows, cols] == _EMPTY, _FROZEN, codes[rows, cols])
            image = palette[codes].repeat(_CELL_PX, axis=0).repeat(_CELL_PX, axis=1)
            image[::_CELL_PX] = _GRID_LINE
            image[:, ::_CELL_PX] = _GRID_LINE
            image[-1] = _GRID_LINE
            image[:, -1] = _GRID_LINE
            return image
        text = "\n".join(" ".join(".Pp"[cell] for cell in row) for row in self._cells)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Nothing to release."""

    def _validate_positions(self, key: str, positions: Any, count: int) -> np.ndarray:
        """Check a hand-given ``options[key]`` and return it as an ``(count, 2)`` int array."""
        array = np.asarray(positions)
        if array.shape != (count, 2) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"options[{key!r}] must be {count} integer [row, col] pairs, got shape {array.shape} "
                f"and dtype {array.dtype}"
            )
        if ((array < 0) | (array >= self.grid_size)).any():
            raise ValueError(f"options[{key!r}] has cells outside the {self.grid_size}x{self.grid_size} grid")
        flat = array[:, 0] * self.grid_size + array[:, 1]
        if np.unique(flat).size != count:
            raise ValueError(f"options[{key!r}] places two units on the same cell")
        return array.astype(np.int64)

    def _move_predators(self, live: np.ndarray, chosen: np.ndarray) -> None:
        """Apply the moves of the live predators one by one, in a random order."""
        size, cells, pos = self.grid_size, self._cells, self._predator_pos
        for i in self._rng.permutation(live).tolist():
            action = int(chosen[i])
            if action >= STAY:
                continue
            row, col = pos[i].tolist()
            d_row, d_col = _MOVES[action]
            new_row, new_col = row + d_row, col + d_col
            if 0 <= new_row < size and 0 <= new_col < size and cells[new_row, new_col] == _EMPTY:
                cells[row, col] = _EMPTY
                cells[new_row, new_col] = _PREDATOR
                pos[i] = new_row, new_col

    def _resolve_captures(self, chosen: np.ndarray) -> tuple[float, np.ndarray]:
        """Capture prey, freeze their catchers; return the team reward and the frozen indices."""
        catching = self._predator_alive & (chosen == CATCH)
        if not catching.any():
            return 0.0, np.empty(0, dtype=np.int64)
        prey = np.flatnonzero(self._prey_alive)
        distance = np.abs(self._prey_pos[prey, None, :] - self._predator_pos[None, :, :]).sum(axis=2)
        catchers = (distance == 1) & catching[None, :]
        # One prey at a time, in a random order: a predator frozen by a capture stops counting
        # for the prey resolved after it, so every capture costs min_catchers fresh predators.
        frozen = np.zeros(self.n_predators, dtype=bool)
        caught = []
        n_missed = 0
        for k in self._rng.permutation(np.flatnonzero(catchers.any(axis=1))).tolist():
            helpers = catchers[k] & ~frozen
            n_helpers = int(helpers.sum())
            if n_helpers >= self.min_catchers:
                frozen |= helpers
                caught.append(prey[k])
            elif n_helpers:
                n_missed += 1
        self._prey_alive[caught] = False
        self._predator_alive &= ~frozen
        self._cells[self._prey_pos[caught, 0], self._prey_pos[caught, 1]] = _EMPTY
        self._cells[self._predator_pos[frozen, 0], self._predator_pos[frozen, 1]] = _EMPTY
        self._captures += len(caught)
        reward = self.capture_reward * len(caught) + self.miscapture_punishment * n_missed
        return reward, np.flatnonzero(frozen)

    def _move_prey(self) -> None:
        """Move every remaining prey, in a random order, to a random free neighbouring cell."""
        size, cells, pos = self.grid_size, self._cells, self._prey_pos
        prey = np.flatnonzero(self._prey_alive)
        order = self._rng.permutation(prey).tolist()
        draws = self._rng.random(len(order)).tolist()
        for j, draw in zip(order, draws, strict=True):
            row, col = pos[j].tolist()
            free = [
                (row + d_row, col + d_col)
                for d_row, d_col in _NEIGHBOURS
                if 0 <= row + d_row < size
                and 0 <= col + d_col < size
                and cells[row + d_row, col + d_col] == _EMPTY
            ]
            if free:
                new_row, new_col = free[int(draw * len(free))]
                cells[row, col] = _EMPTY
                cells[new_row, new_col] = _PREY
                pos[j] = new_row, new_col

    def _fill_planes(self) -> None:
        """Write the current grid into the centre of the zero-padded planes."""
        lo = self.view_radius
        centre = self._planes[lo : lo + self.grid_size, lo : lo + self.grid_size]
        centre[..., 0] = self._cells == _PREDATOR
        centre[..., 1] = self._cells == _PREY

    def _observations(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Views of the predators ``indices`` (frozen ones see from their last cell)."""
        self._fill_planes()
        rows, cols = self._predator_pos[indices].T
        views = np.ascontiguousarray(self._windows[rows, cols].transpose(0, 2, 3, 1))
        return {self.possible_agents[i]: view for i, view in zip(indices.tolist(), views, strict=True)}

    def _info(self) -> dict[str, int]:
        """Per-agent info: captures so far and steps taken in this episode."""
        return {"captures": self._captures, "step": self._steps}


parallel_env = PredatorPreyEnv
"""PettingZoo's usual module-level constructor (the class itself: same arguments)."""
