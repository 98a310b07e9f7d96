"""The base every marl-lsf algorithm stands on, laid out like Stable-Baselines3's.

* ``MultiAgentAlgorithm`` owns the environment (as a ``TeamVecEnv``), seeding, device, logger,
  callbacks, the episode replay buffer, the collect-then-train loop, ``predict`` and save/load.
* An algorithm subclass adds only its networks (``_build_networks``), how it acts
  (``_policy_step``) and its losses (``train``).

Reused from Stable-Baselines3: the logger (stdout/CSV/TensorBoard), callbacks (``BaseCallback``,
``CallbackList``, ``ConvertCallback``, ``ProgressBarCallback``), schedules (``FloatSchedule``),
``set_random_seed``, ``get_device``, ``polyak_update`` and ``update_learning_rate``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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
    LinearSchedule,
    configure_logger,
    get_device,
    polyak_update,
    set_random_seed,
    update_learning_rate,
)
from torch import nn

from marl_lsf.buffer import EpisodeBatch, EpisodeReplayBuffer
from marl_lsf.nets.policies import ActingPolicy, with_agent_ids
from marl_lsf.rollout import WorkerTeamVecEnv, rollout_step
from marl_lsf.save_util import (
    ModelFileError,
    global_rng_state,
    load_model_file,
    restore_rng_state,
    rng_state,
    save_model_file,
    set_global_rng_state,
)
from marl_lsf.team_env import (
    EnvFactory,
    ParallelEnv,
    TeamObs,
    TeamSpec,
    TeamStep,
    TeamVecEnv,
    make_team_vec_env,
)

SelfAlgorithm = TypeVar("SelfAlgorithm", bound="MultiAgentAlgorithm")
MaybeCallback = (
    BaseCallback | Callable[[dict[str, Any], dict[str, Any]], bool] | Sequence[BaseCallback] | None
)

#: Constructor arguments a model file may not set: they concern this machine and this run (where
#: to log, how many threads and workers), so only the caller of ``load`` chooses them.
_LOCAL_ARGUMENTS = frozenset(
    {"policy", "env", "device", "tensorboard_log", "verbose", "n_envs", "vectorization", "n_threads"}
)


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss or parameter; raised before anything else uses it."""


class MultiAgentAlgorithm(ABC):
    """Base of the cooperative MARL algorithms: env handling, rollouts, logging, save/load.

    Args:
        policy: ``"MlpPolicy"`` (feed-forward on the current observation) or ``"RnnPolicy"``
            (GRU over the episode, trained with full-episode back-propagation).
        env: a PettingZoo ``ParallelEnv`` or a zero-argument factory of one; None only when
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
            of the policy, a chunk of steps at a time); see ``marl_lsf.team_env.make_team_vec_env``
            and ``marl_lsf.rollout``.
        team_reward: ``"mean"``, ``"sum"`` or a callable of the per-agent reward dict.
        max_episode_steps: initial time capacity of the replay buffer; detected from the env when
            None (the buffer grows if episodes are longer).
        tensorboard_log: folder for TensorBoard logs (None: no TensorBoard).
        verbose: 0 silent, 1 training info, 2 debug.
        seed: seed for Python, NumPy, torch and the environments.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        n_threads: torch CPU threads (None leaves torch's default).
    """

    policy_aliases: ClassVar[dict[str, str]] = {"MlpPolicy": "mlp", "RnnPolicy": "rnn"}
    #: The ``mixer`` values the class accepts (QPLEX mixes with its own, ``"qplex"``).
    _mixer_kinds: ClassVar[tuple[str, ...]] = ("qmix", "vdn")

    def __init__(
        self,
        policy: str,
        env: ParallelEnv | EnvFactory | None,
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
        n_threads: int | None = None,
        _spec: TeamSpec | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        if policy not in self.policy_aliases:
            raise ValueError(f"unknown policy {policy!r}; expected one of {sorted(self.policy_aliases)}")
        _check_positive(buffer_size=buffer_size, batch_size=batch_size, train_freq=train_freq, n_envs=n_envs)
        _check_positive(
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
        self.device = get_device(device)
        self.n_threads = n_threads
        if n_threads is not None:
            torch.set_num_threads(n_threads)

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
                for online, target in self._target_pairs():
                    polyak_update(online.parameters(), target.parameters(), self.tau)
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

    @property
    def actor_input_dim(self) -> int:
        """Size of the acting network's input: observation, one-hot id and, optionally, last action."""
        return self.spec.obs_dim + self.spec.n_agents + self.spec.n_actions * self.last_action_input

    def actor_inputs(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """Acting network input ``[..., N, actor_input_dim]``: observation, one-hot id and, with
        ``last_action_input``, the previous action (from ``actions [B, T, N]`` over episodes
        ``obs [B, T+1, N, O]``, see ``previous_actions``; zeros when ``actions`` is None).
        """
        inputs = with_agent_ids(obs)
        if not self.last_action_input:
            return inputs
        if actions is None:
            last = obs.new_zeros((*obs.shape[:-1], self.spec.n_actions))
        else:
            last = self.previous_actions(actions, obs.dtype)
        return torch.cat([inputs, last], dim=-1)

    def previous_actions(self, actions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """One-hot actions ``[B, T+1, N, A]`` shifted one step: step ``t`` holds the action of ``t-1``, zeros at ``t = 0``."""
        last = nn.functional.one_hot(actions, self.spec.n_actions).to(dtype)
        return torch.cat([torch.zeros_like(last[:, :1]), last], dim=1)

    def critic_inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Critic input over an episode ``[B, T+1, N, O + A + N]``: observation, last action, agent id.

        ``actions [B, T, N]`` are shifted one step (``previous_actions``).
        """
        last = self.previous_actions(actions, obs.dtype)
        ids = torch.eye(self.spec.n_agents, device=obs.device).expand(*obs.shape[:-1], self.spec.n_agents)
        return torch.cat([obs, last, ids], dim=-1)

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
            callback = CallbackList([callback, ProgressBarCallback()])
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
            progress_bar: show a rich progress bar (Stable-Baselines3's, through tqdm.rich).

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
        callback.on_training_end()
        return self

    def _setup_learn(self, total_timesteps: int, reset_num_timesteps: bool, tb_log_name: str | None) -> int:
        self.start_time = time.time_ns()
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

    def act(
        self,
        obs: np.ndarray,
        avail: np.ndarray,
        hidden: torch.Tensor | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor | None]:
        """Actions ``[E, N]`` for observations ``[E, N, O]`` and masks ``[E, N, A]``, in one forward pass."""
        return self.policy.act(obs, avail, hidden, deterministic)

    def _collect_rollouts(
        self, callback: BaseCallback, total_timesteps: int, log_interval: int
    ) -> tuple[int, bool]:
        """Collect until ``train_freq`` episodes end (or the budget is spent).

        Each vector step, acted here or in rollout workers (``_next_steps``), is recorded in the
        replay buffer, the episode statistics, the log and the callbacks, in that order. A
        callback that stops training in the middle of a workers' chunk leaves steps unrecorded:
        the envs then start afresh at the next ``learn``.
        """
        episodes = 0
        while episodes < self.train_freq and self.num_timesteps < total_timesteps:
            for actions, step in self._next_steps(total_timesteps, episodes):
                self.num_timesteps += self.n_envs
                self.replay_buffer.add(actions, step)
                done = self._track_episodes(step)
                episodes += done.size
                self._last_obs = step.next
                # Count episodes and write the log before the callbacks, so a checkpoint taken there agrees
                # with the buffer and the log (a run resumed from it neither skips nor repeats a log row).
                episodes_before = self._episode_num
                self._episode_num += int(done.size)
                if log_interval and self._episode_num // log_interval > episodes_before // log_interval:
                    self.dump_logs()
                callback.update_locals(locals())
                if not callback.on_step():
                    if isinstance(self.env, WorkerTeamVecEnv):
                        if self.env.pending:
                            self.env.collect_wait()
                        self._last_obs = None
                    return episodes, False
        return episodes, True

    def _next_steps(self, total_timesteps: int, episodes: int) -> Iterable[tuple[np.ndarray, TeamStep]]:
        """The next vector steps as ``(actions, step)``: one acted here, or a chunk from the rollout workers.

        Actions are uniformly random while fewer than ``learning_starts`` steps have been taken.
        ``episodes`` have ended in this collection phase so far.
        """
        if isinstance(self.env, WorkerTeamVecEnv):
            return self._worker_steps(self.env, total_timesteps, episodes)
        actions, step, self._hidden = rollout_step(
            self.policy,
            self.env,
            self._last_obs,
            self._hidden,
            self.num_timesteps < self.learning_starts,
            self._rng,
        )
        return ((actions, step),)

    def _worker_steps(
        self, env: WorkerTeamVecEnv, total_timesteps: int, episodes: int
    ) -> Iterable[tuple[np.ndarray, TeamStep]]:
        """The next chunk of the rollout workers (``marl_lsf.rollout.CHUNK_STEPS`` vector steps at most).

        When no training can come before the chunk after it (too few episodes end in this one, or
        the warm-up goes on) the workers start that chunk at once, while this one is recorded: it
        is acted with the same policy, and the same random warm-up, as it would be if asked for
        afterwards.
        """

        def start(timesteps: int) -> None:
            steps_left = -(-(total_timesteps - timesteps) // self.n_envs)
            random_steps = max(0, -(-(self.learning_starts - timesteps) // self.n_envs))
            env.collect_async(self.policy, min(env.chunk_steps, steps_left), random_steps)

        if not env.pending:
            start(self.num_timesteps)
        rollout = env.collect_wait()
        after = self.num_timesteps + rollout.num_steps * self.n_envs
        trains_next = episodes + rollout.episodes >= self.train_freq and after >= self.learning_starts
        if not trains_next and after < total_timesteps:
            start(after)
        return rollout.steps()

    def _track_episodes(self, step: TeamStep) -> np.ndarray:
        self._episode_return += step.reward
        self._episode_length += 1
        done = np.flatnonzero(step.terminated | step.truncated)
        for e in done:
            info = {"r": float(self._episode_return[e]), "l": int(self._episode_length[e])}
            if "won" in step.infos[e]:
                info["won"] = float(step.infos[e]["won"])
            self.ep_info_buffer.append(info)
        self._episode_return[done] = 0.0
        self._episode_length[done] = 0
        return done

    def dump_logs(self) -> None:
        """Record rollout statistics and time, then write the logger's outputs."""
        elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / elapsed)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", float(np.mean([ep["r"] for ep in self.ep_info_buffer])))
            self.logger.record("rollout/ep_len_mean", float(np.mean([ep["l"] for ep in self.ep_info_buffer])))
            wins = [ep["won"] for ep in self.ep_info_buffer if "won" in ep]
            if wins:
                self.logger.record("rollout/win_rate", float(np.mean(wins)))
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # -- decentralized execution ----------------------------------------------------------------------

    def predict(
        self,
        observation: Mapping[str, Any] | np.ndarray,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | bool | None = None,
        deterministic: bool = False,
        action_masks: Mapping[str, Any] | np.ndarray | None = None,
    ) -> tuple[dict[str, int] | np.ndarray, np.ndarray | None]:
        """Per-agent actions from per-agent observations (decentralized: each agent sees only its own).

        Args:
            observation: a PettingZoo observation dict ``agent -> observation`` (any non-empty
                subset of the trained agents: agents that have left are simply absent; dict
                observations with an ``action_mask`` are honoured), or an array of shape
                ``[N, *obs_shape]`` or ``[B, N, *obs_shape]`` for all ``N`` agents.
            state: the memory returned by the previous call, shape ``[N, M]`` or ``[B, N, M]``
                (``RnnPolicy``'s hidden state, then the last actions one-hot with
                ``last_action_input``; see ``marl_lsf.nets.policies``); None starts from zeros.
            episode_start: bool (or ``[B]`` bools) marking a new episode: its state is reset.
            deterministic: greedy instead of sampled actions.
            action_masks: the actions the caller allows, as SB3-contrib's ``MaskablePPO.predict``
                takes them: a dict ``agent -> mask`` (each of that agent's action count; an
                agent's ``info`` dict holding ``"action_mask"`` is read too, so the env's
                ``infos`` can be passed as they are; absent agents are not restricted), or a bool
                array ``[N, A]``/``[B, N, A]`` over the padded ``A`` actions. They are combined
                with the masks of dict observations: only actions both allow are chosen.

        Raises:
            ValueError: an observation or mask of the wrong shape, or a mask that leaves an
                agent no available action (the agent is named).

        Returns:
            ``(actions, state)``: actions in the input's form (a dict for a dict, an array for an
            array) and the next memory (None for ``MlpPolicy`` without ``last_action_input``).
        """
        is_dict = isinstance(observation, Mapping)
        if is_dict:
            if not observation:
                raise ValueError("predict() got an empty observation dict")
            obs, avail, alive = self.spec.encode(observation)
            obs, avail, batched = obs[None], avail[None], False
        else:
            obs, batched = self._array_observation(np.asarray(observation, dtype=np.float32))
            avail = np.zeros((*obs.shape[:2], self.spec.n_actions), dtype=bool)
            for i, count in enumerate(self.spec.action_counts):
                avail[:, i, :count] = True
        if action_masks is not None:
            avail = avail & self._caller_masks(action_masks, avail.shape, alive if is_dict else None)
            stuck = ~avail.any(-1)
            if stuck.any():
                agent = self.spec.agents[int(stuck.nonzero()[1][0])]
                raise ValueError(f"action_masks leaves agent {agent!r} no available action")
        hidden = None
        if self.policy.memory_dim:
            shape = (obs.shape[0], self.spec.n_agents, self.policy.memory_dim)
            hidden_np = (
                np.zeros(shape, dtype=np.float32) if state is None else np.asarray(state, dtype=np.float32)
            )
            hidden_np = hidden_np.reshape(shape) if hidden_np.size == np.prod(shape) else hidden_np
            if hidden_np.shape != shape:
                raise ValueError(
                    f"state has shape {np.shape(state)}, expected {shape[1:] if not batched else shape}"
                )
            if episode_start is not None:
                starts = np.broadcast_to(np.asarray(episode_start, dtype=bool).reshape(-1), (shape[0],))
                hidden_np = np.where(starts[:, None, None], 0.0, hidden_np).astype(np.float32)
            hidden = torch.as_tensor(hidden_np, device=self.device)
        actions, hidden = self.act(obs, avail, hidden, deterministic)
        next_state = None if hidden is None else hidden.cpu().numpy()
        if is_dict:
            actions_dict = {agent: int(actions[0, i]) for i, agent in enumerate(self.spec.agents) if alive[i]}
            return actions_dict, None if next_state is None else next_state[0]
        if not batched:
            return actions[0], None if next_state is None else next_state[0]
        return actions, next_state

    def _caller_masks(
        self, masks: Mapping[str, Any] | np.ndarray, shape: tuple[int, ...], alive: np.ndarray | None
    ) -> np.ndarray:
        """``predict``'s ``action_masks`` as bools of ``shape`` ``[B, N, A]``; ``alive`` limits a dict to live agents."""
        allowed = np.ones(shape, dtype=bool)
        if not isinstance(masks, Mapping):
            array = np.asarray(masks)
            if array.dtype != bool and not np.isin(array, (0, 1)).all():
                raise ValueError("action_masks must hold only True/False (or 1/0)")
            if array.shape not in (shape, shape[1:]):
                raise ValueError(f"action_masks has shape {array.shape}, expected {shape[1:]} or {shape}")
            return allowed & array.astype(bool)
        unknown = sorted(set(masks) - set(self.spec.agents))
        if unknown:
            raise ValueError(f"action_masks for unknown agents {unknown}; expected {list(self.spec.agents)}")
        for i, agent in enumerate(self.spec.agents):
            mask = masks.get(agent)
            if isinstance(mask, Mapping):
                mask = mask.get("action_mask")
            if mask is None or (alive is not None and not alive[i]):
                continue
            mask = np.asarray(mask).reshape(-1)
            count = self.spec.action_counts[i]
            if mask.size != count or (mask.dtype != bool and not np.isin(mask, (0, 1)).all()):
                raise ValueError(
                    f"action_masks[{agent!r}] must be {count} True/False (or 1/0) entries, got {mask.size} of {mask.dtype}"
                )
            allowed[:, i, :count] = mask.astype(bool)
        return allowed

    def _array_observation(self, obs: np.ndarray) -> tuple[np.ndarray, bool]:
        """Validate an array observation; returns ``([B, N, obs_dim], batched)``."""
        n = self.spec.n_agents
        shapes = set(self.spec.obs_shapes)
        agent_shape = next(iter(shapes)) if len(shapes) == 1 else (self.spec.obs_dim,)
        single = (n, *agent_shape)
        if obs.shape == single:
            batched = False
        elif obs.ndim == len(single) + 1 and obs.shape[1:] == single:
            batched = True
        else:
            raise ValueError(
                f"observation array has shape {obs.shape}; expected {single} for the {n} agents "
                f"{list(self.spec.agents)}, or (batch, *{single})"
            )
        if not np.isfinite(obs).all():
            raise ValueError("observation contains NaN or inf")
        flat = obs.reshape(-1, n, int(np.prod(agent_shape)))
        padded = np.zeros((flat.shape[0], n, self.spec.obs_dim), dtype=np.float32)
        padded[..., : flat.shape[-1]] = flat
        return padded, batched

    # -- save and load --------------------------------------------------------------------------------

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
            "params": self._params() | self._base_params(),
            "num_timesteps": self.num_timesteps,
            "episode_num": self._episode_num,
            "n_updates": self._n_updates,
            "ep_info_buffer": list(self.ep_info_buffer),
            "rng": rng_data,
        }
        return save_model_file(path, data, tensors)

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
        data, tensors = load_model_file(path, get_device(device))
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
        try:
            spec = TeamSpec.from_json(data["spec"])
            params = {**cls._legacy_params, **dict(data["params"])}
            refused = sorted(key for key in params if key in _LOCAL_ARGUMENTS or key.startswith("_"))
            if refused:
                raise ModelFileError(
                    f"{path}: model settings may not set {refused}; pass them to load() instead"
                )
            params = _checked_params(cls, params, path)
            model = cls(
                data["policy"], env, device=device, _spec=spec, _init_setup_model=False, **(params | kwargs)
            )
        except (KeyError, TypeError, AssertionError, OverflowError) as exc:
            raise ModelFileError(f"{path}: model settings are incomplete or invalid ({exc!r})") from exc
        counters = {key: data.get(key, 0) for key in ("num_timesteps", "episode_num", "n_updates")}
        for key, value in counters.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ModelFileError(
                    f"{path}: {key} must be a non-negative whole number, got {_short(value)}"
                )
        episodes = data.get("ep_info_buffer", [])
        if not isinstance(episodes, list) or not all(
            isinstance(info, dict)
            and all(isinstance(v, int | float) and math.isfinite(v) for v in info.values())
            for info in episodes
        ):
            raise ModelFileError(f"{path}: ep_info_buffer must be a list of objects of finite numbers")
        model._check_saved_shapes(tensors, path)
        model._setup_model()
        try:
            for name in model._saved_modules:
                getattr(model, name).load_state_dict(tensors[f"module/{name}"])
            for name in model._saved_optimizers:
                optimizer = getattr(model, name)
                if optimizer is not None and f"optim/{name}" in tensors:
                    optimizer.load_state_dict(tensors[f"optim/{name}"])
            for name in model._saved_tensors:
                getattr(model, name).data.copy_(tensors[f"tensor/{name}"])
            if "buffer" in tensors:
                model.replay_buffer.load_state_dict(tensors["buffer"])
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise ModelFileError(f"{path}: saved state does not fit this {cls.__name__} ({exc!r})") from exc
        model.num_timesteps = counters["num_timesteps"]
        model._episode_num = counters["episode_num"]
        model._n_updates = counters["n_updates"]
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


def adam(params: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam with torch's fused implementation where the parameters' device supports it (CPU and
    CUDA in current torch: one kernel for all parameters instead of a loop over them), else the
    default implementation. Both compute the same update up to float rounding.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr)


def epsilon_schedule(fraction: float, initial_eps: float, final_eps: float) -> Schedule:
    """Stable-Baselines3's DQN exploration schedule: epsilon decays linearly from ``initial_eps`` to
    ``final_eps`` over the first ``fraction`` of the run, then stays there.

    Raises:
        ValueError: ``fraction`` outside (0, 1] or an epsilon outside [0, 1], each named.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"exploration_fraction must be in (0, 1], got {fraction}")
    for name, eps in (("exploration_initial_eps", initial_eps), ("exploration_final_eps", final_eps)):
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {eps}")
    return LinearSchedule(initial_eps, final_eps, fraction)


#: Python types a saved setting may have, by the names in the constructors' annotations.
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "None": (type(None),),
}


def _short(value: Any) -> str:
    """``repr(value)``, cut to a length that fits an error line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked_params(cls: type, params: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """The saved settings, each checked against its constructor annotation's JSON types.

    Raises ``ModelFileError`` naming the first setting of another type, or a number that is not
    finite. A whole float for an ``int`` setting (``1e4`` passed as ``learning_starts``) becomes
    an int. Settings without such an annotation are left to the constructor.
    """
    annotations: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        annotations.update({k: str(v) for k, v in getattr(init, "__annotations__", {}).items()})
    checked = dict(params)
    for key, value in params.items():
        names = [name.strip() for name in annotations.get(key, "").split("|")]
        allowed = tuple(t for name in names for t in _SETTING_TYPES.get(name, ()))
        if not allowed:
            continue
        if isinstance(value, float) and int in allowed and float not in allowed and value.is_integer():
            value = checked[key] = int(value)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        fits = bool in allowed if isinstance(value, bool) else isinstance(value, allowed)
        if not fits or (numeric and not math.isfinite(value)):
            expected = " or ".join(n for n in names if n in _SETTING_TYPES)
            kind = f"a finite {expected}" if int in allowed else f"a {expected}"
            raise ModelFileError(f"{path}: model setting {key!r} must be {kind}, got {_short(value)}")
    return checked


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
