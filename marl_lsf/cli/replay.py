"""``marl-lsf replay``: render one episode of a saved model with ``marl_lsf.replay``."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape

from marl_lsf.cli.common import CliError, console, env_factory_for, load_model, positive
from marl_lsf.cli.options import add_model_options, add_subparser


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


def add_replay_parser(sub: Any) -> None:
    """Add ``replay`` and its options to the subcommands ``sub``."""
    replay = add_subparser(
        sub,
        "replay",
        "render an episode of a saved model",
        "Render one episode of a saved model: a GIF or MP4 (envs with render mode rgb_array), a per-step "
        "text trace (--text, --out -, --out trace.txt), or a StarCraft II replay (SMAC).",
    )
    add_model_options(replay)
    replay.add_argument(
        "--out",
        metavar="FILE",
        help=".gif, .mp4 (needs imageio[ffmpeg]), .txt, or - for the terminal (default: replay.gif next to "
        "the model when the env renders images, else the terminal)",
    )
    replay.add_argument("--text", action="store_true", help="a per-step text trace instead of images")
    replay.add_argument("--fps", type=positive(float), default=5.0, help="frames per second of the animation")
    replay.set_defaults(func=cmd_replay)
