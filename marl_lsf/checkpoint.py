"""Checkpoints during training, resuming from them, and logs that continue across a resume.

A run that checkpoints and can be resumed after a crash::

    from marl_lsf.checkpoint import CheckpointCallback, configure_logger, latest_checkpoint

    model = LSFSAC("MlpPolicy", env, seed=0)
    model.set_logger(configure_logger("runs/x", ["stdout", "csv"]))
    model.learn(total, callback=CheckpointCallback(10_000, "runs/x/checkpoints", save_replay_buffer=True))

    # after a crash: continue from the newest checkpoint, ending at the same total
    model = LSFSAC.load(latest_checkpoint("runs/x/checkpoints"), env=env)
    model.set_logger(configure_logger("runs/x", ["stdout", "csv"], resume_step=model.num_timesteps))
    model.learn(total - model.num_timesteps, reset_num_timesteps=False,
                callback=CheckpointCallback(10_000, "runs/x/checkpoints", save_replay_buffer=True))

Every checkpoint is written atomically (see ``marl_lsf.save_util``), so a crash while writing one
leaves the previous checkpoints intact. What a resumed run loses: the steps since the checkpoint,
and the episodes that were unfinished when it was written (the envs restart from a reset).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import (
    CSVOutputFormat,
    HumanOutputFormat,
    JSONOutputFormat,
    KVWriter,
    Logger,
    TensorBoardOutputFormat,
    make_output_format,
)

from marl_lsf.algorithms.base import NonFiniteError

__all__ = [
    "AppendingCSVOutputFormat",
    "AppendingJSONOutputFormat",
    "CheckpointCallback",
    "ResumingTensorBoardOutputFormat",
    "NonFiniteError",
    "checkpoint_step",
    "configure_logger",
    "latest_checkpoint",
    "list_checkpoints",
]

#: The logged key that orders rows of the CSV/JSON logs (written by every ``dump_logs``).
STEP_KEY = "time/total_timesteps"

_CHECKPOINT_NAME = re.compile(r"^(?P<prefix>.+)_(?P<steps>\d+)_steps\.zip$")


class CheckpointCallback(BaseCallback):
    """Save the model every ``save_freq`` environment steps during ``learn``, keeping the newest few.

    Files are named ``{name_prefix}_{num_timesteps}_steps.zip`` (Stable-Baselines3's naming) and
    written atomically. Each holds the networks, optimizers, temperature, counters, episode
    statistics and random number generator states; with ``save_replay_buffer`` also the replay
    buffer's complete episodes. A last checkpoint is written when training ends without an error. The
    newest checkpoint's path is kept in ``model.last_checkpoint``.

    Args:
        save_freq: environment steps between checkpoints (counted over all envs, like
            ``num_timesteps``).
        save_path: folder of the checkpoints (created if needed).
        name_prefix: file name prefix.
        keep_last: how many checkpoints with this prefix to keep (older ones are deleted after a
            new one is written); None keeps all.
        save_replay_buffer: include the replay buffer, so a resumed run trains on the same data.
        verbose: 1 prints each checkpoint's path.
    """

    def __init__(
        self,
        save_freq: int,
        save_path: str | os.PathLike[str],
        name_prefix: str = "ckpt",
        keep_last: int | None = 3,
        save_replay_buffer: bool = False,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if save_freq < 1:
            raise ValueError(f"save_freq must be >= 1 environment step, got {save_freq}")
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_last must be >= 1 or None, got {keep_last}")
        if not name_prefix or "/" in name_prefix or os.sep in name_prefix:
            raise ValueError(f"name_prefix must be a non-empty file name prefix, got {name_prefix!r}")
        self.save_freq = save_freq
        self.save_path = Path(save_path)
        self.name_prefix = name_prefix
        self.keep_last = keep_last
        self.save_replay_buffer = save_replay_buffer
        self._last_saved_step = 0

    def _init_callback(self) -> None:
        self.save_path.mkdir(parents=True, exist_ok=True)
        self._last_saved_step = self.model.num_timesteps
        # Temporary files of a write that a crash interrupted.
        for stale in self.save_path.glob(f".{self.name_prefix}_*_steps.zip.*.tmp"):
            stale.unlink(missing_ok=True)

    def _on_step(self) -> bool:
        if self.model.num_timesteps // self.save_freq > self._last_saved_step // self.save_freq:
            self.save()
        return True

    def _on_training_end(self) -> None:
        # Also when a checkpoint of this step exists: it was taken before the step's last update.
        self.save()

    def save(self) -> Path:
        """Write a checkpoint now, then delete the ones beyond ``keep_last``; returns its path."""
        steps = self.model.num_timesteps
        path = self.model.save(
            self.save_path / f"{self.name_prefix}_{steps}_steps.zip", include_buffer=self.save_replay_buffer
        )
        self.model.last_checkpoint = path
        self._last_saved_step = steps
        if self.verbose >= 1:
            print(f"Saving checkpoint to {path}")
        if self.keep_last is not None:
            for old in list_checkpoints(self.save_path, self.name_prefix)[: -self.keep_last]:
                old.unlink(missing_ok=True)
        return path


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """The step count in a checkpoint's file name (``ckpt_1200_steps.zip`` -> 1200), or None."""
    match = _CHECKPOINT_NAME.match(Path(path).name)
    return int(match["steps"]) if match else None


def list_checkpoints(folder: str | os.PathLike[str], name_prefix: str | None = None) -> list[Path]:
    """The checkpoints in ``folder`` (optionally only those with ``name_prefix``), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match and path.is_file() and (name_prefix is None or match["prefix"] == name_prefix):
            found.append((int(match["steps"]), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(folder: str | os.PathLike[str], name_prefix: str | None = None) -> Path | None:
    """The checkpoint with the most steps in ``folder``, or None when there is none (or no folder)."""
    checkpoints = list_checkpoints(folder, name_prefix)
    return checkpoints[-1] if checkpoints else None


class AppendingCSVOutputFormat(CSVOutputFormat):
    """Stable-Baselines3's CSV log (``progress.csv``), continued instead of overwritten.

    An existing file keeps its header and rows; a row cut off by a crash is dropped, and with
    ``resume_step`` so are the rows logged after that step (by a run that went on past the
    checkpoint it is resumed from), so the continued log has neither gaps nor duplicate rows.

    Args:
        filename: the CSV file.
        resume_step: drop rows whose ``time/total_timesteps`` exceeds it (None keeps every row).
    """

    def __init__(self, filename: str | os.PathLike[str], resume_step: int | None = None) -> None:
        path = Path(filename)
        header = _prune_log(path, resume_step, _csv_step, keep_first=True)
        # Read-write, not append: Stable-Baselines3 rewrites the file from the top when new keys appear.
        self.file = open(path, "r+" if path.exists() else "w+")  # noqa: SIM115 - closed by close()
        self.file.seek(0, os.SEEK_END)
        self.keys = next(csv.reader([header])) if header else []
        self.separator = ","
        self.quotechar = '"'


class AppendingJSONOutputFormat(JSONOutputFormat):
    """Stable-Baselines3's JSON-lines log (``progress.json``), continued like ``AppendingCSVOutputFormat``.

    Args:
        filename: the JSON-lines file.
        resume_step: drop rows whose ``time/total_timesteps`` exceeds it (None keeps every row).
    """

    def __init__(self, filename: str | os.PathLike[str], resume_step: int | None = None) -> None:
        path = Path(filename)
        _prune_log(path, resume_step, _json_step, keep_first=False)
        self.file = open(path, "a")  # noqa: SIM115 - closed by close()


class ResumingTensorBoardOutputFormat(TensorBoardOutputFormat):
    """Stable-Baselines3's TensorBoard writer that, on a resume, hides the events logged after the checkpoint.

    The writer opens with torch's ``SummaryWriter(purge_step=resume_step + 1)``: it records a
    session start at that step, and TensorBoard then discards the earlier event files' points at
    or after it, so the curves show each step once instead of the killed attempt's steps twice.
    ``resume_step=-1`` hides every earlier point (a run started again from step 0).
    """

    def __init__(self, folder: str, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(
            log_dir=folder, purge_step=None if resume_step is None else resume_step + 1
        )
        self._is_closed = False


def configure_logger(
    folder: str | os.PathLike[str],
    format_strings: Sequence[str] = ("stdout", "csv"),
    resume_step: int | None = None,
) -> Logger:
    """A Stable-Baselines3 ``Logger`` whose files continue an existing run's logs in ``folder``.

    Like ``stable_baselines3.common.logger.configure``, but ``csv`` (``progress.csv``), ``json``
    (``progress.json``) and ``log`` (``log.txt``) append to what is there instead of truncating
    it. Pass ``resume_step=model.num_timesteps`` when resuming from a checkpoint: CSV and JSON rows
    logged after that step are removed first, and TensorBoard is told to hide its points after that
    step (``ResumingTensorBoardOutputFormat``); ``resume_step=-1`` drops them all (a run that starts
    again). ``log.txt`` is only appended to. Use it with ``model.set_logger(...)``.

    Args:
        folder: the log folder (created if needed).
        format_strings: any of ``stdout``, ``csv``, ``json``, ``log``, ``tensorboard``.
        resume_step: the step of the checkpoint a run resumes from (None for a new run).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    outputs: list[KVWriter] = []
    for fmt in format_strings:
        if fmt == "csv":
            outputs.append(AppendingCSVOutputFormat(folder / "progress.csv", resume_step))
        elif fmt == "json":
            outputs.append(AppendingJSONOutputFormat(folder / "progress.json", resume_step))
        elif fmt == "log":
            human = HumanOutputFormat(open(folder / "log.txt", "a"))  # noqa: SIM115 - closed by close()
            human.own_file = True
            outputs.append(human)
        elif fmt == "tensorboard":
            outputs.append(ResumingTensorBoardOutputFormat(str(folder), resume_step))
        else:
            outputs.append(make_output_format(fmt, str(folder)))
    return Logger(folder=str(folder), output_formats=outputs)


def _csv_step(line: str, header: str) -> float | None:
    """The step of a CSV row, None when the row is malformed (wrong column count) or has none."""
    keys, row = next(csv.reader([header])), next(csv.reader([line]), [])
    if len(row) != len(keys):
        raise ValueError("column count differs from the header")
    return float(row[keys.index(STEP_KEY)]) if STEP_KEY in keys and row[keys.index(STEP_KEY)] else None


def _json_step(line: str, header: str) -> float | None:
    """The step of a JSON-lines row (None when it has none)."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("a JSON log row must be an object")
    value = row.get(STEP_KEY)
    return None if value is None else float(value)


def _prune_log(
    path: Path,
    resume_step: int | None,
    step_of: Callable[[str, str], float | None],
    keep_first: bool,
) -> str:
    """Drop a log's cut-off or malformed rows and those after ``resume_step``; returns the header.

    The file is rewritten atomically, and only when something is dropped. ``keep_first`` keeps
    the first line as a header (CSV).
    """
    if not path.exists():
        return ""
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    header = lines[0] if keep_first and lines else ""
    kept = [header] if header else []
    for line in lines[len(kept) :]:
        try:
            step = step_of(line, header)
        except ValueError:
            continue
        if resume_step is not None and step is not None and step > resume_step:
            break
        kept.append(line)
    if "".join(kept) != original:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as out:
            out.writelines(kept)
        shutil.copymode(path, tmp)  # the log keeps its permissions (mkstemp's file is 0600)
        os.replace(tmp, path)
    return header
