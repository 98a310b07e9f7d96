"""The ``argparse`` pieces the ``marl-lsf`` subcommands share: help format, env, trust and model options."""

from __future__ import annotations

import argparse
from typing import Any

from marl_lsf.cli.common import RUN_SETTINGS, parse_device
from marl_lsf.env_registry import valid_names


class HelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` after options whose default says something (not None, not a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            any(action.default is v for v in (None, False, argparse.SUPPRESS))
            or "default" in text
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def add_env_options(parser: argparse.ArgumentParser, where: str) -> None:
    """Add ``--env`` (its help ending in ``where``) and ``--env-kwargs`` to ``parser``."""
    parser.add_argument("--env", metavar="NAME", help=f"environment: {valid_names()}{where}")
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        action="extend",
        metavar="KWARGS",
        help="env constructor arguments: a JSON object or key=value pairs, e.g. grid_size=5 n_prey=2",
    )


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--trust-run-config`` to ``parser``."""
    parser.add_argument(
        "--trust-run-config",
        action="store_true",
        help=f"let the run folder's {RUN_SETTINGS} name a module:factory env, which is imported and called "
        "(off: only registered env names are taken from a run folder; see SECURITY.md)",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the subcommands that run a saved model (``eval``, ``replay``) to ``parser``."""
    parser.add_argument("model", help="model file written by `marl-lsf train`, e.g. runs/pp/model.zip")
    add_env_options(parser, " (default: the env in the run.json next to the model)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the first episode")
    parser.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of taking the greedy ones"
    )
    parser.add_argument("--device", default="auto", type=parse_device, help="torch device: auto, cpu or cuda")
    add_trust_option(parser)


def add_subparser(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` to ``sub`` with its one-line ``summary``, ``description`` and ``HelpFormatter``."""
    return sub.add_parser(name, help=summary, description=description, formatter_class=HelpFormatter)
