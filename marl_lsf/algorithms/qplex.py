"""QPLEX (Wang et al., 2021) on QMIX's agents, exploration and buffer.

"QPLEX: Duplex Dueling Multi-Agent Q-Learning" (ICLR 2021). The agents' utilities Q_i are
written in dueling form, V_i = max_a Q_i and A_i = Q_i - V_i, transformed by state-conditioned
positive weights and biases into Q_i', V_i', A_i', and mixed as
Q_tot = sum_i V_i' + sum_i lambda_i(s, u) A_i' with lambda_i > 0 from multi-head attention over
the state and the joint action. Since every A_i' <= 0 and is 0 exactly at agent i's greedy action,
the agents' greedy actions maximize Q_tot (the IGM principle) while Q_tot, through lambda, can
represent payoffs no monotonic mixer can (the paper's complete IGM function class).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from marl_lsf.algorithms.packing import StepPacking
from marl_lsf.algorithms.qmix import QMIX
from marl_lsf.algorithms.targets import lambda_returns
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.nets import DuplexDuelingMixer
from marl_lsf.nets.agents import masked_argmax


class QPLEX(QMIX):
    """QPLEX: the duplex dueling factorization, with QMIX's epsilon-greedy decentralized agents.

    Wang et al., ICLR 2021 (section 3 and the authors' code, wjh720/QPLEX, mixer ``dmaq`` with
    ``DMAQ_SI_Weight``). Networks: the agents' utility network (shared, as QMIX's); the
    ``DuplexDuelingMixer`` (the transformation ``w_i(s) > 0``, ``b_i(s)`` and the attention weights
    ``lambda_i(s, u) > 0``); target copies of both. Training is QMIX's: the double-Q target
    ``y = r + gamma Q_tot^-(s', u')`` at the online agents' greedy joint action ``u'``, evaluated
    by the target agents and mixer (``V_i^-`` their own maxima), with TD(lambda) over the episode,
    and one Adam step on the squared TD error of ``Q_tot(s, u)`` at the taken joint action.

    Args:
        policy: ``"MlpPolicy"`` or ``"RnnPolicy"``.
        env: a PettingZoo ``ParallelEnv`` or a factory of one.
        hypernet_embed_dim: hidden width of the transformation's hypernetworks ``w`` and ``b``
            (the code's ``hypernet_embed``, 64).
        attention_heads: heads K of the attention computing lambda (the code's ``num_kernel``; 4 as
            the ``qplex`` config of hijkzzz/pymarl2 and the authors' ``qplex_sc2``, their didactic
            ``qplex`` config has 10).
        attention_layers: linear layers, 1 to 3, of each head's key, agent and action networks
            (the code's ``adv_hypernet_layers``; 2 as pymarl2's config, 3 in the authors' ``qplex``,
            1 in their ``qplex_sc2``).
        attention_embed_dim: hidden width of those networks (the code's ``adv_hypernet_embed``, 64).
        **kwargs: QMIX's arguments (exploration, ``double_q``, the base's); ``mixer`` is fixed to
            ``"qplex"`` and ``mixer_embed_dim`` is unused (as the code's ``mixing_embed_dim``).
    """

    _mixer_kinds: ClassVar[tuple[str, ...]] = ("qplex",)

    def __init__(
        self,
        policy: str,
        env: Any,
        hypernet_embed_dim: int = 64,
        attention_heads: int = 4,
        attention_layers: int = 2,
        attention_embed_dim: int = 64,
        **kwargs: Any,
    ) -> None:
        mixer = kwargs.pop("mixer", "qplex")
        if mixer != "qplex":
            raise ValueError(
                f"QPLEX mixes with its duplex dueling mixer (mixer='qplex'); got mixer={mixer!r}"
            )
        for name, value in (
            ("hypernet_embed_dim", hypernet_embed_dim),
            ("attention_heads", attention_heads),
            ("attention_embed_dim", attention_embed_dim),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if attention_layers not in (1, 2, 3) or isinstance(attention_layers, bool):
            raise ValueError(f"attention_layers must be 1, 2 or 3, got {attention_layers!r}")
        self.hypernet_embed_dim = hypernet_embed_dim
        self.attention_heads = attention_heads
        self.attention_layers = attention_layers
        self.attention_embed_dim = attention_embed_dim
        super().__init__(policy, env, mixer="qplex", **kwargs)

    def _params(self) -> dict[str, Any]:
        return super()._params() | {
            "hypernet_embed_dim": self.hypernet_embed_dim,
            "attention_heads": self.attention_heads,
            "attention_layers": self.attention_layers,
            "attention_embed_dim": self.attention_embed_dim,
        }

    def _make_mixer(self) -> nn.Module:
        """QPLEX's ``DuplexDuelingMixer`` with this model's sizes."""
        return DuplexDuelingMixer(
            self.spec.n_agents,
            self.spec.n_actions,
            self.spec.state_dim,
            self.hypernet_embed_dim,
            self.attention_heads,
            self.attention_layers,
            self.attention_embed_dim,
        )

    def joint_value(
        self,
        q: torch.Tensor,
        actions: torch.Tensor,
        state: torch.Tensor,
        avail: torch.Tensor | None = None,
        alive: torch.Tensor | None = None,
        target: bool = False,
        packing: StepPacking | None = None,
    ) -> torch.Tensor:
        """``Q_tot [...]`` of the utilities ``q [..., N, A]`` at the joint action ``actions [..., N]``.

        Args:
            q: every action's utility ``Q_i(tau_i, .)`` of every agent.
            actions: the joint action, one index per agent.
            state: the global state ``[..., S]``.
            avail: the available actions ``[..., N, A]`` (``V_i`` is the maximum over them; None:
                all actions).
            alive: which agents are alive ``[..., N]``; a gone agent's ``Q_i`` and ``V_i`` are 0
                (None: all alive).
            target: mix with the target mixer instead of the online one.
            packing: run the mixer on these steps of ``[B, T, ...]`` inputs only (None: on all).
        """
        mixer = self.mixer_target if target else self.mixer
        live = (
            torch.ones(q.shape[:-1], dtype=q.dtype, device=q.device) if alive is None else alive.to(q.dtype)
        )
        avail = torch.ones_like(q, dtype=torch.bool) if avail is None else avail
        # Dueling form of the utilities: V_i = max over the available actions (held fixed, as the
        # authors' code), and A_i = Q_i(tau_i, u_i) - V_i <= 0 inside the mixer.
        q_taken = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1) * live
        greedy = masked_argmax(q.detach(), avail).unsqueeze(-1)
        q_max = q.detach().gather(-1, greedy).squeeze(-1) * live
        onehot = nn.functional.one_hot(actions, self.spec.n_actions).to(q.dtype)
        if packing is None:
            return mixer(q_taken, q_max, onehot, state)
        return packing.apply(mixer, q_taken, q_max, onehot, state)

    def _train_step(self, batch: EpisodeBatch) -> dict[str, float]:
        filled = batch.filled.float()  # [B, T]
        n_steps = filled.sum().clamp(min=1.0)

        # Utilities Q_i(tau_i, .) at every step of the episodes, from decentralized inputs.
        # MlpPolicy networks run on the real steps only (marl_lsf.algorithms.packing).
        # The mixers always run on the filled transitions only.
        packing, transitions = self._step_packing(batch), self._mixer_packing(batch)
        inputs = packing.pack(self.actor_inputs(batch.obs, batch.actions))
        q = packing.unpack(self.q_net(inputs)[0])  # [B, T+1, N, A]

        # Double-Q target: u'_i = argmax_{available a} Q_i(tau'_i, a) of the online agents, and
        # y = r + gamma (1 - d) Q_tot^-(s', u') of the target agents and mixer; with TD(lambda).
        with torch.no_grad():
            q_target = packing.unpack(self.q_net_target(inputs)[0])
            chooser = q.detach() if self.double_q else q_target
            next_actions = masked_argmax(chooser, batch.avail)  # [B, T+1, N]
            next_value = self.joint_value(
                q_target[:, 1:],
                next_actions[:, 1:],
                batch.state[:, 1:],
                batch.avail[:, 1:],
                batch.alive[:, 1:],
                target=True,
                packing=transitions,
            )
            y = lambda_returns(
                batch.reward, batch.terminated, batch.filled, next_value, self.gamma, self.td_lambda
            )

        # TD loss: L_TD = (Q_tot(s, u) - y)^2 at the taken joint action u, over filled steps.
        q_tot = self.joint_value(
            q[:, :-1],
            batch.actions,
            batch.state[:, :-1],
            batch.avail[:, :-1],
            batch.alive[:, :-1],
            packing=transitions,
        )
        td_loss = ((q_tot - y).pow(2) * filled).sum() / n_steps
        self._gradient_step(self.optimizer, td_loss)
        return {"td_loss": td_loss.item(), "q_tot": ((q_tot.detach() * filled).sum() / n_steps).item()}
