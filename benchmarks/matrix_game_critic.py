"""Which joint action does a monotonic mixing critic prefer after fitting the matrix game on fixed data?

The experiment behind ``results/matrix_game.md``'s diagnosis: the critic of LSF-SAC (per-agent
Q with latent messages, QMIX mixer) and QMIX's utilities + mixer are regressed on the payoff of
joint actions drawn from a *fixed* policy ``p = [p_A, (1 - p_A) / 2, (1 - p_A) / 2]`` for both
agents, with nothing else learning (no actor, no exploration), for ``--updates`` Adam steps on
batches of 32 games. Reads the greedy joint action of the fitted utilities (each agent's own
argmax, as at execution) and counts the seeds that prefer the optimum (A, A).

Under a monotonic mixer the least-squares fit has two orderings: utilities that prefer A (Q_tot 8
at (A, A), -6 on the other eight cells under uniform data: the LSF-SAC table of the paper) and
utilities that prefer B/C (-8 on row and column A, 0 on the B/C block: the paper's QMIX table).
Under uniform data the first is the better fit (squared error 288/9 against 320/9 per game); the
experiment shows which one gradient descent finds, and how that depends on the data and on the
width of the mixing layer (``mixer_embed_dim``, 32 in pymarl and in this library).

    python benchmarks/matrix_game_critic.py --seeds 16 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from marl_lsf import LSFSAC, QMIX, utility_tables
from marl_lsf.buffer import EpisodeBatch
from marl_lsf.envs import matrix_game_v0

RESULTS = Path(__file__).parent / "results"
PAYOFF = torch.tensor(matrix_game_v0.DEFAULT_PAYOFF)
OBS = np.ones((2, 1), dtype=np.float32)
STATE = np.ones(1, dtype=np.float32)
BATCH = 32

#: (critic, mixer_embed_dim, p_A) settings fitted.
SETTINGS = [
    *(("LSF-SAC", width, 1 / 3) for width in (32, 8, 4, 2)),
    *(("QMIX", width, 1 / 3) for width in (32, 8, 4, 2)),
    ("LSF-SAC", 32, 0.4),
    ("LSF-SAC", 32, 0.5),
]


def games(p_a: float, generator: torch.Generator) -> EpisodeBatch:
    """``BATCH`` one-step games with both agents' actions drawn from ``[p_A, (1 - p_A) / 2, (1 - p_A) / 2]``."""
    probs = torch.tensor([p_a, (1 - p_a) / 2, (1 - p_a) / 2])
    actions = torch.multinomial(probs, BATCH * 2, replacement=True, generator=generator).view(BATCH, 1, 2)
    return EpisodeBatch(
        obs=torch.ones(BATCH, 2, 2, 1),
        state=torch.ones(BATCH, 2, 1),
        avail=torch.ones(BATCH, 2, 2, 3, dtype=torch.bool),
        alive=torch.ones(BATCH, 2, 2, dtype=torch.bool),
        actions=actions,
        reward=PAYOFF[actions[:, 0, 0], actions[:, 0, 1]].view(BATCH, 1).float(),
        terminated=torch.ones(BATCH, 1),
        filled=torch.ones(BATCH, 1, dtype=torch.bool),
    )


def fit(critic: str, width: int, p_a: float, seed: int, updates: int) -> str:
    """Fit one critic from its seeded initialization; returns the greedy joint action, e.g. ``"AA"``."""
    torch.set_num_threads(1)
    cls = LSFSAC if critic == "LSF-SAC" else QMIX
    model = cls("MlpPolicy", matrix_game_v0.parallel_env(), seed=seed, mixer_embed_dim=width, device="cpu")
    generator = torch.Generator().manual_seed(seed)
    uniform = torch.full((BATCH, 2, 2, 3), 1 / 3)
    for _ in range(updates):
        batch = games(p_a, generator)
        if isinstance(model, LSFSAC):
            # The critic's own update (TD loss, eq. 16, and message loss, eq. 12); the policy only
            # labels the decoder's targets here.
            td_loss, latent_loss, _, _ = model.critic_losses(batch, uniform, uniform.log())
            model._gradient_step(model.critic_optimizer, td_loss + model.latent_coef * latent_loss)
        else:
            # QMIX's whole update: on one-step games its TD target is the reward.
            model._train_step(batch)
    tables = utility_tables(model, OBS, STATE)
    return "".join("ABC"[int(np.argmax(q))] for q in tables.utilities)


def main() -> None:
    """Fit every setting over the seeds and write ``results/matrix_game_critic.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--updates", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "matrix_game_critic.md")
    args = parser.parse_args()
    jobs = [(c, w, p, seed, args.updates) for c, w, p in SETTINGS for seed in range(args.seeds)]
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        greedy = pool.starmap(fit, jobs)
    wall = time.perf_counter() - start
    lines = [
        "# Matrix game: the monotonic critic alone, fitted on fixed data",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        f"Machine: {platform.machine()}, nproc = {os.cpu_count()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}; {args.workers} worker processes; wall time {wall / 60:.1f} min.",
        f"Each fit: {args.updates} Adam steps (learning rate 5e-4) on batches of {BATCH} games whose "
        "joint actions are drawn from the fixed policy [p_A, (1 - p_A)/2, (1 - p_A)/2] for both agents; "
        "seeds 0.. give the initialization and the data. See the docstring of "
        "`benchmarks/matrix_game_critic.py` for the two orderings of the fit.",
        "",
        "| critic | mixing-layer width | p_A of the data | greedy joint action prefers (A, A) | greedy joint actions |",
        "|---|---:|---:|---:|---|",
    ]
    for k, (critic, width, p_a) in enumerate(SETTINGS):
        mine = greedy[k * args.seeds : (k + 1) * args.seeds]
        lines.append(
            f"| {critic} | {width} | {p_a:.2f} | {sum(g == 'AA' for g in mine)}/{len(mine)} | {', '.join(mine)} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
