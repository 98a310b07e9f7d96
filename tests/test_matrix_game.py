"""Tests of envs/matrix_game_v0.py: the payoff rules, the PettingZoo API and bad-input errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from marl_lsf.envs import matrix_game_v0
from marl_lsf.envs.matrix_game_v0 import DEFAULT_PAYOFF, MatrixGameEnv


def test_pettingzoo_api() -> None:
    parallel_api_test(matrix_game_v0.parallel_env(), num_cycles=10)
    parallel_api_test(matrix_game_v0.parallel_env(payoff=np.zeros((2, 3, 2))), num_cycles=10)


def test_pettingzoo_seed() -> None:
    parallel_seed_test(lambda: matrix_game_v0.parallel_env(), num_cycles=10)


def test_metadata_and_spaces() -> None:
    env = matrix_game_v0.parallel_env()
    assert isinstance(env, MatrixGameEnv)
    assert env.metadata["name"] == "matrix_game_v0"
    assert env.metadata["is_parallelizable"]
    assert env.possible_agents == ["agent_0", "agent_1"]
    for agent in env.possible_agents:
        assert env.action_space(agent).n == 3
        assert env.action_space(agent) is env.action_space(agent)
        assert env.observation_space(agent) is env.observation_space(agent)
    assert env.state_space.shape == env.state().shape == (1,)


@pytest.mark.parametrize("joint_action", list(itertools.product(range(3), repeat=2)))
def test_default_game_pays_every_agent(joint_action: tuple[int, int]) -> None:
    env = matrix_game_v0.parallel_env()
    observations, infos = env.reset(seed=0)
    for agent, observation in observations.items():
        assert env.observation_space(agent).contains(observation)
        np.testing.assert_array_equal(observation, [1.0])
    actions = dict(zip(env.agents, joint_action, strict=True))
    observations, rewards, terminations, truncations, infos = env.step(actions)
    expected = DEFAULT_PAYOFF[joint_action[0]][joint_action[1]]
    assert rewards == {"agent_0": expected, "agent_1": expected}
    assert terminations == {"agent_0": True, "agent_1": True}
    assert truncations == {"agent_0": False, "agent_1": False}
    assert infos["agent_0"] == {"joint_action": joint_action, "payoff": expected}
    assert env.agents == []


def test_three_agents_with_different_action_counts() -> None:
    payoff = np.arange(12, dtype=float).reshape(2, 3, 2)
    env = matrix_game_v0.parallel_env(payoff=payoff, n_agents=3)
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]
    assert [env.action_space(agent).n for agent in env.possible_agents] == [2, 3, 2]
    for joint_action in itertools.product(range(2), range(3), range(2)):
        env.reset()
        _, rewards, _, _, _ = env.step(dict(zip(env.agents, joint_action, strict=True)))
        assert set(rewards.values()) == {payoff[joint_action]}


def test_single_agent_payoff_vector() -> None:
    env = matrix_game_v0.parallel_env(payoff=[1, 5])
    env.reset()
    assert env.step({"agent_0": np.int64(1)})[1] == {"agent_0": 5.0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"payoff": [["a", "b"], ["c", "d"]]}, "real numbers"),
        ({"payoff": [[1, 2], [3]]}, "rectangular"),
        ({"payoff": 3.0}, "at least one axis"),
        ({"payoff": np.zeros((2, 0))}, "empty axis"),
        ({"payoff": [[1.0, np.nan], [0.0, 0.0]]}, "finite"),
        ({"payoff": [[1.0, np.inf], [0.0, 0.0]]}, "finite"),
        ({"payoff": [[True, False], [False, True]]}, "real numbers"),
        ({"payoff": np.zeros((3, 3)), "n_agents": 3}, "2 axes .* n_agents=3"),
        ({"n_agents": 0}, "n_agents must be a positive integer"),
        ({"render_mode": "rgb_array"}, "render_mode"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        matrix_game_v0.parallel_env(**kwargs)


def test_step_before_reset_and_after_the_end() -> None:
    env = matrix_game_v0.parallel_env()
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step({"agent_0": 0, "agent_1": 0})
    env.reset()
    env.step({"agent_0": 0, "agent_1": 0})
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step({"agent_0": 0, "agent_1": 0})


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        ({"agent_0": 0}, "missing action for live agent 'agent_1'"),
        ({"agent_0": 0, "agent_1": 0, "agent_7": 0}, "not live.*agent_7"),
        ({"agent_0": 3, "agent_1": 0}, "action 3 of agent 'agent_0' is outside"),
        ({"agent_0": 0, "agent_1": -1}, "action -1 of agent 'agent_1' is outside"),
        ({"agent_0": 1.5, "agent_1": 0}, "action 1.5 of agent 'agent_0' is outside"),
    ],
)
def test_bad_actions(actions: dict, match: str) -> None:
    env = matrix_game_v0.parallel_env()
    env.reset()
    with pytest.raises(ValueError, match=match):
        env.step(actions)
    assert env.agents == ["agent_0", "agent_1"], "a refused step must not end the episode"


def test_render(capsys: pytest.CaptureFixture[str]) -> None:
    env = matrix_game_v0.parallel_env(render_mode="ansi")
    env.reset()
    assert "-12" in env.render()
    env.step({"agent_0": 0, "agent_1": 0})
    text = env.render()
    assert isinstance(text, str)
    assert "(0, 0) -> payoff 8" in text

    human = matrix_game_v0.parallel_env(render_mode="human")
    human.reset()
    human.step({"agent_0": 1, "agent_1": 2})
    assert "(1, 2) -> payoff 0" in capsys.readouterr().out
    human.close()
