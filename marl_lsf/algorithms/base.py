"""The base every marl-lsf algorithm stands on, laid out like Stable-Baselines3's.

* ``MultiAgentAlgorithm`` owns the environment (as a ``TeamVecEnv``), seeding, device, logger,
  callbacks, the episode replay buffer, the collect-then-train loop, ``predict`` and save/load.
* An algorithm subclass adds only its networks (``_build_networks``), how it acts
  (its ``policy``, an acting module) and its losses (``_train_step``).

The class is assembled from one module per responsibility:

* this module: construction (settings, spaces, device, seeding), the networks' abstract hooks,
  gradient updates, logging, callbacks and the ``learn`` loop;
* ``marl_lsf.algorithms.collection``: collecting environment steps into the replay buffer and the
  episode statistics (``RolloutCollectionMixin``);
* ``marl_lsf.algorithms.acting``: the networks' inputs and decentralized action selection,
  ``predict`` with its observation and action-mask checks (``ActingMixin``);
* ``marl_lsf.algorithms.persistence``: ``save``/``load`` and the checks of a model file's settings
  and tensors (``PersistenceMixin``);
* ``marl_lsf.algorithms.utils``: ``adam`` and ``epsilon_schedule``, re-exported here.

Reused from Stable-Baselines3: the logger (stdout/CSV/TensorBoard), callbacks (``BaseCallback``,
``CallbackList``, ``ConvertCallback``, ``ProgressBarCallback``), schedules (``FloatSchedule``),
``set_random_seed``, ``get_device`` (through ``resolve_device``) and ``update_learning_rate``; the
target update is ``polyak_update``'s rule, fused (``TargetNetworks``).
"""

from __future__ import annotations

import math
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    ConvertCallback,
    ProgressBarCallback,
)
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import (
    FloatSchedule,
    configure_logger,
    set_random_seed,
    update_learning_rate,
)
from torch import nn

from marl_lsf.algorithms.acting import ActingMixin
from marl_lsf.algorithms.collection import RolloutCollectionMixin
from marl_lsf.algorithms.persistence import PersistenceMixin
from marl_lsf.algorithms.utils import (
    SelfAlgorithm,
    TargetNetworks,
    check_positive,
    resolve_device,
    resolve_threads,
    reuse_freed_memory,
)
from marl_lsf.buffer import EpisodeBatch, EpisodeReplayBuffer
from marl_lsf.nets.policies import ActingPolicy
from marl_lsf.save_util import set_global_rng_state
from marl_lsf.team_env import (
    EnvFactory,
    ParallelEnv,
    TeamObs,
    TeamSpec,
    TeamVecEnv,
)
from marl_lsf.vec_env import make_team_vec_env

MaybeCallback = (
    BaseCallback | Callable[[dict[str, Any], dict[str, Any]], bool] | Sequence[BaseCallback] | None
)


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss or parameter; raised before anything else uses it."""


class MultiAgentAlgorithm(PersistenceMixin, ActingMixin, RolloutCollectionMixin, ABC):
    """Base of the cooperative MARL algorithms: env handling, rollouts, logging, save/load.

    Args:
        policy: ``"MlpPolicy"`` (feed-forward on the current observation) or ``"RnnPolicy"``
            (GRU over the episode, trained with full-episode back-propagation).
        env: a PettingZoo ``ParallelEnv``, a zero-argument factory of one, or a name as
            ``marl-lsf train --env`` takes it (``"predator_prey"``, ``"smax:3m"``); None only when
            loading a model for prediction.
        learning_rate: Adam learning rate, a float or a schedule of the remaining progress.
        buffer_size: replay capacity in episodes (pymarl's convention), not steps as in SB3; a
            buffer that will not fit in memory when full is refused before it is allocated.
        learning_starts: environment steps collected with uniformly random available actions
            before training starts.
        batch_size: episodes (not steps) per training batch.
        gamma: discount factor.
        tau: soft target update coefficient (1.0 with ``target_update_interval > 1`` gives
            pymarl's hard updates).
        target_update_interval: gradient steps between target updates.
        train_freq: completed episodes between training phases.
        gradient_steps: gradient steps per training phase.
        max_grad_norm: gradient clipping norm.
        td_lambda: lambda of the TD(lambda) targets over each episode; 0 gives one-step targets.
        hidden_dim: width of the agent networks.
        last_action_input: the acting network (LSF-SAC's actor, QMIX's utilities) also reads each
            agent's previous action, one-hot (zeros at an episode's first step), as pymarl's agents
            do (``obs_last_action``); the critics always read it.
        mixer: ``"qmix"`` (monotonic hypernetwork mixer) or ``"vdn"`` (sum); QPLEX takes only its own, ``"qplex"``.
        mixer_embed_dim: width of QMIX's mixing layer.
        n_envs: environment copies collected from (``env`` must then be a factory, unless the env
            provides its own batched form, as SMAX does).
        vectorization: ``"auto"``, ``"sync"`` (in-process), ``"async"`` (env worker processes, the
            learner acting every step) or ``"workers"`` (rollout workers acting with their own copy
            of the policy, a chunk of steps at a time); see ``marl_lsf.vec_env.make_team_vec_env``
            and ``marl_lsf.rollout``.
        team_reward: ``"mean"``, ``"sum"`` or a callable of the per-agent reward dict.
        max_episode_steps: initial time capacity of the replay buffer; detected from the env when
            None (the buffer grows if episodes are longer).
        tensorboard_log: folder for TensorBoard logs (None: no TensorBoard).
        verbose: 0 silent, 1 training info, 2 debug.
        seed: seed for Python, NumPy, torch and the environments.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        n_threads: torch CPU threads of the process (``torch.set_num_threads``): 1 (default) never
            oversubscribes a shared machine (torch's one-per-core made the update 1.9x slower beside
            other busy processes), an int sets that many, ``"auto"`` the cores other processes leave
            idle (``marl_lsf.algorithms.utils.idle_cpus``; on an idle 2-core machine both, and the
            update takes 0.57x the time of one), None leaves torch's setting alone. The count
            changes float rounding, so a seed reproduces a run only at the same thread count.
    """

    policy_aliases: ClassVar[dict[str, str]] = {"MlpPolicy": "mlp", "RnnPolicy": "rnn"}
    #: The ``mixer`` values the class accepts (QPLEX mixes with its own, ``"qplex"``).
    _mixer_kinds: ClassVar[tuple[str, ...]] = ("qmix", "vdn")

    def __init__(
        self,
        policy: str,
        env: ParallelEnv | EnvFactory | str | None,
        learning_rate: float | Schedule = 5e-4,
        buffer_size: int = 5000,
        learning_starts: int = 0,
        batch_size: int = 32,
        gamma: float = 0.99,
        tau: float = 0.005,
        target_update_interval: int = 1,
        train_freq: int = 1,
        gradient_steps: int = 1,
        max_grad_norm: float = 10.0,
        td_lambda: float = 0.6,
        hidden_dim: int = 64,
        last_action_input: bool = False,
        mixer: str = "qmix",
        mixer_embed_dim: int = 32,
        n_envs: int = 1,
        vectorization: str = "auto",
        team_reward: str | Callable[[Mapping[str, float]], float] = "mean",
        max_episode_steps: int | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        n_threads: int | str | None = 1,
        _spec: TeamSpec | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        if policy not in self.policy_aliases:
            raise ValueError(f"unknown policy {policy!r}; expected one of {sorted(self.policy_aliases)}")
        check_positive(buffer_size=buffer_size, batch_size=batch_size, train_freq=train_freq, n_envs=n_envs)
        check_positive(
            gradient_steps=gradient_steps,
            hidden_dim=hidden_dim,
            target_update_interval=target_update_interval,
        )
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        if not 0.0 <= td_lambda <= 1.0:
            raise ValueError(f"td_lambda must be in [0, 1], got {td_lambda}")
        if mixer not in self._mixer_kinds:
            raise ValueError(f"mixer must be {' or '.join(map(repr, self._mixer_kinds))}, got {mixer!r}")
        self.policy_name = policy
        self.torso = self.policy_aliases[policy]
        self.learning_rate = learning_rate
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.gamma = gamma
        self.tau = tau
        self.target_update_interval = target_update_interval
        self.train_freq = train_freq
        self.gradient_steps = gradient_steps
        self.max_grad_norm = max_grad_norm
        self.td_lambda = td_lambda
        self.hidden_dim = hidden_dim
        self.last_action_input = bool(last_action_input)
        self.mixer_kind = mixer
        self.mixer_embed_dim = mixer_embed_dim
        self.n_envs = n_envs
        self.vectorization = vectorization
        self.team_reward = team_reward
        self.tensorboard_log = tensorboard_log
        self.verbose = verbose
        self.seed = seed
        self.device = resolve_device(device)
        self.n_threads = n_threads
        threads = resolve_threads(n_threads)
        if threads is not None:
            torch.set_num_threads(threads)

        self.env: TeamVecEnv | None = None
        if env is not None:
            self.env = make_team_vec_env(env, n_envs, vectorization, team_reward)
            self.n_envs = self.env.num_envs
            if _spec is not None and (problem := _spec.mismatch(self.env.spec)) is not None:
                raise ValueError(f"the env does not match the model's spaces ({problem})")
            _spec = self.env.spec
            if verbose >= 1 and not _spec.state_from_env:
                print(
                    "marl-lsf: the env has no state(); using the concatenated observations as the global state"
                )
        if _spec is None:
            raise ValueError("an env is required (or a saved model's spec, through load())")
        self.spec = _spec
        self.max_episode_steps = max_episode_steps or (self.env.max_episode_steps if self.env else None) or 64

        self.num_timesteps = 0
        self._total_timesteps = 0
        self._episode_num = 0
        self._n_updates = 0
        self._targets: TargetNetworks | None = None
        self._num_timesteps_at_start = 0
        self._current_progress_remaining = 1.0
        self._logger: Logger | None = None
        #: The last checkpoint written during ``learn`` (set by ``marl_lsf.checkpoint.CheckpointCallback``).
        self.last_checkpoint: Path | None = None
        self.ep_info_buffer: deque[dict[str, float]] = deque(maxlen=100)
        self._last_obs: TeamObs | None = None
        self._hidden: torch.Tensor | None = None
        self._episode_return = np.zeros(self.n_envs)
        self._episode_length = np.zeros(self.n_envs, dtype=np.int64)
        self._rng = np.random.default_rng(seed)
        #: A loaded run's global generator states, set when ``learn`` continues the run (see ``load``).
        self._resume_rng_state: tuple[Any, ...] | None = None
        self.lr_schedule: Schedule = FloatSchedule(learning_rate)
        if _init_setup_model:
            self._setup_model()

    # -- construction ---------------------------------------------------------------------------

    def _setup_model(self) -> None:
        """Seed everything, build the networks, optimizers and the replay buffer."""
        if self.seed is not None:
            set_random_seed(self.seed, using_cuda=self.device.type == "cuda")
        self._build_networks()
        self.replay_buffer = EpisodeReplayBuffer(
            self.buffer_size, self.spec, self.n_envs, self.max_episode_steps, self.device
        )

    #: The decentralized action selection (built by ``_build_networks`` on the acting network).
    policy: ActingPolicy

    @abstractmethod
    def _build_networks(self) -> None:
        """Create the torch modules, the acting ``policy`` and the optimizers (on ``self.device``)."""

    @abstractmethod
    def _train_step(self, batch: EpisodeBatch) -> dict[str, float]:
        """One gradient update on a batch of episodes; returns the values to log under ``train/``."""

    @abstractmethod
    def _target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(online, target)`` network pairs that the target update moves together."""

    @abstractmethod
    def _update_learning_rates(self) -> None:
        """Set every optimizer's learning rate from its schedule (called before each training phase)."""

    def _gradient_step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Back-propagate ``loss``, clip the gradients of ``optimizer``'s parameters to ``max_grad_norm``, step."""
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(
            [p for group in optimizer.param_groups for p in group["params"]], self.max_grad_norm
        )
        optimizer.step()

    def train(self, gradient_steps: int, batch_size: int) -> None:
        """Run ``gradient_steps`` updates on batches of ``batch_size`` episodes, then log their mean values.

        After every ``target_update_interval`` updates the target networks move towards the online
        ones by ``tau`` (Polyak averaging; ``tau = 1`` copies them).
        """
        self._update_learning_rates()
        stats: dict[str, list[float]] = {}
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, self._rng)
            for key, value in self._train_step(batch).items():
                stats.setdefault(key, []).append(value)
            self._n_updates += 1
            if self._n_updates % self.target_update_interval == 0:
                if self._targets is None or not self._targets.tracks(self._target_pairs()):
                    self._targets = TargetNetworks(self._target_pairs())
                self._targets.update(self.tau)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in stats.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))

    #: Names of the torch modules, optimizers (None where a configuration has none) and tensors saved with the model.
    _saved_modules: ClassVar[tuple[str, ...]] = ()
    _saved_optimizers: ClassVar[tuple[str, ...]] = ()
    _saved_tensors: ClassVar[tuple[str, ...]] = ()
    #: Settings that model files written before an option existed were trained with; ``load`` uses
    #: them where a file lacks the key, so an old model keeps its behaviour rather than the new default.
    _legacy_params: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """The algorithm-specific constructor arguments, JSON-serialisable, for ``save``."""

    @property
    def uses_rnn(self) -> bool:
        """Whether the agent networks are recurrent."""
        return self.torso == "rnn"

    # -- logging and callbacks ----------------------------------------------------------------------

    @property
    def logger(self) -> Logger:
        """The Stable-Baselines3 logger of the current run."""
        if self._logger is None:
            self._logger = configure_logger(self.verbose, None, "", True)
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Use a custom Stable-Baselines3 ``Logger`` (e.g. from ``stable_baselines3.common.logger.configure``)."""
        self._logger = logger
        self._custom_logger = True

    def get_env(self) -> TeamVecEnv | None:
        """The training environment (a ``TeamVecEnv``), as callbacks expect."""
        return self.env

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool) -> BaseCallback:
        if isinstance(callback, Sequence) and not isinstance(callback, BaseCallback):
            callback = CallbackList(list(callback))
        elif callback is None:
            callback = CallbackList([])
        elif not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            from marl_lsf.callbacks import ProgressLogCallback  # (marl_lsf.callbacks imports this module)

            progress = ProgressBarCallback() if sys.stdout.isatty() else ProgressLogCallback()
            callback = CallbackList([callback, progress])
        callback.init_callback(self)
        return callback

    # -- the training loop ----------------------------------------------------------------------------

    def learn(
        self: SelfAlgorithm,
        total_timesteps: int | float,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfAlgorithm:
        """Train for ``total_timesteps`` environment steps (a float such as ``2e6`` works).

        On Linux, the process's malloc then keeps freed memory for reuse (``reuse_freed_memory`` in
        ``marl_lsf.algorithms.utils``): faster updates, resident memory kept at its peak.

        Args:
            total_timesteps: environment steps to collect (one step of one env counts 1).
            callback: a Stable-Baselines3 callback, a list of them, or a function
                ``(locals, globals) -> bool``; returning False stops training.
            log_interval: episodes between log dumps.
            tb_log_name: TensorBoard run name (default: the class name).
            reset_num_timesteps: start the step counter from 0. False continues the run (a loaded
                checkpoint's, too) with Stable-Baselines3's semantics: ``total_timesteps`` more
                steps are collected, so a resumed run that should end where the original would
                have passes ``total - model.num_timesteps``; schedules then see the original total.
            progress_bar: show a rich progress bar (Stable-Baselines3's, through tqdm.rich); where
                stdout is not a terminal, ``ProgressLogCallback``'s plain lines instead.

        Raises:
            NonFiniteError: a saved parameter is NaN or infinite at the start, or a loss logged by
                ``train`` or a saved parameter became so.
                Training stops at once; ``last_checkpoint`` (when a ``CheckpointCallback`` runs)
                was written before the failing update.
        """
        if self.env is None:
            raise RuntimeError("this model has no env; pass env= to load() or the constructor to train it")
        if not float(total_timesteps).is_integer() or total_timesteps < 0:
            raise ValueError(f"total_timesteps must be a non-negative whole number, got {total_timesteps}")
        total_timesteps = int(total_timesteps)
        total_timesteps = self._setup_learn(total_timesteps, reset_num_timesteps, tb_log_name)
        reuse_freed_memory()
        self._check_finite(parameters=True)
        callback = self._init_callback(callback, progress_bar)
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            episodes, continue_training = self._collect_rollouts(callback, total_timesteps, log_interval)
            if not continue_training:
                break
            if self.num_timesteps >= self.learning_starts and len(self.replay_buffer) > 0 and episodes > 0:
                self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
                self.train(self.gradient_steps * max(1, episodes // self.train_freq), self.batch_size)
                self._check_finite(parameters=False)
        if log_interval and self.num_timesteps > self._logged_at:
            self.dump_logs()  # the steps since the last row (all of them in a run shorter than log_interval)
        callback.on_training_end()
        return self

    def _setup_learn(self, total_timesteps: int, reset_num_timesteps: bool, tb_log_name: str | None) -> int:
        self.start_time = time.time_ns()
        self._logged_at = 0 if reset_num_timesteps else self.num_timesteps
        if not reset_num_timesteps and self._resume_rng_state is not None:
            set_global_rng_state(self._resume_rng_state)
        self._resume_rng_state = None
        if reset_num_timesteps:
            self.num_timesteps = 0
            self._episode_num = 0
        else:
            total_timesteps += self.num_timesteps
        if reset_num_timesteps or self._last_obs is None:
            # A resumed run reseeds its envs past the original seed so it does not replay the first episodes.
            seed = (
                self.seed if self.seed is None or self.num_timesteps == 0 else self.seed + self.num_timesteps
            )
            self._last_obs = self.env.reset(seed=seed)
            self._hidden = None
            self._episode_return[:] = 0
            self._episode_length[:] = 0
            self.replay_buffer.start(self._last_obs)
        self._total_timesteps = total_timesteps
        self._num_timesteps_at_start = self.num_timesteps
        if not getattr(self, "_custom_logger", False):
            self._logger = configure_logger(
                self.verbose, self.tensorboard_log, tb_log_name or type(self).__name__, reset_num_timesteps
            )
        return total_timesteps

    def _check_finite(self, parameters: bool = True) -> None:
        """Raise ``NonFiniteError`` if a ``train/*`` value just logged or (with ``parameters``) a saved parameter is not finite.

        After each training phase only the logged values are checked: a non-finite parameter makes
        every later loss non-finite, so the scan of all parameters runs once, at the start of
        ``learn``, off the training hot path.
        """
        for key, value in self.logger.name_to_value.items():
            if key.startswith("train/") and isinstance(value, float) and not math.isfinite(value):
                self._raise_non_finite(f"{key} is {value}")
        if not parameters:
            return
        modules = {name: getattr(self, name) for name in self._saved_modules}
        tensors = {
            f"{name}.{p}": t
            for name, module in modules.items()
            if isinstance(module, nn.Module)
            for p, t in module.named_parameters()
        }
        tensors |= {name: getattr(self, name) for name in self._saved_tensors}
        if tensors and bool(torch.stack([t.detach().isfinite().all() for t in tensors.values()]).all()):
            return
        for name, tensor in tensors.items():
            if not bool(tensor.detach().isfinite().all()):
                self._raise_non_finite(f"parameter {name} contains NaN or inf")

    def _raise_non_finite(self, what: str) -> None:
        where = f"after gradient update {self._n_updates} (environment step {self.num_timesteps})"
        last = (
            f"; the last checkpoint, written before it, is {self.last_checkpoint}"
            if self.last_checkpoint
            else ""
        )
        raise NonFiniteError(f"{what} {where}; training stopped{last}")

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        self._current_progress_remaining = 1.0 - float(num_timesteps) / float(max(total_timesteps, 1))

    def _update_learning_rate(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        lr = self.lr_schedule(self._current_progress_remaining)
        self.logger.record("train/learning_rate", lr)
        for optimizer in optimizers:
            update_learning_rate(optimizer, lr)


__all__ = ["MaybeCallback", "MultiAgentAlgorithm", "NonFiniteError"]
