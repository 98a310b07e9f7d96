"""Hostile inputs: run folders that name code and malformed model files (action masks: test_masks.py)."""

from __future__ import annotations

import io
import json
import re
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
from test_masks import matrix_model

from marl_lsf import LSFSAC
from marl_lsf.cli import main
from marl_lsf.envs import matrix_game_v0
from marl_lsf.save_util import ModelFileError

MATRIX_FACTORY = "marl_lsf.envs.matrix_game_v0:parallel_env"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished matrix-game run folder (run.json, model.zip), trained for a few steps."""
    out = tmp_path_factory.mktemp("runs") / "mg"
    argv = ["train", "--env", "matrix_game", "--timesteps", "8", "--out", str(out), "--device", "cpu"]
    argv += ["--quiet", "--algo-kwargs", "batch_size=2", "hidden_dim=8", "mixer_embed_dim=4"]
    assert main(argv) == 0
    return out


def copy_run(run_folder: Path, dst: Path, **settings: object) -> Path:
    """A copy of ``run_folder`` at ``dst`` whose run.json is updated with ``settings``."""
    shutil.copytree(run_folder, dst)
    run_json = dst / "run.json"
    run_json.write_text(json.dumps(json.loads(run_json.read_text()) | settings))
    return dst


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The command's stderr, checked to be a single line."""
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


# -- run folders ----------------------------------------------------------------------------------


def test_issue_reproduction_os_system_run_json_is_refused_and_runs_nothing(
    run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "x"
    folder.mkdir()
    shutil.copy(run_folder / "model.zip", folder)
    (folder / "run.json").write_text(
        '{"algo":"lsfsac","env":"os:system","env_kwargs":{"command":"touch PWNED"},"timesteps":1}'
    )
    for argv in (["eval", "x/model.zip"], ["replay", "x/model.zip", "--text"], ["train", "--resume", "x"]):
        assert main(argv) == 2, argv
        err = one_line_error(capsys)
        assert "'os:system'" in err and "--trust-run-config" in err and "--env os:system" in err, err
        assert not (tmp_path / "PWNED").exists(), argv


def test_run_json_in_the_folder_above_is_also_refused(
    run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = copy_run(run_folder, tmp_path / "run", env="os:system", env_kwargs={"command": "touch PWNED"})
    (folder / "best").mkdir()
    shutil.copy(folder / "model.zip", folder / "best" / "model.zip")
    assert main(["eval", str(folder / "best" / "model.zip"), "--episodes", "1"]) == 2
    assert "may not choose code to run" in one_line_error(capsys)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("command", ["eval", "replay"])
def test_module_factory_env_runs_when_named_on_the_command_line_or_trusted(
    command: str, run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_run(run_folder, tmp_path / "run", env=MATRIX_FACTORY)
    model = str(folder / "model.zip")
    extra = ["--episodes", "1"] if command == "eval" else ["--text"]
    assert main([command, model, *extra]) == 2
    assert MATRIX_FACTORY in one_line_error(capsys)
    assert main([command, model, *extra, "--trust-run-config"]) == 0
    assert main([command, model, *extra, "--env", MATRIX_FACTORY]) == 0


def test_resume_of_a_module_factory_run_needs_the_same_env_or_trust(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_run(run_folder, tmp_path / "run", env=MATRIX_FACTORY)
    resume = ["train", "--resume", str(folder), "--device", "cpu", "--quiet"]
    assert main([*resume, "--timesteps", "10"]) == 2
    assert "--trust-run-config" in one_line_error(capsys)
    assert main([*resume, "--timesteps", "10", "--env", "matrix_game"]) == 2
    assert "differs from the run's env" in one_line_error(capsys)
    assert main([*resume, "--timesteps", "10", "--env", MATRIX_FACTORY]) == 0
    assert main([*resume, "--timesteps", "12", "--trust-run-config"]) == 0
    assert json.loads((folder / "run.json").read_text())["timesteps"] == 12


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"algo": "os:system"}, "unknown algorithm 'os:system'"),
        ({"algo": ["lsfsac"]}, '"algo" must be an algorithm name'),
        ({"env": {"target": "os:system"}}, '"env" must be an environment name'),
        ({"env_kwargs": ["touch PWNED"]}, '"env_kwargs" must be a JSON object'),
        ({"n_envs": 0}, '"n_envs" must be a whole number of at least 1'),
        ({"timesteps": "1e9"}, '"timesteps" must be a whole number'),
    ],
)
def test_malformed_run_json_is_named_on_resume(
    settings: dict[str, object],
    message: str,
    run_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = copy_run(run_folder, tmp_path / "run", **settings)
    assert main(["train", "--resume", str(folder), "--device", "cpu", "--quiet"]) == 2
    assert message in one_line_error(capsys)


def test_deeply_nested_run_json_is_one_line(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_run(run_folder, tmp_path / "run")
    (folder / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["eval", str(folder / "model.zip")]) == 2
    assert "is not valid JSON" in one_line_error(capsys)


# -- malformed model files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained LSF-SAC on the matrix game, saved with its optimizers."""
    return matrix_model(LSFSAC).save(tmp_path_factory.mktemp("model") / "model.zip")


def altered(src: Path, dst: Path, data_text: str | None = None, tensors: dict | None = None) -> Path:
    """A copy of the model file ``src`` at ``dst`` with ``data.json`` text and/or ``tensors.pt`` replaced."""
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in ("data.json", "tensors.pt")}
    if data_text is not None:
        members["data.json"] = data_text.encode()
    if tensors is not None:
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        members["tensors.pt"] = buffer.getvalue()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return dst


def file_data(path: Path) -> dict:
    """The ``data.json`` of a model file."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("data.json"))


def file_tensors(path: Path) -> dict:
    """The ``tensors.pt`` of a model file."""
    with zipfile.ZipFile(path) as archive:
        return torch.load(io.BytesIO(archive.read("tensors.pt")), weights_only=True)


def test_deeply_nested_data_json_is_a_model_file_error(model_file: Path, tmp_path: Path) -> None:
    path = altered(model_file, tmp_path / "deep.zip", data_text="[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelFileError, match="data.json is nested too deeply"):
        LSFSAC.load(path)


@pytest.mark.parametrize("counter", ["num_timesteps", "episode_num", "n_updates"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -3, 2.5, "12", True])
def test_non_integer_counters_are_named(
    model_file: Path, tmp_path: Path, counter: str, value: object
) -> None:
    text = json.dumps(file_data(model_file) | {counter: value})  # inf and NaN become Infinity and NaN
    path = altered(model_file, tmp_path / "counter.zip", data_text=text)
    with pytest.raises(ModelFileError, match=f"{counter} must be a non-negative whole number"):
        LSFSAC.load(path)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("learning_rate", "fast", "a finite float"),
        ("learning_rate", float("inf"), "a finite float"),
        ("gamma", None, "a finite float"),
        ("hidden_dim", 16.5, "a finite int"),
        ("buffer_size", float("inf"), "a finite int"),
        ("last_action_input", 1, "a bool"),
        ("ent_coef", [0.1], "a finite str or float"),
        ("seed", "0", "a finite int or None"),
    ],
)
def test_settings_of_the_wrong_type_are_named(
    model_file: Path, tmp_path: Path, setting: str, value: object, expected: str
) -> None:
    data = file_data(model_file)
    data["params"][setting] = value
    path = altered(model_file, tmp_path / "setting.zip", data_text=json.dumps(data))
    with pytest.raises(ModelFileError, match=f"model setting '{setting}' must be {expected}, got"):
        LSFSAC.load(path)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("n_critics", 10**6, "n_critics must be 1 or 2"),
        ("gamma", 5.0, "gamma must be in [0, 1]"),
        ("mixer", "nope", "mixer must be 'qmix' or 'vdn'"),
        ("policy", "Foo", "unknown policy 'Foo'"),
        ("team_reward", "x", "team_reward must be 'mean', 'sum' or a callable, got 'x'"),
    ],
)
def test_settings_the_constructor_refuses_are_a_model_file_error(
    model_file: Path, tmp_path: Path, setting: str, value: object, message: str
) -> None:
    data = file_data(model_file)
    if setting == "policy":
        data["policy"] = value
    else:
        data["params"][setting] = value
    path = altered(model_file, tmp_path / "refused.zip", data_text=json.dumps(data))
    for env in (None, matrix_game_v0.parallel_env()):
        with pytest.raises(ModelFileError, match=re.escape(f"model settings are invalid ({message}")):
            LSFSAC.load(path, env=env)
    if setting == "gamma":  # a setting the caller passes replaces the file's
        assert LSFSAC.load(path, gamma=0.9).gamma == 0.9


def _edit_data(data: dict, keys: tuple[object, ...], value: object) -> None:
    """Set the nested entry ``data[k0][k1]...`` to ``value``."""
    *parents, last = keys
    for key in parents:
        data = data[key]
    data[last] = value


#: Values of data.json that loaded and failed later (a traceback from torch or NumPy at load or
#: in ``learn``), found by replacing each entry of a saved LSF-SAC's data.json with odd values.
DATA_CASES = {
    "huge int size": (
        ("params", "hidden_dim"),
        10**30,
        "'hidden_dim' must be a whole number in 0..9223372036854775807",
    ),
    "negative size": (("params", "mixer_embed_dim"), -1, "'mixer_embed_dim' must be a whole number in 0.."),
    "int over float32": (
        ("params", "kl_coef"),
        10**39,
        "'kl_coef' must be at most 3.403e+38 in size (float32)",
    ),
    "float over float32": (("params", "target_entropy"), 1e308, "'target_entropy' must be at most 3.403e+38"),
    "negative learning rate": (
        ("params", "actor_learning_rate"),
        -1,
        "'actor_learning_rate' must be >= 0, got -1",
    ),
    "buffer over the memory": (
        ("params", "buffer_size"),
        10**15,  # refused by the replay buffer's memory estimate
        "the file's settings do not build a LSFSAC (",
    ),
    "params not an object": (("params",), "x", "params must be a JSON object, got 'x'"),
    "episode without a return": (
        ("ep_info_buffer",),
        [{}],
        "ep_info_buffer must be a list of objects of finite numbers, each with 'r' and 'l'",
    ),
    "numpy generator key": (
        ("rng", "numpy", "state", "key"),
        0,
        "random number generator states are malformed",
    ),
    "action count not a number": (("spec", "action_counts"), "x", "the saved spec is malformed (ValueError"),
    "no actions": (("spec", "action_counts"), [], "action_counts [], state_dim 1)"),
    "action count NaN": (("spec", "action_counts", 0), float("nan"), "the saved spec is malformed"),
    "huge observation": (("spec", "obs_shapes", 0, 0), 10**30, "the saved spec is malformed: agents"),
    "negative state size": (("spec", "state_dim"), -1, "the saved spec is malformed: agents"),
    "agents fewer than spaces": (
        ("spec", "agents"),
        ["agent_0"],
        "the saved spec is malformed: agents ['agent_0']",
    ),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_malformed_data_json_is_a_model_file_error_at_load(
    model_file: Path, tmp_path: Path, case: str
) -> None:
    keys, value, message = DATA_CASES[case]
    data = file_data(model_file)
    _edit_data(data, keys, value)
    path = altered(model_file, tmp_path / "data.zip", data_text=json.dumps(data))
    for env in (None, matrix_game_v0.parallel_env()):
        with pytest.raises(ModelFileError, match=re.escape(message)):
            LSFSAC.load(path, env=env)


def test_an_int_for_a_float_setting_loads_as_a_float(model_file: Path, tmp_path: Path) -> None:
    data = file_data(model_file)
    data["params"]["kl_coef"] = 10**30  # multiplied with a float32 loss, an int this large overflowed
    path = altered(model_file, tmp_path / "int.zip", data_text=json.dumps(data))
    model = LSFSAC.load(path)
    assert model.kl_coef == 1e30 and isinstance(model.kl_coef, float)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(
    model_file: Path, tmp_path: Path, bad: float
) -> None:
    tensors = file_tensors(model_file)
    tensors["module/actor"]["head.weight"][0, 0] = bad
    path = altered(model_file, tmp_path / "nan.zip", tensors=tensors)
    with pytest.raises(ModelFileError, match="tensor module/actor/head.weight contains NaN or inf"):
        LSFSAC.load(path)


def test_non_finite_optimizer_state_is_refused(model_file: Path, tmp_path: Path) -> None:
    model = LSFSAC.load(model_file, env=matrix_game_v0.parallel_env()).learn(16)
    saved = model.save(tmp_path / "trained.zip")
    tensors = file_tensors(saved)
    tensors["optim/actor_optimizer"]["state"][0]["exp_avg"].fill_(float("nan"))
    path = altered(saved, tmp_path / "nan_optim.zip", tensors=tensors)
    with pytest.raises(ModelFileError, match="tensor optim/actor_optimizer/state/0/exp_avg contains NaN"):
        LSFSAC.load(path)


@pytest.mark.parametrize("setting", ["hidden_dim", "mixer_embed_dim", "latent_dim"])
def test_huge_network_settings_are_refused_before_allocating(
    model_file: Path, tmp_path: Path, setting: str
) -> None:
    data = file_data(model_file)
    data["params"][setting] = 10**9  # terabytes of weights if the networks were built
    path = altered(model_file, tmp_path / "huge.zip", data_text=json.dumps(data))
    with pytest.raises(
        ModelFileError, match=r"tensor module/\w+/[\w.]+ has shape .* but the file's settings make it"
    ):
        LSFSAC.load(path)


def test_missing_tensor_is_named(model_file: Path, tmp_path: Path) -> None:
    tensors = file_tensors(model_file)
    del tensors["module/actor"]["head.bias"]
    path = altered(model_file, tmp_path / "missing.zip", tensors=tensors)
    with pytest.raises(ModelFileError, match="tensor module/actor/head.bias is missing"):
        LSFSAC.load(path)


def test_whole_float_for_an_int_setting_still_loads(model_file: Path, tmp_path: Path) -> None:
    data = file_data(model_file)
    data["params"]["learning_starts"] = 100.0  # LSFSAC(..., learning_starts=1e2) saves a float
    path = altered(model_file, tmp_path / "float.zip", data_text=json.dumps(data))
    assert LSFSAC.load(path).learning_starts == 100


def test_huge_random_state_is_a_model_file_error(model_file: Path, tmp_path: Path) -> None:
    data = file_data(model_file)
    data["rng"]["python"][1][0] = 10**40
    path = altered(model_file, tmp_path / "rng.zip", data_text=json.dumps(data))
    with pytest.raises(ModelFileError, match="random number generator states are malformed"):
        LSFSAC.load(path)


def test_malformed_model_is_one_line_on_the_command_line(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tensors = file_tensors(model_file)
    tensors["module/critics"][next(iter(tensors["module/critics"]))].fill_(float("nan"))
    path = altered(model_file, tmp_path / "nan.zip", tensors=tensors)
    assert main(["eval", str(path), "--env", "matrix_game", "--episodes", "1"]) == 2
    assert "contains NaN or inf" in one_line_error(capsys)


def test_zip_bomb_is_refused_before_it_is_inflated(model_file: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("data.json", json.dumps(file_data(model_file)))
        with archive.open("tensors.pt", "w", force_zip64=True) as member:
            chunk = bytes(2**24)
            for _ in range(8):  # 128 MiB of zeros in 0.6 MB
                member.write(chunk)
    assert bomb.stat().st_size < 10 * 2**20
    tracemalloc.start()  # reading the member would allocate its 128 MiB as Python bytes
    try:
        with pytest.raises(ModelFileError, match=r"tensors.pt would inflate .*MAX_COMPRESSION_RATIO"):
            LSFSAC.load(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"loading the bomb allocated {peak:,} bytes"


def test_large_data_json_and_odd_compression_are_refused(model_file: Path, tmp_path: Path) -> None:
    big = altered(model_file, tmp_path / "big.zip", data_text=json.dumps({"pad": "x" * (17 * 2**20)}))
    with pytest.raises(ModelFileError, match="data.json declares .* bytes, over"):
        LSFSAC.load(big)
    lzma = tmp_path / "lzma.zip"
    with zipfile.ZipFile(model_file) as src, zipfile.ZipFile(lzma, "w", zipfile.ZIP_LZMA) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    with pytest.raises(ModelFileError, match="compression method 14, not deflate"):
        LSFSAC.load(lzma)
