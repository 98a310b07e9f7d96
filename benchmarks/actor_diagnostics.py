"""How closely a trained LSF-SAC actor follows its critic, on the greedy test episodes it plays.

    python benchmarks/actor_diagnostics.py --name predator_prey_actor_diagnostics \
        --models "LSF-SAC seed 0=runs/pp_fkl/LSFSAC_..._seed0.zip" "MASAC seed 0=runs/pp_fkl/..."

For every saved model (``predator_prey.py curve --save-models``) it plays ``--episodes`` greedy
test episodes and reads, at every step of every agent with more than one available action: the
actor's entropy; the entropy of the Boltzmann policy softmax(Q_i / alpha) that the forward-KL
actor is trained to match (at the model's learned alpha and at smaller ones); the gap between the
critic's best and second-best Q_i; how often argmax pi differs from argmax Q_i; the share of greedy
episodes that run to the env's step limit; the test return of the team acting as in training
(epsilon-greedy at the model's epsilon or ``--epsilon``, on the same episode seeds); and the test return
of a team that acts by argmax Q_i instead (the critic's own greedy policy, whose messages carry
every agent's observation, so it is not decentralized; on the same episode seeds). Without messages
(MASAC) that return bounds what distilling the critic into the actor can give; with them, the
messages describe what the actors would do, not what the critic's team does. A flat
Boltzmann policy (small Q gaps against alpha) leaves the actor nearly uniform, and its greedy
action then rests on logit differences of a few hundredths.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from runs import RESULTS, command, machine, write_keeping_section

from marl_lsf import LSFSAC
from marl_lsf.env_registry import make_env_factory
from marl_lsf.evaluation import evaluate_policy, run_episodes
from marl_lsf.nets.agents import masked_argmax, masked_log_softmax
from marl_lsf.team_env import TeamObs
from marl_lsf.vec_env import make_team_vec_env

#: Temperatures at which the Boltzmann policy's entropy is also reported.
PROBE_ALPHAS = (0.005, 0.002)


def entropy(log_p: torch.Tensor) -> torch.Tensor:
    """Entropy over the last axis of log-probabilities that are -inf where an action is masked."""
    return -(log_p.exp() * log_p.clamp(min=-1e30)).sum(-1)


def diagnose(model: LSFSAC, env: str, episodes: int, seed: int) -> dict[str, Any]:
    """The figures above, over the agent-steps of ``episodes`` greedy episodes of ``model`` on ``env``."""
    steps: list[dict[str, Any]] = []
    result = evaluate_policy(model, make_env_factory(env), episodes, seed=seed, callback=steps.append)
    ends = [i + 1 for i, s in enumerate(steps) if (s["step"].terminated | s["step"].truncated)[0]]
    logits, q, avail = [], [], []
    for start, end in zip([0, *ends[:-1]], ends, strict=True):
        episode = steps[start:end]
        obs = torch.as_tensor(np.stack([s["obs"].obs[0] for s in episode]), dtype=torch.float32)[None]
        actions = torch.as_tensor(np.stack([s["actions"][0] for s in episode]), dtype=torch.long)[None]
        with torch.no_grad():
            logits.append(model.actor(model.actor_inputs(obs, actions[:, :-1]))[0][0])
            critic_in = model.critic_inputs(obs, actions[:, :-1])
            q.append(model.critics[0](critic_in, sample=False, decode=False)[0][0])
        avail.append(torch.as_tensor(np.stack([s["obs"].avail[0] for s in episode]), dtype=torch.bool))
    logits_t, q_t, avail_t = torch.cat(logits), torch.cat(q), torch.cat(avail)
    active = avail_t.sum(-1) > 1
    log_pi = masked_log_softmax(logits_t, avail_t)
    alpha = model.log_ent_coef.exp().item()
    q_masked = q_t.masked_fill(~avail_t, -torch.inf)
    top2 = q_masked.topk(2, dim=-1).values
    gaps = (top2[..., 0] - top2[..., 1])[active].numpy()
    disagree = (log_pi.argmax(-1) != q_masked.argmax(-1))[active].float().mean().item()
    acting = evaluate_policy(model, make_env_factory(env), episodes, deterministic=False, seed=seed)
    return {
        "return": result.mean_return,
        "at_limit": _share_at_limit(
            result.episode_lengths, getattr(make_env_factory(env)(), "max_cycles", None)
        ),
        "acting_return": acting.mean_return,
        "alpha": alpha,
        "pi_entropy": entropy(log_pi)[active].mean().item(),
        "label_entropy": {
            a: entropy(masked_log_softmax(q_t / a, avail_t))[active].mean().item()
            for a in (alpha, *PROBE_ALPHAS)
        },
        "gap_quartiles": np.quantile(gaps, [0.25, 0.5, 0.75]),
        "disagree": disagree,
        "agent_steps": int(active.sum()),
    }


def _share_at_limit(lengths: list[int], limit: int | None) -> str:
    """The share of episodes that ran to ``limit`` steps (a team that never finishes the task), or "-"."""
    return "-" if limit is None else f"{np.mean(np.asarray(lengths) >= limit):.0%}"


def critic_greedy_return(model: LSFSAC, env: str, episodes: int, seed: int) -> float:
    """Mean test return of ``model``'s team acting by argmax of its first critic's Q_i (message means)."""
    vec_env = make_team_vec_env(make_env_factory(env), 1, "auto", model.team_reward)
    n, a = model.spec.n_agents, model.spec.n_actions
    last = torch.zeros(vec_env.num_envs, 1, n, a)
    ids = torch.eye(n).expand(vec_env.num_envs, 1, n, n)

    def policy(obs: TeamObs, done: np.ndarray) -> np.ndarray:
        last[torch.as_tensor(done)] = 0.0
        x = torch.as_tensor(obs.obs, dtype=torch.float32)[:, None]
        with torch.no_grad():
            q = model.critics[0](torch.cat([x, last, ids], dim=-1), sample=False, decode=False)[0]
        actions = masked_argmax(q[:, 0], torch.as_tensor(obs.avail, dtype=torch.bool))
        last.copy_(torch.nn.functional.one_hot(actions, a).float()[:, None])
        return actions.numpy()

    return run_episodes(vec_env, policy, episodes, seed).mean_return


def model_spec(spec: str) -> tuple[str, str]:
    """``(label, path)`` of a ``LABEL=PATH`` entry, split at the ``=`` after which an existing file
    is named (labels and saved models' names may both contain ``=``)."""
    for i, char in enumerate(spec):
        if char == "=" and Path(spec[i + 1 :]).is_file():
            return spec[:i], spec[i + 1 :]
    raise SystemExit(f"--models entries are LABEL=PATH of an existing model file, got {spec!r}")


def main() -> None:
    """Command line: one table row per saved model."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", required=True, help="LABEL=PATH of saved LSFSAC models")
    parser.add_argument("--env", default="predator_prey")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--seed", type=int, default=20_000, help="seed of the first test episode")
    parser.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="epsilon of the epsilon-greedy returns (default: the model's own; files saved before "
        "models kept their schedule's progress load at its start, 1.0)",
    )
    parser.add_argument("--name", default="actor_diagnostics")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    probes = " | ".join(f"Boltzmann entropy at alpha={a}" for a in PROBE_ALPHAS)
    epsilon = "the model's epsilon" if args.epsilon is None else f"epsilon {args.epsilon}"
    lines = [
        f"# How closely the actor follows its critic ({args.env}, {args.episodes} greedy test episodes per model)",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}",
        "",
        "Entropies in nats, over the agent-steps with more than one available action (log 5 = 1.61 "
        "for the usual five); the Boltzmann policy is softmax(Q_i / alpha) over the available "
        "actions, the forward-KL actor's target.",
        "",
        f"| model | test return | greedy episodes run to the step limit | return acting epsilon-greedy ({epsilon}) | return acting argmax Q_i | learned alpha | actor entropy | Boltzmann entropy at learned alpha | {probes} "
        "| Q gap best - 2nd (quartiles) | argmax pi != argmax Q | agent-steps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(PROBE_ALPHAS) + "---|---:|---:|",
    ]
    for spec in args.models:
        label, path = model_spec(spec)
        model = LSFSAC.load(path, device="cpu")
        if args.epsilon is not None:
            model.policy.exploration_rate.fill_(args.epsilon)
        found = diagnose(model, args.env, args.episodes, args.seed)
        critic_return = critic_greedy_return(model, args.env, args.episodes, args.seed)
        labels = list(found["label_entropy"].values())
        lines.append(
            f"| {label} | {found['return']:.1f} | {found['at_limit']} | {found['acting_return']:.1f} | {critic_return:.1f} | {found['alpha']:.4f} | {found['pi_entropy']:.2f} | "
            + " | ".join(f"{value:.2f}" for value in labels)
            + f" | {', '.join(f'{g:.3f}' for g in found['gap_quartiles'])} | {found['disagree']:.1%} "
            f"| {found['agent_steps']:,} |"
        )
        print(lines[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_keeping_section(out / f"{args.name}.md", "\n".join(lines) + "\n\n", "## Reading")


if __name__ == "__main__":
    main()
