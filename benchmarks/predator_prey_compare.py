"""One figure and one table from several predator-prey learning-curve results, beside the public rerun.

    python benchmarks/predator_prey_compare.py --name predator_prey_paper_comparison \
        --runs "QMIX=predator_prey_qmix_control.md" "LSF-SAC=predator_prey_lsfsac_authors_1m.runs.jsonl"

Each ``--runs LABEL=FILE[,FILE...]`` (``FILE.md#COLUMN`` for one algorithm's columns) reads the curves of one group from results files of
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


def curves_from_markdown(path: Path, column: str | None = None) -> list[Curve]:
    """The per-seed curves of the ``| env steps | ... seed N |`` table of a ``predator_prey.py curve`` results file.

    ``column`` keeps only the columns headed ``<column> seed N`` (one algorithm or variant of a
    file that holds several); None keeps them all.
    """
    lines = path.read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("| env steps |"))
    except StopIteration:
        raise ValueError(f"{path}: no '| env steps |' table of per-seed returns") from None
    headers = [cell.strip() for cell in lines[start].strip().strip("|").split("|")][1:]
    keep = [
        i for i, header in enumerate(headers) if column is None or re.sub(r" seed \d+$", "", header) == column
    ]
    if not keep:
        names = sorted({re.sub(r" seed \d+$", "", header) for header in headers})
        raise ValueError(f"{path}: no column {column!r} in its per-seed table; it has {names}")
    steps, values = [], []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        steps.append(float(cells[0].replace(",", "")))
        values.append([float(cell) if cell else np.nan for cell in cells[1 : 1 + len(headers)]])
    table = np.array(values, float)
    return [(np.array(steps), table[:, i]) for i in keep]


#: An evaluation line printed by ``runs.run_job``: ``[label] seed N] step X: test return Y (M min)``.
EVAL_LINE = re.compile(r"seed (\d+)\] step ([\d,]+): test return (-?[\d.]+)")


def curves_from_log(path: Path) -> list[Curve]:
    """The per-seed curves of the evaluation lines in the saved output of ``predator_prey.py curve``."""
    points: dict[int, list[tuple[float, float]]] = {}
    for seed, step, value in EVAL_LINE.findall(path.read_text()):
        points.setdefault(int(seed), []).append((float(step.replace(",", "")), float(value)))
    return [(np.array([x for x, _ in p]), np.array([y for _, y in p])) for _, p in sorted(points.items())]


def read_curves(path: Path) -> list[Curve]:
    """Curves from a ``.runs.jsonl``, ``.md`` or ``.log`` results file; ``FILE.md#COLUMN`` picks columns."""
    name, _, column = path.name.partition("#")
    path = path.with_name(name)
    if column and path.suffix != ".md":
        raise ValueError(f"{path}: '#COLUMN' selects columns of a .md results file only")
    if path.suffix == ".md":
        return curves_from_markdown(path, column or None)
    readers = {".jsonl": curves_from_jsonl, ".log": curves_from_log}
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


def summary_row(label: str, sources: list[str], curves: list[Curve]) -> str:
    """``| label | seeds | median at each checkpoint | final median [min, max] | steps reached | sources |``."""
    finals = [y[np.isfinite(y)][-1] for _, y in curves]
    reached = [x[np.isfinite(y)][-1] for x, y in curves]
    return (
        f"| {label} | {len(curves)} | "
        + " | ".join(at_step(curves, step) for step in CHECKPOINTS)
        + f" | {np.median(finals):.1f} [{min(finals):.1f}, {max(finals):.1f}] | {int(np.median(reached)):,} | "
        + ", ".join(f"[{name}]({name.partition('#')[0]})" for name in sources)
        + " |"
    )


def split_files(text: str, folder: Path) -> list[str]:
    """The ``FILE[#COLUMN]`` entries of ``FILE,FILE...`` (a comma inside a ``#COLUMN`` name stays in it);
    empty when one of the files does not exist under ``folder``."""
    files: list[str] = []
    for part in text.split(","):
        if files and "#" in files[-1] and not (folder / part.partition("#")[0]).is_file():
            files[-1] += "," + part
        else:
            files.append(part)
    return files if all((folder / name.partition("#")[0]).is_file() for name in files) else []


def split_spec(spec: str, folder: Path) -> tuple[str, list[str]]:
    """``(label, files)`` of a ``LABEL=FILE[,FILE]`` entry, split at the ``=`` after which every file
    exists under ``folder`` (labels and ``#COLUMN`` names may both contain ``=``); ``("", [])`` if none."""
    for i, char in enumerate(spec):
        if char == "=" and i and (files := split_files(spec[i + 1 :], folder)):
            return spec[:i], files
    return "", []


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
    parser.add_argument("--title", default="Predator-prey, punishment -2: median, min-max over seeds")
    parser.add_argument("--ylabel", default="greedy test return (mean of 16 episodes)")
    parser.add_argument(
        "--figure-only",
        action="store_true",
        help="write only <name>.png (redraw the figure of an existing results file, keeping its .md)",
    )
    args = parser.parse_args()
    groups: dict[str, list[Curve]] = {}
    sources: dict[str, list[str]] = {}
    for spec in args.runs:
        label, files = split_spec(spec, args.out)
        if not label:
            parser.error(f"--runs expects LABEL=FILE with existing files under {args.out}, got {spec!r}")
        curves = [curve for name in files for curve in read_curves(args.out / name)]
        if not curves:
            parser.error(f"{spec}: no run to draw")
        groups[label], sources[label] = curves, files
    plot_curves(groups, args.out / f"{args.name}.png", ylabel=args.ylabel, title=args.title)
    if args.figure_only:
        print(f"wrote {args.out / f'{args.name}.png'}; redraw it with: {command()}")
        return
    rows = [summary_row(label, sources[label], curves) for label, curves in groups.items()]
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
