"""Sweeps: algorithms x environments x seeds x overrides, one Ray task per training run.

A grid comes from a YAML file (see ``examples/sweep.yaml``) or from command-line arguments::

    algos: [lsfsac, qmix]
    envs: [{name: predator_prey, kwargs: {n_prey: 4}}]
    seeds: [0, 1, 2]
    timesteps: 2e5
    overrides: [{}, {latent_dim: 0}]   # constructor keyword arguments, one variant each
    eval_episodes: 8

Every run trains in its own Ray task (``cpus_per_run`` CPUs and as many torch threads,
``gpus_per_run`` GPUs) and writes a run folder ``<results>/<algo>/<env>/<override-tag>/seed_<s>/`` like
``marl-lsf train`` does: ``run.json`` (its settings), ``progress.csv`` (Stable-Baselines3's CSV
logger, with a greedy evaluation row every ``eval_freq`` steps), ``model.zip`` and
``result.json`` (the final greedy evaluation), or ``error.txt`` when it failed. A run that fails
is reported with its error and the others go on. The driver then writes ``<results>/summary.md``
(final test return and win rate per cell: median and min-max over seeds), ``summary.json`` and
learning-curve PNGs (median line, min-max band over seeds) for each environment.

Runs whose folder already holds a successful ``result.json`` with the same settings are not run
again, so an interrupted sweep continues where it stopped.

Without an address, ``sweep`` starts Ray on this machine; with one (or ``RAY_ADDRESS``) it joins
that cluster. Run folders are written where each task runs, so on a cluster ``results_dir``
should be on a filesystem every node shares; the summary and plots are written by the dri

Layout: ``grid`` (the grid and its runs' settings), ``run`` (one run, the body of a Ray task),
``driver`` (``sweep``: the Ray tasks), ``summary`` (``summary.md``, ``summary.json`` and the
plots) and ``cli`` (``marl-lsf sweep``).
"""

from marl_lsf.sweep.cli import cli_main, grid_from_args
from marl_lsf.sweep.driver import SweepResult, sweep
from marl_lsf.sweep.grid import (
    DEFAULT_EVALUATIONS,
    EVAL_SEED_OFFSET,
    GRID_KEYS,
    EnvEntry,
    RunSpec,
    SweepError,
    SweepGrid,
)
from marl_lsf.sweep.run import RunResult, train_run
from marl_lsf.sweep.summary import plot_sweep, write_summary

__all__ = [
    "DEFAULT_EVALUATIONS",
    "EVAL_SEED_OFFSET",
    "GRID_KEYS",
    "EnvEntry",
    "RunResult",
    "RunSpec",
    "SweepError",
    "SweepGrid",
    "SweepResult",
    "cli_main",
    "grid_from_args",
    "plot_sweep",
    "sweep",
    "train_run",
    "write_summary",
]
