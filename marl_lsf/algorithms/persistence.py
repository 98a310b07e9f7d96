"""Persistence of ``MultiAgentAlgorithm``: ``save``, ``load``, parameters, env swaps and the checks of a model file.

A model file is a zip of JSON settings and tensors (``marl_lsf.save_util``); nothing in it is
executed. ``PersistenceMixin.load`` refuses settings a file may not choose (``_LOCAL_ARGUMENTS``),
settings of the wrong type (``marl_lsf.algorithms.file_checks``) and tensors whose shapes the settings do not give,
before anything large is allocated.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from stable_baselines3.common.type_aliases import Schedule

from marl_lsf.algorithms.file_checks import check_optimizer_state, checked_params, checked_spec, short
from marl_lsf.algorithms.utils import SelfAlgorithm, resolve_device
from marl_lsf.buffer import EpisodeReplayBuffer
from marl_lsf.save_util import (
    ModelFileError,
    global_rng_state,
    load_model_file,
    restore_rng_state,
    rng_state,
    save_model_file,
    set_global_rng_state,
)
from marl_lsf.team_env import EnvFactory, ParallelEnv, TeamSpec, TeamVecEnv, team_reward_fn
from marl_lsf.vec_env import make_team_vec_env

#: Constructor arguments a model file may not set: they concern this machine and this run (where
#: to log, how many threads and workers), so only the caller of ``load`` chooses them.
_LOCAL_ARGUMENTS = frozenset(
    {"policy", "env", "device", "tensorboard_log", "verbose", "n_envs", "vectorization", "n_threads"}
)


class PersistenceMixin:
    """``save`` and ``load`` of ``MultiAgentAlgorithm``: settings, networks, optimizers, counters, generators.

    Uses the host's settings, the names in ``_saved_modules``, ``_saved_optimizers`` and
    ``_saved_tensors``, its ``_params`` and ``_build_networks``.
    """

    _saved_modules: ClassVar[tuple[str, ...]]
    _saved_optimizers: ClassVar[tuple[str, ...]]
    _saved_tensors: ClassVar[tuple[str, ...]]
    _legacy_params: ClassVar[dict[str, Any]]
    policy_name: str
    spec: TeamSpec
    device: torch.device
    learning_rate: float | Schedule
    lr_schedule: Schedule
    buffer_size: int
    learning_starts: int
    batch_size: int
    gamma: float
    tau: float
    target_update_interval: int
    train_freq: int
    gradient_steps: int
    max_grad_norm: float
    td_lambda: float
    hidden_dim: int
    last_action_input: bool
    mixer_kind: str
    mixer_embed_dim: int
    team_reward: Any
    max_episode_steps: int
    seed: int | None
    n_envs: int
    vectorization: str
    env: TeamVecEnv | None
    _last_obs: Any
    num_timesteps: int
    ep_info_buffer: deque[dict[str, float]]
    replay_buffer: EpisodeReplayBuffer
    _episode_num: int
    _n_updates: int
    _rng: np.random.Generator
    _resume_rng_state: tuple[Any, ...] | None

    if TYPE_CHECKING:

        def _params(self) -> dict[str, Any]: ...

        def _build_networks(self) -> None: ...

        def _setup_model(self) -> None: ...

    def get_parameters(self) -> dict[str, dict[str, Any]]:
        """The networks' and optimizers' state dicts by name, as Stable-Baselines3's ``get_parameters``
        (``{"actor": {...}, "critics": {...}, "critic_optimizer": {...}, ...}``); see ``set_parameters``."""
        params = {name: getattr(self, name).state_dict() for name in self._saved_modules}
        for name in self._saved_optimizers:
            if (optimizer := getattr(self, name)) is not None:
                params[name] = optimizer.state_dict()
        return params

    def set_parameters(
        self, load_path_or_dict: str | Path | Mapping[str, Any], exact_match: bool = True
    ) -> None:
        """Load networks (and optimizers) from ``get_parameters()`` output or a saved model file.

        As Stable-Baselines3's ``set_parameters``: with ``exact_match`` every network of this model
        must be given; without, the ones given are loaded. Settings, counters and the replay buffer
        are left as they are (``load`` restores those).

        Raises:
            ValueError: a network or optimizer name this model does not have, a missing network
                (with ``exact_match``) or tensors whose shapes do not fit, naming it.
        """
        if isinstance(load_path_or_dict, Mapping):
            params = dict(load_path_or_dict)
        else:
            _, tensors = load_model_file(load_path_or_dict, self.device)
            params = {
                key.split("/", 1)[1]: value
                for key, value in tensors.items()
                if key.startswith(("module/", "optim/"))
            }
        known = (*self._saved_modules, *self._saved_optimizers)
        if unknown := sorted(set(params) - set(known)):
            raise ValueError(
                f"{type(self).__name__} has no networks or optimizers {unknown}; it has {list(known)}"
            )
        if exact_match and (missing := [name for name in self._saved_modules if name not in params]):
            raise ValueError(
                f"parameters lack the networks {missing} (pass exact_match=False to load a part)"
            )
        for name, state in params.items():
            target = getattr(self, name)
            if target is None:
                raise ValueError(f"{name} is not used by this {type(self).__name__}'s settings")
            try:
                target.load_state_dict(state)
            except (RuntimeError, ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"parameters of {name} do not fit: {' '.join(str(exc).split())}") from exc

    def set_env(self, env: ParallelEnv | EnvFactory | TeamVecEnv) -> None:
        """Continue on another env with the same agents and spaces (Stable-Baselines3's ``set_env``).

        A ``ParallelEnv`` or factory gets the model's ``n_envs`` copies; the next ``learn`` starts
        new episodes on it (the replay buffer is kept). The previous env is closed.

        Raises:
            ValueError: the env's agents or spaces differ from the model's, or a ``TeamVecEnv`` has
                another number of copies than the model's ``n_envs``.
        """
        vec_env = (
            env
            if isinstance(env, TeamVecEnv)
            else make_team_vec_env(env, self.n_envs, self.vectorization, self.team_reward)
        )
        problem = self.spec.mismatch(vec_env.spec)
        if problem is None and vec_env.num_envs != self.n_envs:
            problem = f"{vec_env.num_envs} env copies, the model was built for n_envs={self.n_envs}"
        if problem is not None:
            if vec_env is not env:
                vec_env.close()
            raise ValueError(f"the env does not match the model ({problem})")
        if self.env is not None and self.env is not vec_env:
            self.env.close()
        self.env = vec_env
        self._last_obs = None

    def save(self, path: str | Path, include_optimizers: bool = True, include_buffer: bool = False) -> Path:
        """Save the model as a zip of JSON settings and tensors (no pickled objects), atomically.

        The file holds the networks, the optimizers (unless ``include_optimizers=False``), the
        saved tensors (e.g. the temperature), the counters (steps, episodes, gradient updates), the
        recent episode statistics, the random number generator states (Python, NumPy, torch and the
        model's own generator) and, with ``include_buffer=True``, the replay buffer's complete
        episodes. Returns the path written (``.zip`` is added when missing).
        """
        tensors: dict[str, Any] = {
            f"module/{name}": getattr(self, name).state_dict() for name in self._saved_modules
        }
        if include_optimizers:
            tensors.update(
                {
                    f"optim/{name}": optimizer.state_dict()
                    for name in self._saved_optimizers
                    if (optimizer := getattr(self, name)) is not None
                }
            )
        tensors.update({f"tensor/{name}": getattr(self, name).detach().cpu() for name in self._saved_tensors})
        rng_data, rng_tensors = rng_state(self._rng)
        tensors.update({f"rng/{name}": tensor for name, tensor in rng_tensors.items()})
        if include_buffer:
            tensors["buffer"] = self.replay_buffer.state_dict()
        data = {
            "algorithm": type(self).__name__,
            "policy": self.policy_name,
            "spec": self.spec.to_json(),
            "params": self.hyperparameters(),
            "num_timesteps": self.num_timesteps,
            "episode_num": self._episode_num,
            "n_updates": self._n_updates,
            "progress_remaining": self._current_progress_remaining,
            "ep_info_buffer": list(self.ep_info_buffer),
            "rng": rng_data,
        }
        return save_model_file(path, data, tensors)

    def hyperparameters(self) -> dict[str, Any]:
        """Every setting of this model, defaults included, as JSON data (what ``save`` stores and
        ``marl-lsf train`` writes into ``run.json``); schedules appear as their starting value."""
        return self._params() | self._base_params()

    def _base_params(self) -> dict[str, Any]:
        lr = self.learning_rate if isinstance(self.learning_rate, int | float) else self.lr_schedule(1.0)
        return {
            "learning_rate": lr,
            "buffer_size": self.buffer_size,
            "learning_starts": self.learning_starts,
            "batch_size": self.batch_size,
            "gamma": self.gamma,
            "tau": self.tau,
            "target_update_interval": self.target_update_interval,
            "train_freq": self.train_freq,
            "gradient_steps": self.gradient_steps,
            "max_grad_norm": self.max_grad_norm,
            "td_lambda": self.td_lambda,
            "hidden_dim": self.hidden_dim,
            "last_action_input": self.last_action_input,
            "mixer": self.mixer_kind,
            "mixer_embed_dim": self.mixer_embed_dim,
            "team_reward": self.team_reward if isinstance(self.team_reward, str) else "mean",
            "max_episode_steps": self.max_episode_steps,
            "seed": self.seed,
        }

    @classmethod
    def load(
        cls: type[SelfAlgorithm],
        path: str | Path,
        env: ParallelEnv | EnvFactory | None = None,
        device: torch.device | str = "auto",
        **kwargs: Any,
    ) -> SelfAlgorithm:
        """Load a saved model; nothing in the file is executed (JSON + ``torch.load(weights_only=True)``).

        Restores everything ``save`` wrote: networks, optimizers, counters, episode statistics,
        the replay buffer when the file has one, and the random number generator states: the
        model's own generator at once; Python's, NumPy's and torch's global generators when
        ``learn(n, reset_num_timesteps=False)`` continues the run (see ``learn``), so loading
        leaves the caller's global generators as they were.

        Args:
            path: the file written by ``save`` (or a checkpoint).
            env: the env to keep training or evaluating on (its spaces must match the model's).
            device: where to put the networks.
            **kwargs: constructor arguments to override (e.g. ``n_envs``, ``verbose``).

        Raises:
            FileNotFoundError: no file at ``path``.
            ModelFileError: the file is truncated or corrupt, holds anything but tensors and plain
                data, was written by another algorithm, or its settings or tensors do not fit.
            ValueError: the env's agents or spaces differ from the model's.
        """
        data, tensors = load_model_file(path, resolve_device(device))
        if data.get("algorithm") != cls.__name__:
            raise ModelFileError(
                f"{path} holds a {data.get('algorithm')!r} model, not {cls.__name__}; use {data.get('algorithm')}.load"
            )
        caller_rng = global_rng_state()
        try:
            model = cls._from_file_data(path, data, tensors, env, device, kwargs)
        finally:
            set_global_rng_state(caller_rng)
        return model

    @classmethod
    def _from_file_data(
        cls: type[SelfAlgorithm],
        path: str | Path,
        data: dict[str, Any],
        tensors: dict[str, Any],
        env: ParallelEnv | EnvFactory | None,
        device: torch.device | str,
        kwargs: dict[str, Any],
    ) -> SelfAlgorithm:
        """``load``'s work on a read file; may set the global generators (``load`` restores them)."""
        spec = checked_spec(data.get("spec"), path)
        if not isinstance(data.get("params"), dict):
            raise ModelFileError(f"{path}: params must be a JSON object, got {short(data.get('params'))}")
        try:
            params = {**cls._legacy_params, **data["params"]}
            refused = sorted(key for key in params if key in _LOCAL_ARGUMENTS or key.startswith("_"))
            if refused:
                raise ModelFileError(
                    f"{path}: model settings may not set {refused}; pass them to load() instead"
                )
            params = checked_params(cls, params, path)
            # The file's settings alone first (without the caller's env and overrides), so that a
            # value the constructor refuses (or the env's team reward would) is reported as the file's.
            try:
                kept = {key: value for key, value in params.items() if key not in kwargs}
                cls(data["policy"], None, device="cpu", _spec=spec, _init_setup_model=False, **kept)
                team_reward_fn(kept.get("team_reward", "mean"))
            except ValueError as exc:
                raise ModelFileError(f"{path}: model settings are invalid ({exc})") from exc
            model = cls(
                data["policy"], env, device=device, _spec=spec, _init_setup_model=False, **(params | kwargs)
            )
        except (KeyError, TypeError, AssertionError, OverflowError) as exc:
            raise ModelFileError(f"{path}: model settings are incomplete or invalid ({exc!r})") from exc
        counters = {key: data.get(key, 0) for key in ("num_timesteps", "episode_num", "n_updates")}
        for key, value in counters.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ModelFileError(f"{path}: {key} must be a non-negative whole number, got {short(value)}")
        progress = data.get("progress_remaining", 1.0)  # files saved before it was stored: a run's start
        if isinstance(progress, bool) or not isinstance(progress, int | float) or not -1.0 <= progress <= 1.0:
            raise ModelFileError(
                f"{path}: progress_remaining must be a number in [-1, 1], got {short(progress)}"
            )
        episodes = data.get("ep_info_buffer", [])
        if not isinstance(episodes, list) or not all(
            isinstance(info, dict)
            and {"r", "l"} <= info.keys()
            and all(isinstance(v, int | float) and math.isfinite(v) for v in info.values())
            for info in episodes
        ):
            raise ModelFileError(
                f"{path}: ep_info_buffer must be a list of objects of finite numbers, each with 'r' and 'l'"
            )
        try:
            model._check_saved_shapes(tensors, path)
            model._setup_model()
        except ModelFileError:
            raise
        except (RuntimeError, TypeError, ValueError, OverflowError, MemoryError) as exc:
            reason = " ".join(str(exc).splitlines()[:1]) or type(exc).__name__  # torch may append a C++ trace
            raise ModelFileError(
                f"{path}: the file's settings do not build a {cls.__name__} ({reason})"
            ) from exc
        try:
            for name in model._saved_modules:
                getattr(model, name).load_state_dict(tensors[f"module/{name}"])
            for name in model._saved_optimizers:
                optimizer = getattr(model, name)
                if optimizer is not None and f"optim/{name}" in tensors:
                    optimizer.load_state_dict(tensors[f"optim/{name}"])
                    check_optimizer_state(optimizer, f"optim/{name}", path)
            for name in model._saved_tensors:
                getattr(model, name).data.copy_(tensors[f"tensor/{name}"])
            if "buffer" in tensors:
                model.replay_buffer.load_state_dict(tensors["buffer"])
        except ModelFileError:
            raise
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise ModelFileError(f"{path}: saved state does not fit this {cls.__name__} ({exc!r})") from exc
        model.num_timesteps = counters["num_timesteps"]
        model._episode_num = counters["episode_num"]
        model._n_updates = counters["n_updates"]
        # The schedules (epsilon, learning rates) where the run left them, as SB3's load does.
        model._current_progress_remaining = float(progress)
        rate = getattr(model.policy, "exploration_rate", None)
        if isinstance(rate, torch.Tensor):
            rate.fill_(model.exploration_rate)
        model.ep_info_buffer.extend({str(k): float(v) for k, v in info.items()} for info in episodes)
        if "rng" in data:
            rng_tensors = {
                key.removeprefix("rng/"): value for key, value in tensors.items() if key.startswith("rng/")
            }
            restore_rng_state(data["rng"], rng_tensors, model._rng)
            # The run's global generators are set again when it continues (learn(reset_num_timesteps=False)).
            model._resume_rng_state = global_rng_state()
        return model

    def _check_saved_shapes(self, tensors: Mapping[str, Any], path: str | Path) -> None:
        """Refuse saved networks whose tensors lack the shapes this model's settings give them.

        The networks are first built on torch's ``meta`` device (no memory), so settings that
        would make huge networks (``hidden_dim=10**7`` in a small file) are refused before
        anything is allocated; once the shapes match, the networks are as large as the file's
        tensors.
        """
        device, self.device = self.device, torch.device("meta")
        try:
            with torch.device("meta"):
                self._build_networks()
            expected: list[tuple[str, tuple[int, ...], Any]] = []
            for name in self._saved_modules:
                saved = tensors.get(f"module/{name}")
                saved = saved if isinstance(saved, Mapping) else {}
                expected += [
                    (f"module/{name}/{key}", tuple(value.shape), saved.get(key))
                    for key, value in getattr(self, name).state_dict().items()
                ]
            expected += [
                (f"tensor/{name}", tuple(getattr(self, name).shape), tensors.get(f"tensor/{name}"))
                for name in self._saved_tensors
            ]
        finally:
            self.device = device
        for name, shape, saved in expected:
            if not isinstance(saved, torch.Tensor):
                raise ModelFileError(f"{path}: tensor {name} is missing")
            if tuple(saved.shape) != shape:
                raise ModelFileError(
                    f"{path}: tensor {name} has shape {tuple(saved.shape)}, but the file's settings make it {shape}"
                )
