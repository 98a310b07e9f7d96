"""Machine resources a model takes: torch threads (``n_threads="auto"``) and reuse of freed memory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from marl_lsf import LSFSAC
from marl_lsf.algorithms import utils
from marl_lsf.envs import predator_prey_v1


def test_auto_threads_use_the_cores_other_processes_leave_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(utils, "_running_tasks", lambda: None)
    for load, threads in ((0.2, 4), (1.6, 2), (3.0, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert utils.resolve_threads("auto") == threads
    # Jobs that have just ended still weigh in the load average; the tasks running now decide.
    monkeypatch.setattr(utils, "_running_tasks", lambda: 2)  # this process and one other
    assert utils.resolve_threads("auto") == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert utils.resolve_threads("auto") == 4, "a momentary task does not lower an idle average"
    assert utils.resolve_threads(3) == 3
    assert utils.resolve_threads(None) is None


@pytest.mark.parametrize("bad", [0, -1, "all", 1.5, True])
def test_a_bad_thread_count_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="n_threads must be a positive int, 'auto' or None"):
        LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, n_threads=bad)


def test_a_model_sets_the_threads_it_was_given_and_one_by_default() -> None:
    before = torch.get_num_threads()
    try:
        LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, n_threads=2)
        assert torch.get_num_threads() == 2
        LSFSAC("MlpPolicy", predator_prey_v1.parallel_env)
        assert torch.get_num_threads() == 1
        LSFSAC("MlpPolicy", predator_prey_v1.parallel_env, n_threads=None)
        assert torch.get_num_threads() == 1, "None leaves the process's setting alone"
    finally:
        torch.set_num_threads(before)


#: Page faults of 3 rounds of 30 tensors of 12-24 MiB, some freed while others live (as in an update),
#: measured after one such warm-up, in a fresh process (a clean heap), with or without the setting.
FAULTS_SCRIPT = """
import resource, sys, torch
from marl_lsf.algorithms.utils import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
def rounds():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        live = []
        for k in range(30):
            live.append(torch.ones((3 + k % 4) << 20))
            if k % 3 == 2:
                live.pop(0)
        del live
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
rounds()
print(rounds())
"""


def _faults(setting: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT, setting], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_tensors_are_reused_instead_of_faulted_in_again() -> None:
    # A 16 MiB tensor on fresh pages costs 4,096 faults (4 KiB pages).
    assert _faults("defaults") > 10_000
    assert _faults("reuse") < 1_000
