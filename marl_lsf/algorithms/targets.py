"""TD(lambda) targets over padded episodes, as one matrix product (no Python loop over time)."""

from __future__ import annotations

import torch


def lambda_returns(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    filled: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    td_lambda: float,
) -> torch.Tensor:
    """TD(lambda) returns ``G [B, T]`` of padded episodes.

    ``G_t = r_t + gamma (1 - d_t) [(1 - lambda) V_{t+1} + lambda G_{t+1}]``, where the last filled
    step of each episode bootstraps fully from ``V_{t+1}`` (a truncated episode keeps its value,
    a terminated one has ``d_t = 1``). Unrolled, ``G_t = sum_{k >= t} (gamma lambda)^(k - t) b_k``
    with ``b_k`` the one-step part of each step, so the whole batch is ``b @ M`` for the upper
    triangular Toeplitz matrix ``M[k, t] = (gamma lambda)^(k - t)``. ``lambda = 0`` gives the
    one-step targets ``r_t + gamma (1 - d_t) V_{t+1}``.

    Args:
        reward: ``[B, T]`` team rewards.
        terminated: ``[B, T]`` 1.0 where the episode ended without bootstrap.
        filled: ``[B, T]`` True on real transitions, False on padding.
        next_value: ``[B, T]`` the target joint value of the state after each transition.
        gamma: discount factor.
        td_lambda: the lambda of TD(lambda), in [0, 1].
    """
    filled = filled.to(reward.dtype)
    last = filled - torch.cat([filled[:, 1:], torch.zeros_like(filled[:, :1])], dim=1)
    lam = td_lambda * (1.0 - last)
    one_step = (reward + gamma * (1.0 - terminated) * (1.0 - lam) * next_value) * filled
    if td_lambda == 0.0:
        return one_step
    steps = torch.arange(reward.shape[1], device=reward.device)
    offset = steps[None, :] - steps[:, None]
    decay = torch.where(offset <= 0, (gamma * td_lambda) ** (-offset).clamp(min=0).to(reward.dtype), 0.0)
    return one_step @ decay
