"""Multi-step targets over padded episodes: TD(lambda) as one matrix product (no Python loop over
time), and DOP's tree backup as a short loop over the backup depth."""

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


def tree_backup_returns(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    filled: torch.Tensor,
    q_taken: torch.Tensor,
    expected_next: torch.Tensor,
    trace: torch.Tensor,
    gamma: float,
    tb_lambda: float,
    n_steps: int,
) -> torch.Tensor:
    """DOP's multi-agent tree-backup targets ``y^DOP-TB [B, T]`` of padded episodes (Wang et al., ICLR 2021).

    ``y_t = Q_tot(s_t, a_t) + sum_{k=0}^{n-1} (gamma lambda)^k (prod_{l=1}^{k} c_{t+l}) delta_{t+k}``
    with the expected-SARSA errors ``delta_t = r_t + gamma (1 - d_t) E_pi[Q_tot(s_{t+1}, .)] - Q_tot(s_t, a_t)``
    and the traces ``c_t = pi(a_t | tau_t) = prod_i pi_i(a_t^i | tau_t^i)``: tree backup (Precup et al.,
    2000) of the joint policy, which needs no importance ratio, so the errors of any behaviour
    policy's episodes correct the target policy's values. The sum stops at the episode's end
    (errors on padding are 0) and after ``n_steps`` errors (the authors' code's ``step``).

    Args:
        reward: ``[B, T]`` team rewards.
        terminated: ``[B, T]`` 1.0 where the episode ended without bootstrap.
        filled: ``[B, T]`` True on real transitions, False on padding.
        q_taken: ``[B, T]`` the target critic's ``Q_tot(s_t, a_t)`` of the taken joint actions.
        expected_next: ``[B, T]`` ``E_pi[Q_tot(s_{t+1}, .)]`` under the target policy.
        trace: ``[B, T]`` the target policy's probability ``c_t`` of each taken joint action.
        gamma: discount factor.
        tb_lambda: the lambda of the traces, in [0, 1].
        n_steps: how many errors each target sums (at least 1; 1 gives expected SARSA's target).
    """
    filled = filled.to(reward.dtype)
    delta = (reward + gamma * (1.0 - terminated) * expected_next - q_taken) * filled
    correction, term = delta, delta
    for _ in range(n_steps - 1):
        # term_k[t] = gamma lambda c_{t+1} term_{k-1}[t+1]: one more error, one more trace.
        term = gamma * tb_lambda * torch.cat([(trace * term)[:, 1:], torch.zeros_like(term[:, :1])], dim=1)
        correction = correction + term
    return (q_taken + correction) * filled
