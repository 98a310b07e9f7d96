"""``marl-lsf sweep``: forwards its arguments to ``marl_lsf.sweep`` (which parses them itself)."""

from __future__ import annotations

import importlib
from typing import Any

from marl_lsf.cli.common import CliError


def cmd_sweep(argv: list[str]) -> int:
    """``marl-lsf sweep``: forward the arguments to ``marl_lsf.sweep.cli_main``."""
    try:
        sweep = importlib.import_module("marl_lsf.sweep")
    except ModuleNotFoundError as exc:
        if exc.name != "marl_lsf.sweep":
            raise
        raise CliError(
            "`marl-lsf sweep` needs marl_lsf.sweep, which this installation does not have"
        ) from exc
    return int(sweep.cli_main(argv))


def add_sweep_parser(sub: Any) -> None:
    """Add ``sweep`` to the subcommands ``sub``, for the help; ``main`` hands its arguments to ``cmd_sweep``."""
    sub.add_parser("sweep", help="run a hyperparameter sweep (see `marl-lsf sweep --help`)", add_help=False)
