"""The ``marl-lsf`` command: train, evaluate, replay and plot cooperative multi-agent agents.

Every subcommand is a thin layer over the library: ``train`` builds an algorithm on a named env
(``marl_lsf.env_registry``) and calls ``learn`` with ``marl_lsf.callbacks.EvalCallback``,
``marl_lsf.checkpoint.CheckpointCallback`` and a logger from ``marl_lsf.checkpoint.configure_logger``
(so ``train --resume`` continues a run's checkpoints and logs); ``eval`` runs
``marl_lsf.evaluate_policy``; ``replay`` uses ``marl_lsf.replay``; ``plot`` uses
``marl_lsf.plotting``; ``sweep`` forwards to ``marl_lsf.sweep``. A run folder written by ``train``
holds ``run.json`` (the command's settings), so ``eval``, ``replay`` and ``train --resume``
rebuild the env from it.

A run folder is untrusted input (it may come from a shared disk or a collaborator's archive):
its ``run.json`` is read as data and never names code to run. It may name only registered
environments (``marl_lsf.env_registry.is_registered``) and algorithms (``ALGORITHMS``); a
``module:factory`` env in it is refused unless the user names the same env with ``--env`` or
passes ``--trust-run-config``. See SECURITY.md.

Bad input (unknown names, missing files, malformed JSON, a model used on the wrong env) ends with
a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import inspect
import json
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import TqdmExperimentalWarning

import marl_lsf
from marl_lsf.algorithms import ALGORITHMS, MultiAgentAlgorithm, algorithm_class
from marl_lsf.callbacks import EvalCallback
from marl_lsf.checkpoint import CheckpointCallback, configure_logger, latest_checkpoint
from marl_lsf.env_registry import EnvFactory, is_registered, make_env_factory, valid_names
from marl_lsf.evaluation import evaluate_policy
from marl_lsf.save_util import load_model_file, model_path

RUN_SETTINGS = "run.json"
EXIT_USAGE = 2

console = Console()
err_console = Console(stderr=True)


class CliError(Exception):
    """A user error reported as one line, with exit status 2."""


# -- parsing helpers ------------------------------------------------------------------------------


def parse_kwargs(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    """Keyword arguments from a JSON object and/or ``key=value`` pairs (values read as JSON if they parse).

    ``['{"n_prey": 4}']``, ``["n_prey=4", "render_mode=ansi"]`` and mixtures are accepted; later
    items override earlier ones.
    """
    kwargs: dict[str, Any] = {}
    for item in items or ():
        text = item.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise CliError(f"{option}: invalid JSON {text!r} ({exc.msg} at character {exc.pos})") from exc
            if not isinstance(value, dict):
                raise CliError(f"{option}: expected a JSON object, got {text!r}")
            kwargs.update(value)
            continue
        key, sep, raw = text.partition("=")
        if not sep or not key.isidentifier():
            raise CliError(f"{option}: expected a JSON object or key=value pairs, got {text!r}")
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    return kwargs


def _timesteps(text: str) -> int:
    """argparse type: a non-negative whole number of steps, ``2e6`` style allowed."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a non-negative whole number, got {text!r}")
    return int(value)


def resolve_algorithm(name: str) -> type[MultiAgentAlgorithm]:
    """The algorithm class for ``--algo``."""
    try:
        return algorithm_class(name)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def load_model(path: str | Path, device: str = "auto") -> MultiAgentAlgorithm:
    """Load a saved model of any marl-lsf algorithm (the file says which)."""
    path = Path(path)
    if not path.is_file() and not model_path(path).is_file():
        raise CliError(f"no model file at {path}")
    data, _ = load_model_file(path)
    name = data.get("algorithm")
    cls = {algo.__name__: algo for algo in ALGORITHMS.values()}.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CliError(f"{path} holds a {name!r} model, which this marl_lsf installation does not provide")
    return cls.load(path, device=device)


def read_run_settings(path: Path) -> dict[str, Any]:
    """A ``run.json`` as data: a JSON object, read without importing or calling anything it names."""
    try:
        settings = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CliError(f"{path} is not valid JSON ({getattr(exc, 'msg', type(exc).__name__)})") from exc
    if not isinstance(settings, dict):
        raise CliError(f"{path} does not hold a JSON object")
    return settings


def find_run_settings(model_file: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The path and settings of the ``run.json`` of a model file's run (its folder or the folder above)."""
    folder = Path(model_file).resolve().parent
    for candidate in (folder / RUN_SETTINGS, folder.parent / RUN_SETTINGS):
        if candidate.is_file():
            return candidate, read_run_settings(candidate)
    return None


def run_env(
    settings: dict[str, Any], source: Path, given_env: str | None, trust: bool
) -> tuple[str, dict[str, Any]]:
    """``(env name, env kwargs)`` from a ``run.json``, refusing what a run folder may not choose.

    A registered env name (``marl_lsf.env_registry.is_registered``) is accepted. Any other name is
    a ``module:factory`` path that would be imported and called, so it is refused unless the user
    named the same env on the command line (``given_env``) or passed ``--trust-run-config``
    (``trust``).
    """
    env = settings.get("env")
    if not isinstance(env, str) or not env:
        raise CliError(f'{source}: "env" must be an environment name, got {env!r}')
    kwargs = settings.get("env_kwargs", {})
    if not isinstance(kwargs, dict):
        raise CliError(f'{source}: "env_kwargs" must be a JSON object, got {type(kwargs).__name__}')
    if not (is_registered(env) or trust or env == given_env):
        raise CliError(
            f"{source} names the env {env!r}, which is not a registered env name but code to import and "
            f"call; a run folder may not choose code to run. If you trust this folder, pass "
            f"--env {shlex.quote(env)} (or --trust-run-config)"
        )
    return env, kwargs


def env_factory_for(args: argparse.Namespace, **extra: Any) -> EnvFactory:
    """The env of ``--env``/``--env-kwargs``, or of the model's ``run.json`` (updated by ``--env-kwargs``).

    The ``run.json`` is untrusted: see ``run_env``.
    """
    kwargs = parse_kwargs(args.env_kwargs, "--env-kwargs")
    if args.env is not None:
        return make_env_factory(args.env, **kwargs, **extra)
    found = find_run_settings(args.model)
    if found is None or "env" not in found[1]:
        raise CliError(f"no --env given and no {RUN_SETTINGS} next to {args.model}; pass --env NAME")
    name, run_kwargs = run_env(found[1], found[0], None, args.trust_run_config)
    return make_env_factory(name, **{**run_kwargs, **kwargs}, **extra)


# -- train ----------------------------------------------------------------------------------------


#: Defaults of ``train``'s options; None in the parser, so ``--resume`` can tell which were given.
TRAIN_DEFAULTS: dict[str, Any] = {
    "algo": "lsfsac",
    "policy": "MlpPolicy",
    "timesteps": 100_000,
    "seed": 0,
    "n_envs": 1,
    "eval_freq": 0,
    "eval_episodes": 10,
    "checkpoint_freq": 0,
}
#: ``train`` options a resumed run takes from its ``run.json`` and may not change.
RESUME_FIXED = ("env", "env_kwargs", "algo", "policy", "seed", "n_envs", "algo_kwargs", "out")
#: ``train`` options a resumed run may change (the new values are written to its ``run.json``).
RESUME_OVERRIDES = ("timesteps", "eval_freq", "eval_episodes", "checkpoint_freq")
#: What a run folder holds besides ``run.json``; a new run refuses a folder that has any of it.
RUN_OUTPUTS = (RUN_SETTINGS, "progress.csv", "model.zip", "checkpoints")
KEEP_CHECKPOINTS = 3


def _option(name: str) -> str:
    """The command-line spelling of an option's ``argparse`` name (``n_envs`` -> ``--n-envs``)."""
    return "--" + name.replace("_", "-")


def cmd_train(args: argparse.Namespace) -> int:
    """``marl-lsf train``: train an algorithm and write a run folder, or continue one (``--resume``)."""
    if args.resume is not None:
        return _resume(args)
    if args.env is None:
        raise CliError("train needs --env NAME (or --resume DIR to continue a run)")
    for name, default in TRAIN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    cls = resolve_algorithm(args.algo)
    env_kwargs = parse_kwargs(args.env_kwargs, "--env-kwargs")
    algo_kwargs = parse_kwargs(args.algo_kwargs, "--algo-kwargs")
    factory = make_env_factory(args.env, **env_kwargs)
    out = Path(args.out or f"runs/{args.algo}_{args.env.replace(':', '_')}_s{args.seed}")
    existing = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if existing:
        raise CliError(
            f"{out} already holds a run ({', '.join(existing)}); continue it with --resume {out}, "
            "or remove it or pick another --out"
        )
    try:
        model = cls(
            args.policy, factory, n_envs=args.n_envs, seed=args.seed, device=args.device, **algo_kwargs
        )
    except TypeError as exc:
        raise CliError(f"--algo-kwargs: {exc}") from exc
    settings = {
        "algo": args.algo.lower(),
        "env": args.env,
        "env_kwargs": env_kwargs,
        "policy": args.policy,
        "seed": args.seed,
        "timesteps": args.timesteps,
        "n_envs": args.n_envs,
        "algo_kwargs": algo_kwargs,
        "eval_freq": args.eval_freq,
        "eval_episodes": args.eval_episodes,
        "checkpoint_freq": args.checkpoint_freq,
        "marl_lsf_version": marl_lsf.__version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    console.print(
        f"Training [bold]{cls.__name__}[/] ({escape(args.policy)}) on [bold]{escape(args.env)}[/] "
        f"for {args.timesteps:,} steps, seed {args.seed} -> {escape(str(out))}"
    )
    return _learn(model, factory, out, settings, args, resume_step=None)


def _resume(args: argparse.Namespace) -> int:
    """``marl-lsf train --resume DIR``: continue a run from its newest checkpoint (or its model.zip)."""
    given = [_option(name) for name in RESUME_FIXED if name != "env" and getattr(args, name) is not None]
    if given:
        raise CliError(f"--resume takes the run's settings from its {RUN_SETTINGS}; drop {', '.join(given)}")
    out = Path(args.resume)
    if not out.is_dir():
        raise CliError(f"--resume: {out} is not a folder")
    path = out / RUN_SETTINGS
    if not path.is_file():
        raise CliError(f"--resume: {out} is not a run folder (it has no {RUN_SETTINGS})")
    settings = read_run_settings(path)
    missing = [key for key in ("algo", "env", "timesteps") if key not in settings]
    if missing:
        raise CliError(f"{path} lacks the settings {', '.join(missing)}")
    if args.env is not None and args.env != settings["env"]:
        raise CliError(
            f"--env {args.env} differs from the run's env {settings['env']!r} in {path}; "
            "--env with --resume may only confirm the run's env"
        )
    env_name, env_kwargs = run_env(settings, path, args.env, args.trust_run_config)
    if not isinstance(settings["algo"], str):
        raise CliError(f'{path}: "algo" must be an algorithm name, got {settings["algo"]!r}')
    for name in ("n_envs", *RESUME_OVERRIDES):
        value, least = settings.get(name, 1), int(name == "n_envs")
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise CliError(f'{path}: "{name}" must be a whole number of at least {least}, got {value!r}')
    for name in RESUME_OVERRIDES:
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    checkpoint = latest_checkpoint(out / "checkpoints", "model")
    if checkpoint is None and (out / "model.zip").is_file():
        checkpoint = out / "model.zip"
    if checkpoint is None:
        raise CliError(
            f"--resume: {out} has no checkpoints/model_*_steps.zip and no model.zip to resume from"
        )
    cls = resolve_algorithm(settings["algo"])
    factory = make_env_factory(env_name, **env_kwargs)
    total = int(settings["timesteps"])
    model = cls.load(checkpoint, env=factory, device=args.device, n_envs=settings.get("n_envs", 1))
    if model.num_timesteps >= total:
        model.env.close()
        console.print(
            f"{escape(str(out))} is complete: {model.num_timesteps:,} of {total:,} steps "
            f"({escape(str(checkpoint))}); pass --timesteps N to train it further",
            soft_wrap=True,
        )
        return 0
    (out / RUN_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    console.print(
        f"Resuming [bold]{cls.__name__}[/] on [bold]{escape(settings['env'])}[/] from "
        f"{escape(str(checkpoint))} at {model.num_timesteps:,} of {total:,} steps"
    )
    return _learn(model, factory, out, settings, args, resume_step=model.num_timesteps)


def _best_logged_return(progress: Path) -> float:
    """The best ``eval/mean_return`` in a run's ``progress.csv`` (-inf when it has none)."""
    if not progress.is_file():
        return float("-inf")
    with progress.open(newline="") as handle:
        values = [row.get("eval/mean_return") for row in csv.DictReader(handle)]
    return max((float(value) for value in values if value), default=float("-inf"))


def _learn(
    model: MultiAgentAlgorithm,
    factory: EnvFactory,
    out: Path,
    settings: dict[str, Any],
    args: argparse.Namespace,
    resume_step: int | None,
) -> int:
    """Train ``model`` up to ``settings["timesteps"]`` steps, logging into ``out``; save and summarize."""
    formats = ["csv"] + ([] if args.quiet else ["stdout"])
    if importlib.util.find_spec("tensorboard") is not None:
        formats.append("tensorboard")
    # A resumed run drops the log rows written after its checkpoint, then appends.
    model.set_logger(configure_logger(out, formats, resume_step=resume_step))
    callbacks: list[BaseCallback] = []
    evaluator = None
    eval_freq = int(settings.get("eval_freq") or 0)
    if eval_freq:
        evaluator = EvalCallback(
            factory,
            eval_freq,
            int(settings.get("eval_episodes") or TRAIN_DEFAULTS["eval_episodes"]),
            best_model_save_path=out,
            seed=int(settings.get("seed") or 0) + 10_000,
            evaluate_at_start=resume_step is None,
        )
        if resume_step is not None:
            evaluator.best_mean_return = _best_logged_return(out / "progress.csv")
        callbacks.append(evaluator)
    checkpoint_freq = int(settings.get("checkpoint_freq") or 0)
    if checkpoint_freq:
        callbacks.append(
            CheckpointCallback(
                checkpoint_freq, out / "checkpoints", name_prefix="model", keep_last=KEEP_CHECKPOINTS
            )
        )
    interrupted = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
            model.learn(
                int(settings["timesteps"]) - model.num_timesteps,
                callback=callbacks,
                reset_num_timesteps=resume_step is None,
                progress_bar=not args.quiet,
            )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        model.env.close()
        model.logger.close()
    saved = model.save(out / "model.zip")
    table = Table(title="interrupted: model saved" if interrupted else "training done")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("environment steps", f"{model.num_timesteps:,}")
    if model.ep_info_buffer:
        table.add_row(
            "mean training return (recent episodes)",
            f"{np.mean([ep['r'] for ep in model.ep_info_buffer]):.3f}",
        )
    if evaluator is not None and evaluator.history:
        table.add_row("best eval mean return", f"{evaluator.best_mean_return:.3f}")
    table.add_row("model", str(saved))
    table.add_row("logs", str(out))
    console.print(table)
    return 130 if interrupted else 0


# -- eval -----------------------------------------------------------------------------------------


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


# -- replay ---------------------------------------------------------------------------------------


def _action_names(env: Any) -> Sequence[str] | None:
    """Action names an env publishes (an ``action_names`` attribute or its module's ``ACTION_NAMES``)."""
    names = getattr(env, "action_names", None) or getattr(inspect.getmodule(type(env)), "ACTION_NAMES", None)
    return names if isinstance(names, Sequence) and not isinstance(names, str) else None


def cmd_replay(args: argparse.Namespace) -> int:
    """``marl-lsf replay``: render one episode of a saved model as GIF/MP4, a text trace or an SC2 replay."""
    from marl_lsf.replay import format_trace, record_episode, save_animation, step_captions

    model = load_model(args.model, args.device)
    factory = env_factory_for(args)
    probe = factory()
    modes = list(getattr(probe, "metadata", {}).get("render_modes", []))
    sc2 = callable(getattr(probe, "save_replay", None))
    names = _action_names(probe)
    probe.close()
    out = args.out
    suffix = "" if out in (None, "-") else Path(out).suffix.lower()
    if out is None and not args.text:
        if "rgb_array" in modes:
            out, suffix = str(Path(args.model).parent / "replay.gif"), ".gif"
        elif not sc2:
            out = "-"
    text = args.text or out == "-" or suffix == ".txt"
    if not text and out is not None and "rgb_array" not in modes:
        raise CliError(
            f"{factory.name} cannot render images (its render modes: {', '.join(modes) or 'none'}); "
            "use --text or --out trace.txt for a text trace"
        )
    render_mode = ("ansi" if "ansi" in modes else None) if text else ("rgb_array" if out else None)
    recording = record_episode(
        model,
        factory.with_kwargs(render_mode=render_mode),
        seed=args.seed,
        deterministic=not args.stochastic,
        sc2_replay=sc2 and out is None and not text,
    )
    summary = f"{recording.length} steps, return {recording.episode_return:+.3f}"
    if text:
        trace = format_trace(recording, names)
        if out in (None, "-"):
            console.print(trace, markup=False, highlight=False)
        else:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(trace + "\n")
            console.print(f"wrote the text trace to {escape(out)} ({summary})")
    elif out is None:
        console.print(f"StarCraft II saved the replay of the episode in its Replays folder ({summary})")
    else:
        path = save_animation(recording.frames, out, args.fps, step_captions(recording))
        console.print(f"wrote {escape(str(path))}: {len(recording.frames)} frames ({summary})")
    return 0


# -- plot -----------------------------------------------------------------------------------------


def cmd_plot(args: argparse.Namespace) -> int:
    """``marl-lsf plot``: learning curves of run folders, grouped by their settings."""
    from marl_lsf.plotting import find_run_folders, load_run_curves, plot_curves, shared_setup

    label_by = [name.strip() for name in args.label_by.split(",") if name.strip()] or None
    folders = find_run_folders(args.runs)
    groups = load_run_curves(folders, args.key, label_by)
    title = args.title or " - ".join(filter(None, [args.key, shared_setup(folders)]))
    path = plot_curves(groups, args.out, "environment steps", args.key, title)
    table = Table(title=f"{args.key}: {path}")
    table.add_column("group")
    table.add_column("runs", justify="right")
    table.add_column("final value (median)", justify="right")
    for label, curves in groups.items():
        table.add_row(escape(label), str(len(curves)), f"{np.median([y[-1] for _, y in curves]):.3f}")
    console.print(table)
    return 0


# -- sweep ----------------------------------------------------------------------------------------


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


# -- the parser -----------------------------------------------------------------------------------


class _HelpFormatter(argparse.HelpFormatter):
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


def _add_env_options(parser: argparse.ArgumentParser, where: str) -> None:
    parser.add_argument("--env", metavar="NAME", help=f"environment: {valid_names()}{where}")
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        action="extend",
        metavar="KWARGS",
        help="env constructor arguments: a JSON object or key=value pairs, e.g. grid_size=5 n_prey=2",
    )


def _add_trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-run-config",
        action="store_true",
        help=f"let the run folder's {RUN_SETTINGS} name a module:factory env, which is imported and called "
        "(off: only registered env names are taken from a run folder; see SECURITY.md)",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file written by `marl-lsf train`, e.g. runs/pp/model.zip")
    _add_env_options(parser, " (default: the env in the run.json next to the model)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the first episode")
    parser.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of taking the greedy ones"
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu or cuda")
    _add_trust_option(parser)


def _subparser(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=description, formatter_class=_HelpFormatter)


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

    train = _subparser(
        sub,
        "train",
        "train agents and write a run folder",
        "Train agents on an environment. The run folder receives run.json (these settings), progress.csv "
        "and TensorBoard logs, model.zip and, when asked for, best_model.zip and checkpoints/. "
        "--resume DIR continues a run that stopped (or trains a finished one further).",
    )
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR from its newest checkpoint (else its model.zip), with the settings "
        "in its run.json; --timesteps N sets a new total, and --eval-freq, --eval-episodes and "
        "--checkpoint-freq may change too; --env may only repeat the run's env",
    )
    _add_trust_option(train)
    train.add_argument(
        "--algo", help=f"algorithm: {', '.join(ALGORITHMS)} (default: {TRAIN_DEFAULTS['algo']})"
    )
    _add_env_options(train, " (required unless --resume)")
    train.add_argument(
        "--policy",
        choices=["MlpPolicy", "RnnPolicy"],
        help=f"agent networks (default: {TRAIN_DEFAULTS['policy']})",
    )
    train.add_argument(
        "--timesteps",
        type=_timesteps,
        metavar="N",
        help=f"environment steps in all, e.g. 2e6 (default: {TRAIN_DEFAULTS['timesteps']})",
    )
    train.add_argument(
        "--seed", type=int, metavar="N", help=f"random seed (default: {TRAIN_DEFAULTS['seed']})"
    )
    train.add_argument("--out", metavar="DIR", help="run folder (default: runs/<algo>_<env>_s<seed>)")
    train.add_argument(
        "--n-envs",
        type=int,
        metavar="N",
        help=f"environment copies, processes when > 1 (default: {TRAIN_DEFAULTS['n_envs']})",
    )
    train.add_argument(
        "--eval-freq",
        type=_timesteps,
        metavar="STEPS",
        help="steps between evaluations, also one at the start (default: 0, none)",
    )
    train.add_argument(
        "--eval-episodes",
        type=int,
        metavar="K",
        help=f"episodes per evaluation (default: {TRAIN_DEFAULTS['eval_episodes']})",
    )
    train.add_argument(
        "--checkpoint-freq",
        type=_timesteps,
        metavar="STEPS",
        help=f"steps between checkpoints; the newest {KEEP_CHECKPOINTS} are kept (default: 0, none)",
    )
    train.add_argument(
        "--algo-kwargs",
        nargs="+",
        action="extend",
        metavar="KWARGS",
        help="algorithm arguments: a JSON object or key=value pairs, e.g. batch_size=16 ent_coef=0.1",
    )
    train.add_argument("--device", default="auto", help="torch device: auto, cpu or cuda")
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar and no log tables in the terminal"
    )
    train.set_defaults(func=cmd_train)

    evaluate = _subparser(
        sub,
        "eval",
        "evaluate a saved model",
        "Run episodes with a saved model's decentralized policies; print the return, win rate and length.",
    )
    _add_model_options(evaluate)
    evaluate.add_argument("--episodes", type=int, default=32, metavar="K", help="episodes to run")
    evaluate.set_defaults(func=cmd_eval)

    replay = _subparser(
        sub,
        "replay",
        "render an episode of a saved model",
        "Render one episode of a saved model: a GIF or MP4 (envs with render mode rgb_array), a per-step "
        "text trace (--text, --out -, --out trace.txt), or a StarCraft II replay (SMAC).",
    )
    _add_model_options(replay)
    replay.add_argument(
        "--out",
        metavar="FILE",
        help=".gif, .mp4 (needs imageio[ffmpeg]), .txt, or - for the terminal (default: replay.gif next to "
        "the model when the env renders images, else the terminal)",
    )
    replay.add_argument("--text", action="store_true", help="a per-step text trace instead of images")
    replay.add_argument("--fps", type=float, default=5.0, help="frames per second of the animation")
    replay.set_defaults(func=cmd_replay)

    plot = _subparser(
        sub,
        "plot",
        "plot learning curves of run folders",
        "Plot learning curves from run folders' progress.csv: per group of runs with the same run.json "
        "settings, the median over seeds and a min-max band.",
    )
    plot.add_argument("runs", nargs="+", help="run folders, or folders with run folders at any depth")
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
    plot.set_defaults(func=cmd_plot)

    sub.add_parser("sweep", help="run a hyperparameter sweep (see `marl-lsf sweep --help`)", add_help=False)
    return parser


def _guarded(action: Callable[[], int]) -> int:
    """Run a subcommand; user errors become one line on stderr and exit status 2."""
    try:
        return action()
    except (CliError, ValueError, FileNotFoundError, ImportError) as exc:
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


if __name__ == "__main__":
    sys.exit(main())
