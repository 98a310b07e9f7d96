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


class LinearMixer(nn.Module):
    """DOP's linearly decomposed critic (Wang et al., ICLR 2021): ``Q_tot = sum_i k_i(s) Q_i + b(s)``.

    The weights come from hypernetworks of the state as QMIX's do, with no non-linearity between
    the two layers, so the joint value is linear in the utilities with non-negative slopes:
    ``k_i(s) = sum_e |W1(s)|_{i,e} |w2(s)|_e >= 0`` and ``b(s) = sum_e b1(s)_e |w2(s)|_e + V(s)``.
    This is the paper's form; the authors' released code divides ``k`` by its sum over agents and
    leaves ``b`` out of Q_tot.

    Args:
        n_agents: number of utilities mixed.
        state_dim: size of the global state.
        embed_dim: width of the hidden mixing layer (pymarl's ``mixing_embed_dim``).
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32) -> None:
        super().__init__()
        self.n_agents, self.embed_dim = n_agents, embed_dim
        self.hyper_w1 = nn.Linear(state_dim, n_agents * embed_dim)
        self.hyper_w2 = nn.Linear(state_dim, embed_dim)
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.value = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def weights(self, state: torch.Tensor) -> MixerWeights:
        """``(k [..., N], b [...])`` for ``state [..., S]``; every ``k_i >= 0``."""
        w1 = self.hyper_w1(state).abs().unflatten(-1, (self.n_agents, self.embed_dim))
        w2 = self.hyper_w2(state).abs()
        k = torch.einsum("...ne,...e->...n", w1, w2)
        b = (self.hyper_b1(state) * w2).sum(-1) + self.value(state).squeeze(-1)
        return k, b

    def mix(self, q: torch.Tensor, weights: MixerWeights) -> torch.Tensor:
        """``Q_tot = sum_i k_i q_i + b``."""
        k, b = weights
        return (q * k).sum(-1) + b

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Mix ``q [..., N]`` given ``state [..., S]``."""
        return self.mix(q, self.weights(state))


class CentralFFMixer(nn.Module):
    """Weighted QMIX's unrestricted central mixer of Q-hat* (Rashid et al., 2020, Figure 1).

    A feed-forward network on the state and the agents' central utilities, with no monotonicity
    constraint, plus a state value in place of a last bias (pymarl's ``QMixerCentralFF``):
    ``Q-hat*(s, u) = f([s, q_1, ..., q_n]) + V(s)`` with ``f`` three ReLU layers of ``embed_dim``.

    Args:
        n_agents: number of utilities mixed (one per agent: a central action embedding of size 1).
        state_dim: size of the global state.
        embed_dim: width of the hidden layers (the paper's 256).
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim + n_agents, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, 1),
        )
        self.value = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``Q-hat* [...]`` of the central utilities ``q [..., N]`` given ``state [..., S]``."""
        return (self.net(torch.cat([state, q], dim=-1)) + self.value(state)).squeeze(-1)


class QTranJointQ(nn.Module):
    """QTRAN-base's joint action-value Q_jt and state value V_jt (Son et al., 2019, QTRAN-base).

    Q_jt reads the state and the sum over agents of an encoding of each agent's hidden features
    and one-hot action (the paper's architecture, pymarl's ``qtran_paper``); V_jt reads the state.

    Args:
        n_actions: number of (padded) actions.
        state_dim: size of the global state.
        feature_dim: size of the agents' hidden features (the agent network's torso width).
        embed_dim: width of the Q_jt and V_jt networks (pymarl's ``mixing_embed_dim`` of 64).
    """

    def __init__(self, n_actions: int, state_dim: int, feature_dim: int, embed_dim: int = 64) -> None:
        super().__init__()
        encoding_dim = feature_dim + n_actions
        self.action_encoding = nn.Sequential(
            nn.Linear(encoding_dim, encoding_dim), nn.ReLU(), nn.Linear(encoding_dim, encoding_dim)
        )
        self.q = nn.Sequential(
            nn.Linear(state_dim + encoding_dim, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, 1),
        )
        self.v = nn.Sequential(
            nn.Linear(state_dim, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, embed_dim),
            nn.ReLU(),
            nn.Linear(embed_dim, 1),
        )

    def forward(self, features: torch.Tensor, actions: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``Q_jt [...]`` of the agents' ``features [..., N, F]`` and one-hot ``actions [..., N, A]`` in ``state [..., S]``."""
        encoded = self.action_encoding(torch.cat([features, actions], dim=-1)).sum(-2)
        return self.q(torch.cat([state, encoded], dim=-1)).squeeze(-1)

    def value(self, state: torch.Tensor) -> torch.Tensor:
        """``V_jt [...]`` of ``state [..., S]``."""
        return self.v(state).squeeze(-1)


def make_mixer(kind: str, n_agents: int, state_dim: int, embed_dim: int = 32) -> nn.Module:
    """``"qmix"`` or ``"vdn"`` mixer."""
    if kind == "qmix":
        return QMixer(n_agents, state_dim, embed_dim)
    if kind == "vdn":
        return VDNMixer()
    raise ValueError(f"unknown mixer {kind!r}; expected 'qmix' or 'vdn'")
