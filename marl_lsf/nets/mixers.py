"""Mixers: combine per-agent utilities ``q [..., N]`` into a joint value ``[...]``.

``weights(state)`` and ``mix(q, weights)`` are separate so that LSF-SAC's policy loss can push
gradients through the mixer into the actor while treating the mixer's weights as constants.
"""

from __future__ import annotations

import torch
from torch import nn

MixerWeights = tuple[torch.Tensor, ...]


class VDNMixer(nn.Module):
    """VDN (Sunehag et al., 2018): the joint value is the sum of the utilities."""

    def weights(self, state: torch.Tensor) -> MixerWeights:
        """VDN has no state-conditioned weights."""
        return ()

    def mix(self, q: torch.Tensor, weights: MixerWeights) -> torch.Tensor:
        """Sum over agents."""
        return q.sum(-1)

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``Q_tot = sum_i q_i``."""
        return self.mix(q, self.weights(state))


class QMixer(nn.Module):
    """QMIX (Rashid et al., 2018): a monotonic mixing network whose weights come from hypernetworks.

    The hypernetworks read the global state; absolute values make ``dQ_tot / dq_i >= 0``.

    Args:
        n_agents: number of utilities mixed.
        state_dim: size of the global state.
        embed_dim: width of the mixing layer (pymarl's ``mixing_embed_dim``).
        hypernet_dim: hidden width of the two-layer weight hypernetworks.
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_dim: int = 64) -> None:
        super().__init__()
        self.n_agents, self.embed_dim = n_agents, embed_dim
        self.hyper_w1 = nn.Sequential(
            nn.Linear(state_dim, hypernet_dim), nn.ReLU(), nn.Linear(hypernet_dim, n_agents * embed_dim)
        )
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.hyper_w2 = nn.Sequential(
            nn.Linear(state_dim, hypernet_dim), nn.ReLU(), nn.Linear(hypernet_dim, embed_dim)
        )
        self.hyper_b2 = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def weights(self, state: torch.Tensor) -> MixerWeights:
        """Non-negative weights and biases for ``state [..., S]``."""
        w1 = self.hyper_w1(state).abs().unflatten(-1, (self.n_agents, self.embed_dim))
        w2 = self.hyper_w2(state).abs()
        return w1, self.hyper_b1(state), w2, self.hyper_b2(state).squeeze(-1)

    def mix(self, q: torch.Tensor, weights: MixerWeights) -> torch.Tensor:
        """``Q_tot = w2 . elu(q W1 + b1) + b2``."""
        w1, b1, w2, b2 = weights
        hidden = nn.functional.elu(torch.einsum("...n,...ne->...e", q, w1) + b1)
        return (hidden * w2).sum(-1) + b2

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Mix ``q [..., N]`` given ``state [..., S]``."""
        return self.mix(q, self.weights(state))


def make_mixer(kind: str, n_agents: int, state_dim: int, embed_dim: int = 32) -> nn.Module:
    """``"qmix"`` or ``"vdn"`` mixer."""
    if kind == "qmix":
        return QMixer(n_agents, state_dim, embed_dim)
    if kind == "vdn":
        return VDNMixer()
    raise ValueError(f"unknown mixer {kind!r}; expected 'qmix' or 'vdn'")
