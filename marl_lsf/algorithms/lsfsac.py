"""LSF-SAC: value function factorization with latent state information sharing (Zhou, Lan, Aggarwal).

Centralized training: per-agent critics Q_i(tau_i, ., m_i) conditioned on variational latent
messages from every agent, mixed by QMIX into Q_tot, trained on a TD target (eq. 16) and a
maximum-entropy policy loss (eq. 14) with a learned temperature (eq. 15). Decentralized execution:
each agent's actor pi_i(a | tau_i) sees only its own inputs. ``train()`` follows the paper's
losses equation by equation (eqs. 12, 14, 15, 16); the README lists which options are the paper's,
which its authors' released code's and which this library's.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import torch
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import FloatSchedule, update_learning_rate
from torch import nn

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.packing import StepPacking
from marl_lsf.algorithms.targets import lambda_returns
from marl_lsf.algorithms.utils import adam, epsilon_schedule
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.nets import AgentNetwork, LatentCritic, make_mixer
from marl_lsf.nets.agents import (
    MESSAGE_NETWORKS,
    LatentOutput,
    check_choice,
    check_q_messages,
    masked_argmax,
    masked_log_softmax,
)
from marl_lsf.nets.policies import EpsilonGreedyPolicy, SoftmaxPolicy

#: The TD targets LSF-SAC offers: the policy's expected target Q, its greedy one, SAC's soft value,
#: or the critic's own maximum (QMIX's double-Q target).
TD_TARGETS = ("expected", "greedy", "soft", "max")
#: How LSF-SAC's agents act while training: sampling pi, or epsilon-greedy on argmax pi.
EXPLORATIONS = ("sample", "epsilon_greedy")
#: Labels the message decoder is trained on: pi as soft labels, or argmax pi as a hard label.
DECODER_TARGETS = ("soft", "argmax")
#: How the actor is moved toward the Boltzmann policy of its critic, exp(Q_i / alpha) / Z: eq. 14's
#: KL(pi || exp(Q_i / alpha) / Z), or the other direction, KL(exp(Q_i / alpha) / Z || pi).
POLICY_OBJECTIVES = ("reverse_kl", "forward_kl")


class LSFSAC(MultiAgentAlgorithm):
    """Latent State information sharing Factorized Soft Actor-Critic for cooperative discrete-action MARL.

    Used as ``LSFSAC("MlpPolicy", env).learn(2e6)`` with any PettingZoo ``ParallelEnv``. The actor's
    and the target's defaults measured best on the paper's predator-prey and on SMAX (README):
    epsilon-greedy acting, the authors' message settings and last-action input, eq. 16's max as
    QMIX takes it and the forward-KL actor. Besides the arguments of ``MultiAgentAlgorithm``
    (learning rate, buffer, batch, gamma, tau, TD(lambda), mixer, ``n_envs``, seed, device,
    logging), it takes:

    Args:
        ent_coef: temperature alpha. ``"auto"`` learns it from 1.0, ``"auto_0.05"`` learns it from
            0.05 (Stable-Baselines3's spelling), a float fixes it (the paper's fixed-temperature
            ablation is ``ent_coef=1.0``).
        target_entropy: the entropy target H_bar of the temperature loss (eq. 15): ``"auto"``
            gives each agent ``target_entropy_scale * log(number of its available actions)``,
            a float is used as is.
        target_entropy_scale: see ``target_entropy``.
        latent_dim: size d of each latent message (the authors used 3); 0 switches latent
            information off (the MASAC ablation).
        latent_coef: lambda_1, the weight of the latent message loss (eq. 8; the authors' 1e-3).
        kl_coef: beta, the weight of the KL term of the message loss (eq. 12).
        n_critics: 1, or 2 for double Q (two critic+mixer sets; targets and the policy use the
            minimum, as in SAC).
        q_messages: what each critic's Q-head reads: ``"mean"`` (default), the message means mu,
            or ``"sample"``, messages sampled m ~ N(mu, I) afresh at every step (the paper). The
            message decoder reads samples either way, so the message loss (eq. 12) is the same;
            sampled messages add unit-variance noise to every Q input, which cost win rate on
            SMAX 3m (benchmarks/results/smax_q_messages.md).
        td_target: the value of the next state in the TD target (eq. 16), per agent under its
            policy: ``"expected"``, sum_a pi_i(a) Q_i^-(a), the paper's eq. 16 (no entropy term);
            ``"greedy"``, Q_i^- at argmax pi_i (the authors' released code); ``"soft"``,
            sum_a pi_i(a) [Q_i^-(a) - alpha log pi_i(a)] (SAC's soft value); ``"max"`` (default), the
            ``max_{a*}`` of eq. 16 taken as QMIX takes it (Q_i^- at the online critic's argmax
            Q_i, double Q), so the critics learn as QMIX's utilities do, independently of the
            actor, and the actor follows them through eq. 14. Where agents leave
            an episode early (predator-prey's frozen catchers, SMAC's dead units) the soft value's
            entropy stream pays the agents for staying in it.
        exploration: how agents act while training: ``"sample"`` draws from pi (SAC);
            ``"epsilon_greedy"`` (default) takes argmax pi, or with probability epsilon a uniformly random
            available action (the authors' released code), epsilon following the three
            ``exploration_*`` arguments as in Stable-Baselines3's DQN and in ``QMIX``.
        exploration_fraction: fraction of the run over which epsilon decays linearly.
        exploration_initial_eps: epsilon at the start of training.
        exploration_final_eps: epsilon after ``exploration_fraction`` of the run.
        message_network: ``"shared"``: the message encoder is a head on the critic's torso;
            ``"separate"`` (default): its own MLP on the critic input (the authors' code); see
            ``LatentCritic``.
        decoder_target: the labels of the message loss's cross-entropy (eq. 12): ``"soft"``,
            the policy pi_j itself; ``"argmax"`` (default), argmax pi_j as a hard label (the
            authors' code).
        policy_objective: how the actor follows its critic. ``"reverse_kl"``: eq. 14, maximizing
            the mixed ``sum_a pi_i(a) (Q_i(a) - alpha log pi_i(a))``, i.e. minimizing
            ``KL(pi_i || exp(Q_i / alpha) / Z)`` (the paper, SAC). ``"forward_kl"`` (default): minimizing
            ``KL(exp(Q_i / alpha) / Z || pi_i)``, a cross-entropy with the critic's Boltzmann
            policy as soft labels (this library's option). Both have the same minimizer; the
            second keeps its gradient where pi has already given an action almost no
            probability, so the actor keeps up when the critic's best action changes late in
            training (predator-prey's catch); see the README's LSF-SAC settings.
        actor_learning_rate: actor learning rate, a float or a schedule (default: ``learning_rate``). The paper's
            lambda_2 only rescales the actor's gradients, which Adam ignores, so it is not offered.
        ent_coef_learning_rate: learning rate of log(alpha) with ``ent_coef="auto..."``, a float or
            a schedule (default: ``learning_rate``). Runs with few gradient steps (one per episode
            or fewer, as here) may need a faster one than SAC's usual ``learning_rate`` for the
            temperature to keep up with the policy (RLlib's SAC has the same separate rate).
        last_action_input: the actors also read each agent's previous action, as the critics
            always do (the authors' code; ``MultiAgentAlgorithm``'s default is False).
        **kwargs: the arguments of ``MultiAgentAlgorithm``.
    """

    _saved_modules: ClassVar[tuple[str, ...]] = (
        "actor",
        "critics",
        "mixers",
        "critics_target",
        "mixers_target",
    )
    _saved_optimizers: ClassVar[tuple[str, ...]] = (
        "actor_optimizer",
        "critic_optimizer",
        "ent_coef_optimizer",
    )
    _saved_tensors: ClassVar[tuple[str, ...]] = ("log_ent_coef",)
    #: The settings of files saved before these arguments existed (the defaults of that time).
    _legacy_params: ClassVar[dict[str, Any]] = {
        "latent_coef": 1.0,
        "last_action_input": False,
        "td_target": "soft",
        "exploration": "sample",
        "message_network": "shared",
        "decoder_target": "soft",
        "policy_objective": "reverse_kl",
    }

    def __init__(
        self,
        policy: str,
        env: Any,
        ent_coef: str | float = "auto_0.1",
        target_entropy: str | float = "auto",
        target_entropy_scale: float = 0.5,
        latent_dim: int = 3,
        latent_coef: float = 1e-3,
        kl_coef: float = 1e-3,
        n_critics: int = 1,
        q_messages: str = "mean",
        td_target: str = "max",
        exploration: str = "epsilon_greedy",
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        message_network: str = "separate",
        decoder_target: str = "argmax",
        policy_objective: str = "forward_kl",
        actor_learning_rate: float | Schedule | None = None,
        ent_coef_learning_rate: float | Schedule | None = None,
        last_action_input: bool = True,
        **kwargs: Any,
    ) -> None:
        self.ent_coef = ent_coef
        self.auto_ent_coef, self.initial_ent_coef = _parse_ent_coef(ent_coef)
        if not (target_entropy == "auto" or isinstance(target_entropy, int | float)):
            raise ValueError(f"target_entropy must be 'auto' or a float, got {target_entropy!r}")
        if latent_dim < 0:
            raise ValueError(f"latent_dim must be >= 0 (0 turns latent messages off), got {latent_dim}")
        if n_critics not in (1, 2):
            raise ValueError(f"n_critics must be 1 or 2 (double Q), got {n_critics}")
        check_q_messages(q_messages)
        check_choice("td_target", td_target, TD_TARGETS)
        check_choice("exploration", exploration, EXPLORATIONS)
        check_choice("message_network", message_network, MESSAGE_NETWORKS)
        check_choice("decoder_target", decoder_target, DECODER_TARGETS)
        check_choice("policy_objective", policy_objective, POLICY_OBJECTIVES)
        self.exploration_schedule = epsilon_schedule(
            exploration_fraction, exploration_initial_eps, exploration_final_eps
        )
        self.td_target = td_target
        self.exploration = exploration
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.message_network = message_network
        self.decoder_target = decoder_target
        self.policy_objective = policy_objective
        self.target_entropy = target_entropy
        self.target_entropy_scale = target_entropy_scale
        self.latent_dim = latent_dim
        self.latent_coef = latent_coef
        self.kl_coef = kl_coef
        self.n_critics = n_critics
        self.q_messages = q_messages
        self.actor_learning_rate = actor_learning_rate
        self.ent_coef_learning_rate = ent_coef_learning_rate
        super().__init__(policy, env, last_action_input=last_action_input, **kwargs)

    def _params(self) -> dict[str, Any]:
        return {
            "ent_coef": self.ent_coef,
            "target_entropy": self.target_entropy,
            "target_entropy_scale": self.target_entropy_scale,
            "latent_dim": self.latent_dim,
            "latent_coef": self.latent_coef,
            "kl_coef": self.kl_coef,
            "n_critics": self.n_critics,
            "q_messages": self.q_messages,
            "td_target": self.td_target,
            "exploration": self.exploration,
            "exploration_fraction": self.exploration_fraction,
            "exploration_initial_eps": self.exploration_initial_eps,
            "exploration_final_eps": self.exploration_final_eps,
            "message_network": self.message_network,
            "decoder_target": self.decoder_target,
            "policy_objective": self.policy_objective,
            "actor_learning_rate": _saved_rate(self.actor_learning_rate, self.actor_lr_schedule),
            "ent_coef_learning_rate": _saved_rate(self.ent_coef_learning_rate, self.ent_coef_lr_schedule),
        }

    def _build_networks(self) -> None:
        n, o, a = self.spec.n_agents, self.spec.obs_dim, self.spec.n_actions
        self.actor = AgentNetwork(self.actor_input_dim, a, self.hidden_dim, self.torso).to(self.device)
        last_action_dim = a if self.last_action_input else 0
        self.policy = (
            EpsilonGreedyPolicy(self.actor, self.exploration_rate, last_action_dim).to(self.device)
            if self.exploration == "epsilon_greedy"
            else SoftmaxPolicy(self.actor, last_action_dim)
        )
        self.critics = nn.ModuleList(
            LatentCritic(
                o + a + n,
                n,
                a,
                self.hidden_dim,
                self.latent_dim,
                self.torso,
                self.q_messages,
                self.message_network,
            )
            for _ in range(self.n_critics)
        ).to(self.device)
        self.mixers = nn.ModuleList(
            make_mixer(self.mixer_kind, n, self.spec.state_dim, self.mixer_embed_dim)
            for _ in range(self.n_critics)
        ).to(self.device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.mixers_target = copy.deepcopy(self.mixers).requires_grad_(False)
        self.actor_lr_schedule = self._own_schedule(self.actor_learning_rate)
        self.ent_coef_lr_schedule = self._own_schedule(self.ent_coef_learning_rate)
        self.actor_optimizer = adam(self.actor.parameters(), lr=self.actor_lr_schedule(1.0))
        self.critic_optimizer = adam(
            [*self.critics.parameters(), *self.mixers.parameters()], lr=self.lr_schedule(1.0)
        )
        self.log_ent_coef = torch.full((1,), math.log(self.initial_ent_coef), device=self.device)
        self.log_ent_coef.requires_grad_(self.auto_ent_coef)
        self.ent_coef_optimizer = (
            torch.optim.Adam([self.log_ent_coef], lr=self.ent_coef_lr_schedule(1.0))
            if self.auto_ent_coef
            else None
        )

    @property
    def exploration_rate(self) -> float:
        """Current epsilon of ``exploration="epsilon_greedy"``, from the remaining progress of the run."""
        return float(self.exploration_schedule(self._current_progress_remaining))

    def _own_schedule(self, rate: float | Schedule | None) -> Schedule:
        """A learning rate of its own, or the shared ``learning_rate`` schedule when ``rate`` is None."""
        return self.lr_schedule if rate is None else FloatSchedule(rate)

    @torch.no_grad()
    def policy_probs(self, obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """Action probabilities ``[..., N, A]`` of the decentralized actors for one step (no memory: an episode's first step)."""
        logits, _ = self.actor(self.actor_inputs(obs).unsqueeze(-3))
        return masked_log_softmax(logits.squeeze(-3), avail).exp()

    def _target_entropy(self, avail: torch.Tensor) -> torch.Tensor:
        if self.target_entropy == "auto":
            return self.target_entropy_scale * avail.sum(-1).clamp(min=1).float().log()
        return torch.full(avail.shape[:-1], float(self.target_entropy), device=avail.device)

    def _update_learning_rates(self) -> None:
        self._update_learning_rate([self.critic_optimizer])
        if isinstance(self.policy, EpsilonGreedyPolicy):
            self.policy.exploration_rate.fill_(self.exploration_rate)
            self.logger.record("train/exploration_rate", self.exploration_rate)
        own = (
            ("actor_learning_rate", self.actor_optimizer, self.actor_lr_schedule),
            ("ent_coef_learning_rate", self.ent_coef_optimizer, self.ent_coef_lr_schedule),
        )
        for key, optimizer, schedule in own:
            if optimizer is not None:
                rate = schedule(self._current_progress_remaining)
                update_learning_rate(optimizer, rate)
                self.logger.record(f"train/{key}", rate)

    def _target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.critics, self.critics_target), (self.mixers, self.mixers_target)]

    def policy_distribution(self, batch: EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pi, log pi)`` of the decentralized actors at every step of the episodes, ``[B, T+1, N, A]``."""
        packing = self._step_packing(batch)
        logits, _ = self.actor(packing.pack(self.actor_inputs(batch.obs, batch.actions)))
        log_pi = masked_log_softmax(packing.unpack(logits), batch.avail)
        return log_pi.exp(), log_pi

    def critic_losses(
        self, batch: EpisodeBatch, pi: torch.Tensor, log_pi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """TD loss (eq. 16, with TD(lambda); the next value as ``td_target`` says) and latent message loss (eq. 12).

        Returns ``(td_loss, latent_loss, q_values, y)``: ``q_values`` are each critic set's
        detached ``Q_i(tau_i, ., m_i)`` on the transitions (for the policy loss), ``y`` the targets.
        Gradients reach the critics and mixers only.
        """
        filled, alive = batch.filled.float(), batch.alive.float()
        agent_mask = alive[:, :-1] * filled[..., None]
        n_steps, n_agent_steps = filled.sum().clamp(min=1.0), agent_mask.sum().clamp(min=1.0)
        alpha = self.log_ent_coef.detach().exp()
        pi, log_pi = pi.detach(), log_pi.detach()
        packing, transitions = self._step_packing(batch), self._mixer_packing(batch)
        critic_in = packing.pack(self.critic_inputs(batch.obs, batch.actions))
        online = [_unpacked(critic(critic_in, sample=True), packing) for critic in self.critics]

        # TD target: y = r + gamma (1 - d) Mixer^-(s', [V_i^-(tau'_i)]), TD(lambda) over episodes, with
        # V_i^- = sum_a pi_i(a) Q_i^-(a) ("expected", eq. 16), Q_i^-(argmax pi_i) ("greedy"),
        # sum_a pi_i(a) [Q_i^-(a) - alpha log pi_i(a)] ("soft") or Q_i^-(argmax Q_i) ("max").
        with torch.no_grad():
            next_values = []
            for (q, _, _), critic_target, mixer_target in zip(
                online, self.critics_target, self.mixers_target, strict=True
            ):
                q_target = packing.unpack(critic_target(critic_in, sample=False, decode=False)[0])
                v_target = (
                    self._next_agent_values(q_target, pi, log_pi, alpha, q.detach(), batch.avail) * alive
                )
                next_values.append(transitions.apply(mixer_target, v_target[:, 1:], batch.state[:, 1:]))
            next_value = torch.stack(next_values).min(0).values
            y = lambda_returns(
                batch.reward, batch.terminated, batch.filled, next_value, self.gamma, self.td_lambda
            )

        td_loss = torch.zeros((), device=self.device)
        latent_loss = torch.zeros((), device=self.device)
        q_values = []
        for (q, latent, _), mixer in zip(online, self.mixers, strict=True):
            # L_TD = (Mixer(s, [Q_i(tau_i, a_i, m_i)]) - y)^2 over filled steps.
            q_taken = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1) * alive[:, :-1]
            q_tot = transitions.apply(mixer, q_taken, batch.state[:, :-1])
            td_loss = td_loss + ((q_tot - y).pow(2) * filled).sum() / n_steps
            # L_m = CE(pi_j, or argmax pi_j, as labels, q_psi(. | m_{j->.}, j)) + beta KL(N(mu_j, I) || N(0, I));
            # the decoder reads the messages j sends (see LatentCritic for why not tau_j).
            if latent is not None:
                log_q_psi = masked_log_softmax(latent.decoder_logits[:, :-1], batch.avail[:, :-1])
                labels = pi[:, :-1]
                if self.decoder_target == "argmax":
                    labels = nn.functional.one_hot(labels.argmax(-1), labels.shape[-1]).to(labels.dtype)
                cross_entropy = -(labels * log_q_psi).sum(-1)
                kl = 0.5 * latent.mu[:, :-1].pow(2).sum((-2, -1))
                latent_loss = (
                    latent_loss + ((cross_entropy + self.kl_coef * kl) * agent_mask).sum() / n_agent_steps
                )
            q_values.append(q[:, :-1].detach())
        return td_loss, latent_loss, q_values, y

    def _next_agent_values(
        self,
        q_target: torch.Tensor,
        pi: torch.Tensor,
        log_pi: torch.Tensor,
        alpha: torch.Tensor,
        q_online: torch.Tensor,
        avail: torch.Tensor,
    ) -> torch.Tensor:
        """Each agent's value ``[B, T+1, N]`` of the target critic's ``q_target`` per ``td_target``.

        ``q_online`` (the online critic's Q-values) and the availability mask ``avail`` choose the
        action of ``"max"``; the other targets use the policy ``pi``.
        """
        if self.td_target == "max":
            best = masked_argmax(q_online, avail).unsqueeze(-1)
            return q_target.gather(-1, best).squeeze(-1)
        if self.td_target == "greedy":
            return q_target.gather(-1, pi.argmax(-1, keepdim=True)).squeeze(-1)
        if self.td_target == "expected":
            return (pi * q_target).sum(-1)
        return (pi * (q_target - alpha * log_pi)).sum(-1)

    def actor_loss(
        self, batch: EpisodeBatch, pi: torch.Tensor, log_pi: torch.Tensor, q_values: list[torch.Tensor]
    ) -> torch.Tensor:
        """Policy loss: eq. 14 (``"reverse_kl"``) or its forward-KL form, as ``policy_objective`` says.

        ``"reverse_kl"`` (eq. 14): ``-Mixer(s, [sum_a pi_i(a | tau_i) (Q_i(tau_i, a, m_i) - alpha
        log pi_i(a | tau_i))])``; the mixer's weights are computed without gradient and, with double
        Q, the smaller joint value is used. ``"forward_kl"``: ``-sum_a p_i(a) log pi_i(a | tau_i)``
        averaged over living agents, with ``p_i = softmax(Q_i / alpha)`` over the available actions
        (with double Q, of the smaller Q_i). Gradients reach the actor only.
        """
        filled, alive = batch.filled.float(), batch.alive[:, :-1].float()
        alpha = self.log_ent_coef.detach().exp()
        pi_t, log_pi_t = pi[:, :-1], log_pi[:, :-1]
        if self.policy_objective == "forward_kl":
            q = torch.stack(q_values).min(0).values.detach()
            boltzmann = masked_log_softmax(q / alpha, batch.avail[:, :-1]).exp()
            agent_mask = alive * filled[..., None]
            cross_entropy = -(boltzmann * log_pi_t).sum(-1)
            return (cross_entropy * agent_mask).sum() / agent_mask.sum().clamp(min=1.0)
        state, joint_values = batch.state[:, :-1], []
        for q, mixer in zip(q_values, self.mixers, strict=True):
            with torch.no_grad():
                weights = mixer.weights(state)
            v_pi = (pi_t * (q.detach() - alpha * log_pi_t)).sum(-1) * alive
            joint_values.append(mixer.mix(v_pi, weights))
        return -(torch.stack(joint_values).min(0).values * filled).sum() / filled.sum().clamp(min=1.0)

    def temperature_loss(
        self, batch: EpisodeBatch, pi: torch.Tensor, log_pi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Temperature loss (eq. 15): ``J(alpha) = E[sum_a pi_i(a) (-alpha) (log pi_i(a) + H_bar)] = E[alpha (H(pi_i) - H_bar)]``.

        Returns ``(loss, mean entropy)``; gradients reach ``log_ent_coef`` only.
        """
        agent_mask = batch.alive[:, :-1].float() * batch.filled.float()[..., None]
        n_agent_steps = agent_mask.sum().clamp(min=1.0)
        entropy = -(pi[:, :-1] * log_pi[:, :-1]).sum(-1).detach()
        target = self._target_entropy(batch.avail[:, :-1])
        loss = (self.log_ent_coef.exp() * (entropy - target) * agent_mask).sum() / n_agent_steps
        return loss, (entropy * agent_mask).sum() / n_agent_steps

    def _train_step(self, batch: EpisodeBatch) -> dict[str, float]:
        """One update of critics (+ latent messages), actor and temperature: eq. 8 with separate optimizers."""
        pi, log_pi = self.policy_distribution(batch)

        td_loss, latent_loss, q_values, y = self.critic_losses(batch, pi, log_pi)
        critic_loss = td_loss + self.latent_coef * latent_loss
        self._gradient_step(self.critic_optimizer, critic_loss)

        actor_loss = self.actor_loss(batch, pi, log_pi, q_values)
        self._gradient_step(self.actor_optimizer, actor_loss)

        ent_coef_loss, entropy = self.temperature_loss(batch, pi, log_pi)
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer.zero_grad()
            ent_coef_loss.backward()
            self.ent_coef_optimizer.step()

        filled = batch.filled.float()
        return {
            "td_loss": td_loss.item(),
            "latent_loss": latent_loss.item(),
            "critic_loss": critic_loss.item(),
            "actor_loss": actor_loss.item(),
            "ent_coef_loss": ent_coef_loss.item(),
            "entropy": entropy.item(),
            "ent_coef": self.log_ent_coef.exp().item(),
            "q_tot_target": ((y * filled).sum() / filled.sum().clamp(min=1.0)).item(),
        }


def _unpacked(
    output: tuple[torch.Tensor, LatentOutput | None, torch.Tensor | None], packing: StepPacking
) -> tuple[torch.Tensor, LatentOutput | None, torch.Tensor | None]:
    """A ``LatentCritic`` output on packed steps, with its Q-values and latent output unpacked."""
    q, latent, h = output
    if latent is not None:
        latent = LatentOutput(packing.unpack(latent.mu), packing.unpack(latent.decoder_logits))
    return packing.unpack(q), latent, h


def _saved_rate(rate: float | Schedule | None, schedule: Schedule) -> float | None:
    """A learning-rate argument as saved: None or a float as given, a schedule by its initial value."""
    return rate if rate is None or isinstance(rate, int | float) else schedule(1.0)


def _parse_ent_coef(ent_coef: str | float) -> tuple[bool, float]:
    """``(learned, initial value)`` from Stable-Baselines3's ``ent_coef`` spelling."""
    if isinstance(ent_coef, str):
        if ent_coef == "auto":
            return True, 1.0
        if ent_coef.startswith("auto_"):
            try:
                value = float(ent_coef.removeprefix("auto_"))
            except ValueError:
                value = -1.0
            if value > 0:
                return True, value
        raise ValueError(
            f"ent_coef must be a positive float, 'auto' or 'auto_<initial value>', got {ent_coef!r}"
        )
    if not ent_coef >= 0:
        raise ValueError(f"ent_coef must be >= 0, got {ent_coef}")
    return False, max(float(ent_coef), 1e-12)
