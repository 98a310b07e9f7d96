"""``marl-lsf train``: train an algorithm into a run folder, or continue a run (``--resume``).

Training calls ``learn`` with ``marl_lsf.callbacks.EvalCallback``,
``marl_lsf.checkpoint.CheckpointCallback`` and a logger from ``marl_lsf.checkpoint.configure_logger``,
so ``train --resume`` continues a run's checkpoints and logs.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import TqdmExperimentalWarning

import marl_lsf
from marl_lsf.algorithms import ALGORITHMS, MultiAgentAlgorithm
from marl_lsf.callbacks import EvalCallback
from marl_lsf.checkpoint import CheckpointCallback, configure_logger, latest_checkpoint
from marl_lsf.cli.common import (
    RUN_SETTINGS,
    CliError,
    console,
    parse_device,
    parse_kwargs,
    parse_timesteps,
    positive,
    read_run_settings,
    resolve_algorithm,
    run_env,
)
from marl_lsf.cli.options import add_env_options, add_subparser, add_trust_option
from marl_lsf.cli.train_config import apply_config
from marl_lsf.env_registry import EnvFactory, env_settings, make_env_factory
from marl_lsf.presets import preset, preset_policy

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
RESUME_FIXED = ("env", "env_kwargs", "algo", "policy", "seed", "n_envs", "algo_kwargs", "out", "preset")
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
        if args.config is not None:
            raise CliError(f"--resume takes the run's settings from its {RUN_SETTINGS}; drop --config")
        return _resume(args)
    apply_config(args)
    if args.env is None:
        raise CliError("train needs --env NAME, or a --config file that names one (or --resume DIR)")
    preset_kwargs = _preset(args)
    for name, default in TRAIN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    cls = resolve_algorithm(args.algo)
    env_kwargs = parse_kwargs(args.env_kwargs, "--env-kwargs")
    algo_kwargs = preset_kwargs | parse_kwargs(args.algo_kwargs, "--algo-kwargs")
    factory = make_env_factory(args.env, **env_kwargs)
    out = Path(args.out or f"runs/{args.algo}_{args.env.replace(':', '_')}_s{args.seed}")
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file, not a folder; pick a folder for the run")
    existing = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if existing:
        raise CliError(
            f"{out} already holds a run ({', '.join(existing)}); continue it with --resume {out}, "
            "or remove it or pick another --out"
        )
    model = _new_model(cls, factory, args.policy, args.n_envs, args.seed, args.device, algo_kwargs)
    settings = {
        "algo": args.algo.lower(),
        "env": args.env,
        "env_kwargs": env_kwargs,
        "env_settings": env_settings(factory),
        "policy": args.policy,
        "seed": args.seed,
        "timesteps": args.timesteps,
        "n_envs": args.n_envs,
        "algo_kwargs": algo_kwargs,
        "preset": bool(args.preset),
        "hyperparameters": model.hyperparameters(),
        "eval_freq": args.eval_freq,
        "eval_episodes": args.eval_episodes,
        "checkpoint_freq": args.checkpoint_freq,
        "marl_lsf_version": marl_lsf.__version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    console.print(
        f"Training [bold]{cls.__name__}[/] ({escape(args.policy)}) on [bold]{escape(args.env)}[/] "
        f"for {args.timesteps:,} steps, seed {args.seed} -> {escape(str(out))}",
        soft_wrap=True,
    )
    return _learn(model, factory, out, settings, args, resume_step=None)


def _new_model(
    cls: type[MultiAgentAlgorithm],
    factory: EnvFactory,
    policy: str,
    n_envs: int,
    seed: int,
    device: str,
    algo_kwargs: dict[str, Any],
) -> MultiAgentAlgorithm:
    """A fresh ``cls`` on ``factory``; an argument the algorithm does not take is an ``--algo-kwargs`` error."""
    try:
        return cls(policy, factory, n_envs=n_envs, seed=seed, device=device, **algo_kwargs)
    except TypeError as exc:
        raise CliError(f"--algo-kwargs: {exc}") from exc


def _preset(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--preset`` settings of ``--env``/``--algo`` (``{}`` without it).

    The preset's ``n_envs`` fills an unset ``--n-envs``, and the agent networks it was measured
    with (``marl_lsf.presets.preset_policy``: ``RnnPolicy`` on SMAX) an unset ``--policy``.
    """
    if not args.preset:
        return {}
    algo = args.algo or TRAIN_DEFAULTS["algo"]
    try:
        settings = preset(args.env, algo)
        policy = preset_policy(args.env, algo)
    except ValueError as exc:
        raise CliError(f"--preset: {exc}") from exc
    n_envs = settings.pop("n_envs", None)
    if args.n_envs is None and n_envs is not None:
        args.n_envs = n_envs
    if args.policy is None:
        args.policy = policy
    return settings


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
    for name in ("n_envs", "seed", *RESUME_OVERRIDES):
        value, least = settings.get(name, 1), int(name == "n_envs")
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise CliError(f'{path}: "{name}" must be a whole number of at least {least}, got {value!r}')
    for name in RESUME_OVERRIDES:
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    # The newest save: a checkpoint, or model.zip when it was written later (at the end of the
    # run, or on Ctrl-C after the last checkpoint).
    checkpoint = latest_checkpoint(out / "checkpoints", "model")
    final = out / "model.zip"
    if final.is_file() and (checkpoint is None or final.stat().st_mtime_ns > checkpoint.stat().st_mtime_ns):
        checkpoint = final
    cls = resolve_algorithm(settings["algo"])
    factory = make_env_factory(env_name, **env_kwargs)
    total = int(settings["timesteps"])
    if checkpoint is None:
        # Stopped before its first checkpoint: nothing to continue, so the run starts again.
        algo_kwargs = settings.get("algo_kwargs", {})
        if not isinstance(algo_kwargs, dict):
            raise CliError(f'{path}: "algo_kwargs" must be a JSON object, got {type(algo_kwargs).__name__}')
        policy = settings.get("policy", TRAIN_DEFAULTS["policy"])
        seed = settings.get("seed", TRAIN_DEFAULTS["seed"])
        model = _new_model(cls, factory, policy, settings.get("n_envs", 1), seed, args.device, algo_kwargs)
        (out / RUN_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
        # Drops every row (and hides every TensorBoard point) the killed attempt logged.
        configure_logger(out, [f for f in _log_formats(args) if f != "stdout"], resume_step=-1).close()
        console.print(
            f"{escape(str(out))} stopped before its first checkpoint (no checkpoints/model_*_steps.zip, no "
            f"model.zip): starting [bold]{cls.__name__}[/] again from step 0 with its {RUN_SETTINGS}",
            soft_wrap=True,
        )
        return _learn(model, factory, out, settings, args, resume_step=None)
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


def _log_formats(args: argparse.Namespace) -> list[str]:
    """The logger's formats: CSV, the terminal unless ``--quiet``, TensorBoard when it is installed."""
    formats = ["csv"] + ([] if args.quiet else ["stdout"])
    if importlib.util.find_spec("tensorboard") is not None:
        formats.append("tensorboard")
    return formats


def _learn(
    model: MultiAgentAlgorithm,
    factory: EnvFactory,
    out: Path,
    settings: dict[str, Any],
    args: argparse.Namespace,
    resume_step: int | None,
) -> int:
    """Train ``model`` up to ``settings["timesteps"]`` steps, logging into ``out``; save and summarize."""
    # A resumed run drops the log rows written after its checkpoint, then appends.
    model.set_logger(configure_logger(out, _log_formats(args), resume_step=resume_step))
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
    table.add_column("", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_row("environment steps", f"{model.num_timesteps:,}")
    if model.ep_info_buffer:
        table.add_row(
            "mean training return (recent episodes)",
            f"{np.mean([ep['r'] for ep in model.ep_info_buffer]):.3f}",
        )
    if evaluator is not None and evaluator.history:
        table.add_row("best eval mean return", f"{evaluator.best_mean_return:.3f}")
    console.print(table)
    # The paths go below the table, each whole on one line: in a table cell a narrow or piped
    # terminal (80 columns) cut them to "a/very/long/...".
    console.print(f"model: {escape(str(saved))}\nlogs: {escape(str(out))}", soft_wrap=True, highlight=False)
    return 130 if interrupted else 0


def add_train_parser(sub: Any) -> None:
    """Add ``train`` and its options to the subcommands ``sub``."""
    train = add_subparser(
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
    add_trust_option(train)
    train.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of these options by name (algo, env, env_kwargs, timesteps, preset, "
        "algo_kwargs, ...; a run.json works too); options given here override it, kwargs merge key by key",
    )
    train.add_argument(
        "--algo", help=f"algorithm: {', '.join(ALGORITHMS)} (default: {TRAIN_DEFAULTS['algo']})"
    )
    add_env_options(train, " (required unless --resume)")
    train.add_argument(
        "--policy",
        choices=list(MultiAgentAlgorithm.policy_aliases),
        help=f"agent networks (default: {TRAIN_DEFAULTS['policy']})",
    )
    train.add_argument(
        "--timesteps",
        type=parse_timesteps,
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
        type=parse_timesteps,
        metavar="STEPS",
        help="steps between evaluations, also one at the start (default: 0, none)",
    )
    train.add_argument(
        "--eval-episodes",
        type=positive(int),
        metavar="K",
        help=f"episodes per evaluation (default: {TRAIN_DEFAULTS['eval_episodes']})",
    )
    train.add_argument(
        "--checkpoint-freq",
        type=parse_timesteps,
        metavar="STEPS",
        help=f"steps between checkpoints; the newest {KEEP_CHECKPOINTS} are kept (default: 0, none)",
    )
    train.add_argument(
        "--preset",
        action="store_true",
        default=None,
        help="start from the settings that measured best for this env and algorithm (marl_lsf.presets), "
        "its agent networks included (RnnPolicy on SMAX); --algo-kwargs, --n-envs and --policy override "
        "them, run.json records them",
    )
    train.add_argument(
        "--algo-kwargs",
        nargs="+",
        action="extend",
        metavar="KWARGS",
        help="algorithm arguments: a JSON object or key=value pairs, e.g. batch_size=16 ent_coef=0.1",
    )
    train.add_argument("--device", default="auto", type=parse_device, help="torch device: auto, cpu or cuda")
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar and no log tables in the terminal"
    )
    train.set_defaults(func=cmd_train)
