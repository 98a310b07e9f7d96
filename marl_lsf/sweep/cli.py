"""``marl-lsf sweep``: a grid from a YAML file and/or options, run with ``sweep``, shown as a table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import yaml

from marl_lsf.sweep.driver import SweepResult, sweep
from marl_lsf.sweep.grid import SweepError, SweepGrid, kwargs_mapping, read_grid_yaml
from marl_lsf.sweep.summary import cell_outcomes, group_by_cell, median_range


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marl-lsf sweep",
        description=(
            "Train algorithms x environments x seeds x overrides, one Ray task per run, and write "
            "RESULTS/summary.md, summary.json and learning-curve plots. The grid comes from a YAML "
            "file and/or the options below, which replace the file's values."
        ),
    )
    parser.add_argument("config", nargs="?", metavar="YAML", help="grid file (see examples/sweep.yaml)")
    parser.add_argument("--results", metavar="DIR", default="runs/sweep", help="results folder")
    parser.add_argument("--algos", nargs="+", metavar="ALGO", help="algorithms, e.g. lsfsac qmix")
    parser.add_argument("--envs", nargs="+", metavar="ENV", help="environment names, e.g. predator_prey")
    parser.add_argument(
        "--env-kwargs", metavar="JSON", help="constructor kwargs of the --envs environments (a JSON object)"
    )
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="training seeds")
    parser.add_argument("--timesteps", type=float, help="environment steps per run (2e5 style allowed)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor argument of every run (VALUE is read as YAML: 0.001, true, [64, 64]); repeatable",
    )
    parser.add_argument(
        "--override",
        action="append",
        metavar="JSON",
        help="an override variant (JSON object of constructor kwargs); repeat for several, '{}' for the defaults",
    )
    parser.add_argument("--eval-episodes", type=int, help="greedy episodes per evaluation (default 8)")
    parser.add_argument("--eval-freq", type=int, help="steps between evaluations (default timesteps/10)")
    parser.add_argument(
        "--policy", choices=["MlpPolicy", "RnnPolicy"], help="agent network (default MlpPolicy)"
    )
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of a local Ray (default: all)")
    parser.add_argument("--cpus-per-run", type=float, default=1, help="CPUs per run (default 1)")
    parser.add_argument(
        "--gpus-per-run", type=float, default=0, help="GPUs per run, fractions allowed (default 0: CPU)"
    )
    return parser


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SweepError(f"{option}: invalid JSON {text!r} ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise SweepError(f"{option}: expected a JSON object, got {text!r}")
    return value


def _key_values(items: Sequence[str]) -> dict[str, Any]:
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SweepError(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SweepError(f"--set {item!r}: invalid value ({exc})") from exc
    return values


def grid_from_args(args: argparse.Namespace) -> SweepGrid:
    """The grid of the YAML file (if any) with the command-line options replacing its values."""
    data: dict[str, Any] = read_grid_yaml(args.config) if args.config else {}
    env_kwargs = _json_object(args.env_kwargs, "--env-kwargs") if args.env_kwargs else {}
    if args.envs:
        data["envs"] = [{"name": name, "kwargs": env_kwargs} for name in args.envs]
    elif env_kwargs:
        raise SweepError("--env-kwargs needs --envs")
    options = {
        "algos": args.algos,
        "seeds": args.seeds,
        "timesteps": args.timesteps,
        "eval_episodes": args.eval_episodes,
        "eval_freq": args.eval_freq,
        "policy": args.policy,
        "overrides": [_json_object(o, "--override") for o in args.override] if args.override else None,
    }
    data.update({key: value for key, value in options.items() if value is not None})
    if args.set:
        data["algo_kwargs"] = {
            **kwargs_mapping(data.get("algo_kwargs"), "algo_kwargs"),
            **_key_values(args.set),
        }
    return SweepGrid.from_dict(data)


def _rich_table(result: SweepResult) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(
            f"Sweep: {len(result.runs)} runs in {result.wall_s:.0f} s (median [min, max] over seeds)"
        )
    )
    for name in ("algorithm", "environment", "overrides"):
        table.add_column(name, overflow="fold")
    for name in ("runs ok", "test return", "win rate"):
        table.add_column(name, justify="right", no_wrap=True)
    for (algo, env, tag), cell in group_by_cell(result.runs).items():
        ok, returns, wins = cell_outcomes(cell)
        style = None if len(ok) == len(cell) else "red"
        cells = (algo, env, tag, f"{len(ok)}/{len(cell)}", median_range(returns), median_range(wins))
        table.add_row(*(escape(text) for text in cells), style=style)
    return table


def cli_main(argv: list[str]) -> int:
    """``marl-lsf sweep``: run a grid; exit 0 when every run succeeded, 1 when some failed, 2 on bad input."""
    from rich.console import Console
    from rich.markup import escape

    args = _parser().parse_args(argv)
    console, err_console = Console(), Console(stderr=True)
    try:
        grid = grid_from_args(args)
        with console.status(f"training {len(grid.runs(args.results))} runs on Ray"):
            result = sweep(
                grid,
                args.results,
                address=args.address,
                num_cpus=args.num_cpus,
                cpus_per_run=args.cpus_per_run,
                gpus_per_run=args.gpus_per_run,
            )
    except SweepError as exc:
        err_console.print(f"[bold red]marl-lsf sweep: error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2
    console.print(_rich_table(result))
    for run in result.failed:
        console.print(
            f"[red]FAILED[/] {escape(f'{run.algo} / {run.env} / {run.tag} / seed {run.seed}: {run.error}')}",
            soft_wrap=True,
        )
    console.print(
        f"{len(result.runs) - len(result.failed)} of {len(result.runs)} runs succeeded; "
        f"summary in {result.summary_md}",
        soft_wrap=True,
    )
    return 0 if result.ok else 1
