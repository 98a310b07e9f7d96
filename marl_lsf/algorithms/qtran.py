"""QTRAN-base (Son et al., 2019) on QMIX's agents, exploration and buffer.

"QTRAN: Learning to Factorize with Transformation for Cooperative Multi-Agent Reinforcement
Learning" (ICML 2019). The agents' utilities are summed into the transformed joint value
Q'_jt = sum_i Q_i, which the agents maximize independently; an unrestricted joint action-value
Q_jt learns the TD targets, and two losses tie them: with V_jt a state value, Q'_jt - Q_jt + V_jt
must be 0 at the greedy joint action (L_opt) and >= 0 at every other one (L_nopt), which makes
the agents' greedy actions the maximizer of Q_jt (the paper's Theorem 1).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import nn

from marl_lsf.algorithms.qmix import QMIX
from marl_lsf.algorithms.targets import lambda_returns
from marl_lsf.algorithms.utils import adam
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.nets import QTranJointQ
from marl_lsf.nets.agents import masked_argmax


def qtran_opt_loss(
    transformed_greedy: torch.Tensor, joint_greedy: torch.Tensor, value: torch.Tensor, filled: torch.Tensor
) -> torch.Tensor:
    """QTRAN's L_opt: mean over filled steps of ``(Q'_jt(tau, u-bar) - Q_jt(tau, u-bar) + V_jt(tau))^2``.

    Args:
        transformed_greedy: ``Q'_jt`` at the greedy joint action u-bar, the sum of the agents' maxima.
        joint_greedy: ``Q_jt`` at u-bar, a fixed target (detached by the caller).
        value: ``V_jt(tau)``.
        filled: 1.0 on real steps, 0.0 on padding.
    """
    error = transformed_greedy - joint_greedy + value
    return (error.pow(2) * filled).sum() / filled.sum().clamp(min=1.0)


def qtran_nopt_loss(
    transformed_taken: torch.Tensor, joint_taken: torch.Tensor, value: torch.Tensor, filled: torch.Tensor
) -> torch.Tensor:
    """QTRAN's L_nopt: mean over filled steps of ``min(Q'_jt(tau, u) - Q_jt(tau, u) + V_jt(tau), 0)^2``.

    Args:
        transformed_taken: ``Q'_jt`` at the taken joint action u, the sum of the agents' utilities.
        joint_taken: ``Q_jt`` at u, a fixed target (detached by the caller).
        value: ``V_jt(tau)``.
        filled: 1.0 on real steps, 0.0 on padding.
    """
    error = (transformed_taken - joint_taken + value).clamp(max=0.0)
    return (error.pow(2) * filled).sum() / filled.sum().clamp(min=1.0)


class QTRAN(QMIX):
    """QTRAN-base: factorization by transformation, with QMIX's epsilon-greedy decentralized agents.

    Son et al., ICML 2019 (QTRAN-base, section 3). Networks: the agents' utility network (shared,
    as QMIX's), whose sum is the transformed value Q'_jt (the ``mixer`` is VDN's sum, so
    ``utility_tables`` shows Q'_jt); ``QTranJointQ``, the joint action-value Q_jt over the state
    and the agents' hidden features and actions, and the state value V_jt; target copies of the
    agents and of Q_jt. One Adam step on ``L_td + opt_loss_coef L_opt + nopt_loss_coef L_nopt``.

    Args:
        policy: ``"MlpPolicy"`` or ``"RnnPolicy"``.
        env: a PettingZoo ``ParallelEnv`` or a factory of one.
        opt_loss_coef: lambda_opt, the weight of L_opt (1, as pymarl's ``qtran`` config).
        nopt_loss_coef: lambda_nopt, the weight of L_nopt (0.1, as pymarl's ``qtran`` config).
        joint_embed_dim: width of the Q_jt and V_jt networks (pymarl's ``mixing_embed_dim`` of 64).
        **kwargs: QMIX's arguments (exploration, ``double_q``, the base's); ``mixer`` is fixed to
            ``"vdn"`` (Q'_jt is the sum of the utilities) and ``mixer_embed_dim`` is unused.
    """

    _saved_modules: ClassVar[tuple[str, ...]] = ("q_net", "joint_q", "q_net_target", "joint_q_target")

    def __init__(
        self,
        policy: str,
        env: Any,
        opt_loss_coef: float = 1.0,
        nopt_loss_coef: float = 0.1,
        joint_embed_dim: int = 64,
        **kwargs: Any,
    ) -> None:
        mixer = kwargs.pop("mixer", "vdn")
        if mixer != "vdn":
            raise ValueError(
                f"QTRAN's transformed value is the sum of the utilities (mixer='vdn'); got mixer={mixer!r}"
            )
        for name, coef in (("opt_loss_coef", opt_loss_coef), ("nopt_loss_coef", nopt_loss_coef)):
            if not coef >= 0.0:
                raise ValueError(f"{name} must be non-negative, got {coef}")
        if not isinstance(joint_embed_dim, int) or joint_embed_dim < 1:
            raise ValueError(f"joint_embed_dim must be a positive integer, got {joint_embed_dim!r}")
        self.opt_loss_coef = float(opt_loss_coef)
        self.nopt_loss_coef = float(nopt_loss_coef)
        self.joint_embed_dim = joint_embed_dim
        super().__init__(policy, env, mixer="vdn", **kwargs)

    def _params(self) -> dict[str, Any]:
        return super()._params() | {
            "opt_loss_coef": self.opt_loss_coef,
            "nopt_loss_coef": self.nopt_loss_coef,
            "joint_embed_dim": self.joint_embed_dim,
        }

    def _build_networks(self) -> None:
        super()._build_networks()
        self.joint_q = QTranJointQ(
            self.spec.n_actions, self.spec.state_dim, self.hidden_dim, self.joint_embed_dim
        ).to(self.device)
        self.joint_q_target = copy.deepcopy(self.joint_q).requires_grad_(False)
        self.optimizer = adam(
            [*self.q_net.parameters(), *self.joint_q.parameters()], lr=self.lr_schedule(1.0)
        )

    def _target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.q_net, self.q_net_target), (self.joint_q, self.joint_q_target)]

    def _train_step(self, batch: EpisodeBatch) -> dict[str, float]:
        filled = batch.filled.float()  # [B, T]
        alive = batch.alive.float()  # [B, T+1, N]
        n_steps = filled.sum().clamp(min=1.0)
        n_actions = self.spec.n_actions
        state, next_state = batch.state[:, :-1], batch.state[:, 1:]

        # The agents' hidden features h_i and utilities Q_i(tau_i, .) at every step; MlpPolicy torsos
        # run on the real steps only (marl_lsf.algorithms.packing), the joint Q on the filled transitions.
        packing, transitions = self._step_packing(batch), self._mixer_packing(batch)
        inputs = packing.pack(self.actor_inputs(batch.obs, batch.actions))
        features = packing.unpack(self.q_net.torso(inputs)[0])  # [B, T+1, N, H]
        q = self.q_net.head(features)  # [B, T+1, N, A]
        greedy = masked_argmax(q, batch.avail)  # [B, T+1, N]
        greedy_q = q.gather(-1, greedy.unsqueeze(-1)).squeeze(-1)
        greedy_onehot = nn.functional.one_hot(greedy, n_actions).to(q.dtype)

        # Targets y = r + gamma Q_jt^-(tau', u-bar') at the next greedy joint action (double Q: the
        # online agents' greedy actions; else the target agents'), with TD(lambda).
        with torch.no_grad():
            target_features = packing.unpack(self.q_net_target.torso(inputs)[0])
            if self.double_q:
                next_onehot = greedy_onehot[:, 1:]
            else:
                target_q = self.q_net_target.head(target_features)
                target_greedy = masked_argmax(target_q, batch.avail)
                next_onehot = nn.functional.one_hot(target_greedy[:, 1:], n_actions).to(q.dtype)
            next_value = transitions.apply(
                self.joint_q_target, target_features[:, 1:], next_onehot, next_state
            )
            y = lambda_returns(
                batch.reward, batch.terminated, batch.filled, next_value, self.gamma, self.td_lambda
            )

        # The joint networks read each transition's features and state, packed once for all three.
        features_t, state_t = transitions.pack(features[:, :-1]), transitions.pack(state)

        def joint_q(onehot: torch.Tensor) -> torch.Tensor:
            return transitions.unpack(self.joint_q(features_t, transitions.pack(onehot), state_t))

        # L_td = (Q_jt(tau, u) - y)^2 at the taken joint action u.
        joint_taken = joint_q(nn.functional.one_hot(batch.actions, n_actions).to(q.dtype))
        td_loss = ((joint_taken - y).pow(2) * filled).sum() / n_steps

        # L_opt at the greedy joint action u-bar, with Q_jt(tau, u-bar) fixed.
        value = transitions.unpack(self.joint_q.value(state_t))
        with torch.no_grad():
            joint_greedy = joint_q(greedy_onehot[:, :-1])
        transformed_greedy = self.mixer(greedy_q[:, :-1] * alive[:, :-1], state)
        opt_loss = qtran_opt_loss(transformed_greedy, joint_greedy, value, filled)

        # L_nopt at the taken joint action u, with Q_jt(tau, u) fixed.
        q_taken = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1) * alive[:, :-1]
        transformed_taken = self.mixer(q_taken, state)
        nopt_loss = qtran_nopt_loss(transformed_taken, joint_taken.detach(), value, filled)

        loss = td_loss + self.opt_loss_coef * opt_loss + self.nopt_loss_coef * nopt_loss
        self._gradient_step(self.optimizer, loss)
        return {
            "td_loss": td_loss.item(),
            "opt_loss": opt_loss.item(),
            "nopt_loss": nopt_loss.item(),
            "q_tot": ((transformed_taken.detach() * filled).sum() / n_steps).item(),
        }
