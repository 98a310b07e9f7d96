"""A new user's first hour (issue #18): mistakes that must fail fast with a message that says the fix."""

from __future__ import annotations

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

from marl_lsf import LSFSAC, buffer
from marl_lsf.buffer import EpisodeReplayBuffer
from marl_lsf.envs import predator_prey_v1
from marl_lsf.team_env import MAIN_GUARD, TeamSpec, UnguardedMainError

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
    with pytest.raises(ValueError, match="x 20 steps"):
        buf._grow()
    assert buf.max_steps == 10 and buf.storage["obs"].shape[1] == 11


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
        [sys.executable, str(path)], cwd=path.parent, env=env, capture_output=True, text=True, timeout=120
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
    assert last_line.startswith("marl_lsf.team_env.UnguardedMainError") and MAIN_GUARD in last_line


def test_the_guard_check_passes_inside_the_guard(tmp_path: Path) -> None:
    result = run_script(
        tmp_path / "guarded.py",
        """
        from marl_lsf.team_env import check_main_guard

        if __name__ == "__main__":
            check_main_guard()
            print("passed", flush=True)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "passed"


def test_a_worker_importing_an_unguarded_script_fails_at_once(tmp_path: Path) -> None:
    script = tmp_path / "reimported.py"
    script.write_text("from marl_lsf.team_env import check_main_guard\ncheck_main_guard()\n")
    with pytest.raises(UnguardedMainError, match="re-run the top level"):
        runpy.run_path(str(script), run_name="__mp_main__")
