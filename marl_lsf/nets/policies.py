"""Acting policies: the decentralized action selection a rollout runs, in the learner or in a worker.

An ``ActingPolicy`` wraps the agent network that picks actions (LSF-SAC's actor, QMIX's utility
network) and holds everything acting needs, so one object serves ``predict``, the in-process
rollout and the rollout worker processes (which receive a copy of it with every chunk they
collect; see ``marl_lsf.rollout``). Its parameters are the learner's own: building one copies
nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from marl_lsf.nets.agents import MASKED_LOGIT, AgentNetwork


def with_agent_ids(obs: torch.Tensor) -> torch.Tensor:
    """Agent input ``[..., N, O + N]``: each agent's observation followed by its one-hot id."""
    n_agents = obs.shape[-2]
    ids = torch.eye(n_agents, device=obs.device, dtype=obs.dtype).expand(*obs.shape[:-1], n_agents)
    return torch.cat([obs, ids], dim=-1)


class ActingPolicy(nn.Module):
    """Picks every agent's action from its own observation (and recurrent state) only.

    Args:
        network: the shared agent network; its outputs score the actions.
    """

    def __init__(self, network: AgentNetwork) -> None:
        super().__init__()
        self.network = network

    def scores(
        self, obs: torch.Tensor, hidden: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Action scores ``[E, N, A]`` for one step of ``obs [E, N, O]`` and the next hidden state."""
        out, hidden = self.network(with_agent_ids(obs)[:, None], hidden)
        return out[:, 0], hidden

    def forward(
        self, obs: torch.Tensor, avail: torch.Tensor, hidden: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Actions ``[E, N]`` for ``obs [E, N, O]`` and masks ``avail [E, N, A]``, and the next hidden state."""
        raise NotImplementedError

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        avail: np.ndarray,
        hidden: torch.Tensor | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor | None]:
        """``forward`` on numpy arrays, in one batched pass on the policy's device; actions as numpy."""
        device = self.network.head.weight.device
        obs_t = torch.as_tensor(obs, device=device)
        avail_t = torch.as_tensor(avail, device=device)
        actions, hidden = self(obs_t, avail_t, hidden, deterministic)
        return actions.cpu().numpy(), hidden


class SoftmaxPolicy(ActingPolicy):
    """LSF-SAC's actor: samples from the masked softmax of the logits (greedy when deterministic)."""

    def forward(
        self, obs: torch.Tensor, avail: torch.Tensor, hidden: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sampled (or greedy) available actions ``[E, N]``."""
        logits, hidden = self.scores(obs, hidden)
        logits = logits.masked_fill(~avail, MASKED_LOGIT)
        if deterministic:
            return logits.argmax(-1), hidden
        # Gumbel-max sampling: the same distribution as Categorical(logits).sample(), ~6x cheaper per step.
        gumbel = -torch.log(-torch.log(torch.rand_like(logits)))
        return (logits + gumbel).argmax(-1), hidden


class EpsilonGreedyPolicy(ActingPolicy):
    """QMIX's and VDN's agents: greedy on the utilities, a uniformly random available action with
    probability ``exploration_rate`` (a buffer, so a copy of the policy carries it).

    Args:
        network: the utility network Q_i(tau_i, .).
        exploration_rate: the initial epsilon.
    """

    exploration_rate: torch.Tensor

    def __init__(self, network: AgentNetwork, exploration_rate: float = 1.0) -> None:
        super().__init__(network)
        self.register_buffer("exploration_rate", torch.tensor(float(exploration_rate)), persistent=False)

    def forward(
        self, obs: torch.Tensor, avail: torch.Tensor, hidden: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Greedy actions ``[E, N]``, each replaced by a random available one with probability epsilon."""
        q, hidden = self.scores(obs, hidden)
        greedy = q.masked_fill(~avail, MASKED_LOGIT).argmax(-1)
        if deterministic:
            return greedy, hidden
        uniform = torch.distributions.Categorical(probs=avail.float()).sample()
        explore = torch.rand(greedy.shape, device=greedy.device) < self.exploration_rate
        return torch.where(explore, uniform, greedy), hidden
