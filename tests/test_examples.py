"""Every script in ``examples/`` runs to completion with a tiny budget (``MARL_LSF_EXAMPLE_STEPS``).

The scripts start together as subprocesses (each in its own temporary folder, one torch thread
each) so that their interpreter start-up and imports overlap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from marl_lsf import LSFSAC, evaluate_policy
from marl_lsf.envs import predator_prey_v1

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))
TIMEOUT_S = 300
#: Text each example prints when it worked (examples not listed only need exit status 0).
EXPECTED_OUTPUT = {
    "matrix_game.py": ["greedy joint action", "policy of agent_0"],
    "custom_env.py": ["Passed Parallel API test", "met in"],
    "evaluate_and_replay.py": ["saved runs/replay/replay.gif"],
    # Piped, the demo prints progress lines instead of a progress bar (marl_lsf.callbacks.ProgressLogCallback).
    "train_predator_prey.py": [
        "LSF-SAC, shipped",
        "done: step 40/40 (100%)",
        "reloaded team acts identically: True",
    ],
    "smax_3m.py": ["win rate|skipping"],
}


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, Path]]:
    """``name -> (exit status, stdout + stderr, working folder)`` of every example."""
    env = {**os.environ, "MARL_LSF_EXAMPLE_STEPS": "40", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running = {}
    for name in EXAMPLES:
        cwd = tmp_path_factory.mktemp(Path(name).stem)
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES_DIR / name)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        running[name] = (process, cwd)
    results = {}
    for name, (process, cwd) in running.items():
        try:
            output, _ = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            output += f"\n[killed after {TIMEOUT_S} s]"
        results[name] = (process.returncode, output, cwd)
    return results


def test_the_documented_examples_exist() -> None:
    assert set(EXPECTED_OUTPUT) <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name: str, example_runs: dict[str, tuple[int, str, Path]]) -> None:
    status, output, cwd = example_runs[name]
    assert status == 0, f"{name} failed:\n{output[-3000:]}"
    for expected in EXPECTED_OUTPUT.get(name, []):
        assert any(option in output for option in expected.split("|")), (
            f"{name}: no {expected!r} in\n{output}"
        )
    if name == "evaluate_and_replay.py":
        assert (cwd / "runs" / "replay" / "replay.gif").stat().st_size > 0
    if name == "train_predator_prey.py":
        assert (cwd / "runs" / "demo" / "replay.gif").stat().st_size > 0
        assert (cwd / "runs" / "demo" / "progress.csv").stat().st_size > 0


def test_the_shipped_team_hunts() -> None:
    """The team the README and the demo show catches prey: far above a random team's ~-90."""
    model = LSFSAC.load(EXAMPLES_DIR / "models" / "lsfsac_predator_prey.zip", device="cpu")
    result = evaluate_policy(model, predator_prey_v1.parallel_env(), 4, seed=100)
    assert result.mean_return > 20 and result.mean_length < 200
