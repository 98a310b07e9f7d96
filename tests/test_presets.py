"""Presets: measured settings per environment and algorithm, valid constructor arguments of their algorithm."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from marl_lsf.algorithms import algorithm_class
from marl_lsf.envs import predator_prey_v1
from marl_lsf.presets import PRESET_POLICIES, PRESETS, preset, preset_policy


@pytest.mark.parametrize(("env", "algo"), sorted(PRESETS))
def test_every_preset_builds_its_algorithm(env: str, algo: str) -> None:
    settings = preset(env, algo)
    tiny = predator_prey_v1.parallel_env(grid_size=4, n_predators=2, n_prey=1, max_cycles=8)
    model = algorithm_class(algo)(preset_policy(env, algo), tiny, seed=0, **settings)
    params = model.hyperparameters() | {"n_envs": model.n_envs}  # every saved setting, and n_envs
    for key, value in settings.items():
        assert params[key] == value, key
    assert model.torso == model.policy_aliases[preset_policy(env, algo)]


def test_the_smax_presets_are_recurrent_as_measured() -> None:
    assert set(PRESET_POLICIES) <= set(PRESETS)
    assert preset_policy("smax:3m", "LSFSAC") == preset_policy("smax", "qmix") == "RnnPolicy"
    assert preset_policy("predator_prey", "lsfsac") == "MlpPolicy"
    with pytest.raises(ValueError, match="no preset for env 'matrix_game'"):
        preset_policy("matrix_game", "qmix")


def test_preset_is_a_copy_and_reads_smax_map_names() -> None:
    settings = preset("smax:3m", "LSFSAC")
    settings["train_freq"] = 99
    assert preset("smax", "lsfsac")["train_freq"] == 4


def test_preset_reads_an_env_given_as_a_module_path() -> None:
    # marl-lsf train --env mpe2.simple_spread_v3:parallel_env --preset looks the preset up this way.
    assert preset("mpe2.simple_spread_v3:parallel_env", "LSFSAC") == preset("mpe2.simple_spread_v3", "lsfsac")
    assert preset_policy("mpe2.simple_spread_v3:parallel_env", "lsfsac") == "MlpPolicy"


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match=r"no preset for env 'matrix_game' and algorithm 'qmix'.*predator_prey/lsfsac"
    ):
        preset("matrix_game", "qmix")


def test_the_matrix_game_presets_are_the_benchmarks_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each matrix-game preset is the settings of the benchmark row it cites (less ``vectorization``)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    monkeypatch.delitem(sys.modules, "runs", raising=False)
    benchmark = importlib.import_module("matrix_game")
    monkeypatch.delitem(sys.modules, "matrix_game")
    rows = {config.name: config.kwargs for config in benchmark.CONFIGS}
    schedule = {k: v for k, v in benchmark.COMMON.items() if k != "vectorization"}
    assert preset("matrix_game", "lsfsac") == schedule | rows["LSF-SAC"]
    assert preset("matrix_game", "cw_qmix") == schedule | rows["CW-QMIX, alpha 0.1"]
    assert preset("matrix_game", "qtran") == schedule | rows["QTRAN, authors' exploration"]
