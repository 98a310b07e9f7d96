"""LSF-SAC's options, each on a tiny batch computed by hand: TD target, acting, message network, decoder labels."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from marl_lsf import LSFSAC
from marl_lsf.envs import predator_prey_v1
from marl_lsf.nets.agents import masked_log_softmax
from marl_lsf.nets.policies import EpsilonGreedyPolicy, SoftmaxPolicy
from marl_lsf.presets import LSFSAC_EARLIER_DEFAULTS


def tiny_env() -> predator_prey_v1.PredatorPreyEnv:
    """A 4x4 predator-prey with masks, 2 predators, 1 prey, 12-step episodes."""
    return predator_prey_v1.parallel_env(grid_size=4, n_predators=2, n_prey=1, max_cycles=12)


def trained_batch(model: LSFSAC, episodes: int = 4) -> object:
    model.learn(12 * 6)
    return model.replay_buffer.sample(episodes, np.random.default_rng(0))


def test_next_agent_values_on_hand_numbers() -> None:
    """One agent, three actions, the last one masked: each target's value of Q^- = (1, 2, 9).

    ``"max"`` takes the online critic's best available action (Q = (3, 1, 7), 7 masked), not pi's.
    """
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0)
    q_target = torch.tensor([1.0, 2.0, 9.0])
    log_pi = masked_log_softmax(torch.log(torch.tensor([0.25, 0.75, 0.5])), torch.tensor([True, True, False]))
    pi, alpha = log_pi.exp(), torch.tensor(0.5)
    q_online, avail = torch.tensor([3.0, 1.0, 7.0]), torch.tensor([True, True, False])
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected = {
        "expected": 0.25 * 1 + 0.75 * 2,
        "greedy": 2.0,
        "soft": 0.25 * 1 + 0.75 * 2 + 0.5 * entropy,
        "max": 1.0,
    }
    for td_target, value in expected.items():
        model.td_target = td_target
        got = model._next_agent_values(q_target, pi, log_pi, alpha, q_online, avail).item()
        assert got == pytest.approx(value, abs=1e-6), td_target


@pytest.mark.parametrize("td_target", ["expected", "greedy", "soft", "max"])
def test_td_target_bootstraps_from_the_target_critic_under_the_policy(td_target: str) -> None:
    """y = r + gamma (1 - d) sum_i V_i(next) with VDN and one-step targets, recomputed here from Q^-."""
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0, mixer="vdn", td_lambda=0.0, td_target=td_target)
    batch = trained_batch(model)
    pi, log_pi = model.policy_distribution(batch)
    _, _, _, y = model.critic_losses(batch, pi, log_pi)

    with torch.no_grad():
        critic_in = model.critic_inputs(batch.obs, batch.actions)
        q_target, _, _ = model.critics_target[0](critic_in, sample=False)
        alpha = model.log_ent_coef.exp()
        if td_target in ("greedy", "max"):
            chooser = pi if td_target == "greedy" else model.critics[0](critic_in, sample=True)[0]
            best = chooser.masked_fill(~batch.avail, -math.inf).argmax(-1, keepdim=True)
            values = q_target.gather(-1, best).squeeze(-1)
        else:
            entropy_bonus = -alpha * log_pi if td_target == "soft" else 0.0
            values = (pi * (q_target + entropy_bonus)).sum(-1)
        next_value = (values * batch.alive).sum(-1)[:, 1:]
    by_hand = (batch.reward + model.gamma * (1 - batch.terminated) * next_value) * batch.filled
    torch.testing.assert_close(y, by_hand)
    assert batch.avail[..., 5].any() and not batch.avail[..., 5].all(), "the batch should exercise the masks"


def test_epsilon_greedy_acting_follows_the_schedule_and_the_masks() -> None:
    model = LSFSAC(
        "MlpPolicy",
        tiny_env(),
        seed=0,
        exploration="epsilon_greedy",
        exploration_fraction=0.5,
        exploration_initial_eps=1.0,
        exploration_final_eps=0.0,
    )
    assert isinstance(model.policy, EpsilonGreedyPolicy) and model.exploration_rate == 1.0
    obs = np.random.default_rng(0).random((400, 2, model.spec.obs_dim), dtype=np.float32)
    avail = np.ones((400, 2, 6), dtype=bool)
    avail[:, :, 5] = False
    uniform, _ = model.act(obs, avail)
    counts = np.bincount(uniform.ravel(), minlength=6)
    assert counts[5] == 0 and (counts[:5] > 100).all(), counts

    model.learn(240)  # epsilon reaches 0 half-way and stays there
    assert model.exploration_rate == 0.0 and float(model.policy.exploration_rate) == 0.0
    greedy, _ = model.act(obs, avail)
    deterministic, _ = model.act(obs, avail, deterministic=True)
    np.testing.assert_array_equal(greedy, deterministic)
    assert model.logger.name_to_value["train/exploration_rate"] == 0.0


def test_epsilon_greedy_acting_is_the_default_and_sampled_acting_draws_from_pi() -> None:
    assert isinstance(LSFSAC("MlpPolicy", tiny_env(), seed=0).policy, EpsilonGreedyPolicy)
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0, exploration="sample")
    assert isinstance(model.policy, SoftmaxPolicy)
    obs = np.zeros((2000, 2, model.spec.obs_dim), dtype=np.float32)
    avail = np.ones((2000, 2, 6), dtype=bool)
    actions, _ = model.act(obs, avail)
    pi = model.policy_probs(torch.as_tensor(obs[:1]), torch.as_tensor(avail[:1]))[0, 0].numpy()
    frequencies = np.bincount(actions[:, 0], minlength=6) / len(actions)
    np.testing.assert_allclose(frequencies, pi, atol=0.04)


@pytest.mark.parametrize("message_network", ["shared", "separate"])
def test_message_loss_reaches_the_torso_only_through_a_shared_encoder(message_network: str) -> None:
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0, message_network=message_network)
    batch = trained_batch(model)
    critic = model.critics[0]
    pi, log_pi = model.policy_distribution(batch)
    _, latent_loss, _, _ = model.critic_losses(batch, pi, log_pi)
    critic.zero_grad(set_to_none=True)
    latent_loss.backward()
    torso_grad = sum(float(p.grad.abs().sum()) for p in critic.torso.parameters() if p.grad is not None)
    assert sum(float(p.grad.abs().sum()) for p in critic.encoder.parameters()) > 0.0
    if message_network == "shared":
        assert torso_grad > 0.0
        assert critic.encoder[0].in_features == model.hidden_dim
    else:
        assert torso_grad == 0.0
        assert critic.encoder[0].in_features == model.critic_inputs(batch.obs, batch.actions).shape[-1]


@pytest.mark.parametrize("decoder_target", ["soft", "argmax"])
def test_decoder_labels_are_pi_or_its_argmax(decoder_target: str) -> None:
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0, kl_coef=0.0, decoder_target=decoder_target)
    batch = trained_batch(model)
    pi, log_pi = model.policy_distribution(batch)
    torch.manual_seed(1)
    _, latent_loss, _, _ = model.critic_losses(batch, pi, log_pi)

    torch.manual_seed(1)  # the same message samples: the target critic draws none
    with torch.no_grad():
        _, latent, _ = model.critics[0](model.critic_inputs(batch.obs, batch.actions))
        log_q = masked_log_softmax(latent.decoder_logits[:, :-1], batch.avail[:, :-1])
        pi_t = pi[:, :-1].detach()
        if decoder_target == "argmax":
            cross_entropy = -log_q.gather(-1, pi_t.argmax(-1, keepdim=True)).squeeze(-1)
        else:
            cross_entropy = -(pi_t * log_q).sum(-1)
        mask = batch.alive[:, :-1].float() * batch.filled.float()[..., None]
    torch.testing.assert_close(latent_loss.detach(), (cross_entropy * mask).sum() / mask.sum())


def test_forward_kl_actor_loss_is_the_cross_entropy_to_the_critics_boltzmann_policy() -> None:
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0, policy_objective="forward_kl", ent_coef=0.5)
    batch = trained_batch(model)
    pi, log_pi = model.policy_distribution(batch)
    q = torch.randn(pi[:, :-1].shape, generator=torch.Generator().manual_seed(0))
    loss = model.actor_loss(batch, pi, log_pi, [q])

    with torch.no_grad():
        avail = batch.avail[:, :-1]
        p = torch.softmax((q / 0.5).masked_fill(~avail, -math.inf), -1)
        cross_entropy = -(p * log_pi[:, :-1]).nan_to_num(0.0).sum(-1)
        mask = batch.alive[:, :-1].float() * batch.filled.float()[..., None]
    torch.testing.assert_close(loss.detach(), (cross_entropy * mask).sum() / mask.sum())


@pytest.mark.parametrize("policy_objective", ["reverse_kl", "forward_kl"])
def test_only_the_forward_kl_lifts_an_action_the_actor_has_given_up(policy_objective: str) -> None:
    """The critic prefers action 0, which the actor gives e^-30 of its mass: eq. 14's gradient on
    that logit is ~e^-30, the forward KL's is about minus the critic's probability of it."""
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0, ent_coef=1.0, policy_objective=policy_objective)
    batch = trained_batch(model)
    with torch.no_grad():
        model.actor.head.weight.zero_()
        model.actor.head.bias.copy_(torch.tensor([-30.0, 0, 0, 0, 0, 0]))
    pi, log_pi = model.policy_distribution(batch)
    q = torch.zeros(pi[:, :-1].shape)
    q[..., 0] = 5.0
    model.actor.zero_grad()
    model.actor_loss(batch, pi, log_pi, [q]).backward()
    grad = model.actor.head.bias.grad[0].item()
    if policy_objective == "reverse_kl":
        assert abs(grad) < 1e-9
    else:
        # pi(0) - p(0) per agent-step where action 0 is available, averaged: about -p(0).
        avail = batch.avail[:, :-1]
        p = torch.softmax(q.masked_fill(~avail, -math.inf), -1)[..., 0]
        mask = batch.alive[:, :-1].float() * batch.filled.float()[..., None]
        assert grad == pytest.approx(
            -((p - pi[:, :-1, :, 0]) * mask).sum().item() / mask.sum().item(), rel=1e-3
        )
        assert grad < -0.3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"td_target": "maximum"}, "td_target must be one of"),
        ({"exploration": "boltzmann"}, "exploration must be one of"),
        ({"message_network": "own"}, "message_network must be one of"),
        ({"decoder_target": "hard"}, "decoder_target must be one of"),
        ({"policy_objective": "kl"}, "policy_objective must be one of"),
        ({"exploration_fraction": 0.0}, "exploration_fraction"),
        ({"exploration_final_eps": 1.5}, "exploration_final_eps"),
    ],
)
def test_bad_option_values_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LSFSAC("MlpPolicy", tiny_env(), **kwargs)


def test_options_round_trip_and_older_files_keep_their_behaviour(tmp_path: Path) -> None:
    options = {
        "td_target": "greedy",
        "exploration": "epsilon_greedy",
        "message_network": "separate",
        "decoder_target": "argmax",
    }
    model = LSFSAC("MlpPolicy", tiny_env(), seed=0, **options)
    model.learn(24)
    path = model.save(tmp_path / "new.zip")
    loaded = LSFSAC.load(path, env=tiny_env())
    assert {key: getattr(loaded, key) for key in options} == options
    assert isinstance(loaded.policy, EpsilonGreedyPolicy)
    for name, a in model.critics.state_dict().items():
        torch.testing.assert_close(loaded.critics.state_dict()[name], a)

    # A file written before these options existed lacks their keys: it loads with the settings it
    # was trained with (soft target, sampled acting, shared encoder, soft labels), not the new defaults.
    old = LSFSAC("MlpPolicy", tiny_env(), seed=0, **LSFSAC_EARLIER_DEFAULTS)
    old_path = old.save(tmp_path / "old.zip")
    with zipfile.ZipFile(old_path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data.json"])
    for key in ("td_target", "exploration", "message_network", "decoder_target", "policy_objective"):
        del data["params"][key]
    members["data.json"] = json.dumps(data).encode()
    with zipfile.ZipFile(old_path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    legacy = LSFSAC.load(old_path, env=tiny_env())
    assert (legacy.td_target, legacy.exploration, legacy.message_network, legacy.decoder_target) == (
        "soft",
        "sample",
        "shared",
        "soft",
    )
    assert isinstance(legacy.critics[0].encoder[0], nn.Linear)


@pytest.mark.parametrize("policy", ["MlpPolicy", "RnnPolicy"])
@pytest.mark.parametrize("algo", ["LSFSAC", "QMIX"])
def test_last_action_input_is_what_acting_saw(policy: str, algo: str) -> None:
    """Scores over a stored episode (training's view) equal the scores acting computed step by step."""
    import marl_lsf

    model = getattr(marl_lsf, algo)(policy, tiny_env(), seed=0, last_action_input=True)
    n, a = model.spec.n_agents, model.spec.n_actions
    assert model.policy.memory_dim == a + (model.hidden_dim if policy == "RnnPolicy" else 0)
    model.learn(12)  # one whole episode, acted by the policy
    batch = model.replay_buffer.sample(1, np.random.default_rng(0))
    length = int(batch.filled.sum())

    network = model.actor if algo == "LSFSAC" else model.q_net
    with torch.no_grad():
        whole, _ = network(model.actor_inputs(batch.obs, batch.actions))
        memory = None
        for t in range(length):
            step, hidden = model.policy.scores(batch.obs[:, t], memory)
            torch.testing.assert_close(step, whole[:, t])
            taken = nn.functional.one_hot(batch.actions[:, t].long(), a).float()
            memory = taken if hidden is None else torch.cat([hidden, taken], dim=-1)
    assert memory.shape == (1, n, model.policy.memory_dim)

    obs, _ = tiny_env().reset(seed=0)
    _, state = model.predict(obs)
    assert state.shape == (n, model.policy.memory_dim)
    assert np.array_equal(state[:, -a:].sum(-1), np.ones(n))


@pytest.mark.parametrize("algo", ["LSFSAC", "QMIX"])
def test_fast_update_equals_the_reference_update(algo: str) -> None:
    """Updates with the fused optimizers equal those of torch's reference Adam on the same batches."""
    import marl_lsf

    models = []
    for _ in range(2):  # built and trained one after the other: both draw the same random numbers
        models.append(getattr(marl_lsf, algo)("MlpPolicy", tiny_env(), seed=0, batch_size=4))
        models[-1].learn(48)
    fast, reference = models
    for name in fast._saved_optimizers:
        optimizer = getattr(reference, name)
        if optimizer is not None:  # torch's single-tensor Adam, with the same state as the fused one
            params = [p for group in optimizer.param_groups for p in group["params"]]
            state = optimizer.state_dict()
            for group in state["param_groups"]:
                group.update(fused=None, foreach=False)
            slow = torch.optim.Adam(params, lr=optimizer.param_groups[0]["lr"], foreach=False)
            slow.load_state_dict(state)
            setattr(reference, name, slow)
    batch = fast.replay_buffer.sample(4, np.random.default_rng(0))
    for step in range(3):
        for model in models:
            torch.manual_seed(step)
            model._train_step(batch)
    for name in fast._saved_modules:
        for (key, a), b in zip(
            getattr(fast, name).state_dict().items(),
            getattr(reference, name).state_dict().values(),
            strict=True,
        ):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")
    assert any(
        getattr(fast, name).param_groups[0].get("fused")
        for name in fast._saved_optimizers
        if getattr(fast, name)
    )
