"""Episode replay buffer: whole episodes, padded to a common length, with filled/alive masks.

Rollouts write one vector step at a time for all environments into a staging area (one fancy-
indexed write per field); an episode that ends is copied into a ring of ``capacity`` episodes.
Sampling returns a batch of whole episodes cut to the longest one in the batch (pymarl's
``max_t_filled``), so recurrent networks unroll each episode from a zero hidden state.

Storage is allocated with ``np.zeros``: the operating system commits pages only as episodes fill
them, so a large ``capacity`` costs memory in proportion to what is stored. Observations and states
are kept in float16 while every value written is exactly representable there (grids of 0/1, small
counts), which halves the buffer; the first value that is not switches storage to float32 for good,
so nothing is ever rounded.

Sizes count episodes, as in pymarl: ``capacity`` (the algorithms' ``buffer_size``) is a number of
episodes, each stored at the longest episode length seen, so a full buffer holds about
``capacity x episode length`` transitions. Before storage is allocated or grown, the bytes a full
buffer needs are estimated from the team's shapes and compared with the available memory (as
Stable-Baselines3's ``ReplayBuffer`` does): above :data:`MEMORY_WARN_FRACTION` of it a warning is
issued, above all of it a ``ValueError`` names the estimate and a ``buffer_size`` that fits.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from marl_lsf.team_env import TeamObs, TeamSpec, TeamStep


class EpisodeBatch(NamedTuple):
    """A batch of ``B`` padded episodes of ``T`` transitions, as tensors.

    Per-step fields have ``T + 1`` entries (the observation after the last transition included).
    """

    obs: torch.Tensor  # [B, T+1, N, O] float32
    state: torch.Tensor  # [B, T+1, S] float32
    avail: torch.Tensor  # [B, T+1, N, A] bool
    alive: torch.Tensor  # [B, T+1, N] bool
    actions: torch.Tensor  # [B, T, N] int64 (stored as int16 when the action count allows)
    reward: torch.Tensor  # [B, T] float32
    terminated: torch.Tensor  # [B, T] float32 (1.0 where the episode truly ended, no bootstrap)
    filled: torch.Tensor  # [B, T] bool (a real transition, not padding)


_STEP_FIELDS = ("obs", "state", "avail", "alive")

#: A full buffer estimated above this fraction of the available memory gets a warning.
MEMORY_WARN_FRACTION = 0.5


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (psutil, else ``/proc/meminfo``), None if unknown."""
    try:
        import psutil
    except ImportError:
        try:
            lines = Path("/proc/meminfo").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            key, _, value = line.partition(":")
            if key == "MemAvailable":
                return int(value.split()[0]) * 1024
        return None
    return int(psutil.virtual_memory().available)


class EpisodeReplayBuffer:
    """Ring buffer of whole episodes fed by ``num_envs`` environments at once.

    Args:
        capacity: number of episodes kept (the oldest are overwritten), not of steps.
        spec: the team view's shapes.
        num_envs: number of environments writing in parallel.
        max_episode_steps: initial time capacity; it doubles whenever a longer episode arrives.
        device: where sampled batches are put.
    """

    def __init__(
        self,
        capacity: int,
        spec: TeamSpec,
        num_envs: int = 1,
        max_episode_steps: int = 64,
        device: torch.device | str = "cpu",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1 episode, got {capacity}")
        self.capacity = capacity
        self.spec = spec
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.max_steps = max(1, int(max_episode_steps))
        self._action_dtype = np.int16 if spec.n_actions <= np.iinfo(np.int16).max else np.int64
        self._float_dtype: type[np.floating] = np.float16
        self._check_memory()
        self.storage = self._allocate(capacity, self.max_steps)
        self.lengths = np.zeros(capacity, dtype=np.int64)
        self.stage = self._allocate(num_envs, self.max_steps)
        self.stage_t = np.zeros(num_envs, dtype=np.int64)
        self.pos = 0
        self.full = False
        self.episodes_added = 0

    def _allocate(self, rows: int, steps: int) -> dict[str, np.ndarray]:
        n, o, a, s = self.spec.n_agents, self.spec.obs_dim, self.spec.n_actions, self.spec.state_dim
        return {
            "obs": np.zeros((rows, steps + 1, n, o), dtype=self._float_dtype),
            "state": np.zeros((rows, steps + 1, s), dtype=self._float_dtype),
            "avail": np.zeros((rows, steps + 1, n, a), dtype=bool),
            "alive": np.zeros((rows, steps + 1, n), dtype=bool),
            "actions": np.zeros((rows, steps, n), dtype=self._action_dtype),
            "reward": np.zeros((rows, steps), dtype=np.float32),
            "terminated": np.zeros((rows, steps), dtype=np.float32),
        }

    def nbytes_when_full(
        self, max_steps: int | None = None, float_dtype: type[np.floating] | None = None
    ) -> int:
        """Bytes of storage and staging once every slot holds an episode.

        Args:
            max_steps: the time capacity (default: the current one).
            float_dtype: the observation and state dtype (default: the current one).
        """
        steps = self.max_steps if max_steps is None else max_steps
        float_size = np.dtype(self._float_dtype if float_dtype is None else float_dtype).itemsize
        n, o, a, s = self.spec.n_agents, self.spec.obs_dim, self.spec.n_actions, self.spec.state_dim
        per_step = (n * o + s) * float_size + n * a + n  # obs, state, avail, alive
        per_transition = n * np.dtype(self._action_dtype).itemsize + 2 * 4  # actions, reward, terminated
        per_episode = (steps + 1) * per_step + steps * per_transition
        lengths = np.dtype(np.int64).itemsize * self.capacity
        return (self.capacity + self.num_envs) * per_episode + lengths

    def _check_memory(
        self, max_steps: int | None = None, float_dtype: type[np.floating] | None = None
    ) -> None:
        """Refuse (``ValueError``) or warn when a full buffer of this layout will not fit in memory."""
        available = available_memory()
        if available is None:
            return
        needed = self.nbytes_when_full(max_steps, float_dtype)
        if needed <= MEMORY_WARN_FRACTION * available:
            return
        steps = self.max_steps if max_steps is None else max_steps
        per_episode = needed / (self.capacity + self.num_envs)
        fits = max(1, int(MEMORY_WARN_FRACTION * available / per_episode) - self.num_envs)
        longer = (
            f"an episode has run {self.max_steps:,} steps without ending (if the env never ends or "
            "truncates its episodes, give it a time limit, e.g. max_cycles or SuperSuit's "
            "frame-limit wrapper); "
            if max_steps is not None and max_steps > self.max_steps
            else ""
        )
        message = longer + (
            f"a full replay buffer of {self.capacity:,} episodes x {steps} steps needs about "
            f"{needed / 2**30:.1f} GiB ({needed:,} bytes), {available / 2**30:.1f} GiB of memory is "
            f"available; buffer_size counts episodes, not steps: use e.g. buffer_size={fits:,}"
        )
        if needed > available:
            raise ValueError(message)
        warnings.warn(message, stacklevel=3)

    def _grow(self) -> None:
        """Double the time capacity of storage and staging, copying only the rows in use."""
        self._check_memory(max_steps=2 * self.max_steps)
        self.max_steps *= 2
        self._reallocate()

    def _widen(self) -> None:
        """Switch observation and state storage from float16 to float32 (keeps what is stored)."""
        self._check_memory(float_dtype=np.float32)
        self._float_dtype = np.float32
        self._reallocate()

    def _reallocate(self) -> None:
        """New storage and staging in the current time capacity and dtypes, with the rows in use copied."""
        for name, used in (("storage", len(self)), ("stage", self.num_envs)):
            arrays = getattr(self, name)
            grown = self._allocate(arrays["reward"].shape[0], self.max_steps)
            for key, value in arrays.items():
                grown[key][:used, : value.shape[1]] = value[:used]
            setattr(self, name, grown)

    def __len__(self) -> int:
        """Number of complete episodes stored."""
        return self.capacity if self.full else self.pos

    def start(self, first: TeamObs) -> None:
        """Begin a fresh episode in every environment at ``first``."""
        self.stage_t[:] = 0
        self._write_obs(np.arange(self.num_envs), np.zeros(self.num_envs, dtype=np.int64), first)

    def _write_obs(self, envs: np.ndarray, t: np.ndarray, obs: TeamObs) -> None:
        if self._float_dtype is np.float16 and not (_exact_in_half(obs.obs) and _exact_in_half(obs.state)):
            self._widen()
        for key, value in zip(_STEP_FIELDS, obs, strict=True):
            self.stage[key][envs, t] = value[envs]

    def add(self, actions: np.ndarray, step: TeamStep) -> int:
        """Record one vector step (``actions [E, N]`` and its result); returns episodes completed."""
        envs, t = np.arange(self.num_envs), self.stage_t
        if int(t.max()) + 1 > self.max_steps:
            self._grow()
        self.stage["actions"][envs, t] = actions
        self.stage["reward"][envs, t] = step.reward
        self.stage["terminated"][envs, t] = step.terminated
        self._write_obs(envs, t + 1, step.final)
        self.stage_t += 1
        done = np.flatnonzero(step.terminated | step.truncated)
        for e in done:
            self._commit(int(e))
        if done.size:
            self.stage_t[done] = 0
            self._write_obs(done, np.zeros(done.size, dtype=np.int64), step.next)
        return int(done.size)

    def _commit(self, e: int) -> None:
        length = int(self.stage_t[e])
        slot = self.pos
        for key, value in self.stage.items():
            steps = length + 1 if key in _STEP_FIELDS else length
            self.storage[key][slot, :steps] = value[e, :steps]
            self.storage[key][slot, steps:] = 0
        self.lengths[slot] = length
        self.pos = (self.pos + 1) % self.capacity
        self.full = self.full or self.pos == 0
        self.episodes_added += 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> EpisodeBatch:
        """Sample ``batch_size`` stored episodes uniformly (with replacement if fewer are stored)."""
        stored = len(self)
        if stored == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = rng.choice(stored, size=batch_size, replace=stored < batch_size)
        return self.get(idx)

    def get(self, idx: np.ndarray) -> EpisodeBatch:
        """The episodes at storage slots ``idx`` as a batch cut to their longest length."""
        lengths = self.lengths[idx]
        horizon = int(lengths.max())
        fields: dict[str, Any] = {}
        for key, value in self.storage.items():
            steps = horizon + 1 if key in _STEP_FIELDS else horizon
            fields[key] = torch.as_tensor(value[idx, :steps], device=self.device)
        fields["actions"] = fields["actions"].long()
        fields["obs"], fields["state"] = fields["obs"].float(), fields["state"].float()
        filled = torch.as_tensor(np.arange(horizon)[None, :] < lengths[:, None], device=self.device)
        return EpisodeBatch(filled=filled, **fields)

    def state_dict(self) -> dict[str, Any]:
        """Stored episodes as arrays (for checkpoints); staging of unfinished episodes is not kept."""
        stored = len(self)
        horizon = int(self.lengths[:stored].max()) if stored else 0
        data: dict[str, Any] = {
            key: torch.from_numpy(value[:stored, : horizon + (key in _STEP_FIELDS)].copy())
            for key, value in self.storage.items()
        }
        data.update(
            lengths=torch.from_numpy(self.lengths[:stored].copy()),
            pos=self.pos,
            full=self.full,
            episodes_added=self.episodes_added,
        )
        return data

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore episodes saved by ``state_dict``.

        Raises:
            ValueError: the saved state is not one ``state_dict`` of a buffer of this team could
                write (see ``check_state_dict``); nothing is changed then.
        """
        self.check_state_dict(data)
        lengths = data["lengths"].numpy()
        stored = lengths.size
        while stored and int(lengths.max()) > self.max_steps:
            self._grow()
        if self._float_dtype is np.float16 and any(
            data[key].dtype != torch.float16 for key in ("obs", "state")
        ):
            self._widen()
        horizon = data["obs"].shape[1] - 1
        for key in self.storage:
            steps = horizon + (key in _STEP_FIELDS)  # older files kept one padding step more
            self.storage[key][:stored, :steps] = data[key][:, :steps].numpy()
        self.lengths[:stored] = lengths
        self.pos, self.full, self.episodes_added = (
            int(data["pos"]),
            bool(data["full"]),
            int(data["episodes_added"]),
        )

    def check_state_dict(self, data: Any) -> None:
        """Raise ``ValueError`` naming the field when ``data`` is not a state this buffer can restore.

        Checks what a crafted or damaged checkpoint could get wrong and the first training update
        would not catch: every field present with this team's shape and a fitting dtype, episode
        lengths in ``1..horizon``, actions in ``0..n_actions-1``, masks of 0 and 1, and a ring
        position, ``full`` flag and episode count that agree with the number of stored episodes.
        """
        if not isinstance(data, dict):
            raise ValueError(f"saved buffer must be a dict of tensors, got {type(data).__name__}")
        lengths = data.get("lengths")
        if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.is_floating_point():
            raise ValueError("saved buffer field 'lengths' must be a 1-D integer tensor")
        stored = lengths.numel()
        if stored > self.capacity:
            raise ValueError(
                f"saved buffer holds {stored} episodes, more than this buffer's capacity {self.capacity}"
            )
        obs = data.get("obs")
        horizon = obs.shape[1] - 1 if isinstance(obs, torch.Tensor) and obs.dim() == 4 else 0
        for key, array in self.storage.items():  # the expected shapes and kinds are the storage's
            value = data.get(key)
            steps = (horizon + 1,) if key in _STEP_FIELDS else (horizon, horizon + 1)
            shapes = [(stored, t, *array.shape[2:]) for t in steps]
            if not isinstance(value, torch.Tensor) or tuple(value.shape) not in shapes:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"saved buffer field {key!r} must have shape {shapes[0]}, got {got}")
            floating = np.issubdtype(array.dtype, np.floating)
            if value.is_floating_point() != floating or value.is_complex():
                kind = "floating-point" if floating else "integer or bool"
                raise ValueError(f"saved buffer field {key!r} must be {kind}, got {value.dtype}")
        if stored and not bool(((lengths >= 1) & (lengths <= horizon)).all()):
            raise ValueError(
                f"saved buffer episode lengths must lie in 1..{horizon}, got {lengths.tolist()[:8]}"
            )
        n_actions = self.spec.n_actions
        actions = data["actions"]
        if stored and not bool(((actions >= 0) & (actions < n_actions)).all()):
            raise ValueError(f"saved buffer actions must lie in 0..{n_actions - 1}")
        for key in ("avail", "alive", "terminated"):
            value = data[key]
            if not bool(((value == 0) | (value == 1)).all()):
                raise ValueError(f"saved buffer field {key!r} must hold only 0 and 1")
        counters = {key: data.get(key) for key in ("pos", "full", "episodes_added")}
        for key, value in counters.items():
            if not isinstance(value, int) or (key != "full" and isinstance(value, bool)) or value < 0:
                raise ValueError(
                    f"saved buffer field {key!r} must be a non-negative whole number, got {value!r}"
                )
        pos, full, added = counters["pos"], bool(counters["full"]), counters["episodes_added"]
        if (
            full != (stored == self.capacity and added >= self.capacity)
            or not 0 <= pos < self.capacity
            or (not full and pos != stored)
            or added < stored
        ):
            raise ValueError(
                f"saved buffer position {pos}, full={full} and episodes_added={added} do not fit "
                f"{stored} stored episodes in a capacity of {self.capacity}"
            )


def _exact_in_half(values: np.ndarray) -> bool:
    """Whether every value survives a round trip through float16 unchanged."""
    return bool(np.array_equal(values.astype(np.float16), values))
