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


def _mlp(in_dim: int, out_dim: int, hidden_dim: int, layers: int) -> nn.Module:
    """``layers`` linear layers from ``in_dim`` to ``out_dim``, ReLU between them, ``hidden_dim`` wide."""
    if layers == 1:
        return nn.Linear(in_dim, out_dim)
    hidden: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.ReLU()]
    for _ in range(layers - 2):
        hidden += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
    return nn.Sequential(*hidden, nn.Linear(hidden_dim, out_dim))


class DuplexDuelingMixer(nn.Module):
    """QPLEX's duplex dueling mixer (Wang et al., ICLR 2021, section 3 and its Figure 1).

    Joint value of the agents' utilities at a joint action ``u`` in state ``s``, built so that the
    greedy joint action of Q_tot is the agents' own greedy actions (the IGM principle):

    * Transformation: ``Q_i'(s, u_i) = w_i(s) Q_i(tau_i, u_i) + b_i(s)`` with ``w_i(s) > 0``, hence
      ``V_i'(s) = w_i(s) V_i + b_i(s)`` and ``A_i'(s, u_i) = w_i(s) A_i(tau_i, u_i)``, where
      ``V_i = max_a Q_i(tau_i, a)`` and ``A_i = Q_i - V_i <= 0``. ``w`` and ``b`` are
      two-layer hypernetworks of the state (``|.| + 1e-10`` makes ``w`` positive).
    * Dueling mixing: ``Q_tot(s, u) = sum_i V_i'(s) + sum_i lambda_i(s, u) A_i'(s, u_i)`` with
      ``lambda_i(s, u) = sum_k v_k(s) phi_{i,k}(s) lambda_{i,k}(s, u) > 0``, the multi-head
      attention of the paper: per head ``k`` a positive key ``v_k(s) = |f_k(s)| + 1e-10``, an agent
      weight ``phi_{i,k}(s) = sigmoid(g_k(s))_i`` and an action weight
      ``lambda_{i,k}(s, u) = sigmoid(h_k([s, onehot(u)]))_i`` (the ``DMAQ_SI_Weight`` module of the
      authors' code, wjh720/QPLEX).

    Sizes (the ``qplex`` config of hijkzzz/pymarl2, which copies the authors' code): 4 heads,
    each of ``f_k``, ``g_k``, ``h_k`` a 2-layer MLP 64 wide; ``w`` and ``b`` 64 wide. The authors'
    own configs use 10 heads of 3 layers (``qplex.yaml``, their didactic games) and 4 heads of 1
    layer (``qplex_sc2.yaml``).

    Args:
        n_agents: number of agents.
        n_actions: number of (padded) actions per agent, the size of each one-hot action.
        state_dim: size of the global state.
        hypernet_dim: hidden width of the ``w`` and ``b`` hypernetworks (the code's ``hypernet_embed``).
        attention_heads: number of attention heads K (the code's ``num_kernel``).
        attention_layers: linear layers of each head's key, agent and action networks, 1 to 3
            (the code's ``adv_hypernet_layers``).
        attention_dim: hidden width of those networks (the code's ``adv_hypernet_embed``).
    """

    def __init__(
        self,
        n_agents: int,
        n_actions: int,
        state_dim: int,
        hypernet_dim: int = 64,
        attention_heads: int = 4,
        attention_layers: int = 2,
        attention_dim: int = 64,
    ) -> None:
        super().__init__()
        if attention_layers not in (1, 2, 3):
            raise ValueError(f"attention_layers must be 1, 2 or 3, got {attention_layers!r}")
        self.n_agents, self.n_actions = n_agents, n_actions
        self.hyper_w = _mlp(state_dim, n_agents, hypernet_dim, 2)
        self.hyper_b = _mlp(state_dim, n_agents, hypernet_dim, 2)
        action_input = state_dim + n_agents * n_actions
        self.keys = nn.ModuleList(
            _mlp(state_dim, 1, attention_dim, attention_layers) for _ in range(attention_heads)
        )
        self.agent_weights = nn.ModuleList(
            _mlp(state_dim, n_agents, attention_dim, attention_layers) for _ in range(attention_heads)
        )
        self.action_weights = nn.ModuleList(
            _mlp(action_input, n_agents, attention_dim, attention_layers) for _ in range(attention_heads)
        )

    def transformation(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The transformation's weights ``w [..., N] > 0`` and biases ``b [..., N]`` of ``state [..., S]``."""
        return self.hyper_w(state).abs() + 1e-10, self.hyper_b(state)

    def advantage_weights(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The attention weights ``lambda [..., N] > 0`` of ``state [..., S]`` and one-hot ``actions [..., N, A]``."""
        state_action = torch.cat([state, actions.flatten(-2)], dim=-1)
        heads = [
            (key(state).abs() + 1e-10) * torch.sigmoid(agent(state)) * torch.sigmoid(action(state_action))
            for key, agent, action in zip(self.keys, self.agent_weights, self.action_weights, strict=True)
        ]
        return torch.stack(heads).sum(0)

    def forward(
        self, q_taken: torch.Tensor, q_max: torch.Tensor, actions: torch.Tensor, state: torch.Tensor
    ) -> torch.Tensor:
        """``Q_tot [...]`` at the joint action ``actions [..., N, A]`` (one-hot) in ``state [..., S]``.

        Args:
            q_taken: the utilities ``Q_i(tau_i, u_i) [..., N]`` of the actions taken.
            q_max: the utilities' maxima ``V_i [..., N]`` over the available actions.
            actions: the joint action, one-hot.
            state: the global state.
        """
        # Transformation: Q_i' = w_i(s) Q_i + b_i(s), V_i' = w_i(s) V_i + b_i(s), A_i' = Q_i' - V_i'.
        w, b = self.transformation(state)
        q_transformed = w * q_taken + b
        v_transformed = w * q_max + b
        advantage = q_transformed - v_transformed
        # Dueling mixing: Q_tot = sum_i V_i' + sum_i lambda_i A_i', computed as the authors' code does,
        # sum_i Q_i' + sum_i (lambda_i - 1) A_i' with A_i' held fixed: the same value, and the agents'
        # utilities get their gradient through Q_i' = w_i Q_i + b_i alone (lambda through A_tot).
        lam = self.advantage_weights(state, actions)
        return q_transformed.sum(-1) + ((lam - 1.0) * advantage.detach()).sum(-1)


def make_mixer(kind: str, n_agents: int, state_dim: int, embed_dim: int = 32) -> nn.Module:
    """``"qmix"`` or ``"vdn"`` mixer."""
    if kind == "qmix":
        return QMixer(n_agents, state_dim, embed_dim)
    if kind == "vdn":
        return VDNMixer()
    raise ValueError(f"unknown mixer {kind!r}; expected 'qmix' or 'vdn'")
