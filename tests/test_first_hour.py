"""A new user's first hour (issue #18): mistakes that must fail fast with a message that says the fix."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from marl_lsf import LSFSAC, buffer, plotting
from marl_lsf.buffer import EpisodeReplayBuffer
from marl_lsf.cli import main
from marl_lsf.envs import predator_prey_v1
from marl_lsf.main_guard import MAIN_GUARD, UnguardedMainError
from marl_lsf.team_env import TeamSpec

REPO = Path(__file__).resolve().parents[1]

SPEC = TeamSpec(("a", "b"), ((3,), (3,)), (4, 4), 6, True, "none")


def test_the_memory_estimate_is_the_bytes_a_full_buffer_allocates() -> None:
    buf = EpisodeReplayBuffer(5, SPEC, num_envs=2, max_episode_steps=7)
    allocated = sum(a.nbytes for a in [*buf.storage.values(), *buf.stage.values()]) + buf.lengths.nbytes
    assert buf.nbytes_when_full() == allocated
    assert buf.nbytes_when_full(max_steps=14) > allocated
    float32 = buf.nbytes_when_full(float_dtype=np.float32)
    assert float32 - allocated == (5 + 2) * 8 * (2 * 3 + 6) * 2  # obs and state, 2 more bytes each


def test_a_buffer_of_a_million_episodes_fails_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_allocation(*_: object) -> None:
        raise AssertionError("storage was allocated before the memory check")

    monkeypatch.setattr(EpisodeReplayBuffer, "_allocate", no_allocation)
    with pytest.raises(ValueError, match="buffer_size counts episodes, not steps") as info:
        LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, buffer_size=1_000_000)
    message = str(info.value)
    assert "\n" not in message
    assert "1,000,000 episodes x 200 steps" in message
    estimate = int(re.search(r"\(([\d,]+) bytes\)", message)[1].replace(",", ""))
    assert estimate > 100 * 2**30
    suggested = int(re.search(r"buffer_size=([\d,]+)", message)[1].replace(",", ""))
    assert 1 <= suggested < 1_000_000


def test_a_buffer_near_the_available_memory_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    needed = EpisodeReplayBuffer(100, SPEC, max_episode_steps=10).nbytes_when_full()
    monkeypatch.setattr(buffer, "available_memory", lambda: int(needed / 0.8))
    with pytest.warns(UserWarning, match="needs about .* GiB"):
        EpisodeReplayBuffer(100, SPEC, max_episode_steps=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EpisodeReplayBuffer(10, SPEC, max_episode_steps=10)
    monkeypatch.setattr(buffer, "available_memory", lambda: needed // 2)
    with pytest.raises(ValueError, match="use e.g. buffer_size="):
        EpisodeReplayBuffer(100, SPEC, max_episode_steps=10)


def test_growing_past_the_memory_is_refused_and_keeps_the_stored_episodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buf = EpisodeReplayBuffer(100, SPEC, max_episode_steps=10)
    monkeypatch.setattr(buffer, "available_memory", lambda: int(buf.nbytes_when_full() * 1.5))
    with pytest.raises(ValueError, match="x 20 steps") as refused:
        buf._grow()
    assert buf.max_steps == 10 and buf.storage["obs"].shape[1] == 11
    # The cause is an episode longer than any before: the message says so before the buffer's size.
    assert str(refused.value).startswith("an episode has run 10 steps without ending")
    assert "time limit" in str(refused.value)


def test_available_memory_reads_proc_meminfo_without_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/meminfo").exists():
        pytest.skip("no /proc/meminfo here")
    monkeypatch.setitem(sys.modules, "psutil", None)
    available = buffer.available_memory()
    assert isinstance(available, int) and available > 0


def run_script(path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as the script ``path`` in a fresh interpreter that imports this tree's marl_lsf."""
    path.write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(path)], cwd=path.parent, env=env, capture_output=True, text=True, timeout=600
    )


def test_an_unguarded_script_with_worker_processes_fails_before_starting_them(tmp_path: Path) -> None:
    result = run_script(
        tmp_path / "train.py",
        """
        from functools import partial
        from marl_lsf import LSFSAC
        from marl_lsf.envs import predator_prey_v0
        print("top level ran", flush=True)
        make_pp = partial(predator_prey_v0.parallel_env, grid_size=5, n_predators=2, n_prey=1, max_cycles=10)
        LSFSAC("MlpPolicy", make_pp, n_envs=2, vectorization="workers")
        print("model built", flush=True)
        """,
    )
    assert result.returncode != 0
    assert result.stdout.count("top level ran") == 1 and "model built" not in result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("marl_lsf.main_guard.UnguardedMainError") and MAIN_GUARD in last_line


def test_the_guard_check_passes_inside_the_guard(tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(
        textwrap.dedent(
            """
            from marl_lsf.main_guard import check_main_guard

            if __name__ == "__main__":
                check_main_guard()
                passed = True
            """
        )
    )
    assert runpy.run_path(str(script), run_name="__main__")["passed"]
    script.write_text("from marl_lsf.main_guard import check_main_guard\ncheck_main_guard()\n")
    with pytest.raises(UnguardedMainError):
        runpy.run_path(str(script), run_name="__main__")


def test_a_worker_importing_an_unguarded_script_fails_at_once(tmp_path: Path) -> None:
    script = tmp_path / "reimported.py"
    script.write_text("from marl_lsf.main_guard import check_main_guard\ncheck_main_guard()\n")
    with pytest.raises(UnguardedMainError, match="re-run the top level"):
        runpy.run_path(str(script), run_name="__mp_main__")


def fake_run(run_dir: Path, seed: int, algo_kwargs: dict[str, object], overrides: dict[str, object]) -> None:
    """A run folder as a sweep writes it: ``run.json`` and a three-row ``progress.csv``."""
    run_dir.mkdir(parents=True)
    settings = {
        "algo": "lsfsac",
        "env": "predator_prey",
        "env_kwargs": {},
        "seed": seed,
        "timesteps": 300,
        "algo_kwargs": algo_kwargs,
        "overrides": overrides,
    }
    (run_dir / "run.json").write_text(json.dumps(settings))
    rows = [f"{step},{seed + step / 100 + 10 * len(overrides)}" for step in (100, 200, 300)]
    (run_dir / "progress.csv").write_text("time/total_timesteps,eval/mean_return\n" + "\n".join(rows) + "\n")


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """Two variants (default, ``latent_dim=0``) x two seeds, four levels below the sweep folder."""
    root = tmp_path / "sweep"
    for seed in (0, 1):
        fake_run(root / "lsfsac" / "predator_prey" / "default" / f"seed_{seed}", seed, {"batch_size": 8}, {})
        variant = {"latent_dim": 0}
        fake_run(
            root / "lsfsac" / "predator_prey" / "latent_dim=0" / f"seed_{seed}",
            seed,
            {"batch_size": 8, **variant},
            variant,
        )
    return root


def test_a_sweep_folder_gives_one_labelled_group_per_variant(sweep_dir: Path) -> None:
    folders = plotting.find_run_folders([sweep_dir])
    assert len(folders) == 4
    groups = plotting.load_run_curves(folders, "eval/mean_return")
    assert sorted(groups) == ["latent_dim=0", "latent_dim=default"]
    assert [len(curves) for curves in groups.values()] == [2, 2]
    assert sorted(float(y[-1]) for _, y in groups["latent_dim=0"]) == [13.0, 14.0]
    assert plotting.shared_setup(folders) == "lsfsac on predator_prey (env defaults)"


def test_plot_command_on_a_sweep_draws_two_curves(sweep_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "curves.png"
    assert main(["plot", str(sweep_dir), "--out", str(png), "--key", "eval/mean_return"]) == 0
    assert png.stat().st_size > 0
    merged = plotting.load_run_curves(
        plotting.find_run_folders([sweep_dir]), "eval/mean_return", ["algo", "env"]
    )
    assert list(merged) == ["lsfsac / predator_prey"] and len(merged["lsfsac / predator_prey"]) == 4


def test_nested_settings_flatten_to_dotted_names() -> None:
    flat = plotting.flatten_settings(
        {"algo": "qmix", "env_kwargs": {}, "algo_kwargs": {"tau": 0.5, "x": [1]}}
    )
    assert flat == {"algo": '"qmix"', "algo_kwargs.tau": "0.5", "algo_kwargs.x": "[1]"}


def test_runs_that_differ_in_algo_and_env_kwargs(tmp_path: Path) -> None:
    for name, algo, kwargs in [("a", "qmix", {}), ("b", "lsfsac", {}), ("c", "lsfsac", {"n_prey": 4})]:
        run_dir = tmp_path / name
        run_dir.mkdir()
        settings = {"algo": algo, "env": "predator_prey", "env_kwargs": kwargs, "seed": 0}
        (run_dir / "run.json").write_text(json.dumps(settings))
    (tmp_path / "d").mkdir()
    folders = sorted(tmp_path.iterdir())
    groups = plotting.group_runs(folders)
    assert list(groups) == [
        "qmix / n_prey=default",
        "lsfsac / n_prey=default",
        "lsfsac / n_prey=4",
        str(tmp_path / "d"),
    ]
    assert plotting.shared_setup(folders[:3]) == "on predator_prey (varying env settings)"
    assert plotting.shared_setup(folders[1:3]) == "lsfsac on predator_prey (varying env settings)"
    assert plotting.shared_setup(folders[2:3]) == "lsfsac on predator_prey (n_prey=4)"
    assert plotting.shared_setup(folders) == ""


def test_no_run_folders_below_a_path_is_a_plot_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    with pytest.raises(plotting.PlotError, match="no run folders"):
        plotting.find_run_folders([tmp_path / "empty"])
    with pytest.raises(plotting.PlotError, match="is not a folder"):
        plotting.find_run_folders([tmp_path / "missing"])


def test_the_readmes_utility_tables_call_runs_as_written() -> None:
    import marl_lsf
    from marl_lsf.envs import matrix_game_v0

    calls = re.findall(r"`(marl_lsf\.utility_tables\([^`]*\))`", (REPO / "README.md").read_text())
    assert calls, "the README shows no utility_tables call"
    env = matrix_game_v0.parallel_env()
    obs, _ = env.reset(seed=0)
    model = marl_lsf.QMIX("MlpPolicy", matrix_game_v0.parallel_env, hidden_dim=8, seed=0)
    for call in calls:
        tables = eval(call, {"marl_lsf": marl_lsf, "model": model, "obs": obs, "env": env})
        assert tables.joint.shape == (3, 3)
    with pytest.raises(ValueError, match=re.escape("pass state=env.state() to utility_tables")):
        marl_lsf.utility_tables(model, obs)


def test_plot_compares_runs_cut_at_different_steps_where_all_got_to(
    sweep_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The latent_dim=0 runs stop at step 200 (as runs cut by a wall-time limit do).
    for seed in (0, 1):
        progress = sweep_dir / "lsfsac" / "predator_prey" / "latent_dim=0" / f"seed_{seed}" / "progress.csv"
        progress.write_text("\n".join(progress.read_text().splitlines()[:3]) + "\n")
    groups = plotting.load_run_curves(plotting.find_run_folders([sweep_dir]), "eval/mean_return")
    assert plotting.common_last_step(groups) == 200
    assert plotting.value_at(groups["latent_dim=default"], 200) == pytest.approx(2.5)  # seeds 2.0 and 3.0
    assert plotting.value_at(groups["latent_dim=default"], 150) == pytest.approx(2.0)
    assert plotting.value_at(groups["latent_dim=0"], 250) is None

    assert main(["plot", str(sweep_dir), "--out", str(tmp_path / "c.png"), "--key", "eval/mean_return"]) == 0
    rows = {
        line.split("│")[1].strip(): line.split("│")[2:6]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("│")
    }
    assert [cell.strip() for cell in rows["latent_dim=default"]] == ["2", "2.500", "3.500", "3.500"]
    assert [cell.strip() for cell in rows["latent_dim=0"]] == ["2", "12.500", "12.500", "12.500"]

    table = tmp_path / "table.md"
    args = ["plot", str(sweep_dir), "--out", str(tmp_path / "c.png"), "--key", "eval/mean_return"]
    assert main([*args, "--table", str(table)]) == 0
    assert "| latent_dim=default | 2 | 2.500 | 3.500 | 3.500 | 300 |" in table.read_text()
    assert main([*args, "--table", str(tmp_path)]) == 2  # a folder: a one-line error naming the option
    assert "--table" in capsys.readouterr().err


def write_summary(path: Path, seeds: list[int], ok: bool = True) -> Path:
    """A sweep's summary.json (as ``marl_lsf.sweep`` writes it) of one QMIX run per seed, plus a failed one."""
    from marl_lsf.sweep.run import RunResult

    rows = [
        RunResult(
            "qmix",
            "smax_3m",
            "default",
            seed,
            f"/elsewhere/seed_{seed}",
            ok=ok,
            curve_steps=[0.0, 50.0, 100.0],
            curve_returns=[1.0, 5.0, 10.0 + seed],
            curve_win_rates=[0.0, 0.5, 0.25 * seed],
        ).to_json()
        for seed in seeds
    ]
    rows.append(
        RunResult("qmix", "smax_3m", "default", 9, "/elsewhere/seed_9", ok=False, error="boom").to_json()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def test_plot_merges_sweeps_from_their_summaries_without_run_folders(sweep_dir: Path, tmp_path: Path) -> None:
    first = write_summary(tmp_path / "a" / "summary.json", [0, 1])
    second = write_summary(tmp_path / "b" / "summary.json", [2])
    runs = plotting.find_runs([first, second, first])
    assert [str(run) for run in runs] == [f"{first}#0", f"{first}#1", f"{second}#0"]  # failed run skipped
    wins = plotting.load_run_curves(runs, "eval/win_rate", ["algo"])
    assert list(wins) == ["qmix"] and sorted(float(y[-1]) for _, y in wins["qmix"]) == [0.0, 0.25, 0.5]
    returns = plotting.load_run_curves(runs, "eval/mean_return")  # settings: algo, env, tag (seed ignored)
    assert list(returns) == ["qmix / smax_3m"] and len(returns["qmix / smax_3m"]) == 3
    assert plotting.shared_setup(runs) == "qmix on smax_3m (env defaults)"
    with pytest.raises(plotting.PlotError, match="has no curve of 'rollout/ep_rew_mean'"):
        plotting.read_progress(runs[0], "rollout/ep_rew_mean")

    table = tmp_path / "table.md"
    args = [
        "plot",
        str(first),
        str(second),
        str(sweep_dir),
        "--key",
        "eval/mean_return",
        "--label-by",
        "algo",
    ]
    assert main([*args, "--out", str(tmp_path / "c.png"), "--table", str(table)]) == 0
    assert "| qmix | 3 | 11.000 | 11.000 | 11.000 | 100 |" in table.read_text()
    assert "| lsfsac | 4 |" in table.read_text()


def test_a_file_that_is_not_a_sweep_summary_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "binary.json": (b"\xff\x00", "not a JSON file"),
        "object.json": (b'{"algo": "qmix"}', "not a sweep's summary.json"),
        "failed.json": (None, "no finished run with a learning curve"),
        "missing.json": (None, "cannot read it"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        elif name == "failed.json":
            write_summary(path, [0], ok=False)
        with pytest.raises(plotting.PlotError, match=message):
            plotting.find_runs([path])
        assert main(["plot", str(path), "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err


def test_long_legend_labels_wrap_below_the_axes(tmp_path: Path) -> None:
    from PIL import Image

    label = " / ".join(f"setting_{i}=value_{i}" for i in range(8))
    wrapped = plotting.legend_label(label, 3)
    assert wrapped.endswith("(n=3)") and max(map(len, wrapped.splitlines())) <= plotting.LEGEND_WIDTH
    curve = (np.arange(5.0), np.arange(5.0))
    short = plotting.plot_curves({"a": [curve]}, tmp_path / "short.png")
    long = plotting.plot_curves({label: [curve], label + " / x=1": [curve]}, tmp_path / "long.png")
    (short_w, short_h), (long_w, long_h) = Image.open(short).size, Image.open(long).size
    assert long_w <= short_w + 20, "the legend does not widen the figure"
    assert long_h > short_h + 100, "the legend sits below the axes, which keep their height"


def test_progress_lines_report_true_rates_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import itertools

    from marl_lsf import QMIX, callbacks
    from marl_lsf.envs import matrix_game_v0

    clock = itertools.count(start=100.0, step=1.0)  # every reading of the clock is one second later
    monkeypatch.setattr(callbacks, "_now", lambda: next(clock))
    model = QMIX("MlpPolicy", matrix_game_v0.parallel_env, n_envs=2, vectorization="sync", hidden_dim=8)
    out = io.StringIO()
    model.learn(12, callback=callbacks.ProgressLogCallback(interval_s=2.0, file=out))
    lines = out.getvalue().splitlines()
    # 6 vector steps of 2 env steps at t = 1..6 s after the start: a line every 2 s, then "done" at 7 s.
    assert lines == [
        "step 4/12 (33%), 2 steps/s, 0:02 elapsed, ~0:04 left (2 in the last 2 s)",
        "step 8/12 (67%), 2 steps/s, 0:04 elapsed, ~0:02 left (2 in the last 2 s)",
        "step 12/12 (100%), 2 steps/s, 0:06 elapsed (2 in the last 2 s)",
        "done: step 12/12 (100%), 2 steps/s, 0:07 elapsed",
    ]
    with pytest.raises(ValueError, match="interval_s must be >= 0"):
        callbacks.ProgressLogCallback(interval_s=-1)


def test_progress_bar_prints_plain_lines_when_stdout_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from marl_lsf import QMIX
    from marl_lsf.envs import matrix_game_v0

    QMIX("MlpPolicy", matrix_game_v0.parallel_env(), n_threads=1).learn(64, progress_bar=True)
    assert "done: step 64/64 (100%)" in capsys.readouterr().out
