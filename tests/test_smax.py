"""Tests of the SMAX wrapper (``marl_lsf.envs.smax_v0``): PettingZoo API, deaths, masks, time limits, and the
vmapped ``SmaxTeamVecEnv`` (shapes, dead slots, autoreset, win info, agreement with ``SMAXEnv``).

JIT compilation dominates the runtime; environments of one map and configuration share their
compiled functions, so the tests reuse ``3m`` and one short-time-limit configuration.
"""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

pytest.importorskip("jaxmarl")

from marl_lsf.envs import smax_v0  # noqa: E402
from marl_lsf.team_env import TeamEnv, build_spec  # noqa: E402
from marl_lsf.vec_env import make_team_vec_env  # noqa: E402

SHORT = {"max_steps": 6}


def random_actions(env: smax_v0.SMAXEnv, obs: dict, rng: np.random.Generator) -> dict[str, int]:
    """A random available action for every live agent."""
    return {agent: int(rng.choice(np.flatnonzero(obs[agent]["action_mask"]))) for agent in env.agents}


def attack_or_advance(avail: np.ndarray) -> np.ndarray:
    """Attack the first enemy in range, else move east (towards the enemy's side)."""
    attacks = avail[..., 5:]
    return np.where(attacks.any(-1), 5 + attacks.argmax(-1), np.where(avail[..., 1], 1, 0))


@pytest.mark.parametrize("map_name", ["3m", "2s3z"])
def test_parallel_api(map_name: str) -> None:
    env = smax_v0.parallel_env(map_name, seed=0)
    parallel_api_test(env, num_cycles=40)
    spec = build_spec(env)
    assert spec.state_from_env and spec.mask_source == "observation"
    assert env.metadata["name"] == "smax_v0"


def test_spaces_3m() -> None:
    env = smax_v0.parallel_env("3m")
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]
    assert env.observation_space("agent_0")["observation"].shape == (75,)
    assert env.observation_space("agent_0")["action_mask"].dtype == np.int8
    assert env.action_space("agent_1").n == 8
    assert env.state_space.shape == (72,)
    assert env.max_steps == 100
    obs, infos = env.reset(seed=1)
    assert env.state().shape == (72,) and env.state().dtype == np.float32
    assert infos == {agent: {} for agent in env.possible_agents}
    assert all(o["observation"].dtype == np.float32 for o in obs.values())


def test_state_is_normalized_like_smacs() -> None:
    """Positions in [-1, 1] around the map centre, weapon cooldowns in [0, 1], health fractions kept."""
    env = smax_v0.parallel_env("3m")
    features = list(env._core.env.own_features)  # health, x, y, cooldown, 6 unit-type bits
    rng = np.random.default_rng(0)
    states = []
    obs, _ = env.reset(seed=0)
    while env.agents:
        states.append(env.state())
        obs, *_ = env.step(random_actions(env, obs, rng))
    units = np.stack(states)[:, : 6 * len(features)].reshape(len(states), 6, len(features))
    x, y = units[..., features.index("position_x")], units[..., features.index("position_y")]
    cooldown, health = units[..., features.index("weapon_cooldown")], units[..., features.index("health")]
    assert len(states) > 5
    assert (np.abs(x) <= 1).all() and (np.abs(y) <= 1).all() and x.std() > 0.05
    assert (cooldown >= 0).all() and (cooldown <= 1).all() and (cooldown > 0).any()
    assert (health >= 0).all() and (health <= 1).all() and (health == 1).any()
    # The first state is SMAX's own world state with those columns rescaled.
    raw = np.asarray(env._core.env.get_world_state(env._core.reset(env._core.jax.random.PRNGKey(0))[1]))
    assert np.allclose(units[0, :, 0], raw[: 6 * len(features)].reshape(6, -1)[:, 0])
    assert np.allclose(x[0], raw[1 : 6 * len(features) : len(features)] / 16 - 1)


def test_dead_units_leave_and_masks_are_honoured() -> None:
    env = smax_v0.parallel_env("3m")
    rng = np.random.default_rng(0)
    saw_death = False
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        while env.agents:
            acting = list(env.agents)
            obs, rewards, terms, truncs, infos = env.step(random_actions(env, obs, rng))
            assert set(obs) == set(rewards) == set(terms) == set(acting)
            assert len(set(rewards.values())) == 1
            dead = [agent for agent in acting if terms[agent]]
            if env.agents and dead:
                saw_death = True
                for agent in dead:
                    assert agent not in env.agents
                    assert not obs[agent]["observation"].any()
                    assert obs[agent]["action_mask"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
                with pytest.raises(ValueError, match="dead"):
                    env.step({agent: 4 for agent in acting})
        assert all(info["battle_won"] in (True, False) for info in infos.values())
    assert saw_death


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"unknown SMAX map 'nope'; valid maps: .*2s3z.*3m"):
        smax_v0.parallel_env("nope")
    with pytest.raises(ValueError, match="render_mode"):
        smax_v0.parallel_env("3m", render_mode="human")
    with pytest.raises(ValueError, match="cannot be passed"):
        smax_v0.parallel_env("3m", scenario=None)
    env = smax_v0.parallel_env("3m", render_mode="ansi")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step({"agent_0": 4})
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step({"agent_0": 8, "agent_1": 4, "agent_2": 4})
    with pytest.raises(ValueError, match="not available"):
        env.step({"agent_0": 5, "agent_1": 4, "agent_2": 4})
    with pytest.raises(ValueError, match="no action"):
        env.step({"agent_0": 4})
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({"ally_0": 4, "agent_0": 4, "agent_1": 4, "agent_2": 4})
    assert "agent_2 marine" in env.render()


def test_time_limit_truncates() -> None:
    env = smax_v0.parallel_env("3m", **SHORT)
    obs, _ = env.reset(seed=0)
    for _ in range(SHORT["max_steps"]):
        obs, rewards, terms, truncs, infos = env.step({agent: 4 for agent in env.agents})
    assert all(truncs.values()) and not any(terms.values())
    assert all(info == {"battle_won": False} for info in infos.values())
    assert env.agents == []


def test_vector_env_shapes_dead_slots_and_autoreset() -> None:
    vec = smax_v0.parallel_env("3m", **SHORT).make_team_vec_env(num_envs=5)
    assert isinstance(vec, smax_v0.SmaxTeamVecEnv)
    assert vec.spec == build_spec(smax_v0.parallel_env("3m", **SHORT))
    first = vec.reset(seed=0)
    assert first.obs.shape == (5, 3, 75) and first.obs.dtype == np.float32
    assert first.state.shape == (5, 72) and first.state.dtype == np.float32
    assert first.avail.shape == (5, 3, 8) and first.avail.dtype == np.bool_
    assert first.alive.shape == (5, 3) and first.alive.all()
    rng = np.random.default_rng(0)
    current, ends = first, 0
    for t in range(1, 2 * SHORT["max_steps"] + 1):
        actions = np.array([[rng.choice(np.flatnonzero(row)) for row in env] for env in current.avail])
        step = vec.step(actions)
        assert step.reward.shape == (5,) and step.reward.dtype == np.float32
        done = step.terminated | step.truncated
        assert not (step.terminated & step.truncated).any()
        if t % SHORT["max_steps"] == 0:
            assert done.all()
        for final in (step.final, step.next):
            dead = ~final.alive
            assert not final.obs[dead].any()
            assert (final.avail[dead] == np.eye(8, dtype=bool)[0]).all()
        for e in range(5):
            if done[e]:
                ends += 1
                assert set(step.infos[e]) == {"won", "battle_won"}
                assert step.next.alive[e].all()
            else:
                assert step.infos[e] == {}
                np.testing.assert_array_equal(step.next.obs[e], step.final.obs[e])
        current = step.next
    assert ends >= 10
    bad = np.full((5, 3), 5)
    with pytest.raises(ValueError, match="not available"):
        vec.step(bad * current.alive)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((5, 2), dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        vec.step(np.full((5, 3), 9))
    assert "SMAX 3m" in vec.render()


def test_make_team_vec_env_uses_the_native_vector_env() -> None:
    vec = make_team_vec_env(smax_v0.parallel_env("3m"), n_envs=2)
    assert isinstance(vec, smax_v0.SmaxTeamVecEnv) and vec.num_envs == 2
    assert vec.spec == build_spec(smax_v0.parallel_env("3m"))


def test_vector_env_matches_parallel_env() -> None:
    """Vector env 0 and one SMAXEnv, seeded alike, play the same battles (across a reset)."""
    env = smax_v0.parallel_env("3m", **SHORT)
    team = TeamEnv(env)
    vec = smax_v0.SmaxTeamVecEnv("3m", num_envs=5, **SHORT)  # the shape compiled by the test above
    single, _ = team.reset(seed=7)
    batch = vec.reset(seed=7)
    np.testing.assert_allclose(batch.obs[0], single["obs"], atol=1e-5)
    np.testing.assert_allclose(batch.state[0], single["state"], atol=1e-5)
    for _ in range(2 * SHORT["max_steps"]):
        actions = attack_or_advance(batch.avail)
        step = vec.step(actions)
        single, reward, terminated, truncated, info = team.step(actions[0])
        assert step.reward[0] == pytest.approx(reward, abs=1e-6)
        assert (step.terminated[0], step.truncated[0]) == (terminated, truncated)
        np.testing.assert_allclose(step.final.obs[0], single["obs"], atol=1e-5)
        np.testing.assert_allclose(step.final.state[0], single["state"], atol=1e-5)
        if terminated or truncated:
            assert step.infos[0] == info
            single, _ = team.reset()
            np.testing.assert_allclose(step.next.obs[0], single["obs"], atol=1e-5)
        batch = step.next


def test_rewards_are_scaled_as_smacs() -> None:
    """SMAC's reward scale: returns out of 20 (SMAX's own, out of 2, with ``reward_scale_rate=None``)."""
    scaled, raw = smax_v0.parallel_env("3m"), smax_v0.parallel_env("3m", reward_scale_rate=None)
    with pytest.raises(ValueError, match="reward_scale_rate"):
        smax_v0.parallel_env("3m", reward_scale_rate=0)
    obs, _ = scaled.reset(seed=3)
    raw.reset(seed=3)
    total = 0.0
    while scaled.agents:
        masks = np.stack([obs[agent]["action_mask"] for agent in scaled.agents]).astype(bool)
        actions = dict(zip(scaled.agents, attack_or_advance(masks).tolist(), strict=True))
        obs, rewards, *_ = scaled.step(actions)
        _, raw_rewards, *_ = raw.step(actions)
        assert rewards.keys() == raw_rewards.keys()
        for agent in rewards:
            assert rewards[agent] == pytest.approx(10 * raw_rewards[agent], rel=1e-5)
        total += next(iter(rewards.values()))
    assert 1 < total <= 20 + 1e-4


def test_win_is_reported_with_the_bonus() -> None:
    vec = smax_v0.SmaxTeamVecEnv("3m", num_envs=2)  # the shape compiled by the test above
    current = vec.reset(seed=0)
    outcomes = []
    for _ in range(120):
        step = vec.step(attack_or_advance(current.avail))
        for e in np.flatnonzero(step.terminated | step.truncated):
            won = step.infos[e]["won"]
            assert won in (0.0, 1.0) and step.infos[e]["battle_won"] == won
            assert (step.reward[e] >= 10.0) == (won == 1.0)  # the bonus, 1, scaled by 20 / 2
            if won:
                assert step.terminated[e] and step.final.alive[e].any()
            outcomes.append(won)
        current = step.next
    assert 1.0 in outcomes
