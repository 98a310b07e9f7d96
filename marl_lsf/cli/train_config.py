"""``marl-lsf train --config FILE``: a run's settings from a YAML (or JSON) file, as RL Baselines3 Zoo's.

The file holds ``train``'s options by their long names without dashes; every option given on the
command line overrides the file, and ``env_kwargs``/``algo_kwargs`` are merged key by key (the
command line's keys win)::

    # examples/configs/predator_prey_lsfsac.yaml
    algo: lsfsac
    env: predator_prey
    preset: true
    timesteps: 1e6
    algo_kwargs: {latent_dim: 1}

A run folder's ``run.json`` is such a file too (JSON is YAML), so ``--config runs/x/run.json --out
runs/y`` trains the same settings again; its record-only keys (``hyperparameters``,
``env_settings``, ``marl_lsf_version``) are ignored. As with a run folder, an ``env`` that is not a registered name
(a ``module:factory`` path, which would be imported and called) is refused unless the command line
names the same env or passes ``--trust-run-config``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marl_lsf.algorithms import MultiAgentAlgorithm
from marl_lsf.cli.common import CliError, parse_timesteps, positive, run_env
from marl_lsf.yaml_util import load_settings

#: Keys of run.json that record a run and do not choose anything.
RECORD_ONLY = ("hyperparameters", "env_settings", "marl_lsf_version")
POLICIES = tuple(MultiAgentAlgorithm.policy_aliases)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _whole(parse: Any) -> Any:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return int(parse(str(value)))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None

    return convert


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _policy(value: Any) -> str:
    if value not in POLICIES:
        raise ValueError(f"expected one of {', '.join(POLICIES)}, got {value!r}")
    return str(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _kwargs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"expected a mapping of argument names to values, got {value!r}")
    return dict(value)


#: ``train`` options a config may set, with the check and conversion of each value.
CONFIG_KEYS: dict[str, Any] = {
    "algo": _text,
    "env": _text,
    "env_kwargs": _kwargs,
    "policy": _policy,
    "timesteps": _whole(parse_timesteps),
    "seed": _seed,
    "out": _text,
    "n_envs": _whole(positive(int)),
    "eval_freq": _whole(parse_timesteps),
    "eval_episodes": _whole(positive(int)),
    "checkpoint_freq": _whole(parse_timesteps),
    "preset": _flag,
    "algo_kwargs": _kwargs,
}


def read_config(path: str | Path) -> dict[str, Any]:
    """The checked settings of the config file ``path``; ``CliError`` naming the file and key otherwise."""
    path = Path(path)
    try:
        data = load_settings(path, "train options")
    except ValueError as exc:
        raise CliError(f"--config: {exc}") from None
    unknown = sorted(str(key) for key in data if key not in CONFIG_KEYS and key not in RECORD_ONLY)
    if unknown:
        raise CliError(f"--config: {path} has unknown keys {unknown}; it may set {', '.join(CONFIG_KEYS)}")
    settings: dict[str, Any] = {}
    for key, check in CONFIG_KEYS.items():
        if key in data:
            try:
                settings[key] = check(data[key])
            except ValueError as exc:
                raise CliError(f"--config: {path}: {key}: {exc}") from None
    return settings


def apply_config(args: argparse.Namespace) -> None:
    """Fill ``train``'s options that the command line left unset from ``args.config`` (if given).

    ``env_kwargs``/``algo_kwargs`` from the file go first in their option's list, so the command
    line's ``key=value`` pairs override them key by key.
    """
    if args.config is None:
        return
    settings = read_config(args.config)
    if args.env is None and "env" in settings:
        # The run folder's rule: a module:factory env only when trusted (a config is often a shared run.json).
        run_env(settings, Path(args.config), None, args.trust_run_config)
    for key, value in settings.items():
        if key in ("env_kwargs", "algo_kwargs"):
            setattr(args, key, [json.dumps(value), *(getattr(args, key) or [])])
        elif getattr(args, key) is None:
            setattr(args, key, value)
