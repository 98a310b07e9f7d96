"""Per-step networks on the real steps of a padded batch: the same losses and gradients as on the padded batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marl_lsf import LSFSAC, MultiAgentAlgorithm
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.algorithms.packing import StepPacking
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.envs import predator_prey_v0


def test_pack_then_unpack_keeps_the_real_steps_and_zeros_the_padding() -> None:
    filled = torch.tensor([[True, True, True], [True, False, False]])
    x = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3) + 1.0
    packing = StepPacking(filled)
    packed = packing.pack(x)
    # Episode 0: its 3 transitions and the observation after them; episode 1: 1 and 1.
    assert packed.shape == (1, 6, 3)
    out = packing.unpack(packed)
    real = torch.tensor([[True] * 4, [True, True, False, False]])
    assert torch.equal(out[real], x[real])
    assert torch.equal(out[~real], torch.zeros(2, 3))


def test_packing_is_off_for_full_batches_and_recurrent_networks() -> None:
    x = torch.ones(2, 3, 5)
    assert not StepPacking(torch.ones(2, 2, dtype=torch.bool)).active
    disabled = StepPacking(torch.tensor([[True, False], [True, True]]), enabled=False)
    assert not disabled.active and disabled.pack(x) is x and disabled.unpack(x) is x


def _unpacked(model: MultiAgentAlgorithm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every network of ``model`` on the padded batch from now on, as before packing."""
    monkeypatch.setattr(model, "_step_packing", lambda b: StepPacking(b.filled, enabled=False))
    monkeypatch.setattr(
        model, "_mixer_packing", lambda b, next_step=False: StepPacking(b.filled, False, next_step)
    )


def _padded_batch(model: MultiAgentAlgorithm) -> EpisodeBatch:
    """Four stored episodes cut to lengths 20, 13, 7 and 2 (the steps past them become padding)."""
    model.learn(400)
    batch = model.replay_buffer.sample(4, np.random.default_rng(0))
    lengths = torch.tensor([20, 13, 7, 2])
    filled = torch.arange(batch.filled.shape[1])[None, :] < lengths[:, None]
    return batch._replace(filled=filled & batch.filled)


def _losses_and_gradients(model: LSFSAC, batch: EpisodeBatch) -> tuple[list[float], list[torch.Tensor]]:
    for module in (model.actor, model.critics, model.mixers):
        module.zero_grad(set_to_none=True)
    pi, log_pi = model.policy_distribution(batch)
    td_loss, latent_loss, q_values, y = model.critic_losses(batch, pi, log_pi)
    (td_loss + latent_loss).backward()
    actor_loss = model.actor_loss(batch, pi, log_pi, q_values)
    actor_loss.backward()
    temperature_loss, entropy = model.temperature_loss(batch, pi, log_pi)
    values = [
        float(v.detach()) for v in (td_loss, latent_loss, actor_loss, temperature_loss, entropy, y.sum())
    ]
    grads = [p.grad.clone() for m in (model.actor, model.critics, model.mixers) for p in m.parameters()]
    return values, grads


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {
            "policy_objective": "forward_kl",
            "td_target": "max",
            "td_lambda": 0.0,
            "message_network": "separate",
        },
    ],
)
def test_lsfsac_losses_and_gradients_are_those_of_the_padded_batch(
    kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = predator_prey_v0.parallel_env(grid_size=5, n_predators=2, n_prey=1, max_cycles=20)
    model = LSFSAC("MlpPolicy", env, seed=0, batch_size=4, learning_starts=10**9, **kwargs)
    batch = _padded_batch(model)
    assert StepPacking(batch.filled).active
    # Message noise is drawn per computed step, so zero it to compare the two ways exactly.
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
    packed = _losses_and_gradients(model, batch)
    _unpacked(model, monkeypatch)
    padded = _losses_and_gradients(model, batch)
    assert packed[0] == pytest.approx(padded[0], rel=1e-5, abs=1e-6)
    for packed_grad, padded_grad in zip(packed[1], padded[1], strict=True):
        torch.testing.assert_close(packed_grad, padded_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["qmix", "vdn", "qplex", "ow_qmix", "cw_qmix", "qtran", "dop"])
@pytest.mark.parametrize("td_lambda", [0.0, 0.6])
def test_value_based_losses_and_gradients_are_those_of_the_padded_batch(
    name: str, td_lambda: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = predator_prey_v0.parallel_env(grid_size=5, n_predators=2, n_prey=1, max_cycles=20)
    model = ALGORITHMS[name](
        "MlpPolicy", env, seed=0, batch_size=4, learning_starts=10**9, td_lambda=td_lambda
    )
    batch = _padded_batch(model)
    monkeypatch.setattr(model, "_gradient_step", lambda optimizer, loss: loss.backward())
    trained = [
        m
        for m in vars(model).values()
        if isinstance(m, torch.nn.Module) and any(p.requires_grad for p in m.parameters())
    ]

    rng_state = model._rng.bit_generator.state  # DOP also samples its on-policy batches

    def loss_and_gradients() -> tuple[dict[str, float], list[torch.Tensor]]:
        for module in trained:
            module.zero_grad(set_to_none=True)
        model._rng.bit_generator.state = rng_state
        logged = model._train_step(batch)
        return logged, [p.grad.clone() for m in trained for p in m.parameters() if p.grad is not None]

    packed_logged, packed_grads = loss_and_gradients()
    _unpacked(model, monkeypatch)
    padded_logged, padded_grads = loss_and_gradients()
    assert packed_logged == pytest.approx(padded_logged, rel=1e-5, abs=1e-6)
    assert len(packed_grads) == len(padded_grads) > 0
    for packed_grad, padded_grad in zip(packed_grads, padded_grads, strict=True):
        torch.testing.assert_close(packed_grad, padded_grad, rtol=1e-4, atol=1e-6)
