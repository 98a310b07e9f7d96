"""The grid of a sweep: algorithms x environments x seeds x override variants, and the runs it makes.

A grid comes from a mapping of ``GRID_KEYS`` (a YAML file, see ``examples/sweep.yaml``); every
run gets its settings (``RunSpec``) and its folder ``<results>/<algo>/<env>/<override-tag>/seed_<s>/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marl_lsf.env_registry import env_settings, make_env_factory
from marl_lsf.yaml_util import load_settings

#: Keys a grid file may have.
GRID_KEYS = frozenset(
    {
        "algos",
        "envs",
        "seeds",
        "timesteps",
        "overrides",
        "eval_episodes",
        "eval_freq",
        "policy",
        "algo_kwargs",
    }
)
#: Offset of the evaluation seed from the training seed (the same convention as ``marl-lsf train``).
EVAL_SEED_OFFSET = 10_000
#: Evaluations per run when the grid does not set ``eval_freq``.
DEFAULT_EVALUATIONS = 10


class SweepError(ValueError):
    """An invalid grid, or a sweep that cannot start (e.g. Ray is not installed)."""


# -- the grid -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvEntry:
    """One environment of a grid: a name ``marl_lsf.env_registry`` accepts and its constructor kwargs."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep (picklable: it travels to a Ray task)."""

    algo: str
    env: EnvEntry
    env_label: str
    seed: int
    overrides: dict[str, Any]
    timesteps: int
    eval_episodes: int
    eval_freq: int
    policy: str
    algo_kwargs: dict[str, Any]
    run_dir: str

    @property
    def tag(self) -> str:
        """Folder-safe name of the override variant (``default`` for no overrides)."""
        return _tag(self.overrides) if self.overrides else "default"

    def settings(self) -> dict[str, Any]:
        """The run's ``run.json``, in the format ``marl-lsf train`` writes (so ``eval``/``replay`` work)."""
        from marl_lsf import __version__

        kwargs = {**self.algo_kwargs, **self.overrides}
        return {
            "algo": self.algo,
            "env": self.env.name,
            "env_kwargs": self.env.kwargs,
            "env_settings": env_settings(make_env_factory(self.env.name, **self.env.kwargs)),
            "policy": self.policy,
            "seed": self.seed,
            "timesteps": self.timesteps,
            "n_envs": int(kwargs.pop("n_envs", 1)),
            "algo_kwargs": kwargs,
            "eval_freq": self.eval_freq,
            "eval_episodes": self.eval_episodes,
            "checkpoint_freq": 0,
            "overrides": self.overrides,
            "marl_lsf_version": __version__,
        }


@dataclass(frozen=True)
class SweepGrid:
    """Algorithms x environments x seeds x override variants, with a common training budget.

    Args:
        algos: algorithm names (``lsfsac``, ``qmix``, ``vdn``: any ``marl_lsf`` algorithm class,
            case-insensitive).
        envs: the environments.
        seeds: training seeds; evaluation uses ``seed + 10000``.
        timesteps: environment steps per run.
        overrides: variants of constructor keyword arguments; ``{}`` is the algorithm's defaults.
        eval_episodes: greedy episodes of each evaluation (periodic and final).
        eval_freq: environment steps between the evaluations that make the learning curves;
            None: ``timesteps // 10``; 0: no periodic evaluation (curves from training returns).
        policy: ``"MlpPolicy"`` or ``"RnnPolicy"``.
        algo_kwargs: constructor keyword arguments of every run (overrides are applied on top).
    """

    algos: tuple[str, ...]
    envs: tuple[EnvEntry, ...]
    seeds: tuple[int, ...]
    timesteps: int
    overrides: tuple[dict[str, Any], ...] = ({},)
    eval_episodes: int = 8
    eval_freq: int | None = None
    policy: str = "MlpPolicy"
    algo_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("algos", "envs", "seeds", "overrides"):
            if not getattr(self, name):
                raise SweepError(f"the grid's {name} list is empty")
        for algo in self.algos:
            resolve_algorithm(algo)
        labels = self.env_labels()
        if len(set(labels)) != len(labels):
            raise SweepError(f"the grid lists an environment twice: {labels}")
        tags = [_tag(o) if o else "default" for o in self.overrides]
        if len(set(tags)) != len(tags):
            raise SweepError(f"the grid lists an override variant twice: {tags}")
        if self.timesteps < 1 or self.eval_episodes < 1:
            raise SweepError("timesteps and eval_episodes must be >= 1")
        if self.eval_freq is not None and self.eval_freq < 0:
            raise SweepError(f"eval_freq must be >= 0, got {self.eval_freq}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepGrid:
        """A grid from a parsed YAML/JSON mapping (see the module docstring for the keys).

        Raises:
            SweepError: for unknown or missing keys and values of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise SweepError(f"a grid is a mapping of {sorted(GRID_KEYS)}, got {type(data).__name__}")
        unknown = set(data) - GRID_KEYS
        if unknown:
            raise SweepError(f"unknown grid keys {sorted(unknown)}; valid keys: {sorted(GRID_KEYS)}")
        missing = [key for key in ("algos", "envs", "seeds", "timesteps") if key not in data]
        if missing:
            raise SweepError(f"the grid lacks {', '.join(missing)}")
        try:
            eval_freq = data.get("eval_freq")
            return cls(
                algos=tuple(str(a).lower() for a in _as_list(data["algos"], "algos")),
                envs=tuple(_env_entry(e) for e in _as_list(data["envs"], "envs")),
                seeds=tuple(_whole(s, "seeds") for s in _as_list(data["seeds"], "seeds")),
                timesteps=_whole(data["timesteps"], "timesteps"),
                overrides=tuple(
                    kwargs_mapping(o, "overrides") for o in _as_list(data.get("overrides", [{}]), "overrides")
                ),
                eval_episodes=_whole(data.get("eval_episodes", 8), "eval_episodes"),
                eval_freq=None if eval_freq is None else _whole(eval_freq, "eval_freq"),
                policy=str(data.get("policy", "MlpPolicy")),
                algo_kwargs=kwargs_mapping(data.get("algo_kwargs", {}), "algo_kwargs"),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SweepError):
                raise
            raise SweepError(f"invalid grid: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepGrid:
        """A grid from a YAML file.

        Raises:
            SweepError: for a missing file, invalid YAML or an invalid grid.
        """
        return cls.from_dict(read_grid_yaml(path))

    def env_labels(self) -> list[str]:
        """Folder-safe names of the envs: the name, plus the kwargs where two envs share a name."""
        names = [env.name for env in self.envs]
        return [
            _slug(env.name) + (f"-{_tag(env.kwargs)}" if names.count(env.name) > 1 else "")
            for env in self.envs
        ]

    def runs(self, results_dir: str | Path) -> list[RunSpec]:
        """Every run of the grid, with its folder ``<results>/<algo>/<env>/<tag>/seed_<s>``."""
        root = Path(results_dir).resolve()
        eval_freq = (
            max(self.timesteps // DEFAULT_EVALUATIONS, 1) if self.eval_freq is None else self.eval_freq
        )
        runs = []
        for algo in self.algos:
            for env, label in zip(self.envs, self.env_labels(), strict=True):
                for overrides in self.overrides:
                    tag = _tag(overrides) if overrides else "default"
                    for seed in self.seeds:
                        run_dir = root / _slug(algo) / label / tag / f"seed_{seed}"
                        runs.append(
                            RunSpec(
                                algo,
                                env,
                                label,
                                seed,
                                dict(overrides),
                                self.timesteps,
                                self.eval_episodes,
                                eval_freq,
                                self.policy,
                                dict(self.algo_kwargs),
                                str(run_dir),
                            )
                        )
        return runs


def read_grid_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in the grid file ``path``; ``SweepError`` for a missing file, invalid YAML or another type."""
    try:
        return load_settings(path, f"grid keys ({', '.join(sorted(GRID_KEYS))})")
    except ValueError as exc:
        raise SweepError(f"grid file: {exc}") from None


def _as_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str | int | float | dict):
        return [value]
    raise SweepError(f"grid key {name!r} must be a list, got {type(value).__name__}")


def _whole(value: Any, name: str) -> int:
    number = float(value)  # YAML reads 2e5 as a string; float() takes both
    if not number.is_integer():
        raise SweepError(f"grid key {name!r} needs whole numbers, got {value!r}")
    return int(number)


def kwargs_mapping(value: Any, name: str) -> dict[str, Any]:
    """Keyword arguments of the grid key ``name`` as a dict with string keys (``{}`` for None)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SweepError(f"grid key {name!r} needs mappings of keyword arguments, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _env_entry(value: Any) -> EnvEntry:
    if isinstance(value, str):
        return EnvEntry(value)
    if isinstance(value, Mapping) and "name" in value and set(value) <= {"name", "kwargs"}:
        return EnvEntry(str(value["name"]), kwargs_mapping(value.get("kwargs"), "envs.kwargs"))
    raise SweepError(f"an env is a name or {{name: ..., kwargs: {{...}}}}, got {value!r}")


def _slug(text: str) -> str:
    """``text`` with every character that is not safe in a folder name replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9.,_=+-]", "_", text)


def _tag(kwargs: Mapping[str, Any]) -> str:
    """A stable, folder-safe name of keyword arguments: ``latent_dim=0,n_critics=2``."""
    return _slug(",".join(f"{k}={json.dumps(kwargs[k], sort_keys=True)}" for k in sorted(kwargs)))


def resolve_algorithm(name: str) -> type:
    """The algorithm class of ``name`` (see ``marl_lsf.algorithms.algorithm_class``)."""
    from marl_lsf.algorithms import algorithm_class

    try:
        return algorithm_class(name)
    except ValueError as exc:
        raise SweepError(str(exc)) from None
