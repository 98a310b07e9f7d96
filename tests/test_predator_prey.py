"""Tests of envs/predator_prey_v0.py: game rules on hand-built positions, the API and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import parallel_api_test, parallel_seed_test

from marl_lsf.envs import predator_prey_v0
from marl_lsf.envs.predator_prey_v0 import CATCH, DOWN, LEFT, RIGHT, STAY, UP, PredatorPreyEnv

# Units parked in the bottom rows, far from the action in the top-left corner of the 10x10 grid.
FAR_PREDATORS = [[9, 0], [9, 2], [9, 4], [9, 6], [9, 8]]
FAR_PREY = [[7, 0], [7, 2], [7, 4], [7, 6], [7, 8], [5, 9], [3, 9]]


def placed(predators: list[list[int]], prey: list[list[int]], **kwargs) -> PredatorPreyEnv:
    """An env (sized to the given units) reset with units on the given cells."""
    env = predator_prey_v0.parallel_env(n_predators=len(predators), n_prey=len(prey), **kwargs)
    env.reset(seed=0, options={"predators": predators, "prey": prey})
    return env


def all_stay(env: PredatorPreyEnv, **overrides: int) -> dict[str, int]:
    """STAY for every live agent, except the given ``predator_i=action`` overrides."""
    return {agent: overrides.get(agent, STAY) for agent in env.agents}


def predator_cells(env: PredatorPreyEnv) -> set[tuple[int, int]]:
    """Cells holding a (non-frozen) predator, read from the public state."""
    return {tuple(cell) for cell in np.argwhere(env.state()[..., 0] == 1).tolist()}


def test_pettingzoo_api() -> None:
    parallel_api_test(predator_prey_v0.parallel_env(), num_cycles=250)
    parallel_api_test(predator_prey_v0.parallel_env(grid_size=3, n_predators=2, n_prey=1), num_cycles=100)


def test_pettingzoo_seed() -> None:
    parallel_seed_test(lambda: predator_prey_v0.parallel_env(), num_cycles=50)


def test_spaces_and_shapes() -> None:
    env = predator_prey_v0.parallel_env()
    assert env.metadata["name"] == "predator_prey_v0"
    assert env.possible_agents == [f"predator_{i}" for i in range(8)]
    observations, infos = env.reset(seed=3)
    for agent in env.agents:
        assert env.observation_space(agent) is env.observation_space(agent)
        assert env.action_space(agent) is env.action_space(agent)
        assert env.action_space(agent).n == 6
        assert env.observation_space(agent).shape == (5, 5, 2)
        assert observations[agent].dtype == np.float32
        assert env.observation_space(agent).contains(observations[agent])
        assert observations[agent][2, 2, 0] == 1, "a predator sees itself at the centre"
        assert infos[agent] == {"captures": 0, "step": 0}
    state = env.state()
    assert env.state_space.shape == state.shape == (10, 10, 2)
    assert env.state_space.contains(state)
    assert state[..., 0].sum() == 8 and state[..., 1].sum() == 8
    assert not (state[..., 0] * state[..., 1]).any(), "no two units share a cell"
    assert predator_prey_v0.parallel_env(view_radius=1).observation_space("predator_0").shape == (3, 3, 2)


def test_observation_window_and_edges() -> None:
    env = placed([[0, 0], [1, 2], [4, 4]], [[2, 1], [0, 3], [9, 9]])
    observations = env.step(all_stay(env))[0]
    corner = observations["predator_0"]
    assert not corner[:2].any() and not corner[:, :2].any(), "cells outside the grid read as empty"
    assert corner[2, 2, 0] == 1 and corner[3, 4, 0] == 1, "itself and predator_1 at (+1, +2)"
    assert corner[..., 0].sum() == 2
    # The prey may have moved; whatever they did, the view must be the matching slice of the state.
    state = np.pad(env.state(), ((2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(observations["predator_1"], state[1:6, 2:7])
    np.testing.assert_array_equal(observations["predator_2"], state[4:9, 4:9])


def test_capture_rewards_removes_prey_and_freezes_catchers() -> None:
    # predator_0 and predator_1 flank the prey at (0, 1); predator_2 sits nearby watching.
    env = placed([[0, 0], [0, 2], [2, 1], *FAR_PREDATORS], [[0, 1], *FAR_PREY])
    assert env.state()[0, 1, 1] == 1
    actions = all_stay(env, predator_0=CATCH, predator_1=CATCH)
    observations, rewards, terminations, truncations, infos = env.step(actions)
    assert set(rewards.values()) == {10.0} and len(rewards) == 8
    assert terminations["predator_0"] and terminations["predator_1"]
    assert not any(terminations[f"predator_{i}"] for i in range(2, 8))
    assert not any(truncations.values())
    assert infos["predator_2"] == {"captures": 1, "step": 1}
    assert env.agents == [f"predator_{i}" for i in range(2, 8)]
    state = env.state()
    assert state[..., 1].sum() == 7, "the prey is removed"
    assert state[..., 0].sum() == 6 and state[0, 0, 0] == 0 and state[0, 2, 0] == 0, "catchers vanish"
    watcher = observations["predator_2"]  # centred on (2, 1): (0, 0) and (0, 2) are at [0, 1], [0, 3]
    assert watcher[0, 1, 0] == 0 and watcher[0, 3, 0] == 0 and watcher[0, 2, 1] == 0
    with pytest.raises(ValueError, match="predator_0"):
        env.step(all_stay(env) | {"predator_0": STAY})


def test_lone_catcher_is_punished_and_nothing_changes() -> None:
    env = placed([[0, 0], [0, 2], [2, 1], *FAR_PREDATORS], [[0, 1], *FAR_PREY])
    before = predator_cells(env)
    _, rewards, terminations, _, infos = env.step(all_stay(env, predator_0=CATCH))
    assert set(rewards.values()) == {-2.0}
    assert not any(terminations.values())
    assert len(env.agents) == 8
    assert predator_cells(env) == before
    assert env.state()[..., 1].sum() == 8
    assert infos["predator_0"]["captures"] == 0


def test_punishment_is_per_prey_and_a_predator_helps_one_capture_only() -> None:
    # predator_0 at (1, 1) touches prey (0, 1) and (1, 0); predator_1 touches only (0, 1).
    env = placed([[1, 1], [0, 2], [5, 5]], [[0, 1], [1, 0], [9, 9]])
    _, rewards, *_ = env.step(all_stay(env, predator_0=CATCH))
    assert set(rewards.values()) == {-4.0}, "one lone catcher next to two prey: two miscaptures"

    env = placed([[1, 1], [0, 2], [5, 5]], [[0, 1], [1, 0], [9, 9]])
    _, rewards, *_ = env.step(all_stay(env, predator_0=CATCH, predator_1=CATCH))
    assert set(rewards.values()) == {10.0 - 2.0}, "capture of (0, 1), miscapture of (1, 0)"

    # predator_2 at (2, 0) touches (1, 0): whichever prey is resolved first is captured with
    # predator_0, which is then frozen and no longer helps with the other one (a miscapture).
    for seed in range(6):
        env = predator_prey_v0.parallel_env(n_predators=4, n_prey=3)
        env.reset(
            seed=seed,
            options={"predators": [[1, 1], [0, 2], [2, 0], [5, 5]], "prey": [[0, 1], [1, 0], [9, 9]]},
        )
        _, rewards, terminations, *_ = env.step(
            all_stay(env, predator_0=CATCH, predator_1=CATCH, predator_2=CATCH)
        )
        assert set(rewards.values()) == {10.0 - 2.0}
        frozen = {agent for agent, done in terminations.items() if done}
        assert frozen in ({"predator_0", "predator_1"}, {"predator_0", "predator_2"})
        assert env.state()[..., 1].sum() == 2


def test_min_catchers_and_rewards_are_arguments() -> None:
    env = placed(
        [[0, 0], [0, 2], [5, 5]],
        [[0, 1], [9, 9]],
        min_catchers=1,
        capture_reward=3.0,
        miscapture_punishment=-1.0,
    )
    _, rewards, terminations, *_ = env.step(all_stay(env, predator_0=CATCH))
    assert set(rewards.values()) == {3.0}
    assert terminations == {"predator_0": True, "predator_1": False, "predator_2": False}


def test_moves_are_blocked_by_edges_predators_and_prey() -> None:
    # P0 P1 .       Both prey are boxed in, so they stay put; (0, 2) is the only free cell.
    # p  p  P2
    # P3 P4 P5
    env = predator_prey_v0.parallel_env(grid_size=3, n_predators=6, n_prey=2)
    env.reset(
        seed=0,
        options={"predators": [[0, 0], [0, 1], [1, 2], [2, 0], [2, 1], [2, 2]], "prey": [[1, 0], [1, 1]]},
    )
    before = predator_cells(env)
    for action in (UP, LEFT, RIGHT, DOWN):  # edge, edge, predator_1, prey
        env.step(all_stay(env, predator_0=action))
        assert predator_cells(env) == before
    for agent, action in (("predator_1", DOWN), ("predator_2", LEFT), ("predator_5", RIGHT)):
        env.step(all_stay(env, **{agent: action}))
        assert predator_cells(env) == before
    assert env.state()[1, :2, 1].sum() == 2
    env.step(all_stay(env, predator_1=RIGHT))
    assert predator_cells(env) == before - {(0, 1)} | {(0, 2)}


def test_prey_move_to_free_neighbours_only() -> None:
    env = predator_prey_v0.parallel_env(grid_size=3, n_predators=4, n_prey=1)
    env.reset(seed=1, options={"predators": [[0, 1], [1, 0], [1, 2], [2, 1]], "prey": [[1, 1]]})
    for _ in range(5):
        env.step(all_stay(env))
        assert env.state()[1, 1, 1] == 1, "a boxed-in prey stays"
    env.reset(seed=1, options={"predators": [[0, 1], [1, 0], [1, 2], [0, 0]], "prey": [[1, 1]]})
    env.step(all_stay(env))
    assert env.state()[2, 1, 1] == 1, "the only free neighbour"


@pytest.mark.parametrize("max_cycles", [200, 3])
def test_truncation_exactly_at_max_cycles(max_cycles: int) -> None:
    env = predator_prey_v0.parallel_env(max_cycles=max_cycles)
    env.reset(seed=0)
    for step in range(1, max_cycles + 1):
        _, rewards, terminations, truncations, infos = env.step(all_stay(env))
        assert set(rewards.values()) == {0.0}
        assert not any(terminations.values())
        assert all(truncations.values()) == (step == max_cycles)
        assert infos["predator_0"]["step"] == step
    assert env.agents == []
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step({})


def test_terminates_when_all_prey_are_caught() -> None:
    env = placed([[0, 0], [0, 2], [3, 3]], [[0, 1]])
    _, rewards, terminations, truncations, _ = env.step(all_stay(env, predator_0=CATCH, predator_1=CATCH))
    assert set(rewards.values()) == {10.0}
    assert terminations == {"predator_0": True, "predator_1": True, "predator_2": True}
    assert not any(truncations.values())
    assert env.agents == []


def test_terminates_when_all_predators_are_frozen() -> None:
    env = placed([[0, 0], [0, 2]], [[0, 1], [3, 3]])
    _, _, terminations, _, _ = env.step(all_stay(env, predator_0=CATCH, predator_1=CATCH))
    assert terminations == {"predator_0": True, "predator_1": True}
    assert env.agents == []
    assert env.state()[..., 1].sum() == 1


def test_capture_on_the_last_step_terminates_rather_than_truncates() -> None:
    env = placed([[0, 0], [0, 2], [3, 3]], [[0, 1], [5, 5]], max_cycles=1)
    _, _, terminations, truncations, _ = env.step(all_stay(env, predator_0=CATCH, predator_1=CATCH))
    assert terminations == {"predator_0": True, "predator_1": True, "predator_2": False}
    assert truncations == {"predator_0": False, "predator_1": False, "predator_2": True}


def episode_return(env: PredatorPreyEnv, seed: int, policy) -> float:
    """Play one episode; return the team return (every agent gets the same reward)."""
    observations, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    total = 0.0
    while env.agents:
        actions = {agent: policy(observations[agent], rng) for agent in env.agents}
        observations, rewards, *_ = env.step(actions)
        assert len(set(rewards.values())) == 1
        total += next(iter(rewards.values()))
    return total


def random_policy(observation: np.ndarray, rng: np.random.Generator) -> int:
    """Uniform random action."""
    return int(rng.integers(6))


def greedy_policy(observation: np.ndarray, rng: np.random.Generator) -> int:
    """Catch a neighbouring prey when another predator also touches it, else chase visible prey."""
    predators, prey = observation[..., 0], observation[..., 1]
    steps = {RIGHT: (0, 1), DOWN: (1, 0), LEFT: (0, -1), UP: (-1, 0)}
    for d_row, d_col in steps.values():
        row, col = 2 + d_row, 2 + d_col
        if prey[row, col]:
            touching = sum(
                predators[row + r, col + c]
                for r, c in steps.values()
                if 0 <= row + r < 5 and 0 <= col + c < 5
            )
            if touching >= 2:
                return CATCH
    targets = np.argwhere(prey == 1) - 2
    if len(targets) == 0:
        return int(rng.integers(4))
    d_row, d_col = targets[np.abs(targets).sum(axis=1).argmin()]
    if abs(d_row) + abs(d_col) == 1 or rng.random() < 0.2:
        return int(rng.integers(5))
    if abs(d_row) >= abs(d_col):
        return DOWN if d_row > 0 else UP
    return RIGHT if d_col > 0 else LEFT


def test_returns_are_bounded_by_forty_and_a_scripted_policy_scores() -> None:
    env = predator_prey_v0.parallel_env()
    random_returns = [episode_return(env, seed, random_policy) for seed in range(20)]
    assert max(random_returns) <= 40.0
    greedy_returns = [episode_return(env, seed, greedy_policy) for seed in range(10)]
    assert max(greedy_returns) <= 40.0
    assert max(greedy_returns) > 0.0


def test_same_seed_same_episode() -> None:
    def trajectory(seed: int) -> list[np.ndarray]:
        env = predator_prey_v0.parallel_env()
        env.reset(seed=seed)
        rng = np.random.default_rng(0)
        states = [env.state()]
        while env.agents:
            env.step({agent: int(rng.integers(6)) for agent in env.agents})
            states.append(env.state())
        return states

    first, again, other = trajectory(7), trajectory(7), trajectory(8)
    assert len(first) == len(again)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), actions=st.lists(st.integers(0, 5), min_size=8, max_size=8))
def test_invariants_under_repeated_actions(seed: int, actions: list[int]) -> None:
    env = predator_prey_v0.parallel_env(max_cycles=30)
    env.reset(seed=seed)
    captures = 0
    while env.agents:
        live = list(env.agents)
        _, rewards, terminations, truncations, infos = env.step(
            {agent: actions[int(agent.split("_")[1])] for agent in live}
        )
        assert set(rewards) == set(terminations) == set(truncations) == set(infos) == set(live)
        captures = infos[live[0]]["captures"]
        state = env.state()
        assert not (state[..., 0] * state[..., 1]).any()
        assert state[..., 0].sum() <= 8 - 2 * captures, "every capture freezes two predators"
        if env.agents:
            assert state[..., 0].sum() == len(env.agents)
        assert state[..., 1].sum() == 8 - captures
    assert captures <= 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid_size": 0}, "grid_size"),
        ({"grid_size": 3}, "do not fit on a 3x3 grid"),
        ({"n_predators": -1}, "n_predators"),
        ({"n_prey": 0}, "n_prey"),
        ({"view_radius": -1}, "view_radius"),
        ({"view_radius": 1.5}, "view_radius"),
        ({"max_cycles": 0}, "max_cycles"),
        ({"min_catchers": 5}, "min_catchers"),
        ({"min_catchers": 3, "n_predators": 2}, "min_catchers"),
        ({"capture_reward": float("nan")}, "finite"),
        ({"render_mode": "rgb"}, "render_mode"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        predator_prey_v0.parallel_env(**kwargs)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"predators": [[0, 0]] * 2}, "must be 3 integer"),
        ({"predators": [[0, 0], [0, 1], [0, 1]]}, "same cell"),
        ({"predators": [[0, 0], [0, 1], [0, 10]]}, "outside"),
        ({"predators": [[0, 0], [0, 1], [-1, 2]]}, "outside"),
        ({"predators": [[0.0, 0.0], [0, 1], [0, 2]]}, "integer"),
        ({"predators": [[0, 0], [0, 1], [0, 2]], "prey": [[0, 2]]}, "overlaps"),
    ],
)
def test_bad_reset_options(options: dict, match: str) -> None:
    env = predator_prey_v0.parallel_env(n_predators=3, n_prey=1)
    with pytest.raises(ValueError, match=match):
        env.reset(options=options)


def test_partial_options_place_the_rest_at_random() -> None:
    env = predator_prey_v0.parallel_env(grid_size=3, n_predators=2, n_prey=7)
    env.reset(seed=0, options={"predators": [[1, 1], [2, 2]]})
    state = env.state()
    assert predator_cells(env) == {(1, 1), (2, 2)}
    assert state[..., 1].sum() == 7 and not (state[..., 0] * state[..., 1]).any()


def test_bad_steps() -> None:
    env = predator_prey_v0.parallel_env()
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step({})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing action for live agent 'predator_7'"):
        env.step({f"predator_{i}": STAY for i in range(7)})
    with pytest.raises(ValueError, match="not live: unknown \\['wolf'\\]"):
        env.step(all_stay(env) | {"wolf": STAY})
    for bad in (6, -1, 2.0, "catch"):
        with pytest.raises(ValueError, match=f"action {bad!r} of agent 'predator_3' is outside"):
            env.step(all_stay(env) | {"predator_3": bad})
    _, _, _, _, infos = env.step(all_stay(env))
    assert infos["predator_0"]["step"] == 1, "refused steps change nothing"


def test_frozen_catchers_are_drawn_where_they_stopped() -> None:
    env = placed([[0, 0], [0, 2], [3, 3]], [[0, 1], [3, 0]], grid_size=4, render_mode="rgb_array")
    env.step(all_stay(env, predator_0=CATCH, predator_1=CATCH))
    frame = env.render()
    colour = {(r, c): tuple(frame[r * 40 + 20, c * 40 + 20]) for r in range(4) for c in range(4)}
    frozen, live = (174, 199, 232), (31, 119, 180)
    assert colour[(0, 0)] == colour[(0, 2)] == frozen and colour[(3, 3)] == live
    assert colour[(0, 1)] == (255, 255, 255), "the caught prey is gone"


def test_render_modes(capsys: pytest.CaptureFixture[str]) -> None:
    ansi = placed([[0, 0], [0, 2]], [[0, 1]], grid_size=4, render_mode="ansi")
    text = ansi.render()
    assert text.splitlines()[0] == "P p P ."
    assert text.count("P") == 2 and text.count("p") == 1 and len(text.splitlines()) == 4

    env = predator_prey_v0.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == (400, 400, 3)
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) == 4, "background, grid lines, two unit colours"

    human = predator_prey_v0.parallel_env(render_mode="human")
    human.reset(seed=0)
    assert capsys.readouterr().out.count("P") == 8
    human.close()
