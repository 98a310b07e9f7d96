"""Agent networks, shared across agents (parameter sharing; inputs carry the agent's one-hot id).

* ``AgentNetwork``: the decentralized policy pi_i(a | tau_i) (logits over actions) of LSF-SAC, and
  the per-agent utilities Q_i(tau_i, .) of QMIX and VDN.
* ``LatentCritic``: LSF-SAC's per-agent critic Q_i(tau_i, ., m_i) with the variational message
  encoder f_m and the action decoder q_psi (paper section V-B).

Shapes: inputs ``x [B, T, N, in]``, hidden ``h [B, N, H]``; outputs ``[B, T, N, A]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from marl_lsf.nets.torsos import MLPTorso, make_torso

#: Log-probability reported for unavailable actions: a constant (not derived from the logits), finite
#: so that ``pi * log_pi`` is 0 rather than NaN, and low enough that ``exp()`` is exactly 0.
MASKED_LOG_PROB = -1e9


def require_available(avail: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the first ``(env, agent)`` index whose mask ``avail [..., N, A]`` is all False.

    Acting has no sensible action for an agent with no available action, so it refuses instead of
    picking a masked one.
    """
    some = avail.any(-1)
    if not bool(some.all()):
        where = tuple(int(i) for i in (~some).nonzero()[0])
        raise ValueError(f"agent index {where[-1]} (at batch index {where[:-1]}) has no available action")


def finite_scores(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` with NaN and -inf replaced by the lowest finite value and +inf by the highest.

    Masking then puts every available action strictly above every unavailable one (which gets
    -inf), whatever the network output.
    """
    info = torch.finfo(scores.dtype)
    return torch.nan_to_num(scores, nan=info.min, posinf=info.max, neginf=info.min)


def masked_argmax(scores: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Index ``[...]`` of the best available action of ``scores [..., A]``; never an unavailable one.

    Scores are ranked as ``finite_scores`` makes them (NaN and -inf lowest, ties to the lowest
    index). A row with no available action (padding past an episode's end in a training batch)
    counts every action as available; acting refuses such rows first (``require_available``).
    """
    avail = avail | ~avail.any(-1, keepdim=True)
    return torch.where(avail, finite_scores(scores), float("-inf")).argmax(-1)


def gumbel_perturbed(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` (made finite as ``finite_scores`` does) plus independent Gumbel(0, 1) noise.

    Their argmax is a sample of ``softmax(logits)`` (the Gumbel-max trick, the same distribution
    as ``Categorical(logits).sample()``, cheaper).
    """
    return finite_scores(logits) - torch.log(-torch.log(torch.rand_like(logits)))


def masked_sample(logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """A sample ``[...]`` of the softmax of ``logits [..., A]`` over the available actions only.

    Gumbel-max sampling (``gumbel_perturbed``); the perturbed logits are masked again after the
    noise is added, so an extreme logit or an infinite noise draw can never select an unavailable
    action. Rows with no available action: as ``masked_argmax``.
    """
    return masked_argmax(gumbel_perturbed(logits), avail)


def masked_epsilon_argmax(scores: torch.Tensor, avail: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
    """The best available action ``[...]`` of ``scores [..., A]``, or with probability ``epsilon`` a
    uniformly random available one, in one masked argmax.

    An exploring row's scores are replaced by independent uniform draws, whose largest available
    one is a uniform choice among the available actions (as ``Categorical(probs=avail.float())``,
    at a fraction of its cost in the per-step rollout). Rows with no available action: as
    ``masked_argmax``.
    """
    explore = torch.rand(scores.shape[:-1], device=scores.device) < epsilon
    noise = torch.rand(scores.shape, device=scores.device)
    return masked_argmax(torch.where(explore.unsqueeze(-1), noise, scores), avail)


def masked_log_softmax(logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``[..., A]`` of the softmax of ``logits`` over the available actions only.

    Unavailable actions get ``MASKED_LOG_PROB`` (probability exactly 0, whatever their logits),
    and no gradient reaches their logits, so they can neither change the result nor make its
    gradient NaN. Available actions get finite values for finite logits. A row with no available
    action (padding past an episode's end) is a softmax over all actions; losses mask it out.
    """
    avail = avail | ~avail.any(-1, keepdim=True)
    log_p = torch.log_softmax(torch.where(avail, logits, float("-inf")), dim=-1)
    return torch.where(avail, log_p, MASKED_LOG_PROB)


class AgentNetwork(nn.Module):
    """A torso on the agent's own input, then a linear head with one output per action (pymarl's agent).

    Serves as LSF-SAC's decentralized actor (the outputs are the logits of pi_i(a | tau_i)) and
    as QMIX's and VDN's utility network (the outputs are Q_i(tau_i, .)).

    Args:
        in_dim: agent input size (observation + one-hot id).
        n_actions: number of (padded) actions.
        hidden_dim: torso width.
        torso: ``"mlp"`` or ``"rnn"``.
    """

    def __init__(self, in_dim: int, n_actions: int, hidden_dim: int = 64, torso: str = "mlp") -> None:
        super().__init__()
        self.torso = make_torso(torso, in_dim, hidden_dim)
        self.head = nn.Linear(hidden_dim, n_actions)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Outputs ``[B, T, N, A]`` and the torso's last hidden state."""
        features, h = self.torso(x, h)
        return self.head(features), h

    def forward_shared(self, shared: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """Outputs ``[..., N, A]`` for the inputs ``cat([shared, own], -1)``, ``shared [..., S]`` common to every agent.

        The shared part goes through the first layer once per step (see ``MLPTorso.forward_shared``);
        feed-forward torsos only.
        """
        if not isinstance(self.torso, MLPTorso):
            raise TypeError(f"forward_shared needs a feed-forward torso, not {type(self.torso).__name__}")
        return self.head(self.torso.forward_shared(shared, own))


#: What the Q-head of a ``LatentCritic`` reads: sampled messages (the paper) or their means.
Q_MESSAGES = ("sample", "mean")
#: Where a ``LatentCritic``'s message encoder starts: the critic's torso, or its own network.
MESSAGE_NETWORKS = ("shared", "separate")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise a ``ValueError`` naming ``name`` and the choices unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_q_messages(q_messages: str) -> None:
    """Raise a ``ValueError`` naming the choices unless ``q_messages`` is one of ``Q_MESSAGES``."""
    check_choice("q_messages", q_messages, Q_MESSAGES)


class LatentOutput(NamedTuple):
    """What the latent-message machinery produced in a critic forward pass."""

    mu: torch.Tensor  # [B, T, N(sender), N(receiver), d] message means f_m(tau_j)
    decoder_logits: torch.Tensor  # [B, T, N, A] q_psi(a_j | m_{j->1}, ..., m_{j->n}, j)


class LatentCritic(nn.Module):
    """LSF-SAC's per-agent critic Q_i(tau_i, ., m_i) with variational latent messages.

    Each agent j's critic features give message means mu_j = f_m(tau_j), one d-dimensional
    message for every receiver i; messages are sampled m_{j->i} ~ N(mu_{j->i}, I) with the
    reparameterization trick. Receiver i's critic head reads its features and the means of
    m_i = [m_{1->i}, ..., m_{n->i}] (or, with ``q_messages="sample"``, the samples); the decoder
    q_psi predicts agent j's action from the sampled messages j sends, [m_{j->1}, ..., m_{j->n}],
    and j's one-hot id. With ``latent_dim = 0`` there are no messages (MASAC).

    The decoder does not read tau_j, which the paper's q_psi(A_j | T_j, M_j) does: a decentralized
    policy pi_j is a function of tau_j alone, so a decoder given tau_j predicts a_j without any
    message, the message loss then puts no pressure on the messages, and its KL term shrinks them to
    pure N(0, I) noise in every critic's input. Decoding a_j from what j sends makes those messages
    carry j's policy to every other critic (``test_messages_carry_the_senders_policy``).

    Args:
        in_dim: critic input size (observation + last action + one-hot id).
        n_agents: number of agents (senders and receivers).
        n_actions: number of (padded) actions.
        hidden_dim: torso width.
        latent_dim: message size d (the authors used 3); 0 turns latent information off.
        torso: ``"mlp"`` or ``"rnn"``.
        q_messages: ``"mean"``: the Q-head reads the message means mu_{j->i}, and only the
            decoder reads samples; ``"sample"``: it reads the sampled messages m_{j->i} (the paper).
        message_network: ``"shared"``: the encoder f_m is a two-layer head on the critic's torso
            features, so the message loss also trains the torso the Q-head reads; ``"separate"``:
            f_m is its own three-layer MLP on the critic input (the authors' released code), so
            the message loss reaches the Q-values only through the messages.
    """

    def __init__(
        self,
        in_dim: int,
        n_agents: int,
        n_actions: int,
        hidden_dim: int = 64,
        latent_dim: int = 3,
        torso: str = "mlp",
        q_messages: str = "mean",
        message_network: str = "shared",
    ) -> None:
        super().__init__()
        check_q_messages(q_messages)
        check_choice("message_network", message_network, MESSAGE_NETWORKS)
        self.n_agents, self.latent_dim, self.q_messages = n_agents, latent_dim, q_messages
        self.message_network = message_network
        self.torso = make_torso(torso, in_dim, hidden_dim)
        message_in = n_agents * latent_dim
        self.q_head = nn.Sequential(
            nn.Linear(hidden_dim + message_in, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, n_actions),
        )
        if latent_dim > 0:
            separate = message_network == "separate"
            self.encoder = nn.Sequential(
                *((nn.Linear(in_dim, hidden_dim), nn.ReLU()) if separate else ()),
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, n_agents * latent_dim),
            )
            self.decoder = nn.Sequential(
                nn.Linear(message_in + n_agents, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, n_actions),
            )
            self.register_buffer("ids", torch.eye(n_agents), persistent=False)

    @property
    def uses_latent(self) -> bool:
        """Whether latent messages are on."""
        return self.latent_dim > 0

    def forward(
        self, x: torch.Tensor, h: torch.Tensor | None = None, sample: bool = True, decode: bool = True
    ) -> tuple[torch.Tensor, LatentOutput | None, torch.Tensor | None]:
        """Q-values ``[B, T, N, A]``, the latent output (None without messages), last hidden state.

        ``sample=False`` uses the message means instead of samples (targets and read-outs);
        ``decode=False`` skips the decoder (a target critic needs only its Q-values) and returns
        no latent output.
        """
        features, h = self.torso(x, h)
        if not self.uses_latent:
            return self.q_head(features), None, h
        b, t, n, _ = features.shape
        encoder_in = x if self.message_network == "separate" else features
        mu = self.encoder(encoder_in).view(b, t, n, n, self.latent_dim)
        messages = mu + torch.randn_like(mu) if sample else mu
        read = messages if self.q_messages == "sample" else mu
        incoming = read.transpose(2, 3).reshape(b, t, n, n * self.latent_dim)
        q = self.q_head(torch.cat([features, incoming], dim=-1))
        if not decode:
            return q, None, h
        outgoing = messages.reshape(b, t, n, n * self.latent_dim)
        decoder_in = torch.cat([outgoing, self.ids.expand(b, t, n, n)], dim=-1)
        return q, LatentOutput(mu, self.decoder(decoder_in)), h
