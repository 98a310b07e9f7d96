"""DOP: off-policy multi-agent decomposed policy gradients (Wang et al., ICLR 2021), discrete actions.

"DOP: Off-Policy Multi-Agent Decomposed Policy Gradients", Yihan Wang, Beining Han, Tonghan Wang,
Heng Dong and Chongjie Zhang, ICLR 2021: stochastic DOP (the paper's discrete-action method), the version the LSF-SAC
paper's Table I compares with. Decentralized stochastic actors pi_i(a_i | tau_i) are trained with
the policy gradient of a linearly decomposed critic ``Q_tot = sum_i k_i(s) Q_i(tau, a_i) + b(s)``,
``k_i >= 0``; the linearity makes each agent's gradient depend on its own critic Q_i only, and
makes the expectation of Q_tot under the joint policy a sum of per-agent expectations, so the
critic can learn off-policy by tree backup at a cost linear in the number of agents.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import numpy as np
import torch
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import FloatSchedule, update_learning_rate
from torch import nn

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.targets import lambda_returns, tree_backup_returns
from marl_lsf.algorithms.utils import adam, epsilon_schedule
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.nets import AgentNetwork, LinearMixer
from marl_lsf.nets.agents import MASKED_LOG_PROB, masked_log_softmax
from marl_lsf.nets.policies import EpsilonSoftmaxPolicy


def epsilon_mixed_log_probs(log_pi: torch.Tensor, avail: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Log-probabilities ``[..., A]`` of ``(1 - epsilon) pi + epsilon U``, U uniform over the available actions.

    ``log_pi`` are the masked log-probabilities of ``masked_log_softmax``; unavailable actions keep
    ``MASKED_LOG_PROB``, and rows with no available action count every action as available, as
    there. Computed with ``logaddexp``, so ``epsilon = 0`` returns ``log_pi`` and probabilities
    close to 0 keep finite logs and gradients.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if epsilon == 0.0:
        return log_pi
    avail = avail | ~avail.any(-1, keepdim=True)
    log_uniform = math.log(epsilon) - avail.sum(-1, keepdim=True).to(log_pi.dtype).log()
    log_policy = log_pi + math.log1p(-epsilon) if epsilon < 1.0 else torch.full_like(log_pi, -math.inf)
    mixed = torch.logaddexp(log_policy, log_uniform.expand_as(log_pi))
    return torch.where(avail, mixed, MASKED_LOG_PROB)


def decomposed_policy_loss(
    log_pi: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    actions: torch.Tensor,
    agent_mask: torch.Tensor,
    n_steps: torch.Tensor | float,
) -> torch.Tensor:
    """DOP's actor loss, whose gradient is the stochastic DOP policy gradient (the paper's stochastic DOP policy gradient theorem, with its baseline).

    ``-(1 / n_steps) sum_t sum_i k_i(s_t) A_i(tau_t, a_t^i) log pi_i(a_t^i | tau_t^i)`` with the
    advantage ``A_i(tau, a_i) = Q_i(tau, a_i) - sum_a pi_i(a | tau_i) Q_i(tau, a)``; ``k`` and ``Q``
    are constants (the caller detaches them) and so is the baseline, so the gradient is
    ``-E_t[sum_i k_i(s) grad log pi_i(a_i | tau_i) (Q_i(tau, a_i) - sum_a pi_i(a) Q_i(tau, a))]``.

    Args:
        log_pi: ``[..., N, A]`` log-probabilities of the policy that acted (with gradient).
        q: ``[..., N, A]`` the individual critics Q_i(tau, .).
        k: ``[..., N]`` the mixer's weights k_i(s).
        actions: ``[..., N]`` the taken actions.
        agent_mask: ``[..., N]`` 1.0 for living agents on real steps, else 0.0.
        n_steps: the number of real steps the gradient is averaged over.
    """
    taken = actions.unsqueeze(-1)
    baseline = (log_pi.detach().exp() * q).sum(-1)
    advantage = q.gather(-1, taken).squeeze(-1) - baseline
    log_pi_taken = log_pi.gather(-1, taken).squeeze(-1)
    return -(k * advantage * log_pi_taken * agent_mask).sum() / n_steps


class DOP(MultiAgentAlgorithm):
    """Stochastic DOP: decentralized softmax actors on a linearly decomposed, off-policy critic.

    Wang et al., ICLR 2021, stochastic DOP (discrete actions). Used as ``DOP("RnnPolicy", env).learn(2e6)``
    with any PettingZoo ``ParallelEnv``. Networks:

    * the actor pi_i(a | tau_i): the shared ``AgentNetwork`` on each agent's own inputs
      (``actor_inputs``), a masked softmax over its logits. It acts by sampling
      ``(1 - epsilon) pi_i + epsilon U`` (``EpsilonSoftmaxPolicy``, the authors' epsilon floor) while
      training and greedily with ``predict(..., deterministic=True)``; the gradient and the targets
      use that same mixed policy, as the authors' code does;
    * the individual critics Q_i(tau, .): one shared feed-forward network on the global state, the
      agent's observation and its one-hot id (the authors' critic inputs; it reads no history, as
      theirs), one output per action;
    * the mixer ``LinearMixer``: ``Q_tot(s, a) = sum_i k_i(s) Q_i(tau, a_i) + b(s)``, ``k_i >= 0``;
    * target copies of the critic and the mixer, moved as the base moves targets (``tau``,
      ``target_update_interval``).

    One update (``_train_step``) on a batch of ``batch_size`` episodes drawn uniformly from the
    replay buffer (the off-policy batch):

    1. Critic: ``L = kappa L^DOP-TB + (1 - kappa) L^On`` (the paper's critic loss), the mean squared error of
       Q_tot against the tree-backup targets ``y^DOP-TB`` (``tree_backup_returns``) on the
       off-policy batch, and against the on-policy TD(lambda) targets of the taken actions
       (``lambda_returns`` over ``Q_tot^-(s_{t+1}, a_{t+1})``) on ``on_policy_batch_size``
       episodes drawn from the ``on_policy_episodes`` most recent ones; targets from the target
       critic and mixer and the current policy. One Adam step on the critic and the mixer.
    2. Actor: one Adam step on ``decomposed_policy_loss`` over the ``on_policy_batch_size`` most
       recent episodes, with the just-updated critic's Q_i and k_i.

    Differences from the authors' code (TonghanWang/DOP, ``offpg_learner``), for this library's
    shared loop: one critic step per update over all time steps (theirs: one per time step);
    Adam (theirs: RMSprop); Polyak or periodic target updates as the base (theirs: a hard copy
    every 600 critic steps); the on-policy episodes are the replay buffer's most recent ones (theirs:
    a second, 32-episode buffer); ``Q_tot`` keeps ``b(s)`` and unnormalized ``k`` (the paper; see
    ``LinearMixer``); the critic has no dueling head (the same function class).

    Args:
        policy: ``"MlpPolicy"`` or ``"RnnPolicy"`` (the actor's torso; the critic is feed-forward).
        env: a PettingZoo ``ParallelEnv`` or a factory of one.
        critic_learning_rate: learning rate of the critic and the mixer, a float or a schedule
            (default: ``learning_rate``, which the actor uses; the authors' SMAC config has 5e-4
            for the actor and 1e-4 for the critic).
        critic_hidden_dim: width of the critic's two hidden layers (the authors' 256).
        tree_backup_lambda: lambda of the tree-backup traces (the authors' 0.93).
        tree_backup_steps: how many TD errors each tree-backup target sums (the authors' 5).
        off_policy_coef: kappa, the weight of the tree-backup loss; None weighs the two losses by
            their batch sizes, ``batch_size / (batch_size + on_policy_batch_size)``, as the
            authors' code does by training on both batches at once (2/3 with the defaults).
        on_policy_episodes: how many of the most recent episodes count as on-policy (the authors'
            ``buffer_size`` of 32).
        on_policy_batch_size: episodes per on-policy batch (the critic's TD(lambda) part and the
            actor; the authors' ``batch_size`` of 16).
        exploration_fraction: fraction of the run over which epsilon decays linearly (the authors
            anneal over 500k steps of their 2M-step SMAC runs).
        exploration_initial_eps: epsilon at the start of training (the authors' 0.5).
        exploration_final_eps: epsilon after ``exploration_fraction`` of the run (the authors' 0.05).
        **kwargs: the arguments of ``MultiAgentAlgorithm``. ``batch_size`` is the off-policy
            batch (the authors' 32), ``td_lambda`` the on-policy TD(lambda)'s lambda (default 0.8,
            the authors'), ``mixer_embed_dim`` the width of ``LinearMixer``; ``mixer`` is unused
            (DOP has its own linear mixer) and may only be left at ``"qmix"``.
    """

    _saved_modules: ClassVar[tuple[str, ...]] = ("actor", "critic", "mixer", "critic_target", "mixer_target")
    _saved_optimizers: ClassVar[tuple[str, ...]] = ("actor_optimizer", "critic_optimizer")

    def __init__(
        self,
        policy: str,
        env: Any,
        critic_learning_rate: float | Schedule | None = None,
        critic_hidden_dim: int = 256,
        tree_backup_lambda: float = 0.93,
        tree_backup_steps: int = 5,
        off_policy_coef: float | None = None,
        on_policy_episodes: int = 32,
        on_policy_batch_size: int = 16,
        exploration_fraction: float = 0.25,
        exploration_initial_eps: float = 0.5,
        exploration_final_eps: float = 0.05,
        **kwargs: Any,
    ) -> None:
        mixer = kwargs.pop("mixer", "qmix")
        if mixer != "qmix":
            raise ValueError(
                f"DOP mixes with its own linear mixer (Q_tot = sum_i k_i Q_i + b); mixer= is unused, got {mixer!r}"
            )
        for name, value in (
            ("critic_hidden_dim", critic_hidden_dim),
            ("tree_backup_steps", tree_backup_steps),
            ("on_policy_episodes", on_policy_episodes),
            ("on_policy_batch_size", on_policy_batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= tree_backup_lambda <= 1.0:
            raise ValueError(f"tree_backup_lambda must be in [0, 1], got {tree_backup_lambda}")
        if off_policy_coef is not None and not 0.0 <= off_policy_coef <= 1.0:
            raise ValueError(f"off_policy_coef must be in [0, 1] or None, got {off_policy_coef}")
        self.exploration_schedule = epsilon_schedule(
            exploration_fraction, exploration_initial_eps, exploration_final_eps
        )
        self.critic_learning_rate = critic_learning_rate
        self.critic_hidden_dim = critic_hidden_dim
        self.tree_backup_lambda = float(tree_backup_lambda)
        self.tree_backup_steps = tree_backup_steps
        self.off_policy_coef = None if off_policy_coef is None else float(off_policy_coef)
        self.on_policy_episodes = on_policy_episodes
        self.on_policy_batch_size = on_policy_batch_size
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        kwargs.setdefault("td_lambda", 0.8)
        super().__init__(policy, env, mixer="qmix", **kwargs)

    def _params(self) -> dict[str, Any]:
        critic_rate = self.critic_learning_rate
        if critic_rate is not None and not isinstance(critic_rate, int | float):
            critic_rate = self.critic_lr_schedule(1.0)
        return {
            "critic_learning_rate": critic_rate,
            "critic_hidden_dim": self.critic_hidden_dim,
            "tree_backup_lambda": self.tree_backup_lambda,
            "tree_backup_steps": self.tree_backup_steps,
            "off_policy_coef": self.off_policy_coef,
            "on_policy_episodes": self.on_policy_episodes,
            "on_policy_batch_size": self.on_policy_batch_size,
            "exploration_fraction": self.exploration_fraction,
            "exploration_initial_eps": self.exploration_initial_eps,
            "exploration_final_eps": self.exploration_final_eps,
        }

    def _build_networks(self) -> None:
        n, o, a, s = self.spec.n_agents, self.spec.obs_dim, self.spec.n_actions, self.spec.state_dim
        self.actor = AgentNetwork(self.actor_input_dim, a, self.hidden_dim, self.torso).to(self.device)
        last_action_dim = a if self.last_action_input else 0
        self.policy = EpsilonSoftmaxPolicy(self.actor, self.exploration_rate, last_action_dim).to(self.device)
        self.critic = AgentNetwork(s + o + n, a, self.critic_hidden_dim, "mlp").to(self.device)
        self.mixer = LinearMixer(n, s, self.mixer_embed_dim).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)
        self.critic_lr_schedule = (
            self.lr_schedule
            if self.critic_learning_rate is None
            else FloatSchedule(self.critic_learning_rate)
        )
        self.actor_optimizer = adam(self.actor.parameters(), lr=self.lr_schedule(1.0))
        self.critic_optimizer = adam(
            [*self.critic.parameters(), *self.mixer.parameters()], lr=self.critic_lr_schedule(1.0)
        )

    @property
    def exploration_rate(self) -> float:
        """Current epsilon of the acting policy, from the remaining progress of the run."""
        return float(self.exploration_schedule(self._current_progress_remaining))

    @property
    def tree_backup_weight(self) -> float:
        """kappa, the weight of the tree-backup loss (``off_policy_coef`` or the batch-size share)."""
        if self.off_policy_coef is not None:
            return self.off_policy_coef
        return self.batch_size / (self.batch_size + self.on_policy_batch_size)

    def _update_learning_rates(self) -> None:
        self._update_learning_rate([self.actor_optimizer])
        rate = self.critic_lr_schedule(self._current_progress_remaining)
        update_learning_rate(self.critic_optimizer, rate)
        self.logger.record("train/critic_learning_rate", rate)
        self.policy.exploration_rate.fill_(self.exploration_rate)
        self.logger.record("train/exploration_rate", self.exploration_rate)

    def _target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.critic, self.critic_target), (self.mixer, self.mixer_target)]

    # -- the networks on a batch of episodes ----------------------------------------------------------

    def critic_q(self, obs: torch.Tensor, state: torch.Tensor, target: bool = False) -> torch.Tensor:
        """The individual critics ``Q_i(tau, .)`` ``[..., N, A]`` of ``obs [..., N, O]`` and ``state [..., S]``.

        The critic reads the global state, the agent's observation and its one-hot id (the authors'
        critic inputs); the state's share of its first layer is computed once per step, not once
        per agent (``AgentNetwork.forward_shared``). With ``target``, the target critic's.
        """
        critic = self.critic_target if target else self.critic
        n = self.spec.n_agents
        ids = torch.eye(n, device=obs.device, dtype=obs.dtype).expand(*obs.shape[:-1], n)
        return critic.forward_shared(state, torch.cat([obs, ids], dim=-1))

    def individual_q(self, batch: EpisodeBatch, target: bool = False) -> torch.Tensor:
        """The individual critics ``Q_i(tau, .)`` ``[B, T+1, N, A]`` at every step (of the target critic with ``target``)."""
        # The critics are per-step MLPs whatever the agents' network: they run on the real steps only.
        packing = self._mixer_packing(batch, next_step=True)
        return packing.unpack(self.critic_q(packing.pack(batch.obs), packing.pack(batch.state), target))

    def policy_distribution(self, batch: EpisodeBatch, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pi, log pi)`` ``[B, T+1, N, A]`` of the acting policy ``(1 - epsilon) pi_i + epsilon U`` at every step."""
        packing = self._step_packing(batch)
        logits = packing.unpack(self.actor(packing.pack(self.actor_inputs(batch.obs, batch.actions)))[0])
        log_pi = epsilon_mixed_log_probs(masked_log_softmax(logits, batch.avail), batch.avail, epsilon)
        return log_pi.exp(), log_pi

    @torch.no_grad()
    def _target_values(
        self, batch: EpisodeBatch, pi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Q_tot^-(s_t, a_t), E_pi[Q_tot^-(s_{t+1}, .)], c_t)``, each ``[B, T]``, from the target critic and mixer.

        By the linearity of the mixer, ``E_pi[Q_tot^-(s, .)] = sum_i k_i^-(s) sum_a pi_i(a) Q_i^-(tau, a)
        + b^-(s)``: n expectations over one agent's actions instead of one over the joint actions.
        ``c_t = prod_i pi_i(a_t^i | tau_t^i)`` over the living agents.
        """
        alive = batch.alive.float()
        q_target = self.individual_q(batch, target=True)
        # The mixer's weights on every real step (read at s and s').
        steps = self._mixer_packing(batch, next_step=True)
        k, b = self.mixer_target.weights(steps.pack(batch.state))
        weights = (steps.unpack(k), steps.unpack(b))
        taken = q_target[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1) * alive[:, :-1]
        q_taken = self.mixer_target.mix(taken, tuple(w[:, :-1] for w in weights))
        expected = self.mixer_target.mix((pi * q_target).sum(-1) * alive, weights)[:, 1:]
        pi_taken = pi[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        trace = torch.where(batch.alive[:, :-1], pi_taken, 1.0).prod(-1)
        return q_taken, expected, trace

    def tree_backup_targets(self, batch: EpisodeBatch, pi: torch.Tensor) -> torch.Tensor:
        """DOP's off-policy targets ``y^DOP-TB [B, T]`` (the paper's tree-backup target) of the target critic under the policy ``pi``.

        ``y_t = Q_tot^-(s_t, a_t) + sum_{k<n} (gamma lambda)^k (prod_{l=1}^{k} c_{t+l}) delta_{t+k}``,
        ``delta_t = r_t + gamma (1 - d_t) E_pi[Q_tot^-(s_{t+1}, .)] - Q_tot^-(s_t, a_t)``; see
        ``tree_backup_returns``.
        """
        q_taken, expected, trace = self._target_values(batch, pi)
        return tree_backup_returns(
            batch.reward,
            batch.terminated,
            batch.filled,
            q_taken,
            expected,
            trace,
            self.gamma,
            self.tree_backup_lambda,
            self.tree_backup_steps,
        )

    def on_policy_targets(self, batch: EpisodeBatch, pi: torch.Tensor) -> torch.Tensor:
        """DOP's on-policy TD(lambda) targets ``[B, T]`` (the paper's L^On) of the taken actions.

        ``G_t = r_t + gamma (1 - d_t) [(1 - lambda) Q_tot^-(s_{t+1}, a_{t+1}) + lambda G_{t+1}]``
        (``lambda_returns``); after an episode's last recorded action (a truncated episode),
        ``E_pi[Q_tot^-(s_{t+1}, .)]`` stands for ``Q_tot^-(s_{t+1}, a_{t+1})``.
        """
        q_taken, expected, _ = self._target_values(batch, pi)
        next_recorded = torch.cat([batch.filled[:, 1:], torch.zeros_like(batch.filled[:, :1])], dim=1)
        next_taken = torch.cat([q_taken[:, 1:], torch.zeros_like(q_taken[:, :1])], dim=1)
        next_value = torch.where(next_recorded, next_taken, expected)
        return lambda_returns(
            batch.reward, batch.terminated, batch.filled, next_value, self.gamma, self.td_lambda
        )

    def joint_q(self, batch: EpisodeBatch) -> torch.Tensor:
        """The online ``Q_tot(s_t, a_t) = sum_i k_i(s_t) Q_i(tau_t, a_t^i) + b(s_t)`` ``[B, T]`` of the taken actions."""
        q = self.individual_q(batch)[:, :-1]
        taken = q.gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1) * batch.alive[:, :-1].float()
        return self._mixer_packing(batch).apply(self.mixer, taken, batch.state[:, :-1])

    def critic_loss(
        self, off_batch: EpisodeBatch, on_batch: EpisodeBatch, epsilon: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``L = kappa L^DOP-TB + (1 - kappa) L^On`` (the paper's critic loss): Q_tot's mean squared errors against
        the tree-backup targets on ``off_batch`` and the TD(lambda) targets on ``on_batch``.

        Returns the loss (gradients reach the critic and the mixer) and the values to log.
        """
        values: dict[str, float] = {}
        losses = []
        for name, batch, targets in (
            ("tb", off_batch, self.tree_backup_targets),
            ("on_policy", on_batch, self.on_policy_targets),
        ):
            with torch.no_grad():
                pi, _ = self.policy_distribution(batch, epsilon)
                y = targets(batch, pi)
            filled = batch.filled.float()
            n_steps = filled.sum().clamp(min=1.0)
            q_tot = self.joint_q(batch)
            loss = ((q_tot - y).pow(2) * filled).sum() / n_steps
            losses.append(loss)
            values[f"{name}_loss"] = loss.item()
            values[f"{name}_target"] = ((y * filled).sum() / n_steps).item()
            if name == "tb":
                values["q_tot"] = ((q_tot.detach() * filled).sum() / n_steps).item()
        kappa = self.tree_backup_weight
        return kappa * losses[0] + (1.0 - kappa) * losses[1], values

    def actor_loss(self, batch: EpisodeBatch, epsilon: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The decomposed policy gradient's loss (``decomposed_policy_loss``) on ``batch``, with the
        critic's ``Q_i`` and the mixer's ``k_i(s)`` as constants; gradients reach the actor only.
        """
        filled = batch.filled.float()
        agent_mask = batch.alive[:, :-1].float() * filled[..., None]
        pi, log_pi = self.policy_distribution(batch, epsilon)
        with torch.no_grad():
            q = self.individual_q(batch)[:, :-1]
            transitions = self._mixer_packing(batch)
            k = transitions.unpack(self.mixer.weights(transitions.pack(batch.state[:, :-1]))[0])
        n_steps = filled.sum().clamp(min=1.0)
        loss = decomposed_policy_loss(log_pi[:, :-1], q, k, batch.actions, agent_mask, n_steps)
        n_agent_steps = agent_mask.sum().clamp(min=1.0)
        entropy = -(pi[:, :-1] * log_pi[:, :-1]).sum(-1).detach()
        return loss, {
            "entropy": ((entropy * agent_mask).sum() / n_agent_steps).item(),
            "k_mean": ((k * agent_mask).sum() / n_agent_steps).item(),
        }

    # -- the update -----------------------------------------------------------------------------------

    def _recent_slots(self) -> np.ndarray:
        """Replay-buffer slots of the ``on_policy_episodes`` most recent episodes, newest first."""
        buffer = self.replay_buffer
        count = min(self.on_policy_episodes, len(buffer))
        return (buffer.pos - 1 - np.arange(count)) % buffer.capacity

    def on_policy_batches(self) -> tuple[EpisodeBatch, EpisodeBatch]:
        """``(critic batch, actor batch)``: ``on_policy_batch_size`` episodes drawn uniformly from
        the most recent ``on_policy_episodes``, and the ``on_policy_batch_size`` most recent ones
        (as the authors' ``uni_sample`` and ``sample_latest``).
        """
        recent = self._recent_slots()
        if recent.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        size = self.on_policy_batch_size
        sampled = self._rng.choice(recent, size=size, replace=recent.size < size)
        return self.replay_buffer.get(sampled), self.replay_buffer.get(recent[:size])

    def _train_step(self, batch: EpisodeBatch) -> dict[str, float]:
        """One critic step (tree backup on ``batch`` + on-policy TD(lambda)), then one actor step."""
        epsilon = self.exploration_rate
        on_batch, actor_batch = self.on_policy_batches()
        critic_loss, values = self.critic_loss(batch, on_batch, epsilon)
        self._gradient_step(self.critic_optimizer, critic_loss)
        actor_loss, actor_values = self.actor_loss(actor_batch, epsilon)
        self._gradient_step(self.actor_optimizer, actor_loss)
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), **values, **actor_values}
