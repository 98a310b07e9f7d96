"""One figure and one table from several predator-prey learning-curve results, beside the public rerun.

    python benchmarks/predator_prey_compare.py --name predator_prey_paper_comparison \
        --runs "QMIX=predator_prey_qmix_control.md" "LSF-SAC=predator_prey_lsfsac_authors_1m.runs.jsonl"

Each ``--runs LABEL=FILE[,FILE...]`` reads the curves of one group from results files of
``predator_prey.py curve`` under ``--out``: its ``.runs.jsonl`` (one line per finished run), the
per-seed table of its ``.md`` (results written before those files existed) or, for runs stopped
before they finished, the evaluations it printed (its output saved as a ``.log``). The figure
draws each group's median greedy test return with a min-max band over seeds; the table gives the
final and best returns, the steps reached and the public rerun's 1M-step figures of pymarl's
implementations on the same env (``PUBLIC_RERUN`` in ``predator_prey.py``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from predator_prey import PUBLIC_RERUN
from runs import RESULTS, command, machine, write_keeping_section

from marl_lsf.plotting import plot_curves

Curve = tuple[np.ndarray, np.ndarray]
#: Heading of the hand-written reading of a results file, kept when the file is rewritten.
READING_HEADING = "## Reading"


def curves_from_jsonl(path: Path) -> list[Curve]:
    """The ``(steps, returns)`` curve of every run in a ``.runs.jsonl`` file."""
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(np.array(run["steps"], float), np.array(run["returns"], float)) for run in runs if run["steps"]]


def curves_from_markdown(path: Path) -> list[Curve]:
    """The per-seed curves of the ``| env steps | ... seed N |`` table of a ``predator_prey.py curve`` results file."""
    lines = path.read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("| env steps |"))
    except StopIteration:
        raise ValueError(f"{path}: no '| env steps |' table of per-seed returns") from None
    n_seeds = lines[start].count("|") - 2
    steps, values = [], []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        steps.append(float(cells[0].replace(",", "")))
        values.append([float(cell) if cell else np.nan for cell in cells[1 : 1 + n_seeds]])
    table = np.array(values, float)
    return [(np.array(steps), table[:, seed]) for seed in range(n_seeds)]


#: An evaluation line printed by ``runs.run_job``: ``[label] seed N] step X: test return Y (M min)``.
EVAL_LINE = re.compile(r"seed (\d+)\] step ([\d,]+): test return (-?[\d.]+)")


def curves_from_log(path: Path) -> list[Curve]:
    """The per-seed curves of the evaluation lines in the saved output of ``predator_prey.py curve``."""
    points: dict[int, list[tuple[float, float]]] = {}
    for seed, step, value in EVAL_LINE.findall(path.read_text()):
        points.setdefault(int(seed), []).append((float(step.replace(",", "")), float(value)))
    return [(np.array([x for x, _ in p]), np.array([y for _, y in p])) for _, p in sorted(points.items())]


def read_curves(path: Path) -> list[Curve]:
    """Curves from a ``.runs.jsonl``, ``.md`` or ``.log`` results file."""
    readers = {".jsonl": curves_from_jsonl, ".md": curves_from_markdown, ".log": curves_from_log}
    if path.suffix not in readers:
        raise ValueError(
            f"{path}: expected a .runs.jsonl, .md or .log results file of predator_prey.py curve"
        )
    return readers[path.suffix](path)


#: Steps at which the table gives each group's median greedy test return.
CHECKPOINTS = (250_000, 500_000, 750_000, 1_000_000)


def at_step(curves: list[Curve], step: float) -> str:
    """Median return at ``step`` over the curves that reached it, with their count, or a dash."""
    finite = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in curves]
    values = [np.interp(step, x, y) for x, y in finite if x.size and x[-1] >= step]
    return f"{np.median(values):.1f} ({len(values)})" if values else "-"


def summary_row(label: str, source: str, curves: list[Curve]) -> str:
    """``| label | seeds | median at each checkpoint | final median [min, max] | steps reached | sources |``."""
    finals = [y[np.isfinite(y)][-1] for _, y in curves]
    reached = [x[np.isfinite(y)][-1] for x, y in curves]
    return (
        f"| {label} | {len(curves)} | "
        + " | ".join(at_step(curves, step) for step in CHECKPOINTS)
        + f" | {np.median(finals):.1f} [{min(finals):.1f}, {max(finals):.1f}] | {int(np.median(reached)):,} | "
        + ", ".join(f"[{name}]({name})" for name in source.split(","))
        + " |"
    )


def main() -> None:
    """Command line: read the groups, write ``<name>.md`` and ``<name>.png`` under ``--out``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", nargs="+", required=True, metavar="LABEL=FILE[,FILE]", help="a group and its results files"
    )
    parser.add_argument("--name", default="predator_prey_comparison", help="stem of the result files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    groups: dict[str, list[Curve]] = {}
    sources: dict[str, str] = {}
    for spec in args.runs:
        label, sep, file = spec.rpartition("=")
        if not sep or not label or not file:
            parser.error(f"--runs expects LABEL=FILE, got {spec!r}")
        curves = [curve for name in file.split(",") for curve in read_curves(args.out / name)]
        if not curves:
            parser.error(f"{file}: no run to draw")
        groups[label], sources[label] = curves, file
    rows = [summary_row(label, sources[label], curves) for label, curves in groups.items()]
    plot_curves(
        groups,
        args.out / f"{args.name}.png",
        ylabel="greedy test return (mean of 16 episodes)",
        title="Predator-prey, punishment -2: median, min-max over seeds",
    )
    lines = [
        "# Predator-prey (the paper's Fig. 3 setting): LSF-SAC, MASAC and QMIX at the same budget",
        "",
        f"Command: `{command()}`",
        f"Machine (drawing only; each source file gives the machine of its runs): {machine()}",
        "",
        "| algorithm | seeds | "
        + " | ".join(f"at {step:,} (seeds)" for step in CHECKPOINTS)
        + " | final (median [min, max]) | env steps reached (median) | source |",
        "|---|---:|" + "---:|" * len(CHECKPOINTS) + "---|---:|---|",
        *rows,
        "",
        *PUBLIC_RERUN,
        "",
        f"![curves]({args.name}.png)",
    ]
    write_keeping_section(args.out / f"{args.name}.md", "\n".join(lines) + "\n\n", READING_HEADING)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
