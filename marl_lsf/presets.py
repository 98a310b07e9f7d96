"""Measured settings per environment and algorithm: ``LSFSAC("MlpPolicy", env, **preset("predator_prey", "lsfsac"))``.

The library's defaults are one compromise across environments; a preset is the setting that
measured best on one environment, with the results file that shows it (README, Benchmark results).
Like RL Baselines3 Zoo's hyperparameter files, but plain dicts of constructor arguments, so an
explicit argument still overrides them: ``LSFSAC(..., **{**preset(...), "batch_size": 64})``.
The agent networks a preset was measured with (the constructor's first argument, so not in the
dict) are ``preset_policy(env, algo)``: ``LSFSAC(preset_policy("smax", "lsfsac"), env, **preset("smax", "lsfsac"))``.
"""

from __future__ import annotations

from typing import Any

#: The training schedule on which QMIX reproduces the public rerun of pymarl's implementations on
#: predator-prey (benchmarks/results/predator_prey_qmix_control.md): epsilon 1 -> 0.05 over the
#: whole run, one update of 32 episodes per finished episode, a hard target copy every 200
#: updates, one-step TD targets, the last action in the acting network's input, 8 env copies.
PYMARL_PREDATOR_PREY_SCHEDULE: dict[str, Any] = {
    "n_envs": 8,
    "train_freq": 1,
    "batch_size": 32,
    "exploration_fraction": 1.0,
    "tau": 1.0,
    "target_update_interval": 200,
    "td_lambda": 0.0,
    "last_action_input": True,
}

#: LSF-SAC's actor and target as the authors' code runs them, with the forward-KL actor: epsilon-greedy
#: acting on argmax pi, eq. 16's max target as QMIX takes it, the separate message network with
#: weight 1e-3 and argmax decoder labels, the last action in the actors' input. LSF-SAC's defaults
#: since these measurements; the presets name them so a later change of defaults leaves them as measured.
LSFSAC_ACTOR_AND_TARGET: dict[str, Any] = {
    "exploration": "epsilon_greedy",
    "td_target": "max",
    "policy_objective": "forward_kl",
    "message_network": "separate",
    "latent_coef": 1e-3,
    "decoder_target": "argmax",
    "last_action_input": True,
}

#: LSF-SAC's defaults before the measurements above made ``LSFSAC_ACTOR_AND_TARGET`` the defaults:
#: sampling pi, SAC's soft target, eq. 14's actor, the message encoder on the critic's torso with
#: weight 1, pi as the decoder's labels, no last action in the actors' input.
LSFSAC_EARLIER_DEFAULTS: dict[str, Any] = {
    "exploration": "sample",
    "td_target": "soft",
    "policy_objective": "reverse_kl",
    "message_network": "shared",
    "latent_coef": 1.0,
    "decoder_target": "soft",
    "last_action_input": False,
}

#: The matrix-game benchmark's schedule (benchmarks/matrix_game.py, 20,000 steps a run): a
#: 500-step uniformly random warm-up, 8 games side by side, one gradient step per 8 games.
MATRIX_GAME_SCHEDULE: dict[str, Any] = {"learning_starts": 500, "n_envs": 8, "train_freq": 8}

#: ``(environment, algorithm) -> constructor arguments``; environment and algorithm names as
#: ``marl-lsf train --env/--algo`` spell them.
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    # QTRAN's matrix game (paper Table I), 10 seeds of 20,000 steps each; the rate at which the
    # greedy joint action is the optimum (A, A). LSF-SAC with its earlier defaults: 6/10
    # (benchmarks/results/matrix_game.md); with today's defaults 4/10
    # (matrix_game_lsfsac_defaults.md), with epsilon over half the run 1/10 (matrix_game_forward_kl.md).
    ("matrix_game", "lsfsac"): {**MATRIX_GAME_SCHEDULE, **LSFSAC_EARLIER_DEFAULTS},
    # CW-QMIX with the Weighted QMIX code's alpha 0.1: 10/10 (0.75: 5/10; matrix_game_cwqmix_alpha01.md).
    ("matrix_game", "cw_qmix"): {**MATRIX_GAME_SCHEDULE, "alpha": 0.1},
    # QTRAN on near-uniform data, epsilon 1 -> 0.81 over the run (the authors' pymarl schedule
    # cut at 20,000 of its 100,000 steps; the fraction is of the run's length): 10/10 (defaults: 3/10;
    # matrix_game_baselines_authors_exploration.md).
    ("matrix_game", "qtran"): {
        **MATRIX_GAME_SCHEDULE,
        "exploration_fraction": 1.0,
        "exploration_final_eps": 0.81,
    },
    ("predator_prey", "qmix"): dict(PYMARL_PREDATOR_PREY_SCHEDULE),
    # LSF-SAC on the same schedule: eq. 16's max target as QMIX takes it, epsilon-greedy acting on
    # argmax pi and the forward-KL actor, with the authors' message network, weight and decoder
    # labels, one message dimension per receiver (22.2 [22.0, 28.5] at 1M over 3 seeds against
    # 17.0 [-5.0, 19.9] with the default 3) and a replay buffer of the last 1,000 episodes, so the
    # actor trains on recent, nearly greedy play (28.2 [19.9, 35.0] over 5 seeds; 500 episodes
    # collapsed to a passive team on 2 of 3 seeds), and VDN's sum as the mixer instead of QMIX's
    # hypernetwork (VDN itself takes off at 200k steps here, our QMIX at 250k-700k), which reached
    # the paper's level (benchmarks/results/predator_prey_lsfsac_vs_qmix_1m.md).
    ("predator_prey", "lsfsac"): {
        **PYMARL_PREDATOR_PREY_SCHEDULE,
        **LSFSAC_ACTOR_AND_TARGET,
        "latent_dim": 1,
        "buffer_size": 1000,
        "mixer": "vdn",
    },
    # SMAX, with "RnnPolicy": 8 battles per vmapped call, an update every 4 episodes, TD(0.6), and
    # the predator-prey preset's actor and target (epsilon-greedy acting on argmax pi, 1 -> 0.05 over
    # the first 5% of the run, i.e. pymarl's 50,000 steps of a 1M run; the max target; the forward-KL
    # actor; the authors' message network, weight and decoder labels; the last action as input).
    # On 3m a 0.9 test win rate in 3/3 seeds, first at 325,000 steps (median; the previous preset
    # 825,000, QMIX 625,000); on 2s3z 0.81 [0.75, 0.81] at 1M over 3 seeds against QMIX's 0.84
    # [0.81, 0.91] side by side, later than QMIX (benchmarks/results/smax_lsfsac_epsilon_max_fkl.md).
    ("smax", "lsfsac"): {
        "n_envs": 8,
        "train_freq": 4,
        "td_lambda": 0.6,
        **LSFSAC_ACTOR_AND_TARGET,
        "exploration_fraction": 0.05,
    },
    # MPE simple_spread (mpe2's defaults: 3 agents, 25-step episodes, local_ratio 0.5, discrete
    # actions), the library's schedule with VDN's sum as the mixer: the defaults' QMIX mixer with
    # latent messages grew unstable after ~40k frames, VDN's sum did not
    # (benchmarks/results/mpe_simple_spread_screen/README.md).
    ("mpe2.simple_spread_v3", "lsfsac"): {"mixer": "vdn"},
    ("smax", "qmix"): {
        "n_envs": 8,
        "train_freq": 4,
        "td_lambda": 0.6,
        "tau": 1.0,
        "target_update_interval": 200,
    },
}


#: ``(environment, algorithm) -> policy`` for the presets measured with other agent networks than
#: ``"MlpPolicy"``: the SMAX runs used GRU agents (benchmarks/smax.py, README's SMAX results).
PRESET_POLICIES: dict[tuple[str, str], str] = {
    ("smax", "lsfsac"): "RnnPolicy",
    ("smax", "qmix"): "RnnPolicy",
}


def _preset_key(env: str, algo: str) -> tuple[str, str]:
    """The ``PRESETS`` key of ``env`` and ``algo`` (``"smax:3m"`` reads as ``"smax"``).

    Raises:
        ValueError: when there is no preset for the pair (the message lists those there are).
    """
    key = (env.split(":", 1)[0].lower(), algo.lower())
    if key not in PRESETS:
        known = ", ".join(f"{e}/{a}" for e, a in PRESETS)
        raise ValueError(f"no preset for env {env!r} and algorithm {algo!r}; presets: {known}")
    return key


def preset(env: str, algo: str) -> dict[str, Any]:
    """A copy of the measured settings of ``algo`` on ``env`` (``"smax:3m"`` reads as ``"smax"``).

    Raises:
        ValueError: when there is no preset for the pair (the message lists those there are).
    """
    return dict(PRESETS[_preset_key(env, algo)])


def preset_policy(env: str, algo: str) -> str:
    """The agent networks the preset of ``algo`` on ``env`` was measured with: ``"MlpPolicy"`` or ``"RnnPolicy"``.

    Raises:
        ValueError: when there is no preset for the pair (the message lists those there are).
    """
    return PRESET_POLICIES.get(_preset_key(env, algo), "MlpPolicy")
