"""The ``marl-lsf`` command: its argument parser and entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rich.markup import escape

import marl_lsf
from marl_lsf.cli.common import EXIT_USAGE, CliError, err_console
from marl_lsf.cli.evaluate import add_eval_parser
from marl_lsf.cli.plot import add_plot_parser
from marl_lsf.cli.replay import add_replay_parser
from marl_lsf.cli.sweep import add_sweep_parser, cmd_sweep
from marl_lsf.cli.train import add_train_parser

EXAMPLES = """\
examples:
  marl-lsf train --env predator_prey --env-kwargs n_prey=4 --timesteps 2e6 --out runs/pp
  marl-lsf train --env matrix_game --timesteps 3000 --seed 1 --out runs/mg_s1 --eval-freq 500
  marl-lsf train --resume runs/pp --timesteps 3e6
  marl-lsf eval runs/pp/model.zip --episodes 32
  marl-lsf replay runs/pp/model.zip --out replay.gif
  marl-lsf replay runs/mg_s1/model.zip --text
  marl-lsf plot runs/* --out curves.png --key eval/mean_return
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``marl-lsf`` command."""
    parser = argparse.ArgumentParser(
        prog="marl-lsf",
        description="LSF-SAC and value-decomposition baselines for cooperative multi-agent RL on PettingZoo.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {marl_lsf.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    add_train_parser(sub)
    add_eval_parser(sub)
    add_replay_parser(sub)
    add_plot_parser(sub)
    add_sweep_parser(sub)
    return parser


def _guarded(action: Callable[[], int]) -> int:
    """Run a subcommand; user errors (and files that cannot be read or written) become one line on stderr and exit status 2."""
    try:
        return action()
    except (CliError, ValueError, OSError, ImportError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        err_console.print(f"[bold red]marl-lsf: error:[/] {escape(message)}", soft_wrap=True)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``marl-lsf`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        return _guarded(lambda: cmd_sweep(argv[1:]))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return _guarded(lambda: args.func(args))
