"""Environments by name, for the command line and for run folders.

A name is one of

* a short name: ``matrix_game``, ``predator_prey``;
* a map-qualified name: ``smac:<map>`` (StarCraft II, ``marl_lsf.envs.smac_v1``) or ``smax:<map>``
  (JaxMARL's SMAX, ``marl_lsf.envs.smax_v0``), e.g. ``smax:3m``;
* an importable ``module:factory`` path of any PettingZoo ParallelEnv constructor, e.g.
  ``mpe2.simple_spread_v3:parallel_env``. Paths into the bundled environments written before they
  moved under the library's name (``envs.predator_prey_v0:parallel_env``, as old ``run.json`` files
  hold) are read as ``marl_lsf.envs.predator_prey_v0:parallel_env``.

``make_env_factory(name, **kwargs)`` returns a picklable zero-argument factory, so it also works
with worker-process vectorization (``n_envs > 1``).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from pettingzoo import ParallelEnv

#: Short names and the factory each stands for.
SHORT_NAMES: dict[str, str] = {
    "matrix_game": "marl_lsf.envs.matrix_game_v0:parallel_env",
    "predator_prey": "marl_lsf.envs.predator_prey_v1:parallel_env",
}
#: Prefixes of map-qualified names (``prefix:map``) and their factory.
MAP_PREFIXES: dict[str, str] = {
    "smac": "marl_lsf.envs.smac_v1:parallel_env",
    "smax": "marl_lsf.envs.smax_v0:parallel_env",
}

#: The bundled environment modules, once importable as a top-level ``envs`` package.
_BUNDLED_MODULES = ("matrix_game_v0", "predator_prey_v0", "predator_prey_v1", "smac_v1", "smax_v0")


class UnknownEnvError(ValueError):
    """An environment name that names no known or importable environment."""


def valid_names() -> str:
    """A human-readable list of the accepted environment names."""
    maps = ", ".join(f"{prefix}:<map>" for prefix in MAP_PREFIXES)
    return f"{', '.join(SHORT_NAMES)}, {maps}, or an importable module:factory path"


@dataclass(frozen=True)
class EnvFactory:
    """A picklable zero-argument factory: ``target`` (``"module:callable"``) called with ``kwargs``."""

    name: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> ParallelEnv:
        """Build a fresh environment."""
        return _import_target(self.name, self.target)(**self.kwargs)

    def with_kwargs(self, **kwargs: Any) -> EnvFactory:
        """A copy whose constructor arguments are updated with ``kwargs`` (e.g. ``render_mode``)."""
        return EnvFactory(self.name, self.target, {**self.kwargs, **kwargs})


def is_registered(name: str) -> bool:
    """Whether ``name`` is a short name or a map-qualified name, not a ``module:factory`` path.

    Registered names only ever import this package's own environments, so a name read from an
    untrusted place (a shared run folder's ``run.json``) may be used when it is registered.
    """
    if name in SHORT_NAMES:
        return True
    prefix, sep, rest = name.partition(":")
    return bool(sep and prefix in MAP_PREFIXES and rest)


def resolve(name: str) -> tuple[str, dict[str, Any]]:
    """``(target, implied kwargs)`` for an environment name; raises ``UnknownEnvError``."""
    if name in SHORT_NAMES:
        return SHORT_NAMES[name], {}
    prefix, sep, rest = name.partition(":")
    if sep and prefix in MAP_PREFIXES:
        if not rest:
            raise UnknownEnvError(f"{name!r} names no map; write e.g. {prefix}:3m")
        return MAP_PREFIXES[prefix], {"map_name": rest}
    if sep and prefix and rest:
        package, _, module = prefix.rpartition(".")
        if package == "envs" and module in _BUNDLED_MODULES:
            return f"marl_lsf.{name}", {}
        return name, {}
    raise UnknownEnvError(f"unknown environment {name!r}; valid names: {valid_names()}")


def make_env_factory(name: str, **kwargs: Any) -> EnvFactory:
    """A zero-argument factory of the environment ``name``, built with ``kwargs``.

    The target is imported at once, so a typo or a missing optional dependency is reported here
    rather than in a worker process.

    Raises:
        UnknownEnvError: for an unknown name or a ``module:factory`` path that does not import.
        ValueError: for ``kwargs`` the environment's constructor does not take (checked against
            its signature, so a misspelt argument is named here, not inside a worker process).
    """
    target, implied = resolve(name)
    factory = _import_target(name, target)
    kwargs = {**implied, **kwargs}
    _check_arguments(name, factory, kwargs)
    return EnvFactory(name, target, kwargs)


def constructor_parameters(factory: Any) -> inspect.Signature | None:
    """The keyword signature of ``factory``, following a class's ``**kwargs`` into its base class.

    PettingZoo envs often subclass and forward ``**kwargs`` (``predator_prey_v1`` does), which hides
    the real arguments from ``inspect.signature``; the ``__init__`` of the first base class that
    defines one names them. Every named parameter becomes keyword-only (envs are built from
    keywords here). None when the signature cannot be read.
    """
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    named = [
        p.replace(kind=p.KEYWORD_ONLY) for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    var_keyword = [p for p in parameters if p.kind is p.VAR_KEYWORD]
    if var_keyword and inspect.isclass(factory):
        base = next((b for b in factory.__mro__[1:] if "__init__" in vars(b)), object)
        inherited = constructor_parameters(base) if base is not object else None
        if inherited is not None:
            seen = {p.name for p in named}
            named += [
                p for p in inherited.parameters.values() if p.kind is p.KEYWORD_ONLY and p.name not in seen
            ]
            var_keyword = [p for p in inherited.parameters.values() if p.kind is p.VAR_KEYWORD]
    return inspect.Signature(named + var_keyword)


def env_settings(factory: EnvFactory) -> dict[str, Any]:
    """Every constructor argument ``factory`` builds its env with: the defaults it can see, then its kwargs.

    What a run folder records, so a later change of an env's defaults cannot change what a
    ``run.json`` says was trained (defaults that are not plain JSON values, and the arguments of an
    env whose signature hides them, are left out).
    """
    signature = constructor_parameters(_import_target(factory.name, factory.target))
    defaults = {}
    if signature is not None:
        defaults = {
            p.name: p.default
            for p in signature.parameters.values()
            if p.default is not p.empty
            and (p.default is None or isinstance(p.default, bool | int | float | str))
        }
    return {**defaults, **factory.kwargs}


def _check_arguments(name: str, factory: Any, kwargs: dict[str, Any]) -> None:
    """Raise ``ValueError`` when ``factory``'s signature cannot take ``kwargs`` (unreadable signatures pass)."""
    signature = constructor_parameters(factory)
    if signature is None:
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        accepted = [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
        raise ValueError(
            f"environment {name!r} does not take these arguments ({exc}); it takes: {', '.join(accepted) or 'none'}"
        ) from None


def _import_target(name: str, target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise UnknownEnvError(
                f"environment {name!r}: cannot import {module_name!r}; valid names: {valid_names()}"
            ) from exc
        raise UnknownEnvError(f"environment {name!r} needs a missing package: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UnknownEnvError(f"environment {name!r}: module {module_name!r} has no callable {attr!r}")
    return factory
