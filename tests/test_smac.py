"""Tests of the SMAC wrapper's contract (``marl_lsf.envs.smac_v1``), not of StarCraft II.

StarCraft II cannot be installed here, so almost every test runs the wrapper over
``StandInStarCraft2Env``, a small scripted class with the public methods of
``smac.env.StarCraft2Env`` as SMAC documents them (``reset``, ``step``, ``get_obs``, ``get_state``,
``get_avail_actions``, ``get_env_info``, ``close``, ``save_replay``, ``render``). They check what the
wrapper promises: PettingZoo's parallel API, dead units leaving, wins, time limits as truncation,
action masks, error messages, and pass-through of ``close``/``save_replay``. The last test runs the
real game and only runs where StarCraft II is installed (``SC2PATH`` set).
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any, ClassVar

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from marl_lsf.envs import smac_v1
from marl_lsf.team_env import TeamEnv, build_spec

N_AGENTS = 3
N_ENEMIES = 3
N_ACTIONS = 6 + N_ENEMIES
OBS_SHAPE = 30
STATE_SHAPE = 48


class StandInStarCraft2Env:
    """Scripted stand-in for ``smac.env.StarCraft2Env`` on a 3-vs-3 map.

    Args:
        map_name: recorded only.
        seed: recorded only (``seed()`` returns it).
        continuing_episode: as in SMAC: report ``info["episode_limit"]`` at the time limit.
        episode_limit: SMAC's per-map step limit.
        deaths: ``{step: [unit ids]}``: allied units that die at the end of that step.
        win_at: step at which the last enemy dies (battle won), or None.
        reset_returns_nothing: behave like old SMAC versions whose ``reset()`` returns None.
    """

    instances: ClassVar[list[StandInStarCraft2Env]] = []

    def __init__(
        self,
        map_name: str = "8m",
        seed: int | None = None,
        continuing_episode: bool = False,
        episode_limit: int = 10,
        deaths: dict[int, list[int]] | None = None,
        win_at: int | None = None,
        reset_returns_nothing: bool = False,
    ) -> None:
        self.map_name = map_name
        self._seed = seed
        self.continuing_episode = continuing_episode
        self.episode_limit = episode_limit
        self.deaths = deaths or {}
        self.win_at = win_at
        self.reset_returns_nothing = reset_returns_nothing
        self.n_agents = N_AGENTS
        self.n_actions = N_ACTIONS
        self.launched = False
        self.closed = False
        self.replays = 0
        self.render_modes: list[str] = []
        self.actions_log: list[list[int]] = []
        self._steps = 0
        self.alive = np.ones(N_AGENTS, dtype=bool)
        StandInStarCraft2Env.instances.append(self)

    def get_env_info(self) -> dict[str, Any]:
        """SMAC's env info dict."""
        return {
            "state_shape": STATE_SHAPE,
            "obs_shape": OBS_SHAPE,
            "n_actions": N_ACTIONS,
            "n_agents": N_AGENTS,
            "episode_limit": self.episode_limit,
        }

    def reset(self) -> tuple[list[np.ndarray], np.ndarray] | None:
        """Start a battle (launching the game the first time)."""
        self.launched = True
        self._steps = 0
        self.alive[:] = True
        if self.reset_returns_nothing:
            return None
        return self.get_obs(), self.get_state()

    def step(self, actions: list[int]) -> tuple[float, bool, dict[str, Any]]:
        """SMAC's step: asserts availability like SMAC does, returns (reward, terminated, info)."""
        avail = self.get_avail_actions()
        for a_id, action in enumerate(actions):
            assert avail[a_id][action] == 1, f"Agent {a_id} cannot perform action {action}"
        self.actions_log.append([int(a) for a in actions])
        self._steps += 1
        for a_id in self.deaths.get(self._steps, []):
            self.alive[a_id] = False
        info: dict[str, Any] = {
            "battle_won": False,
            "dead_allies": int((~self.alive).sum()),
            "dead_enemies": 0,
        }
        reward = 0.5
        terminated = False
        if self.win_at is not None and self._steps >= self.win_at:
            terminated = True
            info["battle_won"] = True
            info["dead_enemies"] = N_ENEMIES
            reward += 10.0
        elif not self.alive.any():
            terminated = True
        elif self._steps >= self.episode_limit:
            terminated = True
            if self.continuing_episode:
                info["episode_limit"] = True
        return reward, terminated, info

    def get_obs(self) -> list[np.ndarray]:
        """One observation per unit; zeros for dead units, as SMAC does."""
        return [
            np.full(OBS_SHAPE, (a_id + 1) * 0.1 + self._steps * 0.01, dtype=np.float32) * self.alive[a_id]
            for a_id in range(N_AGENTS)
        ]

    def get_state(self) -> np.ndarray:
        """The global state."""
        return np.full(STATE_SHAPE, self._steps, dtype=np.float32)

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        """No-op only for dead units; stop, moves and (after step 1) attacks for live ones."""
        if not self.alive[agent_id]:
            return [1] + [0] * (N_ACTIONS - 1)
        can_attack = 1 if self._steps >= 1 else 0
        return [0, 1, 1, 1, 1, 0] + [can_attack] * N_ENEMIES

    def get_avail_actions(self) -> list[list[int]]:
        """Available actions of every unit."""
        return [self.get_avail_agent_actions(a_id) for a_id in range(N_AGENTS)]

    def render(self, mode: str = "human") -> np.ndarray | None:
        """Record the mode; return a tiny frame for ``rgb_array``."""
        self.render_modes.append(mode)
        return np.zeros((2, 2, 3), dtype=np.uint8) if mode == "rgb_array" else None

    def close(self) -> None:
        """Shut the (pretend) game down."""
        self.closed = True

    def save_replay(self) -> None:
        """Count replay requests."""
        self.replays += 1


def make(**kwargs: Any) -> smac_v1.SMACEnv:
    """The wrapper over the stand-in."""
    return smac_v1.parallel_env("3m", _env_cls=StandInStarCraft2Env, **kwargs)


def all_actions(env: smac_v1.SMACEnv, obs: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
    """The first available action of every live agent."""
    return {agent: int(np.flatnonzero(obs[agent]["action_mask"])[0]) for agent in env.agents}


def test_parallel_api() -> None:
    parallel_api_test(make(deaths={2: [1]}, win_at=6), num_cycles=20)
    parallel_api_test(make(episode_limit=4), num_cycles=20)


def test_spaces_and_state() -> None:
    env = make()
    assert env.metadata["name"] == "smac_v1"
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]
    space = env.observation_space("agent_0")
    assert space["observation"].shape == (OBS_SHAPE,)
    assert space["action_mask"].shape == (N_ACTIONS,) and space["action_mask"].dtype == np.int8
    assert env.action_space("agent_2").n == N_ACTIONS
    assert env.state_space.shape == (STATE_SHAPE,)
    env.reset()
    assert env.state().dtype == np.float32 and env.state().shape == (STATE_SHAPE,)
    spec = build_spec(env)
    assert (spec.n_agents, spec.obs_dim, spec.n_actions, spec.state_dim) == (
        3,
        OBS_SHAPE,
        N_ACTIONS,
        STATE_SHAPE,
    )
    assert spec.state_from_env and spec.mask_source == "observation"


def test_masks_come_from_get_avail_actions() -> None:
    env = make()
    obs, _ = env.reset()
    inner = env._env
    for i, agent in enumerate(env.agents):
        np.testing.assert_array_equal(obs[agent]["action_mask"], inner.get_avail_actions()[i])
    obs, *_ = env.step(all_actions(env, obs))
    assert obs["agent_0"]["action_mask"][6:].all()
    with pytest.raises(ValueError, match="not available"):
        env.step({agent: 0 for agent in env.agents})


def test_unit_death_leaves_agents() -> None:
    env = make(deaths={2: [1]})
    obs, _ = env.reset()
    obs, rewards, terms, truncs, infos = env.step(all_actions(env, obs))
    assert env.agents == ["agent_0", "agent_1", "agent_2"]
    obs, rewards, terms, truncs, infos = env.step(all_actions(env, obs))
    assert terms == {"agent_0": False, "agent_1": True, "agent_2": False}
    assert not any(truncs.values())
    assert set(rewards) == {"agent_0", "agent_1", "agent_2"} and len(set(rewards.values())) == 1
    assert env.agents == ["agent_0", "agent_2"]
    assert not obs["agent_1"]["observation"].any()
    np.testing.assert_array_equal(obs["agent_1"]["action_mask"], [1] + [0] * (N_ACTIONS - 1))
    with pytest.raises(ValueError, match="dead"):
        env.step({"agent_0": 1, "agent_1": 0, "agent_2": 1})
    env.step({"agent_0": 1, "agent_2": 1})
    assert env._env.actions_log[-1] == [1, 0, 1]  # the dead unit gets SMAC's no-op


def test_win_terminates_with_battle_won() -> None:
    env = make(win_at=3)
    obs, _ = env.reset()
    for _ in range(3):
        obs, rewards, terms, truncs, infos = env.step(all_actions(env, obs))
    assert all(terms.values()) and not any(truncs.values())
    assert all(info["battle_won"] is True for info in infos.values())
    assert rewards["agent_0"] == pytest.approx(10.5)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_episode_limit_truncates() -> None:
    env = make(episode_limit=3, deaths={3: [0]})
    obs, _ = env.reset()
    for _ in range(3):
        obs, rewards, terms, truncs, infos = env.step(all_actions(env, obs))
    assert terms == {"agent_0": True, "agent_1": False, "agent_2": False}
    assert truncs == {"agent_0": False, "agent_1": True, "agent_2": True}
    assert infos["agent_1"]["episode_limit"] is True and infos["agent_1"]["battle_won"] is False
    assert env.agents == []


def test_episode_limit_without_continuing_episode_terminates() -> None:
    env = make(episode_limit=2, continuing_episode=False)
    obs, _ = env.reset()
    for _ in range(2):
        obs, rewards, terms, truncs, infos = env.step(all_actions(env, obs))
    assert all(terms.values()) and not any(truncs.values())


def test_team_env_view() -> None:
    team = TeamEnv(make(deaths={1: [2]}, win_at=3))
    first, _ = team.reset()
    assert first["alive"].tolist() == [1, 1, 1]
    actions = np.array([1, 1, 1])
    team.step(actions)
    second, reward, terminated, truncated, _ = team.step(actions)
    assert second["alive"].tolist() == [1, 1, 0] and second["avail"][2].tolist() == [1] + [0] * (
        N_ACTIONS - 1
    )
    _, reward, terminated, truncated, info = team.step(actions)
    assert terminated and not truncated and info["won"] == 1.0


def test_old_reset_signature_and_bad_input() -> None:
    env = make(reset_returns_nothing=True)
    obs, infos = env.reset()
    assert set(obs) == set(env.possible_agents) and infos == {a: {} for a in env.possible_agents}
    with pytest.raises(ValueError, match="out of range"):
        env.step({"agent_0": N_ACTIONS, "agent_1": 1, "agent_2": 1})
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({"agent_0": 1, "agent_1": 1, "agent_2": 1, "enemy_0": 1})
    with pytest.raises(ValueError, match="no action"):
        env.step({"agent_0": 1})
    with pytest.raises(ValueError, match="unknown agent"):
        env.observation_space("agent_9")
    with pytest.raises(ValueError, match="render_mode"):
        make(render_mode="rgb")
    before = smac_v1.SMACEnv(_env_cls=StandInStarCraft2Env)
    with pytest.raises(RuntimeError, match="before reset"):
        before.step({"agent_0": 1})


def test_seeded_reset_relaunches_with_the_seed() -> None:
    env = make(seed=3)
    first = env._env
    env.reset(seed=3)
    assert env._env is first and first._seed == 3
    env.reset()
    env.reset(seed=5)
    assert env._env is not first and first.closed and env._env._seed == 5


def test_close_save_replay_and_render_pass_through() -> None:
    env = make(render_mode="rgb_array")
    env.reset()
    env.save_replay()
    assert env._env.replays == 1
    assert env.render().shape == (2, 2, 3) and env._env.render_modes == ["rgb_array"]
    env.close()
    assert env._env.closed
    assert make().render() is None


def test_missing_smac_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smac", None)
    with pytest.raises(ImportError) as error:
        smac_v1.parallel_env("3m")
    message = str(error.value)
    assert "SC2PATH" in message and "pip install git+https://github.com/oxwhirl/smac.git" in message
    assert "SMAC3" in message


def test_smac3_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    smac3 = types.ModuleType("smac")
    smac3.HyperparameterOptimizationFacade = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "smac", smac3)
    with pytest.raises(ImportError, match="SMAC3"):
        smac_v1.parallel_env("3m")
    monkeypatch.setitem(sys.modules, "smac", types.ModuleType("smac"))
    monkeypatch.delitem(sys.modules, "smac.env", raising=False)
    with pytest.raises(ImportError, match="SMAC3.*pip uninstall smac"):
        smac_v1.parallel_env("3m")


@pytest.mark.skipif(not os.environ.get("SC2PATH"), reason="needs StarCraft II: set SC2PATH")
def test_real_starcraft2() -> None:
    env = smac_v1.parallel_env("3m")
    try:
        parallel_api_test(env, num_cycles=30)
        spec = build_spec(env)
        assert spec.n_agents == 3 and spec.n_actions == 9
    finally:
        env.close()
