"""SMAX, JaxMARL's JAX re-implementation of SMAC scenarios, as a PettingZoo ParallelEnv.

Wraps ``jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name))``: our team
plays SMAX's allies against its heuristic enemy AI. It runs on CPU without StarCraft II
(``pip install marl-lsf[smax]`` or ``pip install jaxmarl``).

Conventions (the same as ``marl_lsf.envs.smac_v1``):

* agents are ``agent_0 .. agent_{n-1}`` (SMAX's ``ally_0 .. ally_{n-1}``);
* observations are ``{"observation": float32 [obs_dim], "action_mask": int8 [n_actions]}``, the mask
  being SMAX's ``get_avail_actions``; actions are ``Discrete(n_actions)`` in SMAX's layout:
  0 north (+y), 1 east (+x), 2 south, 3 west, 4 stop, ``5 + k`` attack enemy ``k`` (a dead unit can only stop);
* ``state()`` is SMAX's ``world_state`` normalized as SMAC's ``get_state`` is: unit positions in
  ``[-1, 1]`` around the map centre and weapon cooldowns in ``[0, 1]`` (SMAX gives positions in map
  units, 0..32, and lets cooldowns run below zero to -10 and beyond; fed raw to QMIX's
  hypernetworks they inflated the initial joint values twenty-fold);
* every agent acting in a step gets the same team reward: SMAX's ally reward (the enemies' health
  lost, normalised, plus ``won_battle_bonus`` for a win) rescaled as SMAC's ``reward_scale`` does, so
  that the best possible return is ``reward_scale_rate`` (20 by default, SMAC's default; SMAX's own
  best is ``1 + won_battle_bonus`` = 2). The scale matters to maximum-entropy learners such as
  LSF-SAC, whose entropy bonus is weighed against the reward; ``reward_scale_rate=None`` keeps
  SMAX's own rewards;
* an agent whose unit dies terminates and leaves ``agents`` (its last observation is all zeros);
* a won, lost or drawn battle terminates every remaining agent; the time limit, SMAX's
  ``max_steps`` (default 100) steps, truncates them; ``infos[agent]["battle_won"]`` is set at the
  end of an episode, infos are empty before.

``SMAXEnv.make_team_vec_env(num_envs)`` returns :class:`SmaxTeamVecEnv`, which steps ``num_envs``
battles in one jitted ``jax.vmap`` call with same-step autoreset; ``marl_lsf.team_env.
make_team_vec_env`` uses it automatically. Steps and resets are jitted once per map and
configuration and shared by every env of this process.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from marl_lsf.envs import _starcraft
from marl_lsf.envs._checks import check_render_mode, check_vector_actions
from marl_lsf.team_env import TeamObs, TeamSpec, TeamStep, TeamVecEnv, build_spec

INSTALL_HINT = "SMAX needs JAX and JaxMARL: `pip install marl-lsf[smax]` (or `pip install jaxmarl`)."

#: The ``HeuristicEnemySMAX`` keyword arguments that this module sets itself.
_RESERVED_KWARGS = ("scenario", "action_type")


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Swallow stdout, including jaxmarl's import-time prints after it resets ``sys.stdout`` to
    ``sys.__stdout__`` (its MABrax module does)."""
    sink, real = io.StringIO(), sys.__stdout__
    sys.__stdout__ = sink
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        sys.__stdout__ = real


def _import_jaxmarl() -> tuple[Any, Any, Any, Any]:
    """Import ``jax``, ``jax.numpy``, ``jaxmarl`` and its SMAX module (silencing jaxmarl's prints)."""
    try:
        import jax
        import jax.numpy as jnp

        with _quiet_stdout():
            import jaxmarl
            import jaxmarl.environments.smax.smax_env as smax_module
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return jax, jnp, jaxmarl, smax_module


def map_names() -> list[str]:
    """The SMAX map names this installation of JaxMARL provides."""
    return sorted(_import_jaxmarl()[3].MAP_NAME_TO_SCENARIO)


class _SmaxCore:
    """One SMAX configuration and its jitted functions, shared by every env using it.

    Arrays returned by the jitted functions, for ``N`` allies: ``obs [N, O]``, ``world_state [S]``,
    ``avail [N, A]`` (SMAX's masks), ``alive [N]``; a step also returns the team reward and the
    ``terminated``, ``truncated`` and ``won`` flags. The PRNG key is threaded through every call
    (reset: one split; step: one split), so a single env and a vectorized env seeded alike play the
    same battles.
    """

    def __init__(
        self, map_name: str, smax_kwargs: Mapping[str, Any], reward_scale_rate: float | None
    ) -> None:
        jax, jnp, jaxmarl, smax_module = _import_jaxmarl()
        valid = map_names()
        if map_name not in valid:
            raise ValueError(f"unknown SMAX map {map_name!r}; valid maps: {', '.join(valid)}")
        reserved = sorted(set(smax_kwargs) & set(_RESERVED_KWARGS))
        if reserved:
            raise ValueError(
                f"{reserved} are set by smax_v0 (from map_name; discrete actions) and cannot be passed"
            )
        self.jax, self.jnp = jax, jnp
        self.map_name = map_name
        self.env = jaxmarl.make(
            "HeuristicEnemySMAX", scenario=smax_module.map_name_to_scenario(map_name), **smax_kwargs
        )
        best_return = 1.0 + float(self.env.won_battle_bonus)
        self.reward_scale = 1.0 if reward_scale_rate is None else float(reward_scale_rate) / best_return
        self.n_agents = int(self.env.num_allies)
        self.n_enemies = int(self.env.num_enemies)
        self.n_actions = int(self.env.num_ally_actions)
        self.stop_action = int(self.env.num_movement_actions) - 1
        self.max_steps = int(self.env.max_steps)
        self.allies = [f"ally_{i}" for i in range(self.n_agents)]
        self.reset = jax.jit(self._reset)
        self.step = jax.jit(self._step)
        self.vreset = jax.jit(jax.vmap(self._team_reset))
        self.vstep = jax.jit(jax.vmap(self._team_step))
        self.obs_dim = int(self.env.observation_spaces[self.allies[0]].shape[0])
        self.state_dim = int(self.env.state_size)
        self.state_offset, self.state_scale, self.state_low = self._state_normalization()

    def _state_normalization(self) -> tuple[Any, Any, Any]:
        """``(offset, scale, low)``: the world state is normalized as ``max((x - offset) * scale, low)``.

        SMAX's world state is, per unit, ``own_features`` (health, x, y, weapon cooldown, unit type
        bits), then every unit's team and type. Positions map to ``[-1, 1]`` around the map centre;
        the weapon cooldown, which SMAX keeps counting down below zero (to -10 and beyond), maps to
        ``[0, 1]`` of the longest cooldown. Other features are unchanged.
        """
        jnp, env = self.jnp, self.env
        features = list(env.own_features)
        units = np.arange(self.n_agents + self.n_enemies) * len(features)
        offset, scale = np.zeros(self.state_dim, np.float32), np.ones(self.state_dim, np.float32)
        low = np.full(self.state_dim, -np.inf, np.float32)
        for name, size in (("position_x", env.map_width), ("position_y", env.map_height)):
            columns = units + features.index(name)
            offset[columns], scale[columns] = size / 2, 2 / size
        cooldown = units + features.index("weapon_cooldown")
        scale[cooldown], low[cooldown] = 1 / float(np.max(env.unit_type_weapon_cooldowns)), 0.0
        return jnp.asarray(offset), jnp.asarray(scale), jnp.asarray(low)

    def _arrays(self, obs: Mapping[str, Any], state: Any) -> tuple[Any, Any, Any, Any]:
        jnp = self.jnp
        avail = self.env.get_avail_actions(state)
        return (
            jnp.stack([obs[a] for a in self.allies]).astype(jnp.float32),
            jnp.maximum((obs["world_state"] - self.state_offset) * self.state_scale, self.state_low).astype(
                jnp.float32
            ),
            jnp.stack([avail[a] for a in self.allies]).astype(jnp.bool_),
            state.state.unit_alive[: self.n_agents],
        )

    def _reset(self, key: Any) -> tuple[Any, Any, tuple[Any, ...]]:
        key, sub = self.jax.random.split(key)
        obs, state = self.env.reset(sub)
        # Strong dtypes, as after a step, so that step() compiles once and not again for the 2nd call.
        state = self.jax.tree.map(lambda x: x.astype(x.dtype), state)
        return key, state, self._arrays(obs, state)

    def _step(self, key: Any, state: Any, actions: Any) -> tuple[Any, ...]:
        jnp = self.jnp
        key, sub = self.jax.random.split(key)
        alive_before = state.state.unit_alive[: self.n_agents]
        actions = jnp.where(alive_before, actions, self.stop_action)
        obs, state, rewards, _, _ = self.env.step_env(
            sub, state, dict(zip(self.allies, actions, strict=True))
        )
        alive = state.state.unit_alive
        allies_dead = ~jnp.any(alive[: self.n_agents])
        enemies_dead = ~jnp.any(alive[self.n_agents :])
        terminated = allies_dead | enemies_dead
        # SMAX's own done flag tests the step count before incrementing it, which would allow
        # max_steps + 1 steps; the episode limit here is exactly max_steps steps.
        truncated = (state.state.step >= self.max_steps) & ~terminated
        won = enemies_dead & ~allies_dead
        reward = (rewards[self.allies[0]] * self.reward_scale).astype(jnp.float32)
        return key, state, self._arrays(obs, state), reward, terminated, truncated, won

    def _team_arrays(self, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
        """The team view's dead-slot convention: zero obs, only action 0 available, not alive."""
        jnp = self.jnp
        obs, world_state, avail, alive = arrays
        dead_avail = jnp.zeros_like(avail).at[:, 0].set(True)
        return (
            jnp.where(alive[:, None], obs, 0.0),
            world_state,
            jnp.where(alive[:, None], avail, dead_avail),
            alive,
        )

    def _team_reset(self, key: Any) -> tuple[Any, Any, tuple[Any, ...]]:
        key, state, arrays = self._reset(key)
        return key, state, self._team_arrays(arrays)

    def _team_step(self, key: Any, state: Any, actions: Any) -> tuple[Any, ...]:
        """One battle step with same-step autoreset: returns (key, state, next, final, reward, flags)."""
        jax = self.jax
        key, state, arrays, reward, terminated, truncated, won = self._step(key, state, actions)
        final = self._team_arrays(arrays)
        done = terminated | truncated
        reset_key, reset_state, reset_arrays = self._team_reset(key)

        def pick(fresh: Any, old: Any) -> Any:
            return jax.numpy.where(done, fresh, old)

        key = pick(reset_key, key)
        state = jax.tree.map(pick, reset_state, state)
        following = jax.tree.map(pick, reset_arrays, final)
        return key, state, following, final, reward, terminated, truncated, won

    def ansi(self, state: Any) -> str:
        """Text listing every unit's health, position and whether it is alive."""
        inner = self.jax.device_get(state.state)
        health_max = np.asarray(self.env.unit_type_health)[np.asarray(inner.unit_types)]
        lines = [f"SMAX {self.map_name}  step {int(inner.step)}/{self.max_steps}"]
        for i in range(self.n_agents + self.n_enemies):
            name = f"agent_{i}" if i < self.n_agents else f"enemy_{i - self.n_agents}"
            x, y = np.asarray(inner.unit_positions[i])
            status = "alive" if inner.unit_alive[i] else "dead "
            kind = self.env.unit_type_names[int(inner.unit_types[i])]
            lines.append(
                f"{name:>9} {kind:<9} {status} health {float(inner.unit_health[i]):6.1f}/{health_max[i]:.0f}"
                f"  at ({float(x):5.1f}, {float(y):5.1f})"
            )
        return "\n".join(lines)


_CORES: dict[Any, _SmaxCore] = {}


def _core(map_name: str, smax_kwargs: Mapping[str, Any], reward_scale_rate: float | None) -> _SmaxCore:
    """The shared ``_SmaxCore`` of this map and configuration (built once per process)."""
    try:
        cache_key: Any = (map_name, reward_scale_rate, tuple(sorted(smax_kwargs.items())))
        hash(cache_key)
    except TypeError:
        return _SmaxCore(map_name, smax_kwargs, reward_scale_rate)
    if cache_key not in _CORES:
        _CORES[cache_key] = _SmaxCore(map_name, smax_kwargs, reward_scale_rate)
    return _CORES[cache_key]


def _random_seed() -> int:
    return int(np.random.default_rng().integers(2**31))


#: SMAC's default ``reward_scale_rate``: rewards are scaled so that the best return is 20.
REWARD_SCALE_RATE = 20.0


def parallel_env(
    map_name: str = "3m",
    render_mode: str | None = None,
    seed: int | None = None,
    reward_scale_rate: float | None = REWARD_SCALE_RATE,
    **smax_kwargs: Any,
) -> SMAXEnv:
    """Build a :class:`SMAXEnv` on ``map_name`` (PettingZoo's usual module-level constructor)."""
    return SMAXEnv(map_name, render_mode, seed, reward_scale_rate, **smax_kwargs)


class SMAXEnv(_starcraft.StarCraftSpaces, ParallelEnv[str, dict[str, np.ndarray], int]):
    """One SMAX battle as a PettingZoo ParallelEnv (see the module docstring for conventions).

    Args:
        map_name: a SMAX map, e.g. ``"3m"``, ``"2s3z"``, ``"8m"``, ``"5m_vs_6m"`` (see
            :func:`map_names`).
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the units' health as text).
        seed: seed of the first ``reset()`` when that reset is given none.
        reward_scale_rate: the best possible return after scaling (SMAC's ``reward_scale_rate``);
            None keeps SMAX's own rewards.
        **smax_kwargs: keyword arguments of JaxMARL's ``HeuristicEnemySMAX``/``SMAX``, e.g.
            ``max_steps``, ``won_battle_bonus``, ``attack_mode``, ``enemy_shoots``.

    Raises:
        ImportError: when JAX or JaxMARL are missing.
        ValueError: for an unknown map (the message lists the valid ones) or ``render_mode``.
    """

    metadata = {"name": "smax_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(
        self,
        map_name: str = "3m",
        render_mode: str | None = None,
        seed: int | None = None,
        reward_scale_rate: float | None = REWARD_SCALE_RATE,
        **smax_kwargs: Any,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        if reward_scale_rate is not None and not reward_scale_rate > 0:
            raise ValueError(
                f"reward_scale_rate must be a positive number or None, got {reward_scale_rate!r}"
            )
        self._core = _core(map_name, smax_kwargs, reward_scale_rate)
        self.reward_scale_rate = reward_scale_rate
        self.map_name = map_name
        self.render_mode = render_mode
        self.smax_kwargs = dict(smax_kwargs)
        self._init_spaces(self._core.n_agents, self._core.obs_dim, self._core.state_dim, self._core.n_actions)
        self.max_steps = self._core.max_steps
        self._seed = seed
        self._key: Any = None
        self._state: Any = None
        self._world_state = np.zeros(self._core.state_dim, dtype=np.float32)
        self._avail = np.zeros((self._core.n_agents, self.n_actions), dtype=bool)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]]]:
        """Start a battle; returns observations and empty infos for every agent."""
        if seed is None and self._key is None:
            seed = _random_seed() if self._seed is None else self._seed
        if seed is not None:
            self._key = self._core.jax.random.PRNGKey(seed)
        self._key, self._state, arrays = self._core.reset(self._key)
        obs, world_state, avail, _ = self._core.jax.device_get(arrays)
        self.agents = list(self.possible_agents)
        return self._observe(self.agents, obs, world_state, avail), {agent: {} for agent in self.agents}

    def _observe(
        self, agents: list[str], obs: np.ndarray, world_state: np.ndarray, avail: np.ndarray
    ) -> dict[str, dict[str, np.ndarray]]:
        self._world_state = np.asarray(world_state, dtype=np.float32)
        self._avail = np.asarray(avail, dtype=bool)
        return _starcraft.observations(agents, self.possible_agents, obs, self._avail.astype(np.int8))

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[
        dict[str, dict[str, np.ndarray]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Step every live agent; returns PettingZoo's 5 dicts (see the module docstring)."""
        acting = list(self.agents)
        action_array = np.full(len(self.possible_agents), self._core.stop_action, dtype=np.int32)
        _starcraft.fill_actions(actions, acting, self.possible_agents, self._avail, action_array)
        self._key, self._state, arrays, *outcome = self._core.step(self._key, self._state, action_array)
        (obs, world_state, avail, alive), reward, terminated, truncated, won = self._core.jax.device_get(
            (arrays, *outcome)
        )
        observations = self._observe(acting, obs, world_state, avail)
        died = {agent for agent in acting if not alive[self.possible_agents.index(agent)]}
        rewards, terminations, truncations, self.agents = _starcraft.end_of_step(
            acting, died, float(reward), bool(terminated), bool(truncated)
        )
        over = bool(terminated) or bool(truncated)
        infos: dict[str, dict[str, Any]] = {
            agent: {"battle_won": bool(won)} if over else {} for agent in acting
        }
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """SMAX's ``world_state``, normalized (see the module docstring; float32 ``[state_dim]``)."""
        return self._world_state.copy()

    def render(self) -> str | None:
        """The units' health and positions as text (``render_mode="ansi"``), else ``None``."""
        if self.render_mode is None or self._state is None:
            return None
        return self._core.ansi(self._state)

    def close(self) -> None:
        """Nothing to release (JAX frees the state with the env)."""

    def make_team_vec_env(self, num_envs: int = 1) -> SmaxTeamVecEnv:
        """``num_envs`` battles of this map and configuration in one vmapped, jitted step."""
        return SmaxTeamVecEnv(self.map_name, num_envs, self._seed, self.reward_scale_rate, **self.smax_kwargs)


class SmaxTeamVecEnv(TeamVecEnv):
    """``num_envs`` SMAX battles stepped together by one jitted ``jax.vmap`` call.

    Follows ``marl_lsf.team_env.TeamVecEnv``: ``reset``/``step`` return numpy ``TeamObs``/``TeamStep``
    (obs ``[E, N, O]`` float32, state ``[E, S]`` float32, avail ``[E, N, A]`` bool, alive ``[E, N]``
    bool; dead slots have zero obs, only action 0 available and ``alive=False``). Finished battles
    reset inside the same jitted call (``final`` holds the observation the transition ended in).
    ``infos[e]`` is ``{"won": 1.0 or 0.0, "battle_won": same}`` when battle ``e`` ended, else ``{}``.
    Rewards, observations and the spec are those of :class:`SMAXEnv` on the same map; with the same
    seed, env ``e`` plays the battle an ``SMAXEnv`` reset with ``seed + e`` plays.

    Args:
        map_name: a SMAX map (see :func:`map_names`).
        num_envs: number of battles.
        seed: seed of the first ``reset()`` when that reset is given none.
        reward_scale_rate: as for :class:`SMAXEnv`.
        **smax_kwargs: as for :class:`SMAXEnv`.
    """

    def __init__(
        self,
        map_name: str = "3m",
        num_envs: int = 1,
        seed: int | None = None,
        reward_scale_rate: float | None = REWARD_SCALE_RATE,
        **smax_kwargs: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        env = SMAXEnv(map_name, seed=seed, reward_scale_rate=reward_scale_rate, **smax_kwargs)
        self._core = env._core
        self.spec: TeamSpec = build_spec(env)
        self.num_envs = num_envs
        self.map_name = map_name
        self._seed = seed
        self._keys: Any = None
        self._states: Any = None
        self._last: TeamObs | None = None

    def reset(self, seed: int | None = None) -> TeamObs:
        """Reset every battle (battle ``e`` gets ``seed + e``)."""
        jax, jnp = self._core.jax, self._core.jnp
        if seed is None:
            seed = _random_seed() if self._seed is None or self._keys is not None else self._seed
        self._keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seed, seed + self.num_envs))
        self._keys, self._states, arrays = self._core.vreset(self._keys)
        self._last = _team_obs(arrays)
        return self._last

    def step(self, actions: np.ndarray) -> TeamStep:
        """Step every battle with ``actions [E, N]``; finished battles reset at once."""
        if self._last is None:
            raise RuntimeError("step() called before reset()")
        actions = self._checked_actions(actions, self._last)
        self._keys, self._states, following, final, *outcome = self._core.vstep(
            self._keys, self._states, actions
        )
        reward, terminated, truncated, won = (np.asarray(x) for x in outcome)
        self._last = _team_obs(following)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for e in np.flatnonzero(terminated | truncated):
            infos[e] = {"won": float(won[e]), "battle_won": float(won[e])}
        return TeamStep(self._last, _team_obs(final), reward, terminated, truncated, infos)

    def _checked_actions(self, actions: np.ndarray, last: TeamObs) -> np.ndarray:
        actions = check_vector_actions(actions, self.num_envs, self.spec.n_agents)
        if actions.min() < 0 or actions.max() >= self.spec.n_actions:
            raise ValueError(
                f"actions must lie in [0, {self.spec.n_actions}), got {actions.min()}..{actions.max()}"
            )
        available = np.take_along_axis(last.avail, actions[..., None], axis=-1)[..., 0]
        bad = last.alive & ~available
        if bad.any():
            e, n = np.argwhere(bad)[0]
            raise ValueError(
                f"action {actions[e, n]} of agent_{n} in env {e} is not available; "
                f"available: {np.flatnonzero(last.avail[e, n]).tolist()}"
            )
        return actions.astype(np.int32)

    def render(self) -> str:
        """The first battle's units as text."""
        if self._states is None:
            raise RuntimeError("render() called before reset()")
        first = self._core.jax.tree.map(lambda x: x[0], self._states)
        return self._core.ansi(first)


def _team_obs(arrays: tuple[Any, ...]) -> TeamObs:
    """Move one batch of team arrays to numpy (one transfer per field; writable copies, as torch wants)."""
    obs, state, avail, alive = (np.array(x) for x in arrays)
    return TeamObs(obs, state, avail, alive)


__all__ = ["INSTALL_HINT", "REWARD_SCALE_RATE", "SMAXEnv", "SmaxTeamVecEnv", "map_names", "parallel_env"]
