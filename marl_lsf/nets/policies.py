"""Acting policies: the decentralized action selection a rollout runs, in the learner or in a worker.

An ``ActingPolicy`` wraps the agent network that picks actions (LSF-SAC's actor, QMIX's utility
network) and holds everything acting needs, so one object serves ``predict``, the in-process
rollout and the rollout worker processes (which receive a copy of it with every chunk they
collect; see ``marl_lsf.rollout``). Its parameters are the learner's own: building one copies
nothing.

A policy's *memory* is what it carries from one step to the next of an episode, ``[E, N, M]``
(None when it carries nothing): the GRU's hidden state (``RnnPolicy``), then, when the network
reads each agent's previous action (pymarl's ``obs_last_action``), that action one-hot. Zeros
are the start of an episode, so whoever runs episodes zeroes the memory of the envs that ended.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from marl_lsf.nets.agents import (
    AgentNetwork,
    gumbel_perturbed,
    masked_argmax,
    masked_epsilon_argmax,
    masked_sample,
    require_available,
)


def with_agent_ids(obs: torch.Tensor) -> torch.Tensor:
    """Agent input ``[..., N, O + N]``: each agent's observation followed by its one-hot id."""
    n_agents = obs.shape[-2]
    ids = torch.eye(n_agents, device=obs.device, dtype=obs.dtype).expand(*obs.shape[:-1], n_agents)
    return torch.cat([obs, ids], dim=-1)


class ActingPolicy(nn.Module):
    """Picks every agent's action from its own observation, its memory and its id only.

    Args:
        network: the shared agent network; its outputs score the actions.
        last_action_dim: number of actions when the network also reads the agent's previous
            action (one-hot), 0 when it does not.
    """

    def __init__(self, network: AgentNetwork, last_action_dim: int = 0) -> None:
        super().__init__()
        self.network = network
        self.last_action_dim = last_action_dim

    @property
    def memory_dim(self) -> int:
        """Size ``M`` of the memory carried between steps (0: none, the memory is None)."""
        recurrent = self.network.torso.hidden_dim if self.network.torso.recurrent else 0
        return recurrent + self.last_action_dim

    def scores(
        self, obs: torch.Tensor, memory: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Action scores ``[E, N, A]`` for one step of ``obs [E, N, O]`` and the torso's next hidden state."""
        inputs, hidden = with_agent_ids(obs), None
        if self.last_action_dim:
            last = (
                memory[..., -self.last_action_dim :]
                if memory is not None
                else obs.new_zeros((*obs.shape[:-1], self.last_action_dim))
            )
            inputs = torch.cat([inputs, last], dim=-1)
            if memory is not None and self.network.torso.recurrent:
                hidden = memory[..., : -self.last_action_dim]
        elif memory is not None:
            hidden = memory
        out, hidden = self.network(inputs[:, None], hidden)
        return out[:, 0], hidden

    def forward(
        self, obs: torch.Tensor, avail: torch.Tensor, memory: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Actions ``[E, N]`` for ``obs [E, N, O]`` and masks ``avail [E, N, A]``, and the next memory."""
        scores, hidden = self.scores(obs, memory)
        actions = self.choose(scores, avail, deterministic)
        if not self.last_action_dim:
            return actions, hidden
        taken = nn.functional.one_hot(actions, self.last_action_dim).to(scores.dtype)
        return actions, taken if hidden is None else torch.cat([hidden, taken], dim=-1)

    def choose(self, scores: torch.Tensor, avail: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Available actions ``[E, N]`` from the network's ``scores [E, N, A]``.

        Never returns an unavailable action, whatever the scores (-inf, NaN or huge values
        included); raises ``ValueError`` when an agent has no available action.
        """
        raise NotImplementedError

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        avail: np.ndarray,
        memory: torch.Tensor | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor | None]:
        """``forward`` on numpy arrays, in one batched pass on the policy's device; actions as numpy."""
        device = self.network.head.weight.device
        obs_t = torch.as_tensor(obs, device=device)
        avail_t = torch.as_tensor(avail, device=device)
        actions, memory = self(obs_t, avail_t, memory, deterministic)
        return actions.cpu().numpy(), memory


class SoftmaxPolicy(ActingPolicy):
    """LSF-SAC's actor: samples from the masked softmax of the logits (greedy when deterministic)."""

    def choose(self, scores: torch.Tensor, avail: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Sampled (or greedy) available actions ``[E, N]`` from the logits ``scores``."""
        require_available(avail)
        return masked_argmax(scores, avail) if deterministic else masked_sample(scores, avail)


class EpsilonGreedyPolicy(ActingPolicy):
    """QMIX's and VDN's agents: greedy on the utilities, a uniformly random available action with
    probability ``exploration_rate`` (a buffer, so a copy of the policy carries it).

    Args:
        network: the utility network Q_i(tau_i, .).
        exploration_rate: the initial epsilon.
        last_action_dim: see ``ActingPolicy``.
    """

    exploration_rate: torch.Tensor

    def __init__(
        self, network: AgentNetwork, exploration_rate: float = 1.0, last_action_dim: int = 0
    ) -> None:
        super().__init__(network, last_action_dim)
        self.register_buffer("exploration_rate", torch.tensor(float(exploration_rate)), persistent=False)

    def choose(self, scores: torch.Tensor, avail: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Greedy actions ``[E, N]`` on ``scores``, each replaced by a random available one with probability epsilon."""
        require_available(avail)
        if deterministic:
            return masked_argmax(scores, avail)
        return masked_epsilon_argmax(scores, avail, self.exploration_rate)


class EpsilonSoftmaxPolicy(ActingPolicy):
    """DOP's agents: sample ``(1 - epsilon) pi + epsilon U``, the masked softmax of the logits mixed
    with the uniform distribution U over the available actions (the authors' epsilon floor); greedy
    on the logits when deterministic. ``exploration_rate`` is a buffer, as ``EpsilonGreedyPolicy``'s.

    Args:
        network: the actor, whose outputs are the logits of pi_i(a | tau_i).
        exploration_rate: the initial epsilon.
        last_action_dim: see ``ActingPolicy``.
    """

    exploration_rate: torch.Tensor

    def __init__(
        self, network: AgentNetwork, exploration_rate: float = 0.0, last_action_dim: int = 0
    ) -> None:
        super().__init__(network, last_action_dim)
        self.register_buffer("exploration_rate", torch.tensor(float(exploration_rate)), persistent=False)

    def choose(self, scores: torch.Tensor, avail: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions ``[E, N]``: from pi, each replaced by a uniformly random available one with probability epsilon."""
        require_available(avail)
        if deterministic:
            return masked_argmax(scores, avail)
        # A sample of pi is the argmax of the Gumbel-perturbed logits.
        return masked_epsilon_argmax(gumbel_perturbed(scores), avail, self.exploration_rate)
