"""What the ``marl-lsf`` subcommands share: the error type, the consoles, option values, models, run folders.

A run folder is untrusted input: its ``run.json`` is read as data (``read_run_settings``) and may
name only registered environments unless the user trusts it (``run_env``); see SECURITY.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from marl_lsf.algorithms import MultiAgentAlgorithm, algorithm_class
from marl_lsf.algorithms import load_model as load_any_model
from marl_lsf.algorithms.utils import resolve_device
from marl_lsf.env_registry import EnvFactory, is_registered, make_env_factory
from marl_lsf.save_util import model_path

RUN_SETTINGS = "run.json"
EXIT_USAGE = 2

console = Console()
err_console = Console(stderr=True)


class CliError(Exception):
    """A user error reported as one line, with exit status 2."""


# -- parsing helpers ------------------------------------------------------------------------------


def parse_kwargs(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    """Keyword arguments from a JSON object and/or ``key=value`` pairs (values read as JSON if they parse).

    ``['{"n_prey": 4}']``, ``["n_prey=4", "render_mode=ansi"]`` and mixtures are accepted; later
    items override earlier ones.
    """
    kwargs: dict[str, Any] = {}
    for item in items or ():
        text = item.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise CliError(f"{option}: invalid JSON {text!r} ({exc.msg} at character {exc.pos})") from exc
            if not isinstance(value, dict):
                raise CliError(f"{option}: expected a JSON object, got {text!r}")
            kwargs.update(value)
            continue
        key, sep, raw = text.partition("=")
        if not sep or not key.isidentifier():
            raise CliError(f"{option}: expected a JSON object or key=value pairs, got {text!r}")
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    return kwargs


def parse_timesteps(text: str) -> int:
    """argparse type: a non-negative whole number of steps, ``2e6`` style allowed."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a non-negative whole number, got {text!r}")
    return int(value)


def parse_device(text: str) -> str:
    """argparse type: a torch device this machine has (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
    try:
        resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """argparse type: a number of ``kind`` greater than zero."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not {'a whole number' if kind is int else 'a number'}: {text!r}"
            ) from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
        return value

    return parse


def resolve_algorithm(name: str) -> type[MultiAgentAlgorithm]:
    """The algorithm class for ``--algo``."""
    try:
        return algorithm_class(name)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def load_model(path: str | Path, device: str = "auto") -> MultiAgentAlgorithm:
    """Load a saved model of any marl-lsf algorithm (``marl_lsf.load_model``) for a subcommand."""
    path = Path(path)
    if not path.is_file() and not model_path(path).is_file():
        raise CliError(f"no model file at {path}")
    return load_any_model(path, device=device)


def read_run_settings(path: Path) -> dict[str, Any]:
    """A ``run.json`` as data: a JSON object, read without importing or calling anything it names."""
    try:
        settings = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CliError(f"{path} is not valid JSON ({getattr(exc, 'msg', type(exc).__name__)})") from exc
    if not isinstance(settings, dict):
        raise CliError(f"{path} does not hold a JSON object")
    return settings


def find_run_settings(model_file: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The path and settings of the ``run.json`` of a model file's run (its folder or the folder above)."""
    folder = Path(model_file).resolve().parent
    for candidate in (folder / RUN_SETTINGS, folder.parent / RUN_SETTINGS):
        if candidate.is_file():
            return candidate, read_run_settings(candidate)
    return None


def run_env(
    settings: dict[str, Any], source: Path, given_env: str | None, trust: bool
) -> tuple[str, dict[str, Any]]:
    """``(env name, env kwargs)`` from a ``run.json``, refusing what a run folder may not choose.

    A registered env name (``marl_lsf.env_registry.is_registered``) is accepted. Any other name is
    a ``module:factory`` path that would be imported and called, so it is refused unless the user
    named the same env on the command line (``given_env``) or passed ``--trust-run-config``
    (``trust``).
    """
    env = settings.get("env")
    if not isinstance(env, str) or not env:
        raise CliError(f'{source}: "env" must be an environment name, got {env!r}')
    kwargs = settings.get("env_kwargs", {})
    if not isinstance(kwargs, dict):
        raise CliError(f'{source}: "env_kwargs" must be a JSON object, got {type(kwargs).__name__}')
    if not (is_registered(env) or trust or env == given_env):
        raise CliError(
            f"{source} names the env {env!r}, which is not a registered env name but code to import and "
            f"call; a run folder may not choose code to run. If you trust this folder, pass "
            f"--env {shlex.quote(env)} (or --trust-run-config)"
        )
    return env, kwargs


def env_factory_for(args: argparse.Namespace, **extra: Any) -> EnvFactory:
    """The env of ``--env``/``--env-kwargs``, or of the model's ``run.json`` (updated by ``--env-kwargs``).

    The ``run.json`` is untrusted: see ``run_env``.
    """
    kwargs = parse_kwargs(args.env_kwargs, "--env-kwargs")
    if args.env is not None:
        return make_env_factory(args.env, **kwargs, **extra)
    found = find_run_settings(args.model)
    if found is None or "env" not in found[1]:
        raise CliError(f"no --env given and no {RUN_SETTINGS} next to {args.model}; pass --env NAME")
    name, run_kwargs = run_env(found[1], found[0], None, args.trust_run_config)
    return make_env_factory(name, **{**run_kwargs, **kwargs}, **extra)
