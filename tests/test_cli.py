"""End-to-end tests of the ``marl-lsf`` command on the toy envs (tiny budgets)."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from marl_lsf import QMIX
from marl_lsf.cli import CliError, load_model, main, parse_kwargs
from marl_lsf.env_registry import UnknownEnvError, env_settings, make_env_factory
from marl_lsf.envs import matrix_game_v0
from marl_lsf.envs.matrix_game_v0 import MatrixGameEnv
from marl_lsf.plotting import plot_curves
from marl_lsf.presets import preset
from marl_lsf.replay import ReplayError, record_episode, save_animation, save_gif

PP_KWARGS = ["grid_size=5", "n_predators=2", "n_prey=1", "max_cycles=20"]
SMALL_ALGO = ["batch_size=4", "hidden_dim=16", "mixer_embed_dim=8"]


def _train(out: Path, env: str, env_kwargs: list[str], timesteps: int, *extra: str) -> Path:
    argv = ["train", "--env", env, "--timesteps", str(timesteps), "--out", str(out), "--device", "cpu"]
    argv += ["--algo-kwargs", *SMALL_ALGO, *extra]
    if env_kwargs:
        argv += ["--env-kwargs", *env_kwargs]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A matrix-game run with evaluation and checkpoints, shown with the progress bar."""
    out = tmp_path_factory.mktemp("runs") / "mg"
    argv = ["train", "--env", "matrix_game", "--timesteps", "24", "--out", str(out), "--device", "cpu"]
    argv += ["--eval-freq", "8", "--eval-episodes", "2", "--checkpoint-freq", "12", "--seed", "3"]
    argv += ["--algo-kwargs", '{"batch_size": 4, "hidden_dim": 16}']
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def pp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny predator-prey run."""
    return _train(tmp_path_factory.mktemp("runs") / "pp", "predator_prey", PP_KWARGS, 60, "--quiet")


def test_help_of_the_installed_command() -> None:
    script = Path(sys.executable).with_name("marl-lsf")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("train", "eval", "replay", "plot", "sweep"):
        assert command in result.stdout


def test_train_writes_a_run_folder(matrix_run: Path) -> None:
    settings = json.loads((matrix_run / "run.json").read_text())
    assert settings["env"] == "matrix_game" and settings["algo"] == "lsfsac" and settings["seed"] == 3
    assert settings["algo_kwargs"] == {"batch_size": 4, "hidden_dim": 16}
    # Every setting, defaults included, as the saved model holds them.
    hyperparameters = settings["hyperparameters"]
    assert hyperparameters["batch_size"] == 4 and hyperparameters["gamma"] == 0.99
    assert hyperparameters == load_model(matrix_run / "model.zip").hyperparameters()
    assert (matrix_run / "model.zip").is_file() and (matrix_run / "best_model.zip").is_file()
    assert sorted(p.name for p in (matrix_run / "checkpoints").iterdir()) == [
        "model_12_steps.zip",
        "model_24_steps.zip",
    ]
    with (matrix_run / "progress.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    evals = [row for row in rows if row.get("eval/mean_return")]
    assert [int(float(row["time/total_timesteps"])) for row in evals] == [0, 8, 16, 24]
    assert load_model(matrix_run / "model.zip").num_timesteps == 24


def _logged_steps(run: Path) -> tuple[list[int], list[int]]:
    """Steps of the training rows and of the evaluation rows of a run's progress.csv."""
    with (run / "progress.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    training = [int(float(row["time/total_timesteps"])) for row in rows if not row.get("eval/mean_return")]
    evals = [int(float(row["time/total_timesteps"])) for row in rows if row.get("eval/mean_return")]
    return training, evals


def test_resume_continues_from_the_newest_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mg"
    _train(out, "matrix_game", [], 12, "--eval-freq", "8", "--eval-episodes", "2", "--checkpoint-freq", "8")
    # A crash after the checkpoint at step 8: the later checkpoint and model.zip are gone, the log is not.
    (out / "checkpoints" / "model_12_steps.zip").unlink()
    (out / "model.zip").unlink()
    assert _logged_steps(out) == ([4, 8, 12], [0, 8, 12])
    argv = ["train", "--resume", str(out), "--timesteps", "24", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    assert load_model(out / "model.zip").num_timesteps == 24
    assert json.loads((out / "run.json").read_text())["timesteps"] == 24
    # Rows logged after the checkpoint were dropped: no step is logged twice.
    assert _logged_steps(out) == ([4, 8, 12, 16, 20, 24], [0, 8, 16, 24])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "model_16_steps.zip",
        "model_24_steps.zip",
        "model_8_steps.zip",
    ]
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--device", "cpu"]) == 0
    assert "is complete: 24 of 24 steps" in " ".join(capsys.readouterr().out.split())


def test_resume_takes_a_model_zip_newer_than_the_last_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mg"
    # Stopped at step 12 (Ctrl-C saves model.zip) after the checkpoint at step 8.
    _train(out, "matrix_game", [], 12, "--checkpoint-freq", "8")
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--timesteps", "16", "--device", "cpu", "--quiet"]) == 0
    assert f"from {out / 'model.zip'} at 12 of 16 steps" in " ".join(capsys.readouterr().out.split())
    assert load_model(out / "model.zip").num_timesteps == 16


def test_a_run_shorter_than_one_episode_still_logs_a_row(tmp_path: Path) -> None:
    out = _train(tmp_path / "pp", "predator_prey", [], 40)
    training, _ = _logged_steps(out)
    assert training == [40]


def test_a_run_killed_before_its_first_checkpoint_starts_again_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mg"
    _train(out, "matrix_game", [], 12, "--eval-freq", "8", "--eval-episodes", "2")
    # Killed before anything was saved: run.json and a log, no checkpoint, no model.zip.
    (out / "model.zip").unlink()
    assert main(["train", "--env", "matrix_game", "--out", str(out)]) == 2
    assert f"--resume {out}" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "--resume", str(out), "--device", "cpu", "--quiet"]) == 0
    assert "starting LSFSAC again from step 0" in " ".join(capsys.readouterr().out.split())
    assert load_model(out / "model.zip").num_timesteps == 12
    assert _logged_steps(out) == ([4, 8, 12], [0, 8, 12])


def test_a_new_run_refuses_a_used_folder(matrix_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--env", "matrix_game", "--out", str(matrix_run)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_env_kwargs_are_recorded(pp_run: Path) -> None:
    settings = json.loads((pp_run / "run.json").read_text())
    assert settings["env_kwargs"] == {"grid_size": 5, "n_predators": 2, "n_prey": 1, "max_cycles": 20}
    # The env's own defaults too, read through predator_prey_v1's **kwargs from its base class.
    assert settings["env_settings"] == {
        **settings["env_kwargs"],
        "view_radius": 2,
        "capture_reward": 10.0,
        "miscapture_punishment": -2.0,
        "min_catchers": 2,
        "render_mode": None,
    }


def test_eval_prints_a_table(matrix_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(matrix_run / "model.zip"), "--episodes", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "mean return" in out and "win rate" in out and "mean episode length" in out


def test_replay_gif_has_one_frame_per_step_plus_reset(pp_run: Path, tmp_path: Path) -> None:
    gif = tmp_path / "replay.gif"
    assert (
        main(["replay", str(pp_run / "model.zip"), "--out", str(gif), "--seed", "5", "--device", "cpu"]) == 0
    )
    model = load_model(pp_run / "model.zip", "cpu")
    factory = make_env_factory("predator_prey", grid_size=5, n_predators=2, n_prey=1, max_cycles=20)
    recording = record_episode(model, factory, seed=5)
    with Image.open(gif) as image:
        assert image.n_frames == recording.length + 1
        assert image.size == (200, 200 + 14), "40 px per cell of the 5x5 grid, a 14 px caption strip"


def test_sc2_replay_is_requested_from_the_env(matrix_run: Path) -> None:
    saved: list[bool] = []

    class ReplayingGame(MatrixGameEnv):
        def save_replay(self) -> None:
            saved.append(True)

    recording = record_episode(load_model(matrix_run / "model.zip", "cpu"), ReplayingGame, sc2_replay=True)
    assert saved == [True] and recording.length == 1 and recording.frames == []


def test_replay_text_trace_in_the_terminal(matrix_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(matrix_run / "model.zip"), "--out", "-"]) == 0
    out = capsys.readouterr().out
    assert "step 1: agent_0=" in out and "episode: 1 steps" in out and "payoff" in out


def test_replay_trace_names_predator_prey_actions(pp_run: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    assert main(["replay", str(pp_run / "model.zip"), "--out", str(trace)]) == 0
    text = trace.read_text()
    assert "predator_0=" in text and any(
        name in text for name in ("right", "down", "left", "up", "stay", "catch")
    )


def test_plot_writes_a_png(matrix_run: Path, pp_run: Path, tmp_path: Path) -> None:
    png = tmp_path / "curves.png"
    assert main(["plot", str(matrix_run), str(pp_run), "--out", str(png)]) == 0
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_plot_curves_median_and_band(tmp_path: Path) -> None:
    groups = {
        "a": [
            (np.array([0, 10, 20]), np.array([0.0, 1.0, 2.0])),
            (np.array([5, 15, 25]), np.array([1.0, 1.0, 3.0])),
        ],
        "b": [(np.array([0, 30]), np.array([1.0, np.nan]))],
    }
    path = plot_curves(groups, tmp_path / "c.png", "steps", "return", "test")
    assert path.stat().st_size > 0


def test_sweep_forwards_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("marl_lsf.sweep")
    fake.cli_main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "marl_lsf.sweep", fake)
    assert main(["sweep", "--config", "s.yaml", "--help"]) == 0
    assert seen == [["--config", "s.yaml", "--help"]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "missing/model.zip"], "no model file"),
        (["train", "--env", "matrix_game", "--env-kwargs", "{bad"], "invalid JSON"),
        (["train", "--env", "nope"], "unknown environment 'nope'"),
        (["train", "--env", "matrix_game", "--algo", "ppo"], "valid algorithms: lsfsac, qmix, vdn"),
        (["train", "--env", "matrix_game", "--algo-kwargs", "no_such_arg=1"], "no_such_arg"),
        (["train", "--env", "matrix_game", "--timesteps", "1.5"], "whole number"),
        (["train"], "needs --env"),
        (["train", "--resume", "nowhere"], "nowhere is not a folder"),
        (["train", "--resume", "."], "not a run folder"),
        (["train", "--resume", ".", "--seed", "1", "--env", "matrix_game"], "drop --seed"),
        (
            ["train", "--env", "matrix_game", "--env-kwargs", "nope=1"],
            "environment 'matrix_game' does not take",
        ),
        (["train", "--env", "matrix_game", "--device", "nonsense"], "argument --device: device must be"),
        (
            ["train", "--env", "matrix_game", "--eval-episodes", "0"],
            "--eval-episodes: must be greater than 0",
        ),
        (["train", "--env", "matrix_game", "--out", "notes.txt"], "--out notes.txt is a file"),
        (["replay", "missing/model.zip", "--fps", "0"], "--fps: must be greater than 0"),
        (["eval", "missing/model.zip", "--episodes", "0"], "--episodes: must be greater than 0"),
        (["eval", "missing/model.zip", "--device", "cuda:x"], "argument --device"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a run folder")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_not_replaced_by_the_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--env", "matrix_game", "--device", "cuda", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        QMIX("MlpPolicy", matrix_game_v0.parallel_env(), device="cuda")


def test_a_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "run"))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["train", "--env", "matrix_game", "--timesteps", "8", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and "Traceback" not in err


def test_model_on_the_wrong_env_is_refused(matrix_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", str(matrix_run / "model.zip"), "--env", "predator_prey", "--env-kwargs", *PP_KWARGS]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "does not match the model" in err and len(err.splitlines()) == 1


def test_images_need_an_rgb_array_env(
    matrix_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(matrix_run / "model.zip"), "--out", str(tmp_path / "r.gif")]) == 2
    assert "cannot render images" in capsys.readouterr().err


def test_sweep_without_its_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "marl_lsf.sweep", None)
    assert main(["sweep"]) == 2
    assert "marl_lsf.sweep" in capsys.readouterr().err


def test_parse_kwargs() -> None:
    assert parse_kwargs(['{"a": 1}', "b=2", "c=x", "d=[1, 2]", "a=true"], "--x") == {
        "a": True,
        "b": 2,
        "c": "x",
        "d": [1, 2],
    }
    with pytest.raises(CliError, match="key=value"):
        parse_kwargs(["oops"], "--x")
    with pytest.raises(CliError, match="JSON object"):
        parse_kwargs(["[1]"], "--x")


def test_env_names() -> None:
    assert make_env_factory("matrix_game")().possible_agents == ["agent_0", "agent_1"]
    assert make_env_factory("marl_lsf.envs.matrix_game_v0:parallel_env", n_agents=2)().possible_agents == [
        "agent_0",
        "agent_1",
    ]
    assert make_env_factory("smax:3m").kwargs == {"map_name": "3m"}
    # A misspelt argument of an env that forwards **kwargs to its base class is named at once.
    with pytest.raises(ValueError, match="does not take.*n_pray.*it takes: grid_size, n_predators"):
        make_env_factory("predator_prey", n_pray=2)
    assert env_settings(make_env_factory("smax:2s3z", seed=4))["map_name"] == "2s3z"
    assert env_settings(make_env_factory("smax:2s3z", seed=4))["seed"] == 4
    for name, message in [
        ("smac:", "names no map"),
        ("no.such:f", "cannot import"),
        ("marl_lsf.envs.matrix_game_v0:x", "no callable"),
    ]:
        with pytest.raises(UnknownEnvError, match=message):
            make_env_factory(name)


def test_save_animation_checks(tmp_path: Path) -> None:
    frame = np.zeros((20, 20, 3), dtype=np.uint8)
    path = save_gif([frame] * 4, tmp_path / "same.gif", fps=10)
    with Image.open(path) as image:
        assert image.n_frames == 4
    with pytest.raises(ReplayError, match=r"\.gif or \.mp4"):
        save_animation([frame], tmp_path / "x.avi")
    with pytest.raises(ReplayError, match="H x W x 3"):
        save_animation([np.zeros((4, 4))], tmp_path / "x.gif")
    with pytest.raises(ReplayError, match="no frames"):
        save_gif([], tmp_path / "x.gif")
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        with pytest.raises(ReplayError, match=r"imageio\[ffmpeg\]"):
            save_animation([frame], tmp_path / "x.mp4")
    else:
        assert save_animation([frame] * 3, tmp_path / "x.mp4").stat().st_size > 0


def test_preset_fills_the_settings_and_run_json_records_them(tmp_path: Path) -> None:
    out = tmp_path / "pp"
    argv = ["train", "--env", "predator_prey", "--env-kwargs", *PP_KWARGS, "--preset", "--quiet"]
    argv += ["--timesteps", "40", "--out", str(out), "--device", "cpu", "--algo-kwargs", "batch_size=4"]
    assert main(argv) == 0
    settings = json.loads((out / "run.json").read_text())
    expected = preset("predator_prey", "lsfsac")
    assert settings["preset"] is True and settings["n_envs"] == expected.pop("n_envs")
    assert settings["algo_kwargs"] == expected | {"batch_size": 4}, "--algo-kwargs overrides the preset"
    assert load_model(out / "model.zip", "cpu").policy_objective == "forward_kl"


@pytest.mark.parametrize(
    ("extra", "policy", "n_envs"),
    [([], "RnnPolicy", 8), (["--policy", "MlpPolicy", "--n-envs", "2"], "MlpPolicy", 2)],
)
def test_smax_preset_takes_the_recurrent_agents_it_was_measured_with(
    extra: list[str], policy: str, n_envs: int
) -> None:
    from marl_lsf.cli.command import build_parser
    from marl_lsf.cli.train import _preset

    args = build_parser().parse_args(["train", "--env", "smax:3m", "--preset", *extra])
    settings = _preset(args)
    assert (args.policy, args.n_envs) == (policy, n_envs), "the command line overrides the preset"
    assert settings == {k: v for k, v in preset("smax", "lsfsac").items() if k != "n_envs"}
    assert settings["policy_objective"] == "forward_kl" and settings["td_target"] == "max"


def test_preset_for_an_env_without_one_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--env", "matrix_game", "--algo", "qmix", "--preset", "--out", str(tmp_path / "mg")]
    assert main(argv) == 2
    assert "--preset: no preset for env 'matrix_game' and algorithm 'qmix'" in capsys.readouterr().err


def test_paths_are_printed_whole_when_piped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("a_long_folder_name_" * 4) / "[run]"
    assert main(["train", "--env", "matrix_game", "--timesteps", "8", "--quiet", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()  # captured output: 80 columns, as in a pipe
    assert any(line.endswith(f"-> {out}") for line in lines), "the start line keeps the whole folder"
    assert f"model: {out / 'model.zip'}" in lines and f"logs: {out}" in lines
