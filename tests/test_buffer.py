"""Episode replay buffer: lossless compact storage, growth, padding masks and sampling."""

from __future__ import annotations

import numpy as np
import torch

from marl_lsf.buffer import EpisodeReplayBuffer
from marl_lsf.team_env import TeamObs, TeamSpec, TeamStep

SPEC = TeamSpec(("a", "b"), ((3,), (3,)), (4, 4), 6, True, "none")


def team_obs(value: float | np.ndarray, envs: int = 1) -> TeamObs:
    obs = np.broadcast_to(np.asarray(value, dtype=np.float32), (envs, 2, 3)).copy()
    return TeamObs(obs, obs.reshape(envs, 6).copy(), np.ones((envs, 2, 4), bool), np.ones((envs, 2), bool))


def run_episode(buffer: EpisodeReplayBuffer, values: list[float]) -> None:
    """One episode visiting ``values`` (one observation per step, the last one final)."""
    buffer.start(team_obs(values[0]))
    for t, value in enumerate(values[1:]):
        last = t == len(values) - 2
        step = TeamStep(
            team_obs(value),
            team_obs(value),
            np.array([1.0], np.float32),
            np.array([last]),
            np.array([False]),
            [{}],
        )
        buffer.add(np.array([[t % 4, 1]]), step)


def test_binary_observations_stay_in_float16_and_come_back_exactly() -> None:
    buffer = EpisodeReplayBuffer(10, SPEC, max_episode_steps=8)
    run_episode(buffer, [0.0, 1.0, 0.0, 1.0])
    assert buffer.storage["obs"].dtype == np.float16
    batch = buffer.get(np.array([0]))
    assert batch.obs.dtype == torch.float32
    assert batch.obs[0, :, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert batch.actions.dtype == torch.int64 and batch.actions[0, :, 0].tolist() == [0, 1, 2]


def test_a_value_float16_would_round_switches_to_float32_without_loss() -> None:
    buffer = EpisodeReplayBuffer(10, SPEC, max_episode_steps=8)
    run_episode(buffer, [0.0, 1.0, 2.0])
    run_episode(buffer, [0.1, 0.2, 1e-7, 70000.0])
    assert buffer.storage["obs"].dtype == np.float32
    first, second = buffer.get(np.array([0])), buffer.get(np.array([1]))
    assert first.obs[0, :3, 1, 2].tolist() == [0.0, 1.0, 2.0]
    assert second.obs[0, :, 0, 0].tolist() == np.array([0.1, 0.2, 1e-7, 70000.0], np.float32).tolist()
    assert second.state[0, 3, 5].item() == 70000.0


def test_longer_episodes_grow_the_time_axis_and_batches_are_padded_with_masks() -> None:
    buffer = EpisodeReplayBuffer(10, SPEC, max_episode_steps=2)
    run_episode(buffer, [0.0, 1.0])
    run_episode(buffer, [float(v) for v in range(7)])
    assert buffer.max_steps >= 6 and len(buffer) == 2
    batch = buffer.get(np.array([0, 1]))
    assert batch.filled.tolist() == [[True] + [False] * 5, [True] * 6]
    assert batch.obs[1, :, 0, 0].tolist() == [float(v) for v in range(7)]
    assert batch.terminated[1].tolist() == [0.0] * 5 + [1.0]


def test_ring_overwrites_the_oldest_episode() -> None:
    buffer = EpisodeReplayBuffer(2, SPEC, max_episode_steps=4)
    for start in (10.0, 20.0, 30.0):
        run_episode(buffer, [start, start + 1])
    assert len(buffer) == 2 and buffer.episodes_added == 3
    firsts = sorted(buffer.get(np.array([0, 1])).obs[:, 0, 0, 0].tolist())
    assert firsts == [20.0, 30.0]
