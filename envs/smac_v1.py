"""oxwhirl's SMAC (StarCraft Multi-Agent Challenge) as a PettingZoo ParallelEnv.

Wraps ``smac.env.StarCraft2Env``. It needs StarCraft II (``SC2PATH``) and SMAC installed from its
repository: ``pip install git+https://github.com/oxwhirl/smac.git``. The PyPI project called
``smac`` is SMAC3, an unrelated hyperparameter optimiser; this module detects it and says so.

Conventions (shared with ``marl_lsf.envs.smax_v0``):

* agents are ``agent_0 .. agent_{n-1}`` (SMAC's unit ids ``0 .. n-1``);
* observations are ``{"observation": float32 [obs_shape], "action_mask": int8 [n_actions]}``, the
  mask being SMAC's ``get_avail_actions()``; actions are ``Discrete(n_actions)`` in SMAC's layout
  (0 no-op, 1 stop, 2-5 move north/south/east/west, 6+ attack or heal unit ``a - 6``);
* ``state()`` is SMAC's global state (``state_space`` is a Box of ``state_shape``);
* every agent acting in a step gets the team reward SMAC returns;
* an agent whose unit dies terminates and leaves ``agents``; SMAC keeps stepping it with the no-op;
* a won or lost battle terminates every remaining agent; the time limit truncates them. SMAC only
  reports the time limit (``info["episode_limit"]``) when ``continuing_episode=True``, so this
  wrapper passes that by default; with ``continuing_episode=False`` a time limit reads as a
  termination, as in pymarl;
* ``infos[agent]`` holds SMAC's step info (``battle_won``, ``dead_allies``, ``dead_enemies`` and,
  at a time limit, ``episode_limit``); ``battle_won`` is always present at the end of an episode.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from marl_lsf.envs import _starcraft
from marl_lsf.envs._checks import check_render_mode

INSTALL_HINT = (
    "SMAC needs StarCraft II (install it and set SC2PATH to its folder) and oxwhirl's SMAC, "
    "installed from its repository: `pip install git+https://github.com/oxwhirl/smac.git`. "
    "Note: the PyPI package `smac` is SMAC3, an unrelated hyperparameter optimizer, not the "
    "StarCraft Multi-Agent Challenge. Without StarCraft II, use SMAX (`marl_lsf.envs.smax_v0`, "
    "`pip install marl-lsf[smax]`), JaxMARL's JAX re-implementation of the same scenarios."
)

SMAC3_HINT = (
    "the installed `smac` package is SMAC3 (automl's hyperparameter optimizer), not oxwhirl's "
    "StarCraft Multi-Agent Challenge. Remove it (`pip uninstall smac`) or use another virtual "
    "environment, then install StarCraft II (set SC2PATH) and "
    "`pip install git+https://github.com/oxwhirl/smac.git`."
)


def _starcraft2_env_class() -> type:
    """Import ``smac.env.StarCraft2Env``, telling SMAC3 and a missing SMAC apart."""
    try:
        smac = importlib.import_module("smac")
    except ModuleNotFoundError as error:
        if error.name != "smac":
            raise
        raise ImportError(f"oxwhirl's SMAC is not installed. {INSTALL_HINT}") from error
    if hasattr(smac, "HyperparameterOptimizationFacade"):
        raise ImportError(SMAC3_HINT)
    try:
        env_module = importlib.import_module("smac.env")
    except ModuleNotFoundError as error:
        if error.name == "smac.env":
            raise ImportError(SMAC3_HINT) from error
        raise ImportError(
            f"oxwhirl's SMAC is installed but could not be imported ({error}). {INSTALL_HINT}"
        ) from error
    return env_module.StarCraft2Env


def parallel_env(map_name: str = "3m", render_mode: str | None = None, **smac_kwargs: Any) -> SMACEnv:
    """Build a :class:`SMACEnv` on ``map_name`` (PettingZoo's usual module-level constructor)."""
    return SMACEnv(map_name=map_name, render_mode=render_mode, **smac_kwargs)


class SMACEnv(_starcraft.StarCraftSpaces, ParallelEnv[str, dict[str, np.ndarray], int]):
    """One SMAC battle as a PettingZoo ParallelEnv (see the module docstring for conventions).

    Args:
        map_name: a SMAC map name, e.g. ``"3m"``, ``"2s3z"``, ``"MMM2"``.
        render_mode: ``None``, ``"human"`` or ``"rgb_array"`` (passed to SMAC's ``render``).
        _env_cls: testing hook: a stand-in class used instead of ``smac.env.StarCraft2Env``
            (called as ``_env_cls(map_name=..., **smac_kwargs)``); leave it ``None``.
        **smac_kwargs: keyword arguments of ``StarCraft2Env`` (``difficulty``, ``seed``,
            ``reward_sparse``, ``replay_dir``, ...). ``continuing_episode`` defaults to ``True``.

    Raises:
        ImportError: when oxwhirl's SMAC is missing, or when the installed ``smac`` is SMAC3.
        ValueError: for an unknown ``render_mode``.
    """

    metadata = {"name": "smac_v1", "render_modes": ["human", "rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        map_name: str = "3m",
        render_mode: str | None = None,
        _env_cls: type | None = None,
        **smac_kwargs: Any,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.map_name = map_name
        self.render_mode = render_mode
        self._env_cls = _starcraft2_env_class() if _env_cls is None else _env_cls
        self._smac_kwargs = {"continuing_episode": True, **smac_kwargs}
        self._env = self._make_env(self._smac_kwargs.get("seed"))
        info = self._env.get_env_info()
        self._init_spaces(
            int(info["n_agents"]), int(info["obs_shape"]), int(info["state_shape"]), int(info["n_actions"])
        )
        self.episode_limit = int(info["episode_limit"])
        self._avail = np.zeros((len(self.possible_agents), self.n_actions), dtype=np.int8)
        self._used = False

    def _make_env(self, seed: int | None) -> Any:
        kwargs = dict(self._smac_kwargs)
        if seed is not None:
            kwargs["seed"] = seed
        self._seed = kwargs.get("seed")
        return self._env_cls(map_name=self.map_name, **kwargs)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]]]:
        """Start a battle; returns observations and empty infos for every agent.

        StarCraft II takes its random seed when the game is launched, so a ``seed`` restarts the game
        with that seed (slow: it relaunches StarCraft II if it was running).
        """
        if seed is not None and (self._used or seed != self._seed):
            self._env.close()
            self._env = self._make_env(seed)
        self._env.reset()
        self._used = True
        self.agents = list(self.possible_agents)
        observations = self._observe(self.agents)
        return observations, {agent: {} for agent in self.agents}

    def _observe(self, agents: list[str]) -> dict[str, dict[str, np.ndarray]]:
        obs = self._env.get_obs()
        self._avail = np.asarray(self._env.get_avail_actions(), dtype=np.int8).reshape(
            len(self.possible_agents), -1
        )
        return _starcraft.observations(agents, self.possible_agents, obs, self._avail.copy())

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[
        dict[str, dict[str, np.ndarray]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Step every live agent; dead units get SMAC's no-op. Returns PettingZoo's 5 dicts."""
        acting = list(self.agents)
        action_list = [0] * len(self.possible_agents)
        _starcraft.fill_actions(actions, acting, self.possible_agents, self._avail, action_list)
        reward, battle_over, info = self._env.step(action_list)
        info = dict(info)
        observations = self._observe(acting)
        died = {agent for agent in acting if self._avail[self.possible_agents.index(agent), 0]}
        time_limit = bool(battle_over) and bool(info.get("episode_limit", False))
        if battle_over:
            info.setdefault("battle_won", False)
        rewards, terminations, truncations, self.agents = _starcraft.end_of_step(
            acting, died, float(reward), bool(battle_over) and not time_limit, time_limit
        )
        infos = {agent: dict(info) for agent in acting}
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """SMAC's global state (float32 ``[state_shape]``)."""
        return np.asarray(self._env.get_state(), dtype=np.float32).reshape(-1)

    def render(self) -> Any:
        """SMAC's renderer in this env's ``render_mode``; ``None`` when ``render_mode`` is ``None``."""
        if self.render_mode is None:
            return None
        return self._env.render(mode=self.render_mode)

    def save_replay(self) -> None:
        """Save a StarCraft II replay of the battles so far (SMAC's ``save_replay``)."""
        self._env.save_replay()

    def close(self) -> None:
        """Shut StarCraft II down."""
        self._env.close()


__all__ = ["INSTALL_HINT", "SMAC3_HINT", "SMACEnv", "parallel_env"]
