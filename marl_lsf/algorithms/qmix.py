"""QMIX and VDN: value-decomposition baselines with epsilon-greedy agents, on the shared base.

Centralized training: per-agent utilities Q_i(tau_i, .) are mixed into Q_tot by a monotonic
hypernetwork conditioned on the state (QMIX, Rashid et al., 2018) or by a sum (VDN, Sunehag et
al., 2018), and Q_tot is regressed on a double-Q TD(lambda) target. Decentralized execution:
each agent acts greedily (or epsilon-greedily while training) on its own utilities.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import nn

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.targets import lambda_returns
from marl_lsf.algorithms.utils import adam, epsilon_schedule
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.nets import AgentNetwork, make_mixer
from marl_lsf.nets.agents import masked_argmax
from marl_lsf.nets.policies import EpsilonGreedyPolicy


class QMIX(MultiAgentAlgorithm):
    """QMIX: monotonic value factorization with epsilon-greedy decentralized agents.

    Used as ``QMIX("RnnPolicy", env).learn(2e6)`` with any PettingZoo ``ParallelEnv``. Every
    agent's utility network is shared across agents and reads only what the agent has at
    execution time: its observation, its one-hot id and, with ``last_action_input``, its previous
    action (``actor_inputs``). Besides the arguments
    of ``MultiAgentAlgorithm`` (learning rate, buffer, batch, gamma, tau and
    ``target_update_interval`` for the target networks, TD(lambda), ``mixer``, ``n_envs``, seed,
    device, logging), it takes:

    Args:
        exploration_fraction: fraction of the run over which epsilon decays linearly from
            ``exploration_initial_eps`` to ``exploration_final_eps`` (Stable-Baselines3's DQN).
        exploration_initial_eps: epsilon at the start of training.
        exploration_final_eps: epsilon after ``exploration_fraction`` of the run.
        double_q: pick the next actions with the online network and evaluate them with the
            target network (van Hasselt et al., 2016; pymarl's ``double_q``); False uses the
            target network's own maximum.
        **kwargs: the arguments of ``MultiAgentAlgorithm`` (``mixer="vdn"`` gives VDN; prefer
            the ``VDN`` class, whose saved files carry its own name).
    """

    _saved_modules: ClassVar[tuple[str, ...]] = ("q_net", "mixer", "q_net_target", "mixer_target")
    _saved_optimizers: ClassVar[tuple[str, ...]] = ("optimizer",)

    def __init__(
        self,
        policy: str,
        env: Any,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        double_q: bool = True,
        **kwargs: Any,
    ) -> None:
        self.exploration_schedule = epsilon_schedule(
            exploration_fraction, exploration_initial_eps, exploration_final_eps
        )
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.double_q = double_q
        super().__init__(policy, env, **kwargs)

    def _params(self) -> dict[str, Any]:
        return {
            "exploration_fraction": self.exploration_fraction,
            "exploration_initial_eps": self.exploration_initial_eps,
            "exploration_final_eps": self.exploration_final_eps,
            "double_q": self.double_q,
        }

    def _build_networks(self) -> None:
        a = self.spec.n_actions
        self.q_net = AgentNetwork(self.actor_input_dim, a, self.hidden_dim, self.torso).to(self.device)
        last_action_dim = a if self.last_action_input else 0
        self.policy = EpsilonGreedyPolicy(self.q_net, self.exploration_rate, last_action_dim).to(self.device)
        self.mixer = self._make_mixer().to(self.device)
        self.q_net_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)
        self.optimizer = adam([*self.q_net.parameters(), *self.mixer.parameters()], lr=self.lr_schedule(1.0))

    def _make_mixer(self) -> nn.Module:
        """The mixer of the utilities (``mixer``: QMIX's hypernetwork mixer or VDN's sum)."""
        return make_mixer(self.mixer_kind, self.spec.n_agents, self.spec.state_dim, self.mixer_embed_dim)

    @property
    def exploration_rate(self) -> float:
        """Current epsilon, from the remaining progress of the run."""
        return float(self.exploration_schedule(self._current_progress_remaining))

    @torch.no_grad()
    def utilities(self, obs: torch.Tensor) -> torch.Tensor:
        """Utilities Q_i(o_i, .) ``[..., N, A]`` of the agents for one step (no memory: an episode's first step)."""
        q, _ = self.q_net(self.actor_inputs(obs).unsqueeze(-3))
        return q.squeeze(-3)

    def _update_learning_rates(self) -> None:
        self._update_learning_rate([self.optimizer])
        self.policy.exploration_rate.fill_(self.exploration_rate)
        self.logger.record("train/exploration_rate", self.exploration_rate)

    def _target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.q_net, self.q_net_target), (self.mixer, self.mixer_target)]

    def _train_step(self, batch: EpisodeBatch) -> dict[str, float]:
        filled = batch.filled.float()  # [B, T]
        alive = batch.alive.float()  # [B, T+1, N]
        n_steps = filled.sum().clamp(min=1.0)

        # Utilities Q_i(tau_i, .) at every step of the episodes, from decentralized inputs.
        # MlpPolicy networks run on the real steps only (marl_lsf.algorithms.packing).
        # The mixers always run on the filled transitions only.
        packing, transitions = self._step_packing(batch), self._mixer_packing(batch)
        inputs = packing.pack(self.actor_inputs(batch.obs, batch.actions))
        q = packing.unpack(self.q_net(inputs)[0])  # [B, T+1, N, A]

        # Double-Q target: a'_i = argmax_{available a} Q_i(tau'_i, a), evaluated by the target
        # network, y = r + gamma (1 - d) Mixer^-(s', [Q_i^-(tau'_i, a'_i)]); with TD(lambda).
        with torch.no_grad():
            q_target = packing.unpack(self.q_net_target(inputs)[0])
            chooser = q.detach() if self.double_q else q_target
            next_actions = masked_argmax(chooser, batch.avail).unsqueeze(-1)
            next_q = q_target.gather(-1, next_actions).squeeze(-1) * alive
            next_value = transitions.apply(self.mixer_target, next_q[:, 1:], batch.state[:, 1:])
            y = lambda_returns(
                batch.reward, batch.terminated, batch.filled, next_value, self.gamma, self.td_lambda
            )

        # TD loss: L_TD = (Mixer(s, [Q_i(tau_i, a_i)]) - y)^2 over filled steps.
        q_taken = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1) * alive[:, :-1]
        q_tot = transitions.apply(self.mixer, q_taken, batch.state[:, :-1])
        td_loss = ((q_tot - y).pow(2) * filled).sum() / n_steps
        self._gradient_step(self.optimizer, td_loss)
        return {"td_loss": td_loss.item(), "q_tot": ((q_tot.detach() * filled).sum() / n_steps).item()}


class VDN(QMIX):
    """VDN: QMIX's agents and training with the joint value the sum of the utilities.

    Takes QMIX's arguments; ``mixer`` is fixed to ``"vdn"`` (``mixer_embed_dim`` is unused).
    """

    def __init__(self, policy: str, env: Any, **kwargs: Any) -> None:
        mixer = kwargs.pop("mixer", "vdn")
        if mixer != "vdn":
            raise ValueError(
                f"VDN sums the utilities (mixer='vdn'); got mixer={mixer!r}, use QMIX for a mixing network"
            )
        super().__init__(policy, env, mixer="vdn", **kwargs)
