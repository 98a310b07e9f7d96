"""Weighted QMIX (Rashid et al., 2020): OW-QMIX and CW-QMIX on QMIX's agents, mixer and buffer.

"Weighted QMIX: Expanding Monotonic Value Function Factorisation for Deep Multi-Agent
Reinforcement Learning" (NeurIPS 2020). QMIX projects the targets onto monotonic joint values
with the same weight on every joint action, which can leave its greedy joint action wrong (the
LSF-SAC paper's matrix game). Weighted QMIX learns besides QMIX's Q_tot an unrestricted joint
value Q-hat*, bootstraps both from Q-hat* at QMIX's greedy joint action, and weights QMIX's loss
so that the joint actions that may be optimal count fully and the others by alpha < 1.
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
from marl_lsf.nets import AgentNetwork, CentralFFMixer
from marl_lsf.nets.agents import masked_argmax

#: The weightings of the paper: optimistic (OW) and central (CW).
WEIGHTINGS = ("ow", "cw")
#: The paper's alpha of each weighting in its StarCraft II experiments (its predator-prey
#: experiments, and the configs of its code, oxwhirl/wqmix, use 0.1 for both).
DEFAULT_ALPHA = {"ow": 0.5, "cw": 0.75}


def optimistic_weights(q_tot: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """The paper's optimistic weighting (OW-QMIX): ``w = 1`` where ``Q_tot(s, u) < y``, else ``alpha``.

    Underestimated joint actions may be optimal, so their error counts fully.
    """
    return torch.where(q_tot < y, 1.0, alpha).to(q_tot.dtype)


def central_weights(
    is_greedy: torch.Tensor, y: torch.Tensor, greedy_value: torch.Tensor, alpha: float
) -> torch.Tensor:
    """The paper's central weighting (CW-QMIX), with Q-hat* for Q*: ``w = 1`` where the taken joint
    action is QMIX's greedy one or ``y > Q-hat*(s, u-hat*)`` at the greedy action ``u-hat*``, else ``alpha``.

    Args:
        is_greedy: True where every agent took its greedy action.
        y: the targets.
        greedy_value: ``Q-hat*(s, u-hat*)``, the central value of the greedy joint action.
        alpha: the weight of the other joint actions.
    """
    return torch.where(is_greedy | (y > greedy_value), 1.0, alpha).to(y.dtype)


class WQMIX(QMIX):
    """Weighted QMIX: QMIX's Q_tot trained on a weighted loss toward an unrestricted Q-hat*'s targets.

    Rashid et al., "Weighted QMIX", NeurIPS 2020 (its deep RL setup, Figure 1). Execution is QMIX's: each
    agent acts (epsilon-)greedily on its utilities. Training adds

    * Q-hat*: a central utility network (the agents' network, one output per action) mixed by
      ``CentralFFMixer``, a feed-forward network of the state and the utilities with no
      monotonicity constraint, with its own target networks;
    * the target ``y = r + gamma Q-hat*^-(s', u-hat*')`` at QMIX's greedy joint action
      ``u-hat*' = (argmax Q_i(tau'_i, .))_i`` (TD(lambda) over the episode with ``td_lambda > 0``);
    * Q-hat*'s loss, unweighted, and QMIX's Q_tot loss weighted by ``w`` (``optimistic_weights``
      or ``central_weights``), both toward ``y``; one Adam step on their sum, as the paper's code.

    Args:
        policy: ``"MlpPolicy"`` or ``"RnnPolicy"`` (QMIX's agents and Q-hat*'s central agents alike).
        env: a PettingZoo ``ParallelEnv`` or a factory of one.
        weighting: ``"ow"`` (optimistic weighting) or ``"cw"`` (central weighting).
        alpha: the weight of the joint actions the weighting does not single out, in (0, 1];
            None takes ``DEFAULT_ALPHA`` (0.5 for OW, 0.75 for CW, the paper's StarCraft values).
        central_mixing_embed_dim: width of Q-hat*'s feed-forward mixer (the paper's 256).
        **kwargs: QMIX's arguments (exploration, ``mixer``, ``mixer_embed_dim`` and the base's);
            ``double_q`` must stay True, since the targets always evaluate Q-hat*^- at the QMIX
            agents' greedy actions.
    """

    _saved_modules: ClassVar[tuple[str, ...]] = (
        *QMIX._saved_modules,
        "central_q_net",
        "central_mixer",
        "central_q_net_target",
        "central_mixer_target",
    )

    def __init__(
        self,
        policy: str,
        env: Any,
        weighting: str = "ow",
        alpha: float | None = None,
        central_mixing_embed_dim: int = 256,
        **kwargs: Any,
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        alpha = DEFAULT_ALPHA[weighting] if alpha is None else alpha
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not isinstance(central_mixing_embed_dim, int) or central_mixing_embed_dim < 1:
            raise ValueError(
                f"central_mixing_embed_dim must be a positive integer, got {central_mixing_embed_dim!r}"
            )
        if not kwargs.get("double_q", True):
            raise ValueError(
                "double_q must be True for WQMIX: its targets use the QMIX agents' greedy actions"
            )
        self.weighting = weighting
        self.alpha = float(alpha)
        self.central_mixing_embed_dim = central_mixing_embed_dim
        super().__init__(policy, env, **kwargs)

    def _params(self) -> dict[str, Any]:
        return super()._params() | {
            "weighting": self.weighting,
            "alpha": self.alpha,
            "central_mixing_embed_dim": self.central_mixing_embed_dim,
        }

    def _build_networks(self) -> None:
        super()._build_networks()
        n, a = self.spec.n_agents, self.spec.n_actions
        self.central_q_net = AgentNetwork(self.actor_input_dim, a, self.hidden_dim, self.torso).to(
            self.device
        )
        self.central_mixer = CentralFFMixer(n, self.spec.state_dim, self.central_mixing_embed_dim).to(
            self.device
        )
        self.central_q_net_target = copy.deepcopy(self.central_q_net).requires_grad_(False)
        self.central_mixer_target = copy.deepcopy(self.central_mixer).requires_grad_(False)
        self.optimizer = adam(
            [
                *self.q_net.parameters(),
                *self.mixer.parameters(),
                *self.central_q_net.parameters(),
                *self.central_mixer.parameters(),
            ],
            lr=self.lr_schedule(1.0),
        )

    def _target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [
            *super()._target_pairs(),
            (self.central_q_net, self.central_q_net_target),
            (self.central_mixer, self.central_mixer_target),
        ]

    def _train_step(self, batch: EpisodeBatch) -> dict[str, float]:
        filled = batch.filled.float()  # [B, T]
        alive = batch.alive.float()  # [B, T+1, N]
        n_steps = filled.sum().clamp(min=1.0)
        actions = batch.actions.unsqueeze(-1)  # [B, T, N, 1]

        # QMIX's utilities Q_i(tau_i, .) and Q-hat*'s central utilities at every step.
        # MlpPolicy networks run on the real steps only (marl_lsf.algorithms.packing).
        # The mixers always run on the real steps only: every step for the greedy value (read at s
        # and s'), the filled transitions for the others.
        packing, transitions = self._step_packing(batch), self._mixer_packing(batch)
        inputs = packing.pack(self.actor_inputs(batch.obs, batch.actions))
        q = packing.unpack(self.q_net(inputs)[0])  # [B, T+1, N, A]
        central_q = packing.unpack(self.central_q_net(inputs)[0])  # [B, T+1, N, A]

        # Greedy joint action u-hat* = (argmax_{available a} Q_i(tau_i, a))_i of QMIX's agents, its
        # target central value Q-hat*^-(s, u-hat*), and the targets y = r + gamma Q-hat*^-(s', u-hat*').
        with torch.no_grad():
            greedy = masked_argmax(q, batch.avail).unsqueeze(-1)  # [B, T+1, N, 1]
            central_q_target = packing.unpack(self.central_q_net_target(inputs)[0])
            greedy_utilities = central_q_target.gather(-1, greedy).squeeze(-1) * alive
            steps = self._mixer_packing(batch, next_step=True)
            greedy_value = steps.apply(self.central_mixer_target, greedy_utilities, batch.state)  # [B, T+1]
            y = lambda_returns(
                batch.reward, batch.terminated, batch.filled, greedy_value[:, 1:], self.gamma, self.td_lambda
            )

        # Q-hat*'s loss (unweighted): (Q-hat*(s, u) - y)^2.
        central_taken = central_q[:, :-1].gather(-1, actions).squeeze(-1) * alive[:, :-1]
        central_value = transitions.apply(self.central_mixer, central_taken, batch.state[:, :-1])
        central_loss = ((central_value - y).pow(2) * filled).sum() / n_steps

        # The weighting w(s, u): 1 where the rule singles the joint action out, alpha elsewhere.
        q_taken = q[:, :-1].gather(-1, actions).squeeze(-1) * alive[:, :-1]
        q_tot = transitions.apply(self.mixer, q_taken, batch.state[:, :-1])
        if self.weighting == "ow":
            w = optimistic_weights(q_tot.detach(), y, self.alpha)
        else:
            dead = ~batch.alive[:, :-1]
            is_greedy = ((actions == greedy[:, :-1]).squeeze(-1) | dead).all(-1)
            w = central_weights(is_greedy, y, greedy_value[:, :-1], self.alpha)

        # QMIX's weighted loss: w(s, u) (Q_tot(s, u) - y)^2; one step on the sum of both losses.
        qmix_loss = (w * (q_tot - y).pow(2) * filled).sum() / n_steps
        self._gradient_step(self.optimizer, qmix_loss + central_loss)
        return {
            "td_loss": qmix_loss.item(),
            "central_loss": central_loss.item(),
            "weight_mean": ((w * filled).sum() / n_steps).item(),
            "q_tot": ((q_tot.detach() * filled).sum() / n_steps).item(),
        }


class OWQMIX(WQMIX):
    """OW-QMIX: ``WQMIX`` with the optimistic weighting (``weighting="ow"``, alpha 0.5 by default).

    Takes ``WQMIX``'s arguments; ``weighting`` is fixed.
    """

    def __init__(self, policy: str, env: Any, **kwargs: Any) -> None:
        weighting = kwargs.pop("weighting", "ow")
        if weighting != "ow":
            raise ValueError(f"OWQMIX uses weighting='ow', got weighting={weighting!r}; use CWQMIX or WQMIX")
        super().__init__(policy, env, weighting="ow", **kwargs)


class CWQMIX(WQMIX):
    """CW-QMIX: ``WQMIX`` with the central weighting (``weighting="cw"``, alpha 0.75 by default).

    Takes ``WQMIX``'s arguments; ``weighting`` is fixed.
    """

    def __init__(self, policy: str, env: Any, **kwargs: Any) -> None:
        weighting = kwargs.pop("weighting", "cw")
        if weighting != "cw":
            raise ValueError(f"CWQMIX uses weighting='cw', got weighting={weighting!r}; use OWQMIX or WQMIX")
        super().__init__(policy, env, weighting="cw", **kwargs)
