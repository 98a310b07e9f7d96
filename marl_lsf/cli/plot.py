"""``marl-lsf plot``: learning curves of run folders (or sweeps' ``summary.json``) with ``marl_lsf.plotting``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from marl_lsf.cli.common import CliError, console
from marl_lsf.cli.options import add_subparser


def cmd_plot(args: argparse.Namespace) -> int:
    """``marl-lsf plot``: learning curves of run folders and sweep summaries, grouped by their settings."""
    from marl_lsf.plotting import (
        common_last_step,
        find_runs,
        load_run_curves,
        plot_curves,
        shared_setup,
        value_at,
    )

    label_by = [name.strip() for name in args.label_by.split(",") if name.strip()] or None
    folders = find_runs(args.runs)
    groups = load_run_curves(folders, args.key, label_by)
    title = args.title or " - ".join(filter(None, [args.key, shared_setup(folders)]))
    path = plot_curves(groups, args.out, "environment steps", args.key, title)
    # Runs cut at different steps are compared where all of them got to, beside their own ends.
    common = common_last_step(groups)
    headers = ["group", "runs", f"at {common:,.0f}", "final", "best", "final step"]
    rows = []
    for label, curves in groups.items():
        at_common = value_at(curves, common) if common is not None else None
        rows.append(
            [
                label,
                str(len(curves)),
                "-" if at_common is None else f"{at_common:.3f}",
                f"{np.median([y[-1] for _, y in curves]):.3f}",
                f"{np.median([y.max() for _, y in curves]):.3f}",
                f"{np.median([x[-1] for x, _ in curves]):,.0f}",
            ]
        )
    caption = (
        "medians over each group's runs: at the last step all runs reached, at their own ends, and their best"
    )
    table = Table(title=f"{args.key}: {path}", caption=caption)
    table.add_column(headers[0], overflow="fold")
    for header in headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(escape(row[0]), *row[1:])
    console.print(table)
    if args.table:
        lines = [
            f"{args.key} ({caption}; `{' '.join(str(r) for r in args.runs)}`)",
            "",
            "| " + " | ".join(headers) + " |",
            "|---|" + "---:|" * (len(headers) - 1),
            *("| " + " | ".join(row) + " |" for row in rows),
            "",
        ]
        try:
            Path(args.table).write_text("\n".join(lines))
        except OSError as exc:
            raise CliError(f"--table {args.table}: cannot write it ({exc.strerror or exc})") from None
        console.print(f"table written to {escape(str(args.table))}", soft_wrap=True)
    return 0


def add_plot_parser(sub: Any) -> None:
    """Add ``plot`` and its options to the subcommands ``sub``."""
    plot = add_subparser(
        sub,
        "plot",
        "plot learning curves of run folders",
        "Plot learning curves from run folders' progress.csv: per group of runs with the same run.json "
        "settings, the median over seeds and a min-max band. A sweep's summary.json stands in for its "
        "run folders (its runs' algo, env, tag and seed, and their evaluation curves), e.g. to merge "
        "sweeps whose run folders are gone or on other machines: group them with --label-by algo.",
    )
    plot.add_argument(
        "runs",
        nargs="+",
        help="run folders, folders with run folders at any depth, or sweeps' summary.json files",
    )
    plot.add_argument("--out", default="curves.png", metavar="FILE", help="image file to write")
    plot.add_argument(
        "--key", default="rollout/ep_rew_mean", help="logged value to plot, e.g. eval/mean_return"
    )
    plot.add_argument(
        "--label-by",
        default="",
        metavar="FIELDS",
        help="run.json fields that group the runs, e.g. algo,env (default: every setting but the seed)",
    )
    plot.add_argument(
        "--title", help="figure title (default: the key and the runs' shared algo and env settings)"
    )
    plot.add_argument(
        "--table",
        metavar="FILE",
        help="also write the table of the groups as markdown to FILE (e.g. for a results file)",
    )
    plot.set_defaults(func=cmd_plot)
