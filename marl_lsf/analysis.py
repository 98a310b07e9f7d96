"""Read-outs of trained value factorizations: per-agent utilities and Q_tot over joint actions.

``utility_tables`` gives what the LSF-SAC paper's Table I shows for a one-step game: each agent's
utilities Q_i(a_i) and the mixed joint value Q_tot(a_1, ..., a_n) for every joint action.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.dop import DOP
from marl_lsf.algorithms.lsfsac import LSFSAC
from marl_lsf.algorithms.qmix import QMIX
from marl_lsf.algorithms.qplex import QPLEX


@dataclass(frozen=True)
class UtilityTables:
    """Per-agent utilities and the joint value of one state, as numpy arrays.

    Attributes:
        agents: the agent names, in the model's order.
        utilities: one array per agent, ``utilities[i][a]`` = Q_i(a) over agent i's own actions.
        joint: Q_tot with one axis per agent, ``joint[a_1, ..., a_n]``, shaped like the payoff.
    """

    agents: tuple[str, ...]
    utilities: tuple[np.ndarray, ...]
    joint: np.ndarray

    def greedy_joint_action(self) -> tuple[int, ...]:
        """The joint action of decentralized greedy agents: each maximizes its own utility."""
        return tuple(int(np.argmax(q)) for q in self.utilities)

    def markdown(self, action_names: Sequence[str] | None = None, decimals: int = 1) -> str:
        """Q_tot of a two-agent game as a markdown table laid out like the paper's Table I.

        Rows are the first agent's actions and columns the second's; the headers carry each
        agent's utility of that action, e.g. ``1.7(A)``.

        Args:
            action_names: names of the actions (default ``A, B, C, ...``).
            decimals: digits after the decimal point.
        """
        if len(self.utilities) != 2:
            raise ValueError(f"a table needs exactly two agents, these tables have {len(self.utilities)}")
        q1, q2 = self.utilities
        count = max(q1.size, q2.size)
        names = list(action_names) if action_names is not None else [chr(ord("A") + k) for k in range(count)]
        if len(names) < count:
            raise ValueError(f"{len(names)} action names given for {count} actions")
        header = ["Q1 \\ Q2", *(f"{q2[b]:.{decimals}f}({names[b]})" for b in range(q2.size))]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for a in range(q1.size):
            cells = [
                f"{q1[a]:.{decimals}f}({names[a]})",
                *(f"{self.joint[a, b]:.{decimals}f}" for b in range(q2.size)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def utility_tables(
    model: MultiAgentAlgorithm,
    observations: Mapping[str, Any] | np.ndarray,
    state: np.ndarray | None = None,
    critic_index: int = 0,
) -> UtilityTables:
    """Per-agent utilities Q_i(a_i) and Q_tot over the full joint action grid for one state.

    The utilities are those of the first step of an episode (zero recurrent state and, for
    LSF-SAC's critic, zero last action), which for a one-step game is the whole game.

    * LSF-SAC: Q_i(tau_i, ., m_i) of critic ``critic_index`` with the latent messages at their
      means, mixed by the matching mixer.
    * QMIX and VDN: the agents' utilities Q_i(tau_i, .) and the mixer (a sum for VDN); the same
      for Weighted QMIX (QMIX's Q_tot) and QTRAN (its transformed value, the sum).
    * QPLEX: the agents' utilities and QPLEX's Q_tot (``QPLEX.joint_value``) at each joint action.
    * DOP: the individual critics Q_i(tau, .) (which read the state) and the linear mixer,
      ``Q_tot = sum_i k_i(s) Q_i + b(s)``.

    Args:
        model: a trained ``LSFSAC``, a model of the QMIX family (``QMIX``, ``VDN``, ``OWQMIX``,
            ``CWQMIX``, ``QTRAN``, ``QPLEX``) or ``DOP``.
        observations: a PettingZoo observation dict ``agent -> observation`` or an array
            ``[N, *obs_shape]`` for all agents.
        state: the global state ``[S]`` the mixer reads; may be omitted only when the model's env
            has no ``state()`` (the state is then the concatenated observations).
        critic_index: which critic/mixer pair of an LSF-SAC model with ``n_critics=2``.

    Returns:
        ``UtilityTables`` with ``utilities[i]`` of shape ``[action_counts[i]]`` and ``joint`` of
        shape ``action_counts``.
    """
    spec = model.spec
    if isinstance(observations, Mapping):
        obs, _, alive = spec.encode(observations)
    else:
        obs = model._array_observation(np.asarray(observations, dtype=np.float32))[0][0]
        alive = np.ones(spec.n_agents, dtype=bool)
    if state is None:
        if spec.state_from_env:
            raise ValueError("this model's env has a state(); pass state=env.state() to utility_tables")
        state = obs.reshape(-1)
    state = np.asarray(state, dtype=np.float32).reshape(-1)
    if state.size != spec.state_dim:
        raise ValueError(f"state has {state.size} values, the model expects {spec.state_dim}")

    device = model.device
    obs_t = torch.as_tensor(obs, device=device)[None, None]  # [1, 1, N, O]
    with torch.no_grad():
        if isinstance(model, LSFSAC):
            # critic_inputs needs one transition; step 0 of [obs, obs] carries the zero last action.
            one_action = torch.zeros((1, 1, spec.n_agents), dtype=torch.long, device=device)
            x = model.critic_inputs(obs_t.expand(1, 2, -1, -1), one_action)[:, :1]
            q, _, _ = model.critics[critic_index](x, sample=False)
            mixer = model.mixers[critic_index]
        elif isinstance(model, QMIX):
            q, _ = model.q_net(model.actor_inputs(obs_t))
            mixer = model.mixer
        elif isinstance(model, DOP):
            state_t = torch.as_tensor(state, device=device)[None, None]  # [1, 1, S]
            q = model.critic_q(obs_t, state_t)
            mixer = model.mixer
        else:
            raise TypeError(
                f"utility_tables supports LSFSAC, QMIX (and its subclasses) and DOP models, not {type(model).__name__}"
            )
        q = q[0, 0]  # [N, A]
        grid = torch.tensor(list(itertools.product(*(range(n) for n in spec.action_counts))), device=device)
        alive_t = torch.as_tensor(alive, device=device)
        state_t = torch.as_tensor(state, device=device).expand(grid.shape[0], -1)
        if isinstance(model, QPLEX):
            # Q_tot reads every utility (V_i = max over the agent's own actions) and the joint action.
            counts = torch.as_tensor(spec.action_counts, device=device)
            avail = torch.arange(spec.n_actions, device=device) < counts[:, None]  # [N, A]
            joint = model.joint_value(q.expand(grid.shape[0], -1, -1), grid, state_t, avail, alive_t)
        else:
            q_taken = q.gather(-1, grid.T).T * alive_t.to(q.dtype)  # [G, N]
            joint = mixer(q_taken, state_t)
    q_np = q.cpu().numpy()
    return UtilityTables(
        agents=tuple(spec.agents),
        utilities=tuple(q_np[i, :count].copy() for i, count in enumerate(spec.action_counts)),
        joint=joint.cpu().numpy().reshape(spec.action_counts),
    )
