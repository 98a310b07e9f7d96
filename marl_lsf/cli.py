"""The ``marl-lsf`` command: train, evaluate, replay and plot cooperative multi-agent agents.

Every subcommand is a thin layer over the library: ``train`` builds an algorithm on a named env
(``marl_lsf.env_registry``) and calls ``learn`` with Stable-Baselines3 callbacks and logger;
``eval`` runs ``marl_lsf.evaluate_policy``; ``replay`` uses ``marl_lsf.replay``; ``plot`` uses
``marl_lsf.plotting``; ``sweep`` forwards to ``marl_lsf.sweep``. A run folder written by ``train``
holds ``run.json`` (the command's settings), so ``eval`` and ``replay`` rebuild the env from it.

Bad input (unknown names, missing files, malformed JSON, a model used on the wrong env) ends with
a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.logger import configure
from tqdm import TqdmExperimentalWarning

import marl_lsf
from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.env_registry import EnvFactory, make_env_factory, valid_names
from marl_lsf.evaluation import EvaluationResult, evaluate_policy
from marl_lsf.save_util import load_model_file, model_path
from marl_lsf.team_env import TeamVecEnv, make_team_vec_env

#: Algorithm names accepted by ``--algo`` and the ``marl_lsf`` attribute each stands for.
ALGORITHMS: dict[str, str] = {"lsfsac": "LSFSAC", "qmix": "QMIX", "vdn": "VDN"}
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
    """The algorithm class for ``--algo`` (looked up lazily on ``marl_lsf``)."""
    key = name.lower()
    if key not in ALGORITHMS:
        raise CliError(f"unknown algorithm {name!r}; valid algorithms: {', '.join(ALGORITHMS)}")
    cls = getattr(marl_lsf, ALGORITHMS[key], None)
    if cls is None:
        raise CliError(
            f"algorithm {name!r} ({ALGORITHMS[key]}) is not available in this marl_lsf installation"
        )
    return cls


def load_model(path: str | Path, device: str = "auto") -> MultiAgentAlgorithm:
    """Load a saved model of any marl-lsf algorithm (the file says which)."""
    path = Path(path)
    if not path.is_file() and not model_path(path).is_file():
        raise CliError(f"no model file at {path}")
    data, _ = load_model_file(path)
    name = data.get("algorithm")
    cls = getattr(marl_lsf, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, MultiAgentAlgorithm)):
        raise CliError(f"{path} holds a {name!r} model, which this marl_lsf installation does not provide")
    return cls.load(path, device=device)


def find_run_settings(model_file: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of the run a model file belongs to (its folder or the folder above)."""
    folder = Path(model_file).resolve().parent
    for candidate in (folder / RUN_SETTINGS, folder.parent / RUN_SETTINGS):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise CliError(f"{candidate} is not valid JSON ({exc.msg})") from exc
    return None


def env_factory_for(args: argparse.Namespace, **extra: Any) -> EnvFactory:
    """The env of ``--env``/``--env-kwargs``, or of the model's ``run.json`` (updated by ``--env-kwargs``)."""
    kwargs = parse_kwargs(args.env_kwargs, "--env-kwargs")
    if args.env is not None:
        return make_env_factory(args.env, **kwargs, **extra)
    settings = find_run_settings(args.model)
    if settings is None or "env" not in settings:
        raise CliError(f"no --env given and no {RUN_SETTINGS} next to {args.model}; pass --env NAME")
    return make_env_factory(settings["env"], **{**settings.get("env_kwargs", {}), **kwargs}, **extra)


# -- train ----------------------------------------------------------------------------------------


class EvalCallback(BaseCallback):
    """Evaluate the model every ``eval_freq`` environment steps; log ``eval/*`` and keep the best model.

    Logs ``eval/mean_return``, ``eval/std_return``, ``eval/mean_ep_length`` and, for envs that
    report wins, ``eval/win_rate``, then dumps the logger at the current step (as
    Stable-Baselines3's ``EvalCallback`` does).

    Args:
        env_factory: zero-argument factory of the evaluation env.
        eval_freq: environment steps between evaluations.
        n_eval_episodes: episodes per evaluation.
        best_model_save_path: where the best model so far is saved (None: not saved).
        deterministic: greedy (True) or sampled actions.
        seed: seed of the evaluation env's first reset.
        verbose: 1 prints a line per evaluation.
    """

    def __init__(
        self,
        env_factory: EnvFactory,
        eval_freq: int,
        n_eval_episodes: int = 10,
        best_model_save_path: str | Path | None = None,
        deterministic: bool = True,
        seed: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq < 1 or n_eval_episodes < 1:
            raise ValueError(
                f"eval_freq and n_eval_episodes must be >= 1, got {eval_freq}, {n_eval_episodes}"
            )
        self.env_factory = env_factory
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.best_model_save_path = None if best_model_save_path is None else Path(best_model_save_path)
        self.deterministic = deterministic
        self.seed = seed
        self.best_mean_return = -np.inf
        self.last_result: EvaluationResult | None = None
        self._next_eval = eval_freq
        self._eval_env: TeamVecEnv | None = None

    def _init_callback(self) -> None:
        self._eval_env = make_team_vec_env(self.env_factory, 1, "sync", self.model.team_reward)
        self._next_eval = self.model.num_timesteps + self.eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next_eval:
            return True
        while self._next_eval <= self.num_timesteps:
            self._next_eval += self.eval_freq
        result = evaluate_policy(
            self.model, self._eval_env, self.n_eval_episodes, self.deterministic, self.seed
        )
        self.last_result = result
        self.logger.record("eval/mean_return", result.mean_return)
        self.logger.record("eval/std_return", result.std_return)
        self.logger.record("eval/mean_ep_length", result.mean_length)
        if result.win_rate is not None:
            self.logger.record("eval/win_rate", result.win_rate)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if self.verbose >= 1:
            console.print(f"eval at {self.num_timesteps} steps: mean return {result.mean_return:.3f}")
        if result.mean_return > self.best_mean_return:
            self.best_mean_return = result.mean_return
            if self.best_model_save_path is not None:
                self.model.save(self.best_model_save_path)
        return True

    def _on_training_end(self) -> None:
        if self._eval_env is not None:
            self._eval_env.close()


def cmd_train(args: argparse.Namespace) -> int:
    """``marl-lsf train``: train an algorithm and write a run folder."""
    cls = resolve_algorithm(args.algo)
    env_kwargs = parse_kwargs(args.env_kwargs, "--env-kwargs")
    algo_kwargs = parse_kwargs(args.algo_kwargs, "--algo-kwargs")
    factory = make_env_factory(args.env, **env_kwargs)
    out = Path(args.out or f"runs/{args.algo}_{args.env.replace(':', '_')}_s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "algo": args.algo.lower(),
        "env": args.env,
        "env_kwargs": env_kwargs,
        "policy": args.policy,
        "seed": args.seed,
        "timesteps": args.timesteps,
        "n_envs": args.n_envs,
        "algo_kwargs": algo_kwargs,
        "marl_lsf_version": marl_lsf.__version__,
    }
    (out / RUN_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    try:
        model = cls(
            args.policy, factory, n_envs=args.n_envs, seed=args.seed, device=args.device, **algo_kwargs
        )
    except TypeError as exc:
        raise CliError(f"--algo-kwargs: {exc}") from exc
    formats = ["csv"] + ([] if args.quiet else ["stdout"])
    if importlib.util.find_spec("tensorboard") is not None:
        formats.append("tensorboard")
    model.set_logger(configure(str(out), formats))
    callbacks: list[BaseCallback] = []
    evaluator = None
    if args.eval_freq:
        evaluator = EvalCallback(
            factory, args.eval_freq, args.eval_episodes, out / "best_model.zip", seed=args.seed + 10_000
        )
        callbacks.append(evaluator)
    if args.checkpoint_freq:
        save_freq = max(1, args.checkpoint_freq // model.n_envs)
        callbacks.append(CheckpointCallback(save_freq, str(out / "checkpoints"), name_prefix="model"))
    console.print(
        f"Training [bold]{cls.__name__}[/] ({escape(args.policy)}) on [bold]{escape(args.env)}[/] "
        f"for {args.timesteps:,} steps, seed {args.seed} -> {escape(str(out))}"
    )
    interrupted = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
            model.learn(args.timesteps, callback=callbacks, progress_bar=not args.quiet)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        model.env.close()
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
    if evaluator is not None and evaluator.last_result is not None:
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


def _run_folders(paths: Sequence[str]) -> list[Path]:
    """Run folders among ``paths``: each path itself, or its subfolders that hold a ``progress.csv``."""
    folders: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise CliError(f"{path} is not a folder")
        if (path / "progress.csv").is_file():
            folders.append(path)
        else:
            folders += sorted(child for child in path.iterdir() if (child / "progress.csv").is_file())
    if not folders:
        raise CliError(f"no run folders (with a progress.csv) in {', '.join(paths)}")
    return folders


def cmd_plot(args: argparse.Namespace) -> int:
    """``marl-lsf plot``: learning curves of run folders, grouped by their settings."""
    from marl_lsf.plotting import load_run_curves, plot_curves

    label_by = [name.strip() for name in args.label_by.split(",") if name.strip()]
    groups = load_run_curves(_run_folders(args.runs), args.key, label_by)
    path = plot_curves(groups, args.out, "environment steps", args.key, args.title or args.key)
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
  marl-lsf eval runs/pp/model.zip --episodes 32
  marl-lsf replay runs/pp/model.zip --out replay.gif
  marl-lsf replay runs/mg_s1/model.zip --text
  marl-lsf plot runs/* --out curves.png --key eval/mean_return
"""


def _add_env_options(parser: argparse.ArgumentParser, required: bool) -> None:
    where = "" if required else " (default: the env in the run.json next to the model)"
    parser.add_argument(
        "--env", required=required, metavar="NAME", help=f"environment: {valid_names()}{where}"
    )
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        action="extend",
        metavar="KWARGS",
        help="env constructor arguments: a JSON object or key=value pairs, e.g. grid_size=5 n_prey=2",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file written by `marl-lsf train`, e.g. runs/pp/model.zip")
    _add_env_options(parser, required=False)
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the first episode")
    parser.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of taking the greedy ones"
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu or cuda")


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
        "and TensorBoard logs, model.zip and, when asked for, best_model.zip and checkpoints/.",
    )
    train.add_argument("--algo", default="lsfsac", help=f"algorithm: {', '.join(ALGORITHMS)}")
    _add_env_options(train, required=True)
    train.add_argument(
        "--policy", default="MlpPolicy", choices=["MlpPolicy", "RnnPolicy"], help="agent networks"
    )
    train.add_argument(
        "--timesteps", type=_timesteps, default=100_000, metavar="N", help="environment steps, e.g. 2e6"
    )
    train.add_argument("--seed", type=int, default=0, metavar="N", help="random seed")
    train.add_argument("--out", metavar="DIR", help="run folder (default: runs/<algo>_<env>_s<seed>)")
    train.add_argument(
        "--n-envs", type=int, default=1, metavar="N", help="environment copies (processes when > 1)"
    )
    train.add_argument(
        "--eval-freq", type=_timesteps, default=0, metavar="STEPS", help="steps between evaluations, 0: none"
    )
    train.add_argument("--eval-episodes", type=int, default=10, metavar="K", help="episodes per evaluation")
    train.add_argument(
        "--checkpoint-freq",
        type=_timesteps,
        default=0,
        metavar="STEPS",
        help="steps between checkpoints, 0: none",
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
    plot.add_argument("runs", nargs="+", help="run folders, or folders of run folders")
    plot.add_argument("--out", default="curves.png", metavar="FILE", help="image file to write")
    plot.add_argument(
        "--key", default="rollout/ep_rew_mean", help="logged value to plot, e.g. eval/mean_return"
    )
    plot.add_argument(
        "--label-by", default="algo,env", metavar="FIELDS", help="run.json fields that group the runs"
    )
    plot.add_argument("--title", help="figure title (default: the key)")
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
