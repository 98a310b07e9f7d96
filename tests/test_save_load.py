"""Save/load: exact round trips, and untrusted or unfitting files refused without running anything."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import marl_lsf
from marl_lsf import LSFSAC, save_util
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.envs import matrix_game_v0, predator_prey_v0
from marl_lsf.save_util import ModelFileError, load_model_file


def tiny_env(**overrides: int) -> predator_prey_v0.PredatorPreyEnv:
    """The tiny predator-prey used throughout the reliability tests."""
    kwargs = {"grid_size": 5, "n_predators": 2, "n_prey": 1, "max_cycles": 20} | overrides
    return predator_prey_v0.parallel_env(**kwargs)


def tiny_model(policy: str = "MlpPolicy", **kwargs: object) -> LSFSAC:
    """A small LSF-SAC on the tiny predator-prey."""
    settings = {"hidden_dim": 16, "batch_size": 4, "buffer_size": 50, "seed": 0, "device": "cpu"} | kwargs
    return LSFSAC(policy, tiny_env(), **settings)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained model saved with its optimizers and replay buffer."""
    model = tiny_model().learn(100)
    return model.save(tmp_path_factory.mktemp("saved") / "model", include_buffer=True)


def rewrite(src: Path, dst: Path, data: dict | None = None, tensors: bytes | None = None) -> Path:
    """Copy a model file, replacing its ``data.json`` and/or ``tensors.pt``."""
    with zipfile.ZipFile(src) as archive:
        old_data, old_tensors = archive.read("data.json"), archive.read("tensors.pt")
    with zipfile.ZipFile(dst, "w") as archive:
        archive.writestr("data.json", old_data if data is None else json.dumps(data))
        archive.writestr("tensors.pt", old_tensors if tensors is None else tensors)
    return dst


def saved_data(path: Path) -> dict:
    """The ``data.json`` of a model file."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("data.json"))


def state_dicts(model: LSFSAC) -> dict[str, torch.Tensor]:
    """Every saved parameter and buffer of a model, flattened."""
    flat = {
        f"{name}.{key}": value
        for name in model._saved_modules
        for key, value in getattr(model, name).state_dict().items()
    }
    return flat | {name: getattr(model, name) for name in model._saved_tensors}


@pytest.mark.parametrize("policy", ["MlpPolicy", "RnnPolicy"])
def test_round_trip_is_exact(policy: str, tmp_path: Path) -> None:
    model = tiny_model(policy).learn(60)
    path = model.save(tmp_path / "m.zip", include_buffer=True)
    loaded = LSFSAC.load(path, env=tiny_env())

    original, restored = state_dicts(model), state_dicts(loaded)
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    for name in model._saved_optimizers:
        assert str(getattr(model, name).state_dict()) == str(getattr(loaded, name).state_dict())
    assert (loaded.num_timesteps, loaded._episode_num, loaded._n_updates) == (
        model.num_timesteps,
        model._episode_num,
        model._n_updates,
    )
    assert list(loaded.ep_info_buffer) == list(model.ep_info_buffer)

    env = tiny_env()
    observations, _ = env.reset(seed=5)
    state_a = state_b = None
    for _ in range(10):
        actions_a, state_a = model.predict(observations, state=state_a, deterministic=True)
        actions_b, state_b = loaded.predict(observations, state=state_b, deterministic=True)
        assert actions_a == actions_b
        if policy == "RnnPolicy":
            np.testing.assert_array_equal(state_a, state_b)
        observations, *_ = env.step(actions_a)
        if not env.agents:
            break


def test_replay_buffer_and_random_states_round_trip(tmp_path: Path) -> None:
    model = tiny_model().learn(80)
    path = model.save(tmp_path / "m", include_buffer=True)
    expected_draws = (random.random(), np.random.rand(), torch.rand(1).item(), model._rng.random())
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    callers_draws = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    loaded = LSFSAC.load(path, env=tiny_env())
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == callers_draws  # load left them alone
    loaded.learn(0, reset_num_timesteps=False)  # continuing the run sets the run's global generators
    assert (random.random(), np.random.rand(), torch.rand(1).item(), loaded._rng.random()) == expected_draws

    assert len(loaded.replay_buffer) == len(model.replay_buffer) > 0
    idx = np.arange(len(model.replay_buffer))
    for field, a, b in zip(
        model.replay_buffer.get(idx)._fields,
        model.replay_buffer.get(idx),
        loaded.replay_buffer.get(idx),
        strict=True,
    ):
        assert torch.equal(a, b), field

    without = LSFSAC.load(model.save(tmp_path / "no_buffer"), env=tiny_env())
    assert len(without.replay_buffer) == 0


def test_load_without_env_predicts(saved: Path) -> None:
    model = LSFSAC.load(saved)
    observations, _ = tiny_env().reset(seed=0)
    actions, _ = model.predict(observations, deterministic=True)
    assert set(actions) == set(observations)
    with pytest.raises(RuntimeError, match="no env"):
        model.learn(10)


def test_pickled_payload_is_refused_and_not_run(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    torch.save({"module/actor": Payload()}, buffer)
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)  # the payload works when trusted ...
    assert marker.exists()
    marker.unlink()

    evil = rewrite(saved, tmp_path / "evil.zip", tensors=buffer.getvalue())
    with pytest.raises(ModelFileError, match="pickled objects other than tensors.*nothing from it was run"):
        LSFSAC.load(evil, env=tiny_env())
    assert not marker.exists()  # ... and is never run by load


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_refused(saved: Path, tmp_path: Path, fraction: float) -> None:
    raw = saved.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        LSFSAC.load(cut, env=tiny_env())


def test_not_a_model_file_is_refused(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model file"):
        LSFSAC.load(tmp_path / "missing.zip")
    text = tmp_path / "notes.zip"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable model file"):
        LSFSAC.load(text)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(ModelFileError, match="lacks"):
        LSFSAC.load(other_zip)
    bad_json = tmp_path / "bad_json.zip"
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr("data.json", "[1, 2")
        archive.writestr("tensors.pt", b"")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        LSFSAC.load(bad_json)
    newer = rewrite(saved, tmp_path / "newer.zip", data=saved_data(saved) | {"format_version": 99})
    with pytest.raises(ModelFileError, match="unsupported model file format 99"):
        LSFSAC.load(newer)


def test_file_of_another_algorithm_is_refused(saved: Path, tmp_path: Path) -> None:
    other = rewrite(saved, tmp_path / "qmix.zip", data=saved_data(saved) | {"algorithm": "QMIX"})
    with pytest.raises(ModelFileError, match="holds a 'QMIX' model, not LSFSAC"):
        LSFSAC.load(other, env=tiny_env())


def test_mismatched_spaces_are_refused(saved: Path) -> None:
    with pytest.raises(ValueError, match="does not match the model's spaces.*agents"):
        LSFSAC.load(saved, env=tiny_env(n_predators=3))
    with pytest.raises(ValueError, match="does not match the model's spaces.*state_dim"):
        LSFSAC.load(saved, env=tiny_env(grid_size=6))
    with pytest.raises(ValueError, match="does not match the model's spaces"):
        LSFSAC.load(saved, env=matrix_game_v0.parallel_env())


def test_settings_and_tensors_that_do_not_fit_are_refused(saved: Path, tmp_path: Path) -> None:
    data = saved_data(saved)
    wider = rewrite(
        saved, tmp_path / "wider.zip", data=data | {"params": data["params"] | {"hidden_dim": 32}}
    )
    with pytest.raises(ModelFileError, match="has shape .* but the file's settings make it"):
        LSFSAC.load(wider, env=tiny_env())
    unknown = rewrite(saved, tmp_path / "unknown.zip", data=data | {"params": data["params"] | {"evil": 1}})
    with pytest.raises(ModelFileError, match="settings are incomplete or invalid"):
        LSFSAC.load(unknown, env=tiny_env())
    local = rewrite(
        saved, tmp_path / "local.zip", data=data | {"params": data["params"] | {"tensorboard_log": "/tmp/x"}}
    )
    with pytest.raises(ModelFileError, match=r"may not set \['tensorboard_log'\]"):
        LSFSAC.load(local, env=tiny_env())
    no_spec = rewrite(saved, tmp_path / "no_spec.zip", data={k: v for k, v in data.items() if k != "spec"})
    with pytest.raises(ModelFileError, match="the saved spec is missing or not a JSON object, got None"):
        LSFSAC.load(no_spec, env=tiny_env())
    bad_rng = rewrite(saved, tmp_path / "bad_rng.zip", data=data | {"rng": {"python": 1}})
    with pytest.raises(ModelFileError, match="random number generator states are malformed"):
        LSFSAC.load(bad_rng, env=tiny_env())


def test_failed_write_keeps_the_previous_file(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = LSFSAC.load(saved, env=tiny_env())
    path = model.save(tmp_path / "m.zip")
    before = path.read_bytes()

    def half_then_fail(obj: object, f: io.IOBase) -> None:
        f.write(b"\0" * 1000)
        raise OSError("disk full")

    monkeypatch.setattr(save_util.torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    monkeypatch.undo()

    def replace_fails(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(save_util.os, "replace", replace_fails)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zip"]  # no temporary files left behind
    data, tensors = load_model_file(path)
    assert data["algorithm"] == "LSFSAC" and "module/actor" in tensors


def test_a_full_disk_names_the_file_that_could_not_be_saved(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(obj: object, f: io.IOBase) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(save_util.torch, "save", disk_full)
    with pytest.raises(OSError) as error:
        LSFSAC.load(saved).save(tmp_path / "m.zip")
    assert str(error.value) == f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}: '{tmp_path / 'm.zip'}'"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_files_get_the_mode_of_any_new_file(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_util.save_model_file(tmp_path / "m.zip", {"algorithm": "LSFSAC"}, {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by the team, as `open()` would make it


def test_get_and_set_parameters_copy_a_trained_policy(saved: Path) -> None:
    trained = LSFSAC.load(saved)
    fresh = tiny_model(seed=123)
    obs, _ = tiny_env().reset(seed=0)
    fresh.set_parameters(trained.get_parameters())
    assert fresh.predict(obs, deterministic=True)[0] == trained.predict(obs, deterministic=True)[0]
    assert not torch.equal(
        tiny_model(seed=123).actor.state_dict()["torso.net.0.weight"],
        trained.actor.state_dict()["torso.net.0.weight"],
    )
    for name, state in trained.get_parameters()["actor"].items():
        assert torch.equal(fresh.actor.state_dict()[name], state)
    fresh.set_parameters(saved)  # a model file works too
    with pytest.raises(ValueError, match=r"has no networks or optimizers \['policy'\]"):
        fresh.set_parameters({"policy": {}})
    with pytest.raises(ValueError, match="lack the networks"):
        fresh.set_parameters({"actor": trained.actor.state_dict()})
    fresh.set_parameters({"actor": trained.actor.state_dict()}, exact_match=False)
    small = tiny_model(hidden_dim=8)
    with pytest.raises(ValueError, match="parameters of actor do not fit"):
        small.set_parameters({"actor": trained.actor.state_dict()}, exact_match=False)


def test_set_env_continues_on_a_new_env_and_refuses_other_spaces(saved: Path) -> None:
    model = LSFSAC.load(saved, env=tiny_env())
    old_env = model.env
    model.set_env(tiny_env(max_cycles=10))
    assert model.env is not old_env
    model.learn(8, reset_num_timesteps=False)
    with pytest.raises(ValueError, match="the env does not match the model"):
        model.set_env(matrix_game_v0.parallel_env())


def test_load_model_reads_the_algorithm_from_the_file(tmp_path: Path) -> None:
    qmix = marl_lsf.QMIX("MlpPolicy", "matrix_game", hidden_dim=8)  # env names work as on the command line
    loaded = marl_lsf.load_model(qmix.save(tmp_path / "qmix"), env="matrix_game")
    assert type(loaded) is marl_lsf.QMIX and loaded.env is not None
    with pytest.raises(ModelFileError, match="holds a 'PPO' model"):
        marl_lsf.load_model(
            rewrite(
                tmp_path / "qmix.zip",
                tmp_path / "ppo.zip",
                data={**saved_data(tmp_path / "qmix.zip"), "algorithm": "PPO"},
            )
        )
    with pytest.raises(ValueError, match="unknown environment 'nope'"):
        marl_lsf.QMIX("MlpPolicy", "nope")


@pytest.mark.parametrize("algo", ["lsfsac", "qmix", "dop"])
def test_a_loaded_model_acts_with_the_epsilon_its_run_reached(algo: str, tmp_path: Path) -> None:
    kwargs = {"exploration": "epsilon_greedy"} if algo == "lsfsac" else {}
    model = ALGORITHMS[algo](
        "MlpPolicy", tiny_env(), seed=0, batch_size=2, exploration_fraction=0.5, **kwargs
    )
    model.learn(200)
    assert model.policy.exploration_rate.item() < 0.5
    loaded = type(model).load(model.save(tmp_path / "m.zip"))
    assert loaded._current_progress_remaining == model._current_progress_remaining
    # Not the schedule's start (1.0): predict(deterministic=False) and a continued run go on from here.
    assert loaded.policy.exploration_rate.item() == pytest.approx(model.policy.exploration_rate.item())


@pytest.mark.parametrize("value", [float("nan"), 2.0, "0.5", True])
def test_a_bad_schedule_progress_is_named(tmp_path: Path, value: object) -> None:
    saved = tiny_model().learn(20).save(tmp_path / "m.zip")
    bad = rewrite(saved, tmp_path / "bad.zip", data=saved_data(saved) | {"progress_remaining": value})
    with pytest.raises(ModelFileError, match="progress_remaining must be a number in"):
        LSFSAC.load(bad)
