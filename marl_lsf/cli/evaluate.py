"""``marl-lsf eval``: evaluate a saved model with ``marl_lsf.evaluate_policy`` and print a summary."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from marl_lsf.cli.common import console, env_factory_for, load_model, positive
from marl_lsf.cli.options import add_model_options, add_subparser
from marl_lsf.evaluation import evaluate_policy


def cmd_eval(args: argparse.Namespace) -> int:
    """``marl-lsf eval``: evaluate a saved model and print a summary table."""
    model = load_model(args.model, args.device)
    factory = env_factory_for(args)
    result = evaluate_policy(model, factory, args.episodes, deterministic=not args.stochastic, seed=args.seed)
    table = Table(title=f"{type(model).__name__} on {factory.name}, {args.episodes} episodes")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("mean return", f"{result.mean_return:.3f}")
    table.add_row("std return", f"{result.std_return:.3f}")
    table.add_row(
        "min / max return", f"{min(result.episode_returns):.3f} / {max(result.episode_returns):.3f}"
    )
    table.add_row("win rate", "n/a" if result.win_rate is None else f"{result.win_rate:.3f}")
    table.add_row("mean episode length", f"{result.mean_length:.1f}")
    console.print(table)
    return 0


def add_eval_parser(sub: Any) -> None:
    """Add ``eval`` and its options to the subcommands ``sub``."""
    evaluate = add_subparser(
        sub,
        "eval",
        "evaluate a saved model",
        "Run episodes with a saved model's decentralized policies; print the return, win rate and length.",
    )
    add_model_options(evaluate)
    evaluate.add_argument("--episodes", type=positive(int), default=32, metavar="K", help="episodes to run")
    evaluate.set_defaults(func=cmd_eval)
