"""Tests of the packaging: the bundled environments install as ``marl_lsf.envs``, never as ``envs``.

A top-level ``envs`` package in site-packages collides with any user project that has its own
``envs/`` folder (issue #18), so ``pyproject.toml`` maps the repository's ``envs/`` folder to
``marl_lsf.envs``. These tests read the package list setuptools resolves from ``pyproject.toml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

from marl_lsf.env_registry import make_env_factory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dist(monkeypatch: pytest.MonkeyPatch) -> Distribution:
    """The setuptools distribution that ``pyproject.toml`` configures, packages resolved."""
    monkeypatch.chdir(ROOT)
    return apply_configuration(Distribution(), ROOT / "pyproject.toml")


def test_no_top_level_envs_package(dist: Distribution) -> None:
    packages = dist.packages
    assert "marl_lsf.envs" in packages
    assert dist.package_dir["marl_lsf.envs"] == "envs"
    top_level = {name.partition(".")[0] for name in packages}
    assert top_level == {"marl_lsf"}, f"the wheel would install top-level packages {sorted(top_level)}"


def test_license_and_py_typed_ship(dist: Distribution) -> None:
    assert "py.typed" in dist.package_data["marl_lsf"]
    assert (ROOT / "marl_lsf" / "py.typed").is_file()
    assert dist.metadata.license_files == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_envs_import_under_the_library_name() -> None:
    from marl_lsf.envs import predator_prey_v1

    assert Path(predator_prey_v1.__file__).resolve() == ROOT / "envs" / "predator_prey_v1.py"
    env = make_env_factory("predator_prey")()
    assert type(env).__module__ == "marl_lsf.envs.predator_prey_v1"
    assert not any(name == "envs" or name.startswith("envs.") for name in sys.modules)


def test_old_envs_paths_resolve_to_the_bundled_modules() -> None:
    factory = make_env_factory("envs.matrix_game_v0:parallel_env", n_agents=2)
    assert factory.target == "marl_lsf.envs.matrix_game_v0:parallel_env"
    assert factory().possible_agents == ["agent_0", "agent_1"]
