"""Sweeps on a local Ray: runs, failure reporting, summary files and the ``marl-lsf sweep`` command."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from marl_lsf.sweep import SweepError, SweepGrid, sweep
from marl_lsf.sweep.driver import RAY_WORKER_NICENESS, start_local_ray

ray = pytest.importorskip("ray")

MATRIX = {"name": "matrix_game"}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray (2 CPUs) for the module, started as ``sweep`` starts one; ``sweep`` uses it and leaves it running."""
    start_local_ray(2)
    yield
    ray.shutdown()


def test_local_ray_runs_at_the_callers_priority_not_rays_niceness_15() -> None:
    niceness = ray.get(ray.remote(lambda: os.nice(0)).remote())
    assert niceness == os.nice(0), "a sweep's runs would be starved by any busy process beside them"
    assert RAY_WORKER_NICENESS not in os.environ, "the variable is restored after Ray starts"


def test_sweep_reports_failures_and_writes_summary(tmp_path: Path) -> None:
    grid = {
        "algos": ["lsfsac"],
        "envs": [MATRIX],
        "seeds": [0, 1],
        "timesteps": 200,
        "overrides": [{}, {"n_critics": 5}],
        "eval_episodes": 2,
        "eval_freq": 100,
    }
    result = sweep(grid, tmp_path)

    assert len(result.runs) == 4
    ok = [r for r in result.runs if r.ok]
    assert {(r.tag, r.seed) for r in ok} == {("default", 0), ("default", 1)}
    for run in ok:
        run_dir = tmp_path / "lsfsac" / "matrix_game" / "default" / f"seed_{run.seed}"
        assert Path(run.run_dir) == run_dir
        assert (run_dir / "model.zip").is_file()
        assert "eval/mean_return" in (run_dir / "progress.csv").read_text().splitlines()[0]
        assert run.timesteps == 200 and run.mean_return is not None and run.wall_s > 0
        assert run.curve_steps[-1] == 200
    assert len(result.failed) == 2
    for run in result.failed:
        assert run.tag == "n_critics=5" and run.error.startswith("ValueError: n_critics must be 1 or 2")
        assert (Path(run.run_dir) / "error.txt").is_file()

    summary = result.summary_md.read_text()
    assert "| lsfsac | matrix_game | default | 2/2 |" in summary
    assert "| lsfsac | matrix_game | n_critics=5 | 0/2 |" in summary
    assert summary.count("ValueError: n_critics must be 1 or 2") == 2
    saved = json.loads(result.summary_json.read_text())
    assert [r["ok"] for r in saved] == [r.ok for r in result.runs]
    assert result.plots == [tmp_path / "curves_matrix_game.png"] and result.plots[0].stat().st_size > 0


def test_cli_sweep_end_to_end(tmp_path: Path) -> None:
    from marl_lsf.cli import main

    config = tmp_path / "grid.yaml"
    grid = {
        "algos": ["lsfsac", "qmix"],
        "envs": [MATRIX],
        "seeds": [0],
        "timesteps": 100,
        "eval_episodes": 2,
        "eval_freq": 50,
    }
    config.write_text(yaml.safe_dump(grid))
    results = tmp_path / "results"

    assert main(["sweep", str(config), "--results", str(results), "--set", "batch_size=8"]) == 0

    summary = (results / "summary.md").read_text()
    assert "| lsfsac | matrix_game | default | 1/1 |" in summary
    assert "| qmix | matrix_game | default | 1/1 |" in summary
    settings = json.loads((results / "qmix" / "matrix_game" / "default" / "seed_0" / "run.json").read_text())
    assert settings["algo_kwargs"]["batch_size"] == 8
    assert (results / "curves_matrix_game.png").is_file()


def test_finished_runs_are_reused_unless_a_setting_changed(tmp_path: Path) -> None:
    grid = {"algos": ["qmix"], "envs": [MATRIX], "seeds": [0], "timesteps": 40, "eval_episodes": 1}
    first = sweep(grid, tmp_path).runs[0]
    run_dir = Path(first.run_dir)
    assert json.loads((run_dir / "run.json").read_text())["env_settings"]["n_agents"] is None
    # A result.json written before run.json recorded the env's settings, by another version: reused.
    saved = json.loads((run_dir / "result.json").read_text())
    del saved["settings"]["env_settings"]
    saved["settings"]["marl_lsf_version"] = "0.0.1"
    (run_dir / "result.json").write_text(json.dumps(saved))
    assert sweep(grid, tmp_path).runs[0].wall_s == first.wall_s
    # A setting that chooses something: trained again.
    assert sweep({**grid, "timesteps": 48}, tmp_path).runs[0].timesteps == 48


def test_example_grid_parses() -> None:
    grid = SweepGrid.from_yaml(Path(__file__).parents[1] / "examples" / "sweep.yaml")
    assert grid.algos == ("lsfsac", "qmix") and len(grid.runs("x")) == 8


def test_invalid_grids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="unknown algorithm"):
        SweepGrid.from_dict({"algos": ["ppo"], "envs": [MATRIX], "seeds": [0], "timesteps": 10})
    with pytest.raises(SweepError, match="unknown grid keys"):
        SweepGrid.from_dict({"algos": ["qmix"], "envs": [MATRIX], "seeds": [0], "timesteps": 10, "lr": 1})
    from marl_lsf.sweep import cli_main

    assert cli_main([str(tmp_path / "missing.yaml"), "--results", str(tmp_path)]) == 2


def test_a_yaml_alias_bomb_grid_is_refused(tmp_path: Path) -> None:
    from marl_lsf.sweep.grid import read_grid_yaml

    anchors = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    anchors += [
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    bomb = tmp_path / "bomb.yaml"  # 10**9 values in 600 bytes, inside a valid key
    bomb.write_text("algos: [lsfsac]\nenvs: [matrix_game]\nalgo_kwargs: {" + ", ".join(anchors) + "}\n")
    with pytest.raises(SweepError, match=r"holds over 10,000 values \(YAML aliases expanded\)"):
        read_grid_yaml(bomb)


def test_a_deeply_nested_grid_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from marl_lsf.cli import main

    deep = tmp_path / "deep.yaml"  # PyYAML composes nested values recursively
    deep.write_text("[" * 50_000 + "]" * 50_000)
    assert main(["sweep", str(deep), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is nested too deeply to be a settings file" in err, err


def test_a_run_without_evaluation_reports_its_training_curve_under_its_own_key(tmp_path: Path) -> None:
    from marl_lsf.plotting import find_runs, read_progress
    from marl_lsf.sweep import train_run, write_summary

    grid = {
        "algos": ["qmix"],
        "envs": [MATRIX],
        "seeds": [0],
        "timesteps": 64,
        "eval_freq": 0,
        "eval_episodes": 1,
    }
    result = train_run(SweepGrid.from_dict(grid).runs(tmp_path)[0])
    assert result.ok and result.curve_key == "rollout/ep_rew_mean" and len(result.curve_steps) > 1
    assert result.curve_win_rates == [], "the matrix game reports no wins: its return curve is not a win rate"
    write_summary([result], tmp_path)
    (run,) = find_runs([tmp_path / "summary.json"])
    assert read_progress(run, "rollout/ep_rew_mean")[1].tolist() == result.curve_returns
