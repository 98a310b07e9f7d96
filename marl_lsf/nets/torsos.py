"""Per-agent torsos: the feature extractor every agent network starts with.

Both take ``x [B, T, N, in]`` and a hidden state ``h [B, N, H]`` (or None) and return
``(features [B, T, N, H], h_last)``, so a rollout step (``T = 1``) and a training unroll over
whole episodes (``T`` steps, one ``nn.GRU`` call, no Python loop over time) share one code path.
"""

from __future__ import annotations

import torch
from torch import nn


class Torso(nn.Module):
    """Interface of a torso: ``forward(x, h) -> (features, h_last)``."""

    recurrent: bool = False

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.hidden_dim = hidden_dim


class MLPTorso(Torso):
    """Two-layer ReLU MLP on the current input only (``MlpPolicy``); the hidden state passes through."""

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__(in_dim, hidden_dim)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
        )

    def forward(
        self, x: torch.Tensor, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features of every step independently."""
        return self.net(x), h

    def forward_shared(self, shared: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """``forward(cat([shared, own], -1))[0]`` for ``shared [..., S]`` common to the ``N`` agents of ``own [..., N, D]``.

        The first layer's product with ``shared`` (a global state read by every agent's copy of the
        network) is computed once per step and broadcast over the agents instead of once per agent;
        equal to the concatenated input's features up to float rounding.
        """
        first, rest = self.net[0], self.net[1:]
        split = shared.shape[-1]
        weight = first.weight
        common = nn.functional.linear(shared, weight[:, :split]).unsqueeze(-2)
        return rest(nn.functional.linear(own, weight[:, split:], first.bias) + common)


class GRUTorso(Torso):
    """Linear + ReLU, then a GRU over time (``RnnPolicy``, pymarl's RNN agent)."""

    recurrent = True

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__(in_dim, hidden_dim)
        self.fc = nn.Linear(in_dim, hidden_dim)
        self.gru = nn.GRU(hidden_dim, hidden_dim, batch_first=True)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Unroll over the time axis; ``h`` None means a zero initial state (episode start)."""
        b, t, n, _ = x.shape
        z = torch.relu(self.fc(x)).transpose(1, 2).reshape(b * n, t, self.hidden_dim)
        h0 = None if h is None else h.reshape(1, b * n, self.hidden_dim).contiguous()
        out, h_last = self.gru(z, h0)
        return out.reshape(b, n, t, self.hidden_dim).transpose(1, 2), h_last.reshape(b, n, self.hidden_dim)


def make_torso(kind: str, in_dim: int, hidden_dim: int) -> Torso:
    """``"mlp"`` or ``"rnn"`` torso."""
    if kind == "mlp":
        return MLPTorso(in_dim, hidden_dim)
    if kind == "rnn":
        return GRUTorso(in_dim, hidden_dim)
    raise ValueError(f"unknown torso {kind!r}; expected 'mlp' or 'rnn'")
