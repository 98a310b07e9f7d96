"""Hostile inputs: run folders that name code, masks with extreme logits, malformed model files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from marl_lsf.cli import main

MATRIX_FACTORY = "envs.matrix_game_v0:parallel_env"


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
