"""Model files as data: a zip of ``data.json`` (settings, spaces, counters) and ``tensors.pt``.

``tensors.pt`` holds only tensors, numbers, strings and containers of them (network and optimizer
state dicts) and is read with ``torch.load(weights_only=True)``, which refuses any pickled object
instead of running it. Nothing else in the file is ever executed.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
DATA_NAME = "data.json"
TENSORS_NAME = "tensors.pt"


class ModelFileError(ValueError):
    """A model file that is not a valid marl-lsf model file (or not for this algorithm/env)."""


def model_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with a ``.zip`` suffix added when it has none (as Stable-Baselines3 does)."""
    path = Path(path)
    return path if path.suffix == ".zip" else path.with_name(path.name + ".zip")


def save_model_file(path: str | os.PathLike[str], data: dict[str, Any], tensors: dict[str, Any]) -> Path:
    """Write a model file atomically: a crash mid-write never leaves a truncated file at ``path``."""
    path = model_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = io.BytesIO()
    torch.save(tensors, payload)
    data = {"format_version": FORMAT_VERSION, **data}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(DATA_NAME, json.dumps(data, indent=2, sort_keys=True))
            archive.writestr(TENSORS_NAME, payload.getvalue())
            raw.flush()
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model_file(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read ``(data, tensors)`` from a model file without executing anything in it."""
    path = Path(path)
    if not path.exists() and model_path(path).exists():
        path = model_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = {DATA_NAME, TENSORS_NAME} - names
            if missing:
                raise ModelFileError(f"{path} is not a marl-lsf model file: it lacks {sorted(missing)}")
            data = json.loads(archive.read(DATA_NAME))
            raw_tensors = archive.read(TENSORS_NAME)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(f"{path} is not a readable model file (truncated or corrupt zip: {exc})") from exc
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: {DATA_NAME} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: unsupported model file format {data.get('format_version')!r}")
    try:
        tensors = torch.load(io.BytesIO(raw_tensors), map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"{path}: {TENSORS_NAME} contains pickled objects other than tensors; refusing to load it "
            f"(nothing from it was run). Details: {exc}"
        ) from exc
    except (RuntimeError, EOFError) as exc:
        raise ModelFileError(f"{path}: {TENSORS_NAME} is truncated or corrupt ({exc})") from exc
    if not isinstance(tensors, dict):
        raise ModelFileError(f"{path}: {TENSORS_NAME} does not hold a dict of tensors")
    return data, tensors
