"""Tests of envs/_predator_prey_vec.py: the batched predator-prey is the team view of single envs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from marl_lsf import LSFSAC
from marl_lsf.envs import predator_prey_v0, predator_prey_v1
from marl_lsf.envs._predator_prey_vec import PredatorPreyVecEnv
from marl_lsf.envs.predator_prey_v1 import CATCH
from marl_lsf.team_env import GymTeamVecEnv, TeamObs
from marl_lsf.vec_env import make_team_vec_env

# Short episodes on a small grid: frequent captures, and copies autoreset every 30 steps or sooner.
SMALL = {"grid_size": 4, "n_predators": 3, "n_prey": 2, "max_cycles": 30}
# Non-integer rewards (their team mean is not trivially exact), three catchers and a 3x3 view.
ODD = {
    "grid_size": 5,
    "n_predators": 6,
    "n_prey": 3,
    "view_radius": 1,
    "min_catchers": 3,
    "capture_reward": 0.7,
    "miscapture_punishment": -0.3,
    "max_cycles": 40,
}
# A view of the predator's own cell only; catching the one prey ends the episode.
BLIND = {"grid_size": 3, "n_predators": 2, "n_prey": 1, "view_radius": 0, "max_cycles": 10}


def reference(kwargs: dict[str, Any], num_envs: int) -> GymTeamVecEnv:
    """What the library used before: ``TeamEnv`` copies of the single env in ``SyncVectorEnv``."""
    return GymTeamVecEnv(lambda: predator_prey_v1.parallel_env(**kwargs), num_envs, "sync")


def random_available(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random available actions ``[E, N]`` from the masks ``avail [E, N, A]``, biased towards CATCH."""
    weights = avail * np.where(np.arange(avail.shape[-1]) == CATCH, 6.0, 1.0)
    return (rng.random(avail.shape) * weights).argmax(axis=-1)


def prey_left(obs: TeamObs) -> np.ndarray:
    """Prey on each copy's grid, read from the state ``[E, size * size * 2]`` (channel 1: prey)."""
    return obs.state.reshape(len(obs.state), -1, 2)[..., 1].sum(axis=1)


def assert_same_obs(ours: TeamObs, theirs: TeamObs, where: str) -> None:
    """Every field of two ``TeamObs`` has the same dtype, shape and values."""
    for name, mine, other in zip(TeamObs._fields, ours, theirs, strict=True):
        assert mine.dtype == other.dtype and mine.shape == other.shape, f"{name} {where}"
        assert np.array_equal(mine, other), f"{name} differs {where}"


@pytest.mark.parametrize(
    ("kwargs", "endings"),
    # The default 10x10 grid rarely ends an episode, and never within 300 steps of random play.
    [({}, ()), (SMALL, ("truncated",)), (ODD, ("truncated",)), (BLIND, ("terminated", "truncated"))],
    ids=["default", "small", "odd", "blind"],
)
@pytest.mark.parametrize(("num_envs", "seed"), [(1, 0), (3, 5), (8, 11)])
def test_equals_the_team_view_of_single_envs(
    kwargs: dict[str, Any], endings: tuple[str, ...], num_envs: int, seed: int
) -> None:
    ref = reference(kwargs, num_envs)
    vec = predator_prey_v1.parallel_env(**kwargs).make_team_vec_env(num_envs)
    assert isinstance(vec, PredatorPreyVecEnv)
    assert (vec.spec, vec.num_envs, vec.max_episode_steps) == (ref.spec, num_envs, ref.max_episode_steps)
    rng = np.random.default_rng(seed)
    obs = vec.reset(seed)
    assert_same_obs(obs, ref.reset(seed), "after reset")
    captures = 0
    ended = {"terminated": 0, "truncated": 0}
    for t in range(300):
        if t == 150:  # unseeded, every copy keeps drawing from its generator, as the single envs do
            obs = vec.reset()
            assert_same_obs(obs, ref.reset(), "after an unseeded reset")
        actions = random_available(obs.avail, rng)
        actions[~obs.alive] = 7  # actions of agents that have left are ignored, even out of range
        ours, theirs = vec.step(actions), ref.step(actions)
        assert_same_obs(ours.next, theirs.next, f"in next at step {t}")
        assert_same_obs(ours.final, theirs.final, f"in final at step {t}")
        for name in ("reward", "terminated", "truncated"):
            mine, other = getattr(ours, name), getattr(theirs, name)
            assert mine.dtype == other.dtype and np.array_equal(mine, other), f"{name} at step {t}"
        assert ours.infos == theirs.infos, f"infos at step {t}"
        captures += int((prey_left(obs) - prey_left(ours.final)).sum())
        for name in ended:
            ended[name] += int(getattr(ours, name).sum())
        obs = ours.next
    assert captures > 0, "no prey was caught: the capture rules went untested"
    assert all(ended[name] > 0 for name in endings), f"no episode ended as {endings}: {ended}"


def test_library_picks_the_batched_env_and_lsfsac_learns() -> None:
    model = LSFSAC(
        "MlpPolicy", lambda: predator_prey_v1.parallel_env(**SMALL), n_envs=4, seed=0, batch_size=4
    )
    assert isinstance(model.env, PredatorPreyVecEnv) and model.env.num_envs == 4
    model.learn(400)
    assert model.num_timesteps >= 400 and model._n_updates > 0
    assert isinstance(make_team_vec_env(predator_prey_v1.parallel_env(), 1), PredatorPreyVecEnv)
    # v0 has no masks and no batched implementation: it keeps gymnasium's vector env.
    assert not hasattr(predator_prey_v0.parallel_env(), "make_team_vec_env")
    assert isinstance(make_team_vec_env(predator_prey_v0.parallel_env, 2, "sync"), GymTeamVecEnv)


def test_bad_input_is_refused_and_changes_nothing() -> None:
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1"):
        PredatorPreyVecEnv(0)
    with pytest.raises(ValueError, match="grid_size"):
        PredatorPreyVecEnv(2, grid_size=0)
    vec, twin = PredatorPreyVecEnv(3, **SMALL), PredatorPreyVecEnv(3, **SMALL)
    with pytest.raises(RuntimeError, match="before reset"):
        vec.step(np.zeros((3, 3), dtype=np.int64))
    obs = vec.reset(4)
    twin.reset(4)
    with pytest.raises(ValueError, match=r"actions have shape \(3, 2\), expected \(3, 3\)"):
        vec.step(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="actions must be integers"):
        vec.step(np.zeros((3, 3)))
    outside = np.full((3, 3), 4)
    outside[1, 2] = 6
    with pytest.raises(
        ValueError, match=r"action 6 of agent 'predator_2' in env 1 is outside its action space"
    ):
        vec.step(outside)
    e, i, action = np.argwhere(~obs.avail)[0]
    masked = np.full((3, 3), 4)
    masked[e, i] = action
    with pytest.raises(
        ValueError, match=rf"action {action} .* of agent 'predator_{i}' in env {e} is not available"
    ):
        vec.step(masked)
    ref = reference(SMALL, 3)
    ref.reset(4)
    with pytest.raises(ValueError, match="not available"):  # the single env refuses it too
        ref.step(masked)
    # The refused steps changed nothing: the env goes on exactly as its twin.
    rng = np.random.default_rng(0)
    for _ in range(20):
        actions = random_available(obs.avail, rng)
        ours, theirs = vec.step(actions), twin.step(actions)
        assert_same_obs(ours.next, theirs.next, "after refused steps")
        obs = ours.next


@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
def test_render_shows_the_first_copy(render_mode: str) -> None:
    kwargs = {**SMALL, "render_mode": render_mode}
    vec, ref = PredatorPreyVecEnv(2, **kwargs), reference(kwargs, 2)
    obs = vec.reset(1)
    ref.reset(1)
    rng = np.random.default_rng(1)
    for _ in range(40):  # past an episode end of copy 0
        actions = random_available(obs.avail, rng)
        obs = vec.step(actions).next
        ref.step(actions)
        assert np.array_equal(vec.render(), ref.render())


def test_human_mode_prints_as_the_single_env(capsys: pytest.CaptureFixture[str]) -> None:
    kwargs = {**SMALL, "render_mode": "human"}
    printed = []
    for vec in (PredatorPreyVecEnv(1, **kwargs), reference(kwargs, 1)):
        obs = vec.reset(2)
        rng = np.random.default_rng(2)
        for _ in range(40):
            obs = vec.step(random_available(obs.avail, rng)).next
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and printed[0].count("\n") > 40 * SMALL["grid_size"]
