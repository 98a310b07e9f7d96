"""Which departure from the LSF-SAC paper and its authors' code costs the predator-prey result?

    python benchmarks/lsfsac_fidelity.py --steps 300000 --seeds 0 1 --processes 2

Trains one row per hypothesis on the paper's predator-prey (10x10, 8 predators, 8 prey,
miscapture punishment -2; ``predator_prey_v1`` with pymarl's action masks unless the row says
otherwise), evaluates the greedy team every ``--eval-every`` steps, and writes a table (final and
best greedy test return, median and range over seeds), one PNG of the curves and the raw numbers
to ``results/<name>.md``. Every row starts from the same *base*: LSF-SAC with its constructor
defaults except the schedule (``n_envs=8``, one update of 32 episodes per 8 episodes), and
changes one thing, except the last rows, which combine the authors' settings.

The rows (see the LSF-SAC docstring for each option):

* ``base``: SAC's soft TD target, sampled acting, a message encoder on the critic's torso with
  loss weight 1, soft decoder labels, no last action in the actor's input;
* ``expected target`` / ``greedy target``: eq. 16 without the entropy term (the paper), or the
  target critic at argmax pi (the authors' code);
* ``epsilon-greedy acting``: argmax pi with epsilon 1 -> 0.05 over the first 100k steps;
* ``separate message net, weight 1e-3``: the authors' message network and loss weight;
* ``argmax decoder labels``;
* ``last action input``;
* ``v0 env (no masks)``: the base on the environment without pymarl's action masks;
* ``authors' combination``: all of the authors' choices together, with their schedule (batch of
  128 episodes, lr 1e-3, hard target copy every 200 episodes);
* ``QMIX``: the value-based reference under the base schedule, epsilon over the first 100k steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from runs import RESULTS, SUMMARY_HEADER, Job, command, curves, machine, run_jobs, summary_rows

from marl_lsf import evaluate_random_policy
from marl_lsf.envs import predator_prey_v1
from marl_lsf.plotting import plot_curves

#: The schedule every row shares unless it says otherwise.
BASE_SCHEDULE: dict[str, Any] = {"n_envs": 8, "train_freq": 8, "batch_size": 32, "vectorization": "sync"}
#: Epsilon decays over this many environment steps in the epsilon-greedy rows (the authors' 100k).
EPSILON_STEPS = 100_000


def rows(steps: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Row name -> (algorithm, environment name, constructor arguments on top of the base schedule)."""
    epsilon = {"exploration_fraction": min(1.0, EPSILON_STEPS / steps)}
    authors = {
        "td_target": "greedy",
        "exploration": "epsilon_greedy",
        **epsilon,
        "message_network": "separate",
        "latent_coef": 1e-3,
        "decoder_target": "argmax",
        "last_action_input": True,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "tau": 1.0,
        "target_update_interval": 25,
    }
    return {
        "base": ("LSFSAC", "predator_prey", {}),
        "expected target": ("LSFSAC", "predator_prey", {"td_target": "expected"}),
        "greedy target": ("LSFSAC", "predator_prey", {"td_target": "greedy"}),
        "epsilon-greedy acting": ("LSFSAC", "predator_prey", {"exploration": "epsilon_greedy", **epsilon}),
        "separate message net, weight 1e-3": (
            "LSFSAC",
            "predator_prey",
            {"message_network": "separate", "latent_coef": 1e-3},
        ),
        "argmax decoder labels": ("LSFSAC", "predator_prey", {"decoder_target": "argmax"}),
        "last action input": ("LSFSAC", "predator_prey", {"last_action_input": True}),
        "v0 env (no masks)": ("LSFSAC", "marl_lsf.envs.predator_prey_v0:parallel_env", {}),
        "authors' combination": ("LSFSAC", "predator_prey", authors),
        "QMIX": ("QMIX", "predator_prey", epsilon),
    }


def main() -> None:
    """Command line: run the chosen rows over the seeds and write the results file."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--eval-every", type=int, default=25_000)
    parser.add_argument("--eval-episodes", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rows", nargs="+", default=None, help="row names to run (default: all)")
    parser.add_argument("--name", default="lsfsac_fidelity")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    table = rows(args.steps)
    chosen = args.rows or list(table)
    unknown = sorted(set(chosen) - set(table))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(table)}")
    jobs = [
        Job(
            algo,
            env,
            seed,
            args.steps,
            args.eval_every,
            args.eval_episodes,
            algo_kwargs={**BASE_SCHEDULE, **kwargs},
            name=row,
        )
        for row in chosen
        for algo, env, kwargs in [table[row]]
        for seed in args.seeds
    ]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runs = run_jobs(jobs, args.processes, progress=Path(args.out) / f"{args.name}.runs.jsonl")
    random = evaluate_random_policy(predator_prey_v1.parallel_env(), args.eval_episodes * 2, seed=10_000)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    groups = curves(runs, "returns")
    groups["random policy"] = [(np.array([0, args.steps]), np.full(2, random.mean_return))]
    plot_curves(
        groups,
        out / f"{args.name}.png",
        ylabel=f"greedy test return ({args.eval_episodes} episodes)",
        title=f"LSF-SAC hypotheses on predator-prey: median, min-max over {len(args.seeds)} seeds",
    )
    done = [run for run in runs if "error" not in run]
    lines = [
        "# LSF-SAC fidelity hypotheses on predator-prey (punishment -2, best return 40)",
        "",
        f"Command: `{command()}`",
        f"Machine: {machine()}; {len(jobs)} runs in {args.processes} processes, 1 torch thread each.",
        f"Base schedule of every row unless it says otherwise: {BASE_SCHEDULE}. Row settings:",
        "",
        *(
            f"- **{row}**: {table[row][0]} on `{table[row][1]}`, {table[row][2] or 'nothing changed'}"
            for row in chosen
        ),
        "",
        f"Random policy greedy-test reference: {random.mean_return:.1f} over {len(random.episode_returns)} episodes.",
        "",
        *SUMMARY_HEADER,
        *summary_rows(runs, "returns"),
        "",
        f"![curves]({args.name}.png)",
        "",
        "| env steps | " + " | ".join(f"{run['job'].label} s{run['job'].seed}" for run in done) + " |",
        "|---:|" + "---:|" * len(done),
    ]
    longest = max(done, key=lambda run: len(run["steps"]), default=None)
    for i, step in enumerate(longest["steps"] if longest else []):
        values = [f"{run['returns'][i]:.1f}" if i < len(run["returns"]) else "" for run in done]
        lines.append(f"| {step:,} | " + " | ".join(values) + " |")
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
