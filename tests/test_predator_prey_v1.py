"""Tests of envs/predator_prey_v1.py: pymarl's action masks on top of v0's unchanged rules."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from marl_lsf import LSFSAC
from marl_lsf.env_registry import make_env_factory
from marl_lsf.envs import predator_prey_v0, predator_prey_v1
from marl_lsf.envs.predator_prey_v1 import CATCH, LEFT, RIGHT, STAY, UP
from marl_lsf.team_env import build_spec


def placed(
    predators: list[list[int]], prey: list[list[int]], **kwargs: int
) -> tuple[predator_prey_v1.PredatorPreyEnv, dict]:
    """An env reset with units on the given cells, and its first observations."""
    env = predator_prey_v1.parallel_env(n_predators=len(predators), n_prey=len(prey), **kwargs)
    observations, _ = env.reset(seed=0, options={"predators": predators, "prey": prey})
    return env, observations


def test_pettingzoo_api_and_seeding() -> None:
    parallel_api_test(predator_prey_v1.parallel_env(), num_cycles=250)
    parallel_api_test(predator_prey_v1.parallel_env(grid_size=3, n_predators=2, n_prey=1), num_cycles=100)
    parallel_seed_test(lambda: predator_prey_v1.parallel_env(), num_cycles=50)


def test_dict_observations_and_registry_name() -> None:
    env = predator_prey_v1.parallel_env()
    assert env.metadata["name"] == "predator_prey_v1"
    observations, _ = env.reset(seed=1)
    for agent in env.agents:
        assert env.observation_space(agent).contains(observations[agent])
        assert observations[agent]["observation"].shape == (5, 5, 2)
    assert build_spec(env).mask_source == "observation"
    assert make_env_factory("predator_prey").target == "marl_lsf.envs.predator_prey_v1:parallel_env"


def test_masks_follow_pymarls_rules() -> None:
    # predator_0 in the top-left corner next to the prey at (0, 1); predator_1 in the middle,
    # predator_2 at the bottom edge with the prey two cells away (not adjacent).
    _, observations = placed([[0, 0], [5, 5], [9, 3]], [[0, 1], [9, 5]])
    got = {agent: obs["action_mask"].tolist() for agent, obs in observations.items()}
    # Order: right, down, left, up, stay, catch.
    assert got["predator_0"] == [1, 1, 0, 0, 1, 1], "no moves off the grid; catch next to a prey"
    assert got["predator_1"] == [1, 1, 1, 1, 1, 0], "every move in the open; no prey adjacent"
    assert got["predator_2"] == [1, 0, 1, 1, 1, 0], "no move down at the bottom edge; prey two cells away"


def test_moves_into_units_stay_available_and_are_blocked() -> None:
    env, observations = placed([[0, 0], [0, 1]], [[5, 5]])
    assert observations["predator_0"]["action_mask"][RIGHT] == 1
    env.step({"predator_0": RIGHT, "predator_1": STAY})
    assert env._predator_pos.tolist() == [[0, 0], [0, 1]]


def test_masked_action_is_refused_with_the_available_ones_named() -> None:
    env, _ = placed([[0, 0], [5, 5]], [[9, 9]])
    with pytest.raises(ValueError, match=r"action 2 \(left\) of agent 'predator_0' is not available now"):
        env.step({"predator_0": LEFT, "predator_1": STAY})
    with pytest.raises(ValueError, match="catch"):
        env.step({"predator_0": STAY, "predator_1": CATCH})
    with pytest.raises(ValueError, match="outside its action space"):
        env.step({"predator_0": 7, "predator_1": STAY})


def test_capture_and_frozen_catchers_as_in_v0() -> None:
    env, _ = placed([[0, 0], [1, 1], [5, 5]], [[0, 1]])
    _, rewards, terminations, _, _ = env.step({"predator_0": CATCH, "predator_1": CATCH, "predator_2": UP})
    assert rewards == dict.fromkeys(["predator_0", "predator_1", "predator_2"], 10.0)
    assert terminations == {"predator_0": True, "predator_1": True, "predator_2": True}
    assert env.agents == []


def test_same_rules_as_v0_on_the_same_seeds_and_actions() -> None:
    """Replaying available random actions through v0 and v1 gives identical episodes."""
    for seed in range(3):
        v0, v1 = predator_prey_v0.parallel_env(), predator_prey_v1.parallel_env()
        obs0, _ = v0.reset(seed=seed)
        obs1, _ = v1.reset(seed=seed)
        rng = np.random.default_rng(seed)
        rewards_seen = []
        for _ in range(400):
            if not v1.agents:
                obs0, _ = v0.reset()
                obs1, _ = v1.reset()
            assert obs0.keys() == obs1.keys()
            for agent in obs0:
                np.testing.assert_array_equal(obs0[agent], obs1[agent]["observation"])
            actions = {
                agent: int(rng.choice(np.flatnonzero(obs1[agent]["action_mask"])))
                # Bias towards CATCH where it is available, so captures and punishments happen.
                if not obs1[agent]["action_mask"][CATCH] or rng.random() < 0.5
                else CATCH
                for agent in v1.agents
            }
            obs0, r0, term0, trunc0, info0 = v0.step(actions)
            obs1, r1, term1, trunc1, info1 = v1.step(actions)
            assert (r0, term0, trunc0, info0) == (r1, term1, trunc1, info1)
            np.testing.assert_array_equal(v0.state(), v1.state())
            rewards_seen.extend(r1.values())
        assert 10.0 in rewards_seen and -2.0 in rewards_seen


def test_lsfsac_never_picks_a_masked_action_while_training() -> None:
    model = LSFSAC("MlpPolicy", lambda: predator_prey_v1.parallel_env(grid_size=5, n_predators=3, n_prey=2))
    model.learn(400)  # the env raises on any unavailable action
    assert model.spec.mask_source == "observation"
    assert model.num_timesteps == 400
