"""Hostile action masks: extreme and non-finite scores never choose an unavailable action, for every algorithm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_reliability import RandomEnv

from marl_lsf import LSFSAC, QMIX, MultiAgentAlgorithm, evaluate_policy
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.envs import matrix_game_v0
from marl_lsf.nets.agents import masked_argmax, masked_epsilon_argmax, masked_log_softmax, masked_sample
from marl_lsf.nets.policies import ActingPolicy

# -- action masks ---------------------------------------------------------------------------------

#: The values a network output may take, from the issue: below, at and above the old -1e9 mask.
EXTREME_LOGITS = np.array([-np.inf, -1e30, -1e10, 0.0, 1e30], dtype=np.float32)


def hostile_scores(n_rows: int, n_actions: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores [n_rows, 1, A], avail [n_rows, 1, A])``: random masks (each with an available action)
    and logits drawn from ``EXTREME_LOGITS`` (0 standing for a normal draw), plus an adversarial
    block where every available action scores -inf and every unavailable one +1e30."""
    rng = np.random.default_rng(seed)
    avail = rng.random((n_rows, n_actions)) < 0.4
    avail[np.arange(n_rows), rng.integers(n_actions, size=n_rows)] = True
    scores = rng.choice(EXTREME_LOGITS, size=(n_rows, n_actions))
    normal = scores == 0.0
    scores[normal] = rng.normal(size=int(normal.sum()))
    adversarial = slice(0, n_rows // 10)
    scores[adversarial] = np.where(avail[adversarial], -np.inf, 1e30)
    return torch.as_tensor(scores, dtype=torch.float32)[:, None], torch.as_tensor(avail)[:, None]


def matrix_model(cls: type[MultiAgentAlgorithm], **kwargs: object) -> MultiAgentAlgorithm:
    """A small untrained model on the matrix game (two agents, three actions)."""
    return cls("MlpPolicy", matrix_game_v0.parallel_env(), hidden_dim=8, seed=0, device="cpu", **kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(LSFSAC, {}), (LSFSAC, {"exploration": "epsilon_greedy"}), (QMIX, {})],
    ids=["lsfsac", "lsfsac-epsilon-greedy", "qmix"],
)
def test_acting_never_chooses_an_unavailable_action_whatever_the_logits(
    cls: type[MultiAgentAlgorithm], kwargs: dict[str, object]
) -> None:
    policy = matrix_model(cls, **kwargs).policy
    if hasattr(policy, "exploration_rate"):
        policy.exploration_rate.fill_(0.5)
    torch.manual_seed(0)
    for seed, n_actions in enumerate((2, 5, 9)):
        scores, avail = hostile_scores(1000, n_actions, seed)
        for deterministic in (True, False):
            for _ in range(5 if not deterministic else 1):
                actions = policy.choose(scores, avail, deterministic)
                chosen = avail.gather(-1, actions.unsqueeze(-1))
                assert bool(chosen.all()), (cls.__name__, n_actions, deterministic)


def test_targets_and_sampling_choose_only_available_actions() -> None:
    torch.manual_seed(1)
    scores, avail = hostile_scores(1000, 6, seed=7)
    for actions in (masked_argmax(scores, avail), *(masked_sample(scores, avail) for _ in range(5))):
        assert bool(avail.gather(-1, actions.unsqueeze(-1)).all())
    # The best available action wins, even when an unavailable one scores far higher.
    row_scores, row_avail = torch.tensor([1e30, -1e10, -1e30, 3.0]), torch.tensor([True, True, True, False])
    assert masked_argmax(row_scores, row_avail).item() == 0
    assert masked_argmax(-row_scores, row_avail).item() == 2


def test_exploration_draws_uniformly_over_the_available_actions_only() -> None:
    torch.manual_seed(2)
    avail = torch.tensor([True, False, True, True, False, False]).expand(60_000, 6)
    scores = torch.tensor([0.0, 9.0, 0.0, 0.0, 9.0, 9.0]).expand(60_000, 6)  # unavailable actions score best
    counts = (
        torch.bincount(masked_epsilon_argmax(scores, avail, torch.tensor(1.0)), minlength=6).float() / 60_000
    )
    assert counts[[1, 4, 5]].sum() == 0
    # Each of the three available actions has probability 1/3; 3 sigma of 60,000 draws is ~0.006.
    assert torch.allclose(counts[[0, 2, 3]], torch.full((3,), 1 / 3), atol=0.01), counts


def test_acting_refuses_an_agent_without_available_action() -> None:
    policy = matrix_model(LSFSAC).policy
    avail = torch.tensor([[[True, False, False], [False, False, False]]])
    with pytest.raises(ValueError, match=r"agent index 1 \(at batch index \(0,\)\) has no available action"):
        policy.choose(torch.zeros(1, 2, 3), avail, deterministic=True)


def test_masked_log_softmax_is_finite_and_ignores_unavailable_logits() -> None:
    rng = np.random.default_rng(3)
    avail = torch.as_tensor(rng.random((1000, 5)) < 0.5)
    avail[:, 0] = True
    finite = rng.choice(EXTREME_LOGITS[1:], size=(1000, 5))
    unavailable = rng.choice([np.nan, np.inf, -np.inf, 1e30], size=(1000, 5))
    logits = torch.as_tensor(np.where(avail, finite, unavailable), dtype=torch.float32).requires_grad_()
    log_pi = masked_log_softmax(logits, avail)
    pi = log_pi.exp()
    assert bool(log_pi.isfinite().all())
    assert bool((pi[~avail] == 0).all())
    torch.testing.assert_close(pi.sum(-1), torch.ones(1000))
    # The losses' pattern: entropy-like terms are finite, and no gradient is NaN or reaches masked logits.
    (pi * log_pi).sum().backward()
    assert bool(logits.grad.isfinite().all())
    assert bool((logits.grad[~avail] == 0).all())
    # A padded step (no available action) is a softmax over all actions, not NaN.
    padded = masked_log_softmax(torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.bool))
    torch.testing.assert_close(padded.exp(), torch.full((1, 4), 0.25))


@pytest.mark.parametrize("deterministic", [True, False])
def test_predict_takes_the_callers_action_masks(deterministic: bool) -> None:
    model = matrix_model(LSFSAC)
    env = matrix_game_v0.parallel_env()
    obs, _ = env.reset(seed=0)
    only_last = {"agent_0": [0, 0, 1], "agent_1": np.array([False, False, True])}
    as_infos = {agent: {"action_mask": mask} for agent, mask in only_last.items()}
    as_array = np.array([[False, False, True], [False, False, True]])
    for masks in (only_last, as_infos, as_array):
        for _ in range(20):
            actions, _ = model.predict(obs, deterministic=deterministic, action_masks=masks)
            assert actions == {"agent_0": 2, "agent_1": 2}
    actions, _ = model.predict(obs, action_masks={"agent_1": {}})  # an info without a mask restricts nothing
    assert set(actions) == {"agent_0", "agent_1"}
    array_actions, _ = model.predict(np.ones((4, 2, 1), np.float32), action_masks=as_array)
    assert (array_actions == 2).all()


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ({"agent_0": [0, 0, 0]}, "leaves agent 'agent_0' no available action"),
        ({"agent_1": [1, 0]}, r"action_masks\['agent_1'\] must be 3 True/False"),
        ({"agent_9": [1, 1, 1]}, "unknown agents \\['agent_9'\\]"),
        (np.ones((3, 3), bool), r"action_masks has shape \(3, 3\)"),
        (np.full((2, 3), 0.5), "only True/False"),
    ],
)
def test_predict_refuses_bad_action_masks_by_name(masks: object, message: str) -> None:
    model = matrix_model(QMIX)
    obs, _ = matrix_game_v0.parallel_env().reset(seed=0)
    with pytest.raises(ValueError, match=message):
        model.predict(obs, action_masks=masks)


#: Every value an acting network's output may take in the end-to-end test, NaN included.
HOSTILE_SCORES = np.array([-np.inf, -1e30, -1e10, -1e9, 0.0, 1e9, 1e30, np.inf, np.nan], dtype=np.float32)

#: Three agents with 2, 5 and 4 actions (so padded actions are unavailable too), random masks in
#: ``info`` at every step (``RandomEnv.step`` asserts every action it gets is available); the second
#: agent leaves at step 3 of each six-step episode.
MASKED_ENV = {
    "n_agents": 3,
    "obs_shapes": [(2,)] * 3,
    "action_counts": [2, 5, 4],
    "mask_mode": "info",
    "has_state": True,
    "state_dim": 3,
    "length": 6,
    "leave_steps": [None, 3, None],
    "fault": "none",
    "fault_step": 0,
    "seed": 0,
}


def make_hostile(policy: ActingPolicy, seed: int) -> None:
    """Replace the acting network's scores with values drawn from ``HOSTILE_SCORES`` (memory kept)."""
    rng = np.random.default_rng(seed)
    network_scores = policy.scores

    def scores(obs: torch.Tensor, memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, hidden = network_scores(obs, memory)
        drawn = rng.choice(HOSTILE_SCORES, size=tuple(out.shape))
        return torch.as_tensor(drawn, dtype=out.dtype, device=out.device), hidden

    policy.scores = scores  # type: ignore[method-assign]


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_no_algorithm_chooses_an_unavailable_action_in_predict_evaluate_or_learn(name: str) -> None:
    """End to end, for every algorithm: an env whose masks change at every step and a network whose
    outputs are anything from -inf to +inf (or NaN); the env asserts each action is available."""
    env = RandomEnv(MASKED_ENV)
    model = ALGORITHMS[name](
        "MlpPolicy",
        lambda: RandomEnv(MASKED_ENV),
        hidden_dim=8,
        batch_size=2,
        seed=0,
        device="cpu",
        n_threads=1,
    )
    make_hostile(model.policy, seed=1)
    decisions = 0
    for deterministic in (True, False):
        obs, infos = env.reset(seed=0)
        state, start = None, True
        for _ in range(300):  # 50 episodes
            actions, state = model.predict(obs, state, start, deterministic=deterministic, action_masks=infos)
            decisions += len(actions)
            obs, _, _, _, infos = env.step(actions)
            start = not env.agents
            if start:
                obs, infos = env.reset()
            obs = {agent: obs[agent] for agent in env.agents}  # an agent that left acts no more
    assert decisions > 1000
    for deterministic in (True, False):
        evaluate_policy(model, lambda: RandomEnv(MASKED_ENV), n_eval_episodes=20, deterministic=deterministic)
    assert model.learning_starts == 0  # learn acts with the hostile policy from its first step
    model.learn(300)
    assert model.num_timesteps == 300
