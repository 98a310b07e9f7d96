"""Batched predator-prey: ``num_envs`` copies of ``predator_prey_v1`` stepped together in NumPy.

The rules, observations, action masks, rewards and infos are those of :mod:`marl_lsf.envs.predator_prey_v1`
(v0's rules plus pymarl's masks) as the library's team view sees them: for the same seeds and
actions, :class:`PredatorPreyVecEnv` returns exactly, float for float, the ``TeamObs``, rewards,
terminations, truncations and infos of ``marl_lsf.team_env.GymTeamVecEnv(factory, num_envs,
"sync")`` over ``TeamEnv(predator_prey_v1.parallel_env(...))`` copies (same-step autoreset).

How the equivalence is kept: every copy owns one ``np.random.Generator``, seeded as the single env's
``reset(seed)`` seeds its own (``default_rng(seed + e)`` for copy ``e``; an unseeded reset, and every
autoreset, keeps drawing from it, as the single env does) and asked for exactly the numbers the
single env asks for, in the same order: the placement ``choice`` at each reset, then in each step the
predators' move order ``permutation``, the capture-resolution order ``permutation`` (only when a live
predator used ``CATCH``), the prey order ``permutation`` and the prey moves' ``random`` draws. A
permutation of ``n`` items is drawn as ``permutation(n)`` and mapped onto the same sorted indices the
single env permutes (the same draws and the same result); one of fewer than two items draws nothing
in NumPy, so it is not asked for. Only those draws loop over the copies; everything else runs on
arrays over all copies. The sequential parts of a step (predators move one after another, prey are
resolved and move one after another) loop over the position in the order, at most ``n_predators`` or
``n_prey`` times, and apply that position's move in every copy at once.

The grid is kept flat and padded with wall cells, so a move's target is a table lookup and a move
into the wall is blocked like a move into a unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marl_lsf.envs import predator_prey_v1
from marl_lsf.envs._checks import check_vector_actions
from marl_lsf.envs.predator_prey_v0 import _EMPTY, _PREDATOR, _PREY, ACTION_NAMES, CATCH, STAY
from marl_lsf.team_env import TeamObs, TeamSpec, TeamStep, TeamVecEnv, build_spec, episode_length_hint

_WALL = 3  # padding around the grid: never free, never a unit
_N_MOVES = 4  # right, down, left, up: the actions that move
# Avail row of an agent that has left the episode (frozen or finished): only the no-op action 0.
_ABSENT_AVAIL = np.eye(1, len(ACTION_NAMES), dtype=bool)[0]
# A prey's free neighbours as a 4-bit pattern (bit d: direction d, in the order right, down, left,
# up): _N_FREE[pattern] counts them and _KTH_FREE[pattern, k] is the k-th (the free directions come
# first, ascending), so that the single env's ``free[int(draw * len(free))]`` is
# ``_KTH_FREE[pattern, int(draw * _N_FREE[pattern])]``.
_BITS = 1 << np.arange(_N_MOVES)
_PATTERNS = (np.arange(1 << _N_MOVES)[:, None] & _BITS) > 0
_N_FREE = _PATTERNS.sum(axis=1)
_KTH_FREE = np.argsort(~_PATTERNS, axis=1, kind="stable")


class PredatorPreyVecEnv(TeamVecEnv):
    """``num_envs`` copies of :class:`marl_lsf.envs.predator_prey_v1.PredatorPreyEnv` as one team vector env.

    Follows ``marl_lsf.team_env.TeamVecEnv``: ``reset(seed)`` (copy ``e`` gets ``seed + e``) returns a
    ``TeamObs`` (obs ``[E, N, O]`` float32: each predator's ``(2r+1, 2r+1, 2)`` view flattened;
    state ``[E, S]`` float32: the grid; avail ``[E, N, 6]`` bool; alive ``[E, N]`` bool), and
    ``step(actions)`` with ``actions [E, N]`` returns a ``TeamStep`` with same-step autoreset. A
    predator that froze, or whose episode terminated, has zero obs, only action 0 available and
    ``alive=False`` from the step it left on (in ``final``); on a truncation the live predators keep
    their view in ``final``. The reward is the team reward every live predator got (TeamEnv's
    ``"mean"`` of equal rewards); ``infos[e]`` is ``{"captures": ..., "step": ...}`` (floats) when
    copy ``e``'s episode ended, else ``{}``. ``render()`` renders copy 0 in the env's
    ``render_mode``; in ``"human"`` mode copy 0 is printed after each of its resets and steps, as
    the single env does.

    Args:
        num_envs: number of copies.
        **env_kwargs: arguments of :class:`marl_lsf.envs.predator_prey_v1.PredatorPreyEnv` (checked by it).

    Raises:
        ValueError: for ``num_envs < 1`` and the env's invalid arguments.
    """

    def __init__(self, num_envs: int = 1, **env_kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        # The single env: checks the arguments, gives the spec and renders copy 0's grid.
        self._env = env = predator_prey_v1.parallel_env(**env_kwargs)
        self.spec: TeamSpec = build_spec(env)
        self.num_envs = n_envs = int(num_envs)
        self.max_episode_steps = episode_length_hint(env)

        # Each copy's grid is a flat block of width * width cells: the grid, padded with wall cells.
        # Positions are indices into a block; index ``e * width**2 + cell`` reaches copy e's cell.
        size, radius = env.grid_size, env.view_radius
        pad = max(radius, 1)
        width = size + 2 * pad
        rows, cols = np.divmod(np.arange(size * size), size)
        #: Block index of each grid cell, row-major (the single env's flat cell numbering).
        self._interior = (rows + pad) * width + cols + pad
        self._width, self._pad = width, pad
        self._blank = np.full(width * width, _WALL, dtype=np.int8)
        self._blank[self._interior] = _EMPTY
        #: Block offsets of the neighbours to the right, below, to the left and above.
        self._around = np.array([1, width, -1, -width])
        #: ``_targets[cell * 6 + action]``: the cell a unit on ``cell`` tries to move to. Non-moving
        #: actions aim at cell 0, a wall corner, so that they are always blocked. (Clipping only
        #: changes the entries of wall cells, where no unit ever stands.)
        targets = np.zeros((width * width, len(ACTION_NAMES)), dtype=np.int64)
        targets[:, :_N_MOVES] = np.clip(
            np.arange(width * width)[:, None] + self._around, 0, width * width - 1
        )
        self._targets = targets.reshape(-1)
        #: ``_inside[cell, move]``: the move stays in the grid (pymarl's mask of the moves).
        self._inside = self._blank[targets[:, :_N_MOVES]] != _WALL
        offsets = np.arange(-radius, radius + 1)
        #: Block offsets of the view window around its centre, row-major like the single env's view.
        self._window = (offsets[:, None] * width + offsets[None, :]).reshape(-1)
        self._width = width
        self._cell_ids = np.arange(size * size)

        n_predators, n_prey = env.n_predators, env.n_prey
        self._copies = np.arange(n_envs)
        self._block_starts = self._copies * width * width
        self._rngs = [np.random.default_rng() for _ in range(n_envs)]
        self._cells = np.tile(self._blank, (n_envs, 1))  # [E, width**2], only ever written in place
        self._flat_cells = self._cells.reshape(-1)
        self._predator_pos = np.zeros((n_envs, n_predators), dtype=np.int64)
        self._prey_pos = np.zeros((n_envs, n_prey), dtype=np.int64)
        self._predator_alive = np.zeros((n_envs, n_predators), dtype=bool)
        self._prey_alive = np.zeros((n_envs, n_prey), dtype=bool)
        self._steps = np.zeros(n_envs, dtype=np.int64)
        self._captures = np.zeros(n_envs, dtype=np.int64)
        self._avail: np.ndarray | None = None  # the masks the agents act on next; None before reset

    def reset(self, seed: int | None = None) -> TeamObs:
        """Reset every copy (copy ``e`` gets ``seed + e``; unseeded, each keeps its generator)."""
        if seed is not None:
            self._rngs = [np.random.default_rng(int(seed) + e) for e in range(self.num_envs)]
        self._reset_copies(self._copies)
        obs = self._observe(self._copies, self._predator_alive.copy())
        self._avail = obs.avail.copy()
        self._render_human(self._copies)
        return obs

    def step(self, actions: np.ndarray) -> TeamStep:
        """Step every copy with ``actions [E, N]``; copies whose episode ended reset at once.

        Actions of agents that are not alive are ignored, as in the team view.

        Raises:
            RuntimeError: before the first ``reset()``.
            ValueError: for actions of the wrong shape or dtype, or a live agent's action outside
                ``Discrete(6)`` or unavailable in its mask (named with the copy and the agent).
        """
        chosen = self._checked_actions(actions)
        n_live = self._predator_alive.sum(axis=1)
        self._move_predators(chosen)
        reward = self._resolve_captures(chosen)
        self._move_prey()
        self._steps += 1
        terminated = ~self._prey_alive.any(axis=1) | ~self._predator_alive.any(axis=1)
        truncated = ~terminated & (self._steps >= self._env.max_cycles)
        done = terminated | truncated
        self._render_human(self._copies)

        # As in the team view: agents that terminated (froze, or the episode ended) leave their slot;
        # on a truncation the others keep their view, since the critic bootstraps from it.
        final = self._observe(self._copies, self._predator_alive & ~terminated[:, None])
        following = final
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(done)
        if finished.size:
            for e in finished.tolist():
                infos[e] = {"captures": float(self._captures[e]), "step": float(self._steps[e])}
            self._reset_copies(finished)
            fresh = self._observe(finished, self._predator_alive[finished])
            following = TeamObs(*(field.copy() for field in final))
            for field, rows in zip(following, fresh, strict=True):
                field[finished] = rows
            self._render_human(finished)
        self._avail = following.avail.copy()
        return TeamStep(following, final, self._team_reward(reward, n_live), terminated, truncated, infos)

    def render(self) -> str | np.ndarray | None:
        """Render copy 0 as the single env renders its grid (in the env's ``render_mode``)."""
        size = self._env.grid_size
        # The single env draws its own grid: give it copy 0's cells and predators.
        self._env._cells[:] = self._cells[0, self._interior].reshape(size, size)
        block = self._predator_pos[0]
        self._env._predator_pos[:] = np.stack(np.divmod(block, self._width), -1) - self._pad
        self._env._predator_alive[:] = self._predator_alive[0]
        return self._env.render()

    def _render_human(self, envs: np.ndarray) -> None:
        """Print copy 0 in ``"human"`` mode when it is among ``envs`` (as the single env does)."""
        if self._env.render_mode == "human" and envs[0] == 0:
            self.render()

    def _checked_actions(self, actions: np.ndarray) -> np.ndarray:
        """``actions [E, N]`` of the live agents (``STAY`` for the others), checked against the masks."""
        if self._avail is None:
            raise RuntimeError("step() called before reset()")
        actions = check_vector_actions(actions, self.num_envs, self.spec.n_agents)
        alive = self._predator_alive
        chosen = np.where(alive, actions, STAY).astype(np.int64, copy=False)
        if chosen.min() < 0 or chosen.max() >= len(ACTION_NAMES):
            e, i = np.argwhere((chosen < 0) | (chosen >= len(ACTION_NAMES)))[0]
            names = ", ".join(ACTION_NAMES)
            raise ValueError(
                f"action {chosen[e, i]} of agent {self.spec.agents[i]!r} in env {e} is outside its action "
                f"space Discrete({len(ACTION_NAMES)}) (0..{len(ACTION_NAMES) - 1}: {names})"
            )
        available = self._avail[self._copies[:, None], np.arange(alive.shape[1]), chosen]
        if not available[alive].all():
            e, i = np.argwhere(alive & ~available)[0]
            action = int(chosen[e, i])
            names = ", ".join(ACTION_NAMES[a] for a in np.flatnonzero(self._avail[e, i]))
            raise ValueError(
                f"action {action} ({ACTION_NAMES[action]}) of agent {self.spec.agents[i]!r} in env {e} "
                f"is not available now (available: {names}); read the avail mask"
            )
        return chosen

    def _reset_copies(self, envs: np.ndarray) -> None:
        """Start a new episode in copies ``envs``: units on random cells, drawn as the single env does."""
        n_predators = self._env.n_predators
        units = n_predators + self._env.n_prey
        flat = np.stack(
            [self._rngs[e].choice(self._cell_ids, size=units, replace=False) for e in envs.tolist()]
        )
        cells = self._interior[flat]
        self._predator_pos[envs] = cells[:, :n_predators]
        self._prey_pos[envs] = cells[:, n_predators:]
        self._cells[envs] = self._blank
        self._cells[envs[:, None], cells[:, :n_predators]] = _PREDATOR
        self._cells[envs[:, None], cells[:, n_predators:]] = _PREY
        self._predator_alive[envs] = True
        self._prey_alive[envs] = True
        self._steps[envs] = 0
        self._captures[envs] = 0

    def _orders(self, envs: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Random orders of the ``members [K, M]`` of each copy in ``envs``, as the single env draws them.

        Returns ``(order [K, M], counts [K])``: ``order[k, :counts[k]]`` is ``rng.permutation`` of copy
        ``envs[k]``'s members (their indices, ascending, permuted); the rest are the non-members.
        """
        counts = members.sum(axis=1)
        ranked = np.argsort(~members, axis=1, kind="stable")
        slots = np.empty(members.shape, dtype=np.int64)
        slots[:] = np.arange(members.shape[1])
        for k, (e, count) in enumerate(zip(envs.tolist(), counts.tolist(), strict=True)):
            if count > 1:
                slots[k, :count] = self._rngs[e].permutation(count)
        return ranked[np.arange(len(envs))[:, None], slots], counts

    def _move_predators(self, chosen: np.ndarray) -> None:
        """Apply the live predators' moves one order position at a time, in every copy at once."""
        order, n_live = self._orders(self._copies, self._predator_alive)
        rows, starts = self._copies[:, None], self._block_starts[:, None]
        # A predator moves only at its own place in the order, so where it stands and where it heads
        # are known before the loop; along the loop only the free cells change.
        here = self._predator_pos[rows, order]
        there = self._targets[here * len(ACTION_NAMES) + chosen[rows, order]]
        here_cells, there_cells = here + starts, there + starts
        moved = np.zeros(order.shape, dtype=bool)
        cells = self._flat_cells
        for p in range(int(n_live.max())):
            # Past a copy's live predators the order holds frozen ones: they STAY, so are blocked.
            moving = (cells[there_cells[:, p]] == _EMPTY).nonzero()[0]
            cells[here_cells[moving, p]] = _EMPTY
            cells[there_cells[moving, p]] = _PREDATOR
            moved[moving, p] = True
        self._predator_pos[rows, order] = np.where(moved, there, here)

    def _resolve_captures(self, chosen: np.ndarray) -> np.ndarray:
        """Capture prey and freeze their catchers as the single env does; return the rewards ``[E]``."""
        reward = np.zeros(self.num_envs)
        catching = self._predator_alive & (chosen == CATCH)
        envs = np.flatnonzero(catching.any(axis=1))
        if not envs.size:  # the single env returns before drawing its order
            return reward
        apart = np.abs(self._prey_pos[envs, :, None] - self._predator_pos[envs, None, :])  # [C, M, N]
        catchers = (
            ((apart == 1) | (apart == self._width))
            & catching[envs, None, :]
            & self._prey_alive[envs, :, None]
        )
        order, counts = self._orders(envs, catchers.any(axis=2))
        rows = np.arange(len(envs))
        frozen = np.zeros((len(envs), catching.shape[1]), dtype=bool)
        caught = np.zeros(catchers.shape[:2], dtype=bool)
        missed = np.zeros(len(envs), dtype=np.int64)
        for q in range(int(counts.max())):
            # Past a copy's count the order holds prey nobody tried to catch: no helpers, no effect.
            prey = order[:, q]
            helpers = catchers[rows, prey] & ~frozen
            n_helpers = helpers.sum(axis=1)
            success = n_helpers >= self._env.min_catchers
            frozen |= helpers & success[:, None]
            caught[rows[success], prey[success]] = True
            missed += (n_helpers > 0) & ~success
        n_caught = caught.sum(axis=1)
        reward[envs] = self._env.capture_reward * n_caught + self._env.miscapture_punishment * missed
        self._captures[envs] += n_caught
        self._prey_alive[envs] &= ~caught
        self._predator_alive[envs] &= ~frozen
        k, j = np.nonzero(caught)
        self._cells[envs[k], self._prey_pos[envs[k], j]] = _EMPTY
        k, i = np.nonzero(frozen)
        self._cells[envs[k], self._predator_pos[envs[k], i]] = _EMPTY
        return reward

    def _move_prey(self) -> None:
        """Move the remaining prey to random free neighbouring cells, one order position at a time."""
        order, counts = self._orders(self._copies, self._prey_alive)
        draws = np.zeros(order.shape)
        for e, count in enumerate(counts.tolist()):
            if count:  # the single env's random() after its permutation, from the same generator
                draws[e, :count] = self._rngs[e].random(count)
        rows, starts = self._copies[:, None], self._block_starts[:, None]
        # As for the predators, a prey's cell and neighbours are known before the loop. Past a copy's
        # count the order holds caught prey: all their neighbours are the block's wall corner, so they
        # never move.
        here = self._prey_pos[rows, order] + starts
        placed = (np.arange(order.shape[1]) < counts[:, None])[..., None]
        around = np.where(placed, here[..., None] + self._around, starts[..., None])  # [E, M, 4]
        # picks[e, q, pattern]: the direction the single env's free[int(draw * len(free))] picks.
        picks = _KTH_FREE[np.arange(len(_N_FREE)), (draws[..., None] * _N_FREE).astype(np.int64)]
        moved_to = here.copy()
        cells = self._flat_cells
        for q in range(int(counts.max())):
            pattern = (cells[around[:, q]] == _EMPTY) @ _BITS
            moving = pattern.nonzero()[0]
            there = around[moving, q, picks[moving, q, pattern[moving]]]
            cells[here[moving, q]] = _EMPTY
            cells[there] = _PREY
            moved_to[moving, q] = there
        self._prey_pos[rows, order] = moved_to - starts

    def _observe(self, envs: np.ndarray, present: np.ndarray) -> TeamObs:
        """Team observations of copies ``envs``; agents not ``present [K, N]`` get the absent view."""
        cells, pos = self._flat_cells, self._predator_pos[envs]
        starts = self._block_starts[envs, None]
        centres = (starts + pos)[..., None]  # [K, N, 1]
        views = cells[centres + self._window]  # [K, N, V]
        obs = np.empty((*views.shape, 2), dtype=np.float32)
        obs[..., 0] = views == _PREDATOR
        obs[..., 1] = views == _PREY
        obs = obs.reshape(*pos.shape, -1)
        obs[~present] = 0.0
        grid = cells[starts + self._interior]
        state = np.empty((*grid.shape, 2), dtype=np.float32)
        state[..., 0] = grid == _PREDATOR
        state[..., 1] = grid == _PREY
        avail = np.empty((*pos.shape, len(ACTION_NAMES)), dtype=bool)
        avail[..., :_N_MOVES] = self._inside[pos]
        avail[..., STAY] = True
        avail[..., CATCH] = (cells[centres + self._around] == _PREY).any(axis=-1)
        avail[~present] = _ABSENT_AVAIL
        return TeamObs(obs, state.reshape(len(envs), -1), avail, present.copy())

    def _team_reward(self, reward: np.ndarray, n_live: np.ndarray) -> np.ndarray:
        """TeamEnv's ``"mean"`` of the ``n_live`` equal rewards of each copy, as float32 ``[E]``.

        The mean of equal integer-valued floats is exact; for other rewards it can differ in the last
        bit, so each distinct ``(reward, n_live)`` pair is averaged as the team view averages it.
        """
        team = reward.copy()
        inexact = np.flatnonzero((reward != np.round(reward)) | (np.abs(reward) * n_live >= 2.0**53))
        if inexact.size:
            values, value_ids = np.unique(reward[inexact], return_inverse=True)
            base = self.spec.n_agents + 1
            pairs, pair_ids = np.unique(value_ids * base + n_live[inexact], return_inverse=True)
            means = [float(np.mean([float(values[p // base])] * (p % base))) for p in pairs.tolist()]
            team[inexact] = np.asarray(means)[pair_ids]
        return team.astype(np.float32)
