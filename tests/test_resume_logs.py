"""TensorBoard logs that continue across a resume show every step once."""

from __future__ import annotations

from pathlib import Path

import pytest

from marl_lsf.checkpoint import configure_logger

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _log_steps(folder: Path, steps: range, resume_step: int | None, value: float) -> None:
    logger = configure_logger(folder, ["tensorboard"], resume_step=resume_step)
    for step in steps:
        logger.record("rollout/ep_rew_mean", value)
        logger.dump(step)
    logger.close()


def _scalars(folder: Path) -> list[tuple[int, float]]:
    accumulator = event_accumulator.EventAccumulator(str(folder))
    accumulator.Reload()
    return [(event.step, event.value) for event in accumulator.Scalars("rollout/ep_rew_mean")]


def test_a_resume_hides_the_points_logged_after_its_checkpoint(tmp_path: Path) -> None:
    _log_steps(tmp_path, range(10, 60, 10), None, 1.0)  # the killed attempt reached step 50
    _log_steps(tmp_path, range(40, 70, 10), 30, 2.0)  # resumed from the checkpoint at step 30
    assert _scalars(tmp_path) == [(10, 1.0), (20, 1.0), (30, 1.0), (40, 2.0), (50, 2.0), (60, 2.0)]


def test_a_restart_from_step_zero_hides_every_earlier_point(tmp_path: Path) -> None:
    _log_steps(tmp_path, range(10, 40, 10), None, 1.0)
    configure_logger(tmp_path, ["tensorboard"], resume_step=-1).close()
    _log_steps(tmp_path, range(10, 30, 10), None, 2.0)
    assert _scalars(tmp_path) == [(10, 2.0), (20, 2.0)]


def test_a_new_run_in_a_used_folder_keeps_the_earlier_points(tmp_path: Path) -> None:
    _log_steps(tmp_path, range(10, 30, 10), None, 1.0)
    _log_steps(tmp_path, range(30, 50, 10), None, 2.0)
    assert _scalars(tmp_path) == [(10, 1.0), (20, 1.0), (30, 2.0), (40, 2.0)]
