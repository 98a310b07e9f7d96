"""Reliability: checkpoints that survive a crash, resume without loss, NaN guards, fuzzed team views."""

from __future__ import annotations

import csv
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pettingzoo import ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper
from stable_baselines3.common.callbacks import BaseCallback

from marl_lsf import LSFSAC, save_util
from marl_lsf.checkpoint import (
    AppendingCSVOutputFormat,
    CheckpointCallback,
    NonFiniteError,
    checkpoint_step,
    configure_logger,
    latest_checkpoint,
    list_checkpoints,
)
from marl_lsf.envs import matrix_game_v0, predator_prey_v0
from marl_lsf.team_env import EnvError

REPO = Path(__file__).resolve().parents[1]
MODEL_KWARGS: dict[str, Any] = {
    "hidden_dim": 16,
    "batch_size": 4,
    "buffer_size": 50,
    "seed": 0,
    "device": "cpu",
    "n_threads": 1,
}


def tiny_env(**overrides: int) -> ParallelEnv:
    """The tiny predator-prey: 5x5 grid, 2 predators, 1 prey, 20 steps."""
    return predator_prey_v0.parallel_env(
        **({"grid_size": 5, "n_predators": 2, "n_prey": 1, "max_cycles": 20} | overrides)
    )


def read_log(path: Path) -> list[dict[str, str]]:
    """Rows of a progress.csv."""
    with path.open() as f:
        return list(csv.DictReader(f))


# -- crash and resume -------------------------------------------------------------------------------

TRAIN_SCRIPT = """
import sys, time
from stable_baselines3.common.callbacks import ConvertCallback
from marl_lsf.envs import predator_prey_v0
from marl_lsf import LSFSAC
from marl_lsf.checkpoint import CheckpointCallback, configure_logger

run, total, save_freq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = predator_prey_v0.parallel_env(grid_size=5, n_predators=2, n_prey=1, max_cycles=20)
model = LSFSAC("MlpPolicy", env, **{kwargs})
model.set_logger(configure_logger(run, ["csv"]))
slow = ConvertCallback(lambda _locals, _globals: time.sleep(0.004) is None)  # a run long enough to kill
checkpoints = CheckpointCallback(save_freq, run + "/checkpoints", keep_last=2, save_replay_buffer=True)
model.learn(total, callback=[checkpoints, slow], log_interval=1)
"""


def test_run_killed_mid_training_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    total, save_freq, run = 600, 100, tmp_path / "run"
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TRAIN_SCRIPT).replace("{kwargs}", repr(MODEL_KWARGS)))
    child = subprocess.Popen(
        [sys.executable, str(script), str(run), str(total), str(save_freq)],
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while (checkpoint_step(latest_checkpoint(run / "checkpoints") or "") or 0) < 2 * save_freq:
        assert child.poll() is None, f"the training script ended early: {child.stderr.read().decode()}"
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    steps_logged_before_kill = max(int(row["time/total_timesteps"]) for row in read_log(run / "progress.csv"))

    checkpoint = latest_checkpoint(run / "checkpoints")
    assert len(list_checkpoints(run / "checkpoints")) <= 3  # keep_last (+1 if killed before pruning)
    model = LSFSAC.load(checkpoint, env=tiny_env(), n_threads=1)
    assert model.num_timesteps == checkpoint_step(checkpoint) < total
    assert (
        steps_logged_before_kill - model.num_timesteps < 2 * save_freq
    )  # lost: the steps since the checkpoint
    assert len(model.replay_buffer) > 0 and model._episode_num > 0

    model.set_logger(configure_logger(run, ["csv"], resume_step=model.num_timesteps))
    callback = CheckpointCallback(save_freq, run / "checkpoints", keep_last=2, save_replay_buffer=True)
    model.learn(total - model.num_timesteps, reset_num_timesteps=False, callback=callback, log_interval=1)

    assert model.num_timesteps == total  # where the uninterrupted run ends (learn stops exactly at total)
    assert model._total_timesteps == total  # schedules saw the original total
    assert checkpoint_step(latest_checkpoint(run / "checkpoints")) == total
    rows = read_log(run / "progress.csv")
    steps = [int(row["time/total_timesteps"]) for row in rows]
    episodes = [int(row["time/episodes"]) for row in rows]
    assert steps == sorted(set(steps)), "duplicate or out-of-order rows"
    assert episodes == list(range(1, len(rows) + 1)), "a gap or a duplicate in the logged episodes"
    assert steps[-1] <= total


def test_checkpoints_are_kept_and_pruned(tmp_path: Path) -> None:
    model = LSFSAC("MlpPolicy", tiny_env(), **MODEL_KWARGS)
    model.learn(100, callback=CheckpointCallback(20, tmp_path, name_prefix="pp", keep_last=2))
    assert [checkpoint_step(p) for p in list_checkpoints(tmp_path)] == [80, 100]
    assert latest_checkpoint(tmp_path) == model.last_checkpoint == tmp_path / "pp_100_steps.zip"
    assert latest_checkpoint(tmp_path, name_prefix="other") is None
    assert latest_checkpoint(tmp_path / "missing") is None
    final = LSFSAC.load(model.last_checkpoint)
    assert final._n_updates == model._n_updates  # the final checkpoint has the last update
    with pytest.raises(ValueError, match="save_freq"):
        CheckpointCallback(0, tmp_path)


def test_failed_checkpoint_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = LSFSAC("MlpPolicy", tiny_env(), **MODEL_KWARGS)
    callback = CheckpointCallback(20, tmp_path, keep_last=1, save_replay_buffer=True)
    model.learn(40, callback=callback)
    good = latest_checkpoint(tmp_path)
    good_bytes = good.read_bytes()

    real_replace = save_util.os.replace

    def crash_mid_write(src: str, dst: str) -> None:
        Path(src).write_bytes(Path(src).read_bytes()[:500])  # half a file, then the process "dies"
        raise OSError("killed during the checkpoint write")

    monkeypatch.setattr(save_util.os, "replace", crash_mid_write)
    with pytest.raises(OSError, match="killed during the checkpoint write"):
        model.learn(40, reset_num_timesteps=False, callback=callback)
    monkeypatch.setattr(save_util.os, "replace", real_replace)

    assert list_checkpoints(tmp_path) == [good] and good.read_bytes() == good_bytes
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    (tmp_path / f".{good.name}.abc.tmp").write_bytes(b"left by a crash")
    CheckpointCallback(20, tmp_path).init_callback(model)
    assert list(tmp_path.iterdir()) == [good]
    assert LSFSAC.load(good, env=tiny_env()).num_timesteps == 40


def test_csv_log_continues_without_cut_rows_or_rows_past_the_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "progress.csv"
    log.write_text("time/total_timesteps,rollout/ep_rew_mean\n10,1.0\n20,2.0\n30,3.0\n40,4.0\n50,5.")
    writer = AppendingCSVOutputFormat(log, resume_step=30)
    writer.write({"time/total_timesteps": 35, "rollout/ep_rew_mean": 3.5, "train/new_key": "a,b"}, {})
    writer.close()
    rows = read_log(log)
    assert [row["time/total_timesteps"] for row in rows] == ["10", "20", "30", "35"]
    assert rows[0]["train/new_key"] == "" and rows[-1]["train/new_key"] == "a,b"

    logger = configure_logger(tmp_path, ["csv", "json", "log"])
    logger.record("time/total_timesteps", 40)
    logger.dump(40)
    logger.close()
    assert [row["time/total_timesteps"] for row in read_log(log)] == ["10", "20", "30", "35", "40"]
    assert (tmp_path / "progress.json").read_text().count("\n") == 1


# -- guards against NaN and inf ----------------------------------------------------------------------


class CorruptAt(BaseParallelWrapper):
    """Returns a non-finite reward or observation for one agent at one step."""

    def __init__(self, env: ParallelEnv, step: int, agent: str, field: str, value: float = math.nan) -> None:
        super().__init__(env)
        self.at, self.agent, self.field, self.value = step, agent, field, value
        self.t = 0

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Reset the wrapped env and the step counter."""
        self.t = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        """Step the wrapped env, corrupting the chosen value at the chosen step."""
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        self.t += 1
        if self.t == self.at and self.agent in rewards:
            if self.field == "reward":
                rewards[self.agent] = self.value
            else:
                observations[self.agent] = np.full_like(observations[self.agent], self.value)
        return observations, rewards, terminations, truncations, infos


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reward", math.nan, "agent 'predator_1' reward is nan at step 3"),
        ("reward", math.inf, "agent 'predator_1' reward is inf at step 3"),
        ("observation", math.nan, "agent 'predator_1' observation contains NaN or inf at step 3"),
    ],
)
def test_env_returning_nan_is_named_with_agent_and_step(field: str, value: float, message: str) -> None:
    env = CorruptAt(tiny_env(), step=3, agent="predator_1", field=field, value=value)
    model = LSFSAC("MlpPolicy", env, **MODEL_KWARGS)
    with pytest.raises(EnvError, match=message):
        model.learn(50)
    assert model.num_timesteps == 2


class BreakApi(BaseParallelWrapper):
    """Breaks PettingZoo's parallel API in one way (``how``) from episode step ``at`` on."""

    def __init__(self, env: ParallelEnv, how: str, at: int = 2) -> None:
        super().__init__(env)
        self.how, self.at, self.t = how, at, 0

    def reset(self, seed: int | None = None, options: dict | None = None) -> Any:
        """Reset the wrapped env; ``how="reset_observations"`` returns the observations alone."""
        self.t = 0
        observations, infos = self.env.reset(seed=seed, options=options)
        return observations if self.how == "reset_observations" else (observations, infos)

    def step(self, actions: dict) -> Any:
        """Step the wrapped env and break its return value from step ``at`` on."""
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        self.t += 1
        if self.t < self.at:
            return observations, rewards, terminations, truncations, infos
        if self.how == "reward_array":
            rewards = {agent: np.array([value]) for agent, value in rewards.items()}
        if self.how == "four_values":
            return observations, rewards, terminations, infos
        if self.how == "infos_none":
            infos = None
        return observations, rewards, terminations, truncations, infos


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("reward_array", "agent 'predator_0' reward at step 2 is an array of shape (1,), expected a number"),
        (
            "four_values",
            "env.step() returned a tuple of 4 values at step 2; PettingZoo's parallel API returns",
        ),
        ("infos_none", "env.step() returned infos as None at step 2"),
        ("reset_observations", "env.reset() returned a dict; PettingZoo's parallel API returns the pair"),
    ],
)
def test_env_api_breaches_are_named_with_the_rule_agent_and_step(how: str, message: str) -> None:
    with pytest.raises(EnvError, match=re.escape(message)):
        LSFSAC("MlpPolicy", BreakApi(tiny_env(), how), **MODEL_KWARGS).learn(50)


class Poison(BaseCallback):
    """Corrupts the model with ``poison(model)`` once ``at`` steps have been collected."""

    def __init__(self, at: int, poison: Callable[[LSFSAC], None]) -> None:
        super().__init__()
        self.at, self.poison = at, poison

    def _on_step(self) -> bool:
        if self.model.num_timesteps == self.at:
            with torch.no_grad():
                self.poison(self.model)
        return True


def poison_critic(model: LSFSAC) -> None:
    """A NaN in the first critic parameter."""
    next(model.critics.parameters()).fill_(math.nan)


def poison_rewards(model: LSFSAC) -> None:
    """NaN rewards in every stored episode."""
    model.replay_buffer.storage["reward"][:] = math.nan


def test_poisoned_parameter_stops_training_naming_the_loss_and_step() -> None:
    model = LSFSAC("MlpPolicy", tiny_env(), **MODEL_KWARGS)
    with pytest.raises(
        NonFiniteError, match=r"train/td_loss is nan after gradient update \d+ \(environment step \d+\)"
    ):
        model.learn(200, callback=Poison(50, poison_critic))
    assert 50 <= model.num_timesteps <= 70
    with pytest.raises(NonFiniteError, match=r"parameter (actor|critics)\.\S+ contains NaN or inf"):
        model.learn(100)  # a model with non-finite parameters is refused up front


def test_non_finite_update_leaves_the_last_good_checkpoint(tmp_path: Path) -> None:
    model = LSFSAC("MlpPolicy", tiny_env(), **MODEL_KWARGS)
    checkpoints = CheckpointCallback(20, tmp_path, keep_last=10)
    with pytest.raises(
        NonFiniteError, match="is nan after gradient update .* the last checkpoint, written before it, is"
    ) as error:
        model.learn(400, callback=[checkpoints, Poison(70, poison_rewards)])
    assert str(model.last_checkpoint) in str(error.value)
    good = LSFSAC.load(model.last_checkpoint, env=tiny_env())
    assert 70 <= good.num_timesteps <= model.num_timesteps
    assert all(
        bool(p.isfinite().all()) for name in good._saved_modules for p in getattr(good, name).parameters()
    )


def test_finite_training_never_trips_the_guards() -> None:
    model = LSFSAC("RnnPolicy", matrix_game_v0.parallel_env(), **(MODEL_KWARGS | {"gradient_steps": 2}))
    model.learn(150)
    model._check_finite()
    assert model._n_updates >= 290


# -- fuzzing the team view with random ParallelEnvs -----------------------------------------------------

FAULTS = ("none", "nan_obs", "inf_reward", "obs_shape", "empty_mask", "mask_size", "nan_state", "continuous")


class RandomEnv(ParallelEnv):
    """A PettingZoo-shaped ParallelEnv with random agents, shapes, masks, departures and faults.

    Agent 0 never leaves; the others may terminate at any step. The episode truncates at
    ``length``. ``fault`` makes the env misbehave from step ``fault_step`` on (0: at reset).
    """

    metadata = {"name": "random_v0"}

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        n = config["n_agents"]
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._obs_spaces, self._act_spaces = {}, {}
        for i, agent in enumerate(self.possible_agents):
            box = spaces.Box(-5.0, 5.0, config["obs_shapes"][i], np.float32)
            count = config["action_counts"][i]
            if config["mask_mode"] == "dict":
                box = spaces.Dict({"observation": box, "action_mask": spaces.MultiBinary(count)})
            self._obs_spaces[agent] = box
            self._act_spaces[agent] = spaces.Discrete(count)
        if config["fault"] == "continuous":
            self._act_spaces[self.possible_agents[-1]] = spaces.Box(-1.0, 1.0, (2,))
        if config["has_state"]:
            self.state_space = spaces.Box(-5.0, 5.0, (config["state_dim"],), np.float32)
        self._rng = np.random.default_rng(config["seed"])
        self._t = 0
        self._masks: dict[str, np.ndarray] = {}

    def observation_space(self, agent: str) -> spaces.Space:
        """This agent's observation space."""
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        """This agent's action space."""
        return self._act_spaces[agent]

    def state(self) -> np.ndarray:
        """A random global state (NaN with the ``nan_state`` fault)."""
        state = self._rng.normal(size=self.config["state_dim"]).astype(np.float32)
        return state * math.nan if self._faulty("nan_state") else state

    def _faulty(self, fault: str) -> bool:
        return self.config["fault"] == fault and self._t >= self.config["fault_step"]

    def _observe(self, agents: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        observations, infos = {}, {}
        for agent in agents:
            i = self.possible_agents.index(agent)
            shape = self.config["obs_shapes"][i]
            if self._faulty("obs_shape"):
                shape = (*shape, 2)
            obs = self._rng.normal(size=shape).astype(np.float32)
            if self._faulty("nan_obs"):
                obs[...] = math.nan
            count = self.config["action_counts"][i] + (1 if self._faulty("mask_size") else 0)
            mask = (self._rng.random(count) < 0.5).astype(np.int8)
            mask[self._rng.integers(count)] = 1
            if self._faulty("empty_mask"):
                mask[:] = 0
            self._masks[agent] = mask
            infos[agent] = {"step": self._t}
            if self.config["mask_mode"] == "dict":
                observations[agent] = {"observation": obs, "action_mask": mask}
            else:
                observations[agent] = obs
                if self.config["mask_mode"] == "info":
                    infos[agent]["action_mask"] = mask
        return observations, infos

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start an episode with every agent."""
        self._t = 0
        self.agents = list(self.possible_agents)
        return self._observe(self.agents)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Check every live agent's action against its mask, then move on one step."""
        assert set(actions) == set(self.agents), "actions must be given for exactly the live agents"
        for agent, action in actions.items():
            if self.config["mask_mode"] != "none":
                assert self._masks[agent][action], f"{agent} took unavailable action {action}"
        self._t += 1
        acting = self.agents
        truncate = self._t >= self.config["length"]
        leave_steps = self.config["leave_steps"]
        leaving = {a for a in acting if leave_steps[self.possible_agents.index(a)] == self._t}
        reward = math.inf if self._faulty("inf_reward") else 1.0
        rewards = {agent: reward for agent in acting}
        terminations = {agent: agent in leaving for agent in acting}
        truncations = {agent: truncate for agent in acting}
        self.agents = [] if truncate else [a for a in acting if a not in leaving]
        observations, infos = self._observe(acting)
        return observations, rewards, terminations, truncations, infos


@st.composite
def random_env_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Configurations of ``RandomEnv``."""
    n = draw(st.integers(1, 4))
    length = draw(st.integers(1, 6))
    same_shape = draw(st.booleans())
    shape_strategy = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)
    first_shape = draw(shape_strategy)
    fault = draw(st.sampled_from(FAULTS))
    return {
        "n_agents": n,
        "obs_shapes": [first_shape if same_shape else draw(shape_strategy) for _ in range(n)],
        "action_counts": [draw(st.integers(1, 5)) for _ in range(n)],
        "mask_mode": draw(st.sampled_from(["none", "dict", "info"])),
        "has_state": draw(st.booleans()) or fault == "nan_state",
        "state_dim": draw(st.integers(1, 6)),
        "length": length,
        "leave_steps": [None] + [draw(st.none() | st.integers(1, length)) for _ in range(n - 1)],
        "fault": fault,
        "fault_step": draw(st.integers(0, length - 1)),
        "seed": draw(st.integers(0, 2**16)),
        "policy": draw(st.sampled_from(["MlpPolicy", "RnnPolicy"])),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=random_env_configs())
def test_team_view_of_random_envs_fails_only_clearly_and_never_picks_unavailable_actions(
    config: dict[str, Any],
) -> None:
    if config["fault"] in ("mask_size", "empty_mask") and config["mask_mode"] == "none":
        config["fault"] = "none"
    try:
        model = LSFSAC(
            config["policy"],
            lambda: RandomEnv(config),
            hidden_dim=8,
            batch_size=2,
            buffer_size=4,
            device="cpu",
            n_threads=1,
            seed=0,
        )
        env = model.env
        obs, hidden = env.reset(seed=config["seed"]), None
        for _ in range(2 * config["length"] + 1):
            actions, hidden = model.act(obs.obs, obs.avail, hidden)
            chosen = np.take_along_axis(obs.avail, actions[..., None], axis=-1)
            assert chosen.all(), f"picked an unavailable action: {actions} with masks {obs.avail}"
            assert (actions[~obs.alive] == 0).all(), "agents that left must take the no-op"
            step = env.step(actions)
            obs = step.next
            done = step.terminated | step.truncated
            if hidden is not None:
                hidden[np.flatnonzero(done)] = 0.0
        model.learn(config["length"] + 1)
    except (EnvError, ValueError, TypeError) as exc:
        assert config["fault"] != "none", f"a valid env was refused: {exc!r}"
        assert str(exc)
    else:
        assert config["fault"] == "none", f"fault {config['fault']} went unnoticed"
