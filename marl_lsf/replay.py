"""Replays of trained agents: record one episode, save it as a GIF/MP4 or a text trace.

``record_episode`` plays one episode with the model's decentralized policies on a fresh env from
``env_factory`` and keeps what the env renders at every step (``rgb_array`` images, ``ansi``
text, or nothing when the env has no render mode), plus each step's actions and team reward.
``save_animation`` writes the images (GIF with Pillow; MP4 with imageio's ffmpeg plugin);
``format_trace`` turns the episode into a per-step text trace. For SMAC, ``record_episode(...,
sc2_replay=True)`` asks StarCraft II to save its own replay.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.team_env import EnvFactory, TeamEnv

#: Height in pixels of the caption strip drawn under every animation frame.
CAPTION_PX = 14


class ReplayError(ValueError):
    """A replay that cannot be produced as asked (wrong render mode, unsupported file type)."""


@dataclass
class Recording:
    """One recorded episode.

    Attributes:
        agents: the agent names, in the model's slot order.
        frames: what the env rendered after reset and after every step (``length + 1`` entries:
            ``uint8`` images for ``rgb_array``, strings for ``ansi``), empty without a render mode.
        actions: per step, the action of every agent that acted (``agent -> action``).
        rewards: per step, the team reward.
        won: whether the env reported a won episode (None when it reports nothing).
    """

    agents: tuple[str, ...]
    frames: list[Any] = field(default_factory=list)
    actions: list[dict[str, int]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    won: bool | None = None

    @property
    def length(self) -> int:
        """Number of steps in the episode."""
        return len(self.rewards)

    @property
    def episode_return(self) -> float:
        """Sum of the team rewards."""
        return float(np.sum(self.rewards))


def record_episode(
    model: MultiAgentAlgorithm,
    env_factory: EnvFactory,
    seed: int | None = None,
    deterministic: bool = True,
    max_steps: int = 100_000,
    sc2_replay: bool = False,
) -> Recording:
    """Play one episode with ``model``'s decentralized policies and record it.

    Args:
        model: a trained (or loaded) algorithm.
        env_factory: zero-argument callable returning a fresh PettingZoo ParallelEnv, built with
            the ``render_mode`` wanted in ``Recording.frames`` (or none).
        seed: seed of the env's reset.
        deterministic: greedy actions (True) or sampled ones.
        max_steps: safety limit for envs without a time limit.
        sc2_replay: call the env's ``save_replay()`` after the episode (SMAC: StarCraft II
            writes a ``.SC2Replay`` file into its replay folder).

    Raises:
        ValueError: when the env does not match the model's agents and spaces.
    """
    team = TeamEnv(env_factory(), model.team_reward)
    try:
        problem = model.spec.mismatch(team.spec_)
        if problem is not None:
            raise ValueError(f"the replay env does not match the model's spaces ({problem})")
        recording = Recording(team.spec_.agents)
        rendering = team.render_mode is not None
        obs, _ = team.reset(seed=seed)
        if rendering:
            recording.frames.append(team.render())
        hidden = None
        for _ in range(max_steps):
            live = obs["alive"].astype(bool)
            actions, hidden = model.act(
                obs["obs"][None], obs["avail"][None].astype(bool), hidden, deterministic
            )
            obs, reward, terminated, truncated, info = team.step(actions[0])
            recording.actions.append(
                {agent: int(actions[0, i]) for i, agent in enumerate(recording.agents) if live[i]}
            )
            recording.rewards.append(float(reward))
            if rendering:
                recording.frames.append(team.render())
            if terminated or truncated:
                if "won" in info:
                    recording.won = bool(info["won"])
                break
        if sc2_replay:
            team.env.save_replay()
    finally:
        team.close()
    return recording


def format_trace(recording: Recording, action_names: Sequence[str] | None = None) -> str:
    """A per-step text trace: actions, reward, running return, and the ``ansi`` frames if any."""
    text_frames = [frame for frame in recording.frames if isinstance(frame, str)]
    lines: list[str] = []
    if text_frames:
        lines += ["step 0 (reset)", text_frames[0], ""]
    running = 0.0
    for t, (actions, reward) in enumerate(zip(recording.actions, recording.rewards, strict=True), start=1):
        running += reward
        named = ", ".join(f"{agent}={_action_name(a, action_names)}" for agent, a in actions.items())
        lines.append(f"step {t}: {named} | reward {reward:+.3f} | return {running:+.3f}")
        if t < len(text_frames):
            lines += [text_frames[t], ""]
    outcome = "" if recording.won is None else (", won" if recording.won else ", lost")
    lines.append(f"episode: {recording.length} steps, return {recording.episode_return:+.3f}{outcome}")
    return "\n".join(lines)


def _action_name(action: int, names: Sequence[str] | None) -> str:
    return names[action] if names is not None and 0 <= action < len(names) else str(action)


def step_captions(recording: Recording) -> list[str]:
    """One caption per frame: the step number, the step's reward and the running return."""
    captions = ["t=0"]
    running = 0.0
    for t, reward in enumerate(recording.rewards, start=1):
        running += reward
        captions.append(f"t={t} r={reward:+g} R={running:+g}")
    return captions


def save_animation(
    frames: Sequence[np.ndarray], path: str | Path, fps: float = 5.0, captions: Sequence[str] | None = None
) -> Path:
    """Save ``rgb_array`` frames as a GIF or MP4, chosen by the suffix of ``path``.

    Every frame gets a caption strip underneath (``captions``, by default the frame index), which
    also keeps GIF encoders from merging identical consecutive frames: the file holds exactly
    ``len(frames)`` frames.

    Raises:
        ReplayError: for no frames, frames that are not ``H x W x 3`` images, an unsupported suffix,
            or MP4 without imageio's ffmpeg plugin (``pip install imageio[ffmpeg]``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ReplayError(f"cannot write {path}: use a .gif or .mp4 file (or a .txt file for a text trace)")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ReplayError(
            "MP4 needs imageio's ffmpeg plugin: `pip install imageio[ffmpeg]` (or write a .gif)"
        )
    images = _captioned(frames, captions)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        first, *rest = (Image.fromarray(image) for image in images)
        first.save(path, save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
    else:
        import imageio.v2 as imageio

        imageio.mimsave(path, images, fps=fps, macro_block_size=1)
    return path


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 5.0) -> Path:
    """Save ``rgb_array`` frames as an animated GIF (one GIF frame per frame); see ``save_animation``."""
    if Path(path).suffix.lower() != ".gif":
        raise ReplayError(f"save_gif writes .gif files, got {path}")
    return save_animation(frames, path, fps)


def _captioned(frames: Sequence[np.ndarray], captions: Sequence[str] | None) -> list[np.ndarray]:
    if not frames:
        raise ReplayError("no frames to save: was the env built with render_mode='rgb_array'?")
    if captions is None:
        captions = [f"t={i}" for i in range(len(frames))]
    if len(captions) != len(frames):
        raise ReplayError(f"{len(captions)} captions for {len(frames)} frames")
    images = []
    for frame, caption in zip(frames, captions, strict=True):
        array = np.asarray(frame)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ReplayError(
                f"frames must be H x W x 3 images (render_mode='rgb_array'), got shape {array.shape}"
            )
        canvas = Image.new("RGB", (array.shape[1], array.shape[0] + CAPTION_PX), (255, 255, 255))
        canvas.paste(Image.fromarray(array.astype(np.uint8)), (0, 0))
        ImageDraw.Draw(canvas).text((2, array.shape[0] + 1), caption, fill=(0, 0, 0))
        images.append(np.asarray(canvas))
    return images
