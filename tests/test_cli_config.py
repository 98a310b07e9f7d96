"""``marl-lsf train --config FILE``: settings from YAML or a run.json, overridden by the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from marl_lsf.cli import main
from marl_lsf.presets import preset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "configs"


def _run_json(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def test_config_file_settings_with_command_line_overrides(tmp_path: Path) -> None:
    config = tmp_path / "mg.yaml"
    config.write_text(
        "algo: qmix\nenv: matrix_game\ntimesteps: 1.6e1\nseed: 3\n"
        "algo_kwargs: {batch_size: 2, hidden_dim: 8, learning_starts: 4}\n"
    )
    out = tmp_path / "run"
    argv = ["train", "--config", str(config), "--out", str(out), "--seed", "5", "--quiet"]
    assert main([*argv, "--algo-kwargs", "hidden_dim=16"]) == 0
    settings = _run_json(out)
    assert (settings["algo"], settings["env"], settings["timesteps"], settings["seed"]) == (
        "qmix",
        "matrix_game",
        16,
        5,
    )
    assert settings["algo_kwargs"] == {"batch_size": 2, "hidden_dim": 16, "learning_starts": 4}
    assert settings["hyperparameters"]["hidden_dim"] == 16


def test_a_run_json_as_config_trains_the_same_settings_again(tmp_path: Path) -> None:
    first = tmp_path / "first"
    argv = ["train", "--env", "matrix_game", "--timesteps", "8", "--out", str(first), "--quiet"]
    assert main([*argv, "--algo-kwargs", "batch_size=2", "hidden_dim=8", "--seed", "2"]) == 0
    again = tmp_path / "again"
    assert main(["train", "--config", str(first / "run.json"), "--out", str(again), "--quiet"]) == 0
    before, after = _run_json(first), _run_json(again)
    assert {k: v for k, v in after.items() if k != "out"} == {k: v for k, v in before.items() if k != "out"}


def test_config_preset_fills_the_presets_settings(tmp_path: Path) -> None:
    config = tmp_path / "pp.yaml"
    config.write_text("env: predator_prey\npreset: true\ntimesteps: 0\nalgo_kwargs: {latent_coef: 0.01}\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet", "--n-envs", "1"]) == 0
    settings = _run_json(out)
    expected = {k: v for k, v in preset("predator_prey", "lsfsac").items() if k != "n_envs"}
    assert settings["preset"] is True and settings["n_envs"] == 1
    assert settings["algo_kwargs"] == expected | {"latent_coef": 0.01}


@pytest.mark.parametrize("name", ["predator_prey_lsfsac.yaml", "smax_3m_lsfsac.yaml"])
def test_the_example_configs_are_valid(name: str) -> None:
    from marl_lsf.cli.train_config import read_config

    settings = read_config(EXAMPLES / name)
    assert settings["preset"] is True and settings["algo"] == "lsfsac" and settings["timesteps"] > 0


BAD_CONFIGS = {
    "unknown key": (
        "env: matrix_game\nlearning_rate: 0.1\n",
        r"unknown keys \['learning_rate'\]; it may set algo",
    ),
    "wrong type": ("env: matrix_game\ntimesteps: many\n", r"timesteps: not a number: 'many'"),
    "zero env copies": ("env: matrix_game\nn_envs: 0\n", r"n_envs: must be greater than 0"),
    "kwargs not a mapping": ("env: matrix_game\nalgo_kwargs: [1, 2]\n", r"algo_kwargs: expected a mapping"),
    "not a mapping": ("- env\n- matrix_game\n", r"must hold a mapping of train options, got list"),
    "invalid yaml": ("env: [matrix_game\n", r"is not valid YAML or JSON"),
    "alias bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcde", "bcdef", strict=True))
        + "env: matrix_game\n",
        r"holds over 10,000 values",
    ),
    "nested too deeply": (
        "env: matrix_game\nalgo_kwargs: {a: " + "[" * 5000 + "]" * 5000 + "}\n",
        r"is nested too deeply to be a settings file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_a_one_line_error_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text, message = BAD_CONFIGS[case]
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_config_with_resume_and_a_missing_config_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "--config: no file at" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--config", str(tmp_path / "none.yaml")]) == 2
    assert "drop --config" in capsys.readouterr().err


def test_a_config_may_not_choose_code_to_run_unless_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "PWNED"
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"env": "os:system", "env_kwargs": {"command": f"touch {marker}"}}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "names the env 'os:system', which is not a registered env name" in capsys.readouterr().err
    assert not marker.exists()
    factory = "marl_lsf.envs.matrix_game_v0:parallel_env"
    config.write_text(json.dumps({"env": factory, "timesteps": 4, "algo_kwargs": {"batch_size": 2}}))
    argv = ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet", "--trust-run-config"]
    assert main(argv) == 0
    assert _run_json(tmp_path / "run")["env"] == factory
