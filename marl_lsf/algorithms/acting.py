"""Decentralized execution of ``MultiAgentAlgorithm``: the networks' inputs, ``act`` and ``predict``.

``ActingMixin`` builds the acting and critic networks' inputs (observation, one-hot agent id,
previous action) and their packing into real steps (``marl_lsf.algorithms.packing``), acts for
a batch of team observations in one forward pass, and turns PettingZoo observation dicts or
arrays, recurrent state and the caller's action masks into ``predict``'s per-agent actions,
refusing inputs of the wrong shape with a message that names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from marl_lsf.algorithms.packing import StepPacking
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.nets.policies import ActingPolicy, with_agent_ids
from marl_lsf.team_env import TeamSpec


class ActingMixin:
    """The networks' inputs and the decentralized action selection of ``MultiAgentAlgorithm``.

    Uses the host's ``spec``, ``last_action_input``, ``device`` and the acting ``policy`` that
    ``_build_networks`` creates.
    """

    spec: TeamSpec
    uses_rnn: bool
    last_action_input: bool
    device: torch.device
    policy: ActingPolicy

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

    def _step_packing(self, batch: EpisodeBatch) -> StepPacking:
        """Packing of the batch's real steps for the per-step (``MlpPolicy``) networks; none for RNNs."""
        return StepPacking(batch.filled, enabled=not self.uses_rnn)

    def _mixer_packing(self, batch: EpisodeBatch, next_step: bool = False) -> StepPacking:
        """Packing for networks that read each step on its own whatever the agents' network (mixers,
        DOP's critic): the filled transitions ``[B, T]``, or with ``next_step`` every real step ``[B, T+1]``."""
        return StepPacking(batch.filled, next_step=next_step)

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

    def act(
        self,
        obs: np.ndarray,
        avail: np.ndarray,
        hidden: torch.Tensor | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor | None]:
        """Actions ``[E, N]`` for observations ``[E, N, O]`` and masks ``[E, N, A]``, in one forward pass."""
        return self.policy.act(obs, avail, hidden, deterministic)

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
