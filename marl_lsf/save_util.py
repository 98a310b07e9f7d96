"""Model files as data: a zip of ``data.json`` (settings, spaces, counters) and ``tensors.pt``.

``tensors.pt`` holds only tensors, numbers, strings and containers of them (network and optimizer
state dicts, RNG states, optionally the replay buffer) and is read with
``torch.load(weights_only=True)``, which refuses any pickled object instead of running it. Nothing
else in the file is ever executed.

Files are written atomically: the zip is built in a temporary file next to the target, flushed to
disk, then renamed over the target with ``os.replace``. A crash (or a full disk) mid-write leaves the
previous file untouched and at most a stray ``.<name>.*.tmp`` file beside it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import random
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
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
    """Write a model file atomically: a crash mid-write never leaves a truncated file at ``path``.

    ``tensors`` is streamed into the zip member (no second copy in memory), so large replay
    buffers can be saved. Returns the path written (with ``.zip`` added when missing). An
    ``OSError`` that names no file (a full disk) is raised with ``path`` as its file name, so its
    message says which file could not be saved.
    """
    path = model_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format_version": FORMAT_VERSION, **data}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file private (0600); a saved model gets the mode any new file gets.
        with contextlib.suppress(AttributeError, OSError):
            os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb") as raw:
            # Level 1: replay buffers compress ~20x at level 1 and ~36x at the default 6, 3.5x faster.
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
                archive.writestr(DATA_NAME, json.dumps(data, indent=2, sort_keys=True))
                with archive.open(TENSORS_NAME, "w", force_zip64=True) as member:
                    torch.save(tensors, member)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None and exc.errno is not None:
            exc.filename = str(path)  # a failed write (a full disk) names no file: name the one being saved
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file under the process's umask (0644 under umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: Largest ``data.json`` read: settings, spaces, counters and RNG states (tens of kB in practice).
MAX_DATA_BYTES = 16 * 2**20
#: Largest ratio of a member's size to its compressed size (above ``RATIO_FREE_BYTES``). Networks
#: compress ~1.1x and replay buffers ~20x at the level ``save_model_file`` uses (~36x at zlib's
#: default level); a zip bomb ~1000x. Raise it to read a file you trust that compresses better.
MAX_COMPRESSION_RATIO = 40
#: Members up to this size are read whatever their compression ratio.
RATIO_FREE_BYTES = 64 * 2**20


def _check_member(info: zipfile.ZipInfo, path: Path) -> None:
    """Refuse a member before reading it when its declared size is implausible for a model file.

    Reading stops at the declared size (``zipfile`` checks it and the CRC), so these checks bound
    the memory a load takes by the file's size: at most ``MAX_COMPRESSION_RATIO`` times it, twice
    (the raw bytes and the tensors), or ``RATIO_FREE_BYTES``.
    """
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelFileError(
            f"{path}: {info.filename} uses zip compression method {info.compress_type}, not deflate"
        )
    if info.filename == DATA_NAME and info.file_size > MAX_DATA_BYTES:
        raise ModelFileError(
            f"{path}: {DATA_NAME} declares {info.file_size:,} bytes, over {MAX_DATA_BYTES:,}"
        )
    if info.file_size > max(RATIO_FREE_BYTES, MAX_COMPRESSION_RATIO * info.compress_size):
        raise ModelFileError(
            f"{path}: {info.filename} would inflate {info.compress_size:,} bytes to {info.file_size:,} "
            f"(over {MAX_COMPRESSION_RATIO}x); not read (raise marl_lsf.save_util.MAX_COMPRESSION_RATIO "
            "for a file you trust)"
        )


def load_model_file(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read ``(data, tensors)`` from a model file without executing anything in it.

    Raises ``FileNotFoundError`` when there is no file, ``ModelFileError`` (a ``ValueError``) for
    a file that is not a complete marl-lsf model file or that holds anything but tensors and
    plain data.
    """
    path = Path(path)
    if not path.exists() and model_path(path).exists():
        path = model_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            missing = {DATA_NAME, TENSORS_NAME} - set(archive.namelist())
            if missing:
                raise ModelFileError(f"{path} is not a marl-lsf model file: it lacks {sorted(missing)}")
            for name in (DATA_NAME, TENSORS_NAME):
                _check_member(archive.getinfo(name), path)
            data = json.loads(archive.read(DATA_NAME))
            raw_tensors = archive.read(TENSORS_NAME)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise ModelFileError(
            f"{path} is not a readable model file (truncated or corrupt zip: {exc})"
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: {DATA_NAME} is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise ModelFileError(f"{path}: {DATA_NAME} is nested too deeply to be a model file") from exc
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: {DATA_NAME} does not hold a JSON object")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: unsupported model file format {data.get('format_version')!r}")
    try:
        tensors = torch.load(io.BytesIO(raw_tensors), map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"{path}: {TENSORS_NAME} contains pickled objects other than tensors; refusing to load it "
            f"(nothing from it was run). Details: {exc}"
        ) from exc
    except (RuntimeError, EOFError, ValueError, RecursionError) as exc:
        raise ModelFileError(
            f"{path}: {TENSORS_NAME} is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(tensors, dict):
        raise ModelFileError(f"{path}: {TENSORS_NAME} does not hold a dict of tensors")
    try:
        for name, tensor in _tensors_in(tensors, ""):
            if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                raise ModelFileError(f"tensor {name} contains NaN or inf")
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return data, tensors


def _tensors_in(value: Any, name: str, depth: int = 0) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in nested dicts and lists of ``value``, with its ``a/b/0/c`` name."""
    if depth > 32:
        raise ModelFileError(f"{TENSORS_NAME} is nested too deeply at {name}")
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors_in(item, f"{name}/{key}" if name else str(key), depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _tensors_in(item, f"{name}/{index}", depth + 1)


def global_rng_state() -> tuple[Any, ...]:
    """The states of Python's, NumPy's and torch's global generators (CUDA's when initialised)."""
    cuda = (
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    )
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def set_global_rng_state(state: tuple[Any, ...]) -> None:
    """Set the global generators to a ``global_rng_state()``."""
    python, numpy_state, torch_state, cuda = state
    random.setstate(python)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def rng_state(generator: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Capture every random number generator a run draws from, as JSON and tensors (no pickle).

    Covers Python's ``random``, NumPy's global generator, torch's CPU (and, when initialised, CUDA)
    generators and ``generator``, a model's own ``numpy.random.Generator``. Returns
    ``(json_data, tensors)`` for ``restore_rng_state``.
    """
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"] = {
        "key": numpy_state["state"]["key"].tolist(),
        "pos": int(numpy_state["state"]["pos"]),
    }
    data = {
        "python": [version, list(internal), gauss],
        "numpy": numpy_state,
        "generator": generator.bit_generator.state,
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return data, tensors


def restore_rng_state(data: dict[str, Any], tensors: dict[str, Any], generator: Any) -> None:
    """Restore the generators captured by ``rng_state`` (``generator`` is set in place).

    Raises ``ModelFileError`` when the saved states are malformed (nothing is restored then, except
    possibly the generators before the malformed one).
    """
    try:
        version, internal, gauss = data["python"]
        if generator.bit_generator.state["bit_generator"] != data["generator"]["bit_generator"]:
            raise ValueError(
                f"saved generator is {data['generator']['bit_generator']}, "
                f"the model uses {generator.bit_generator.state['bit_generator']}"
            )
        numpy_state = dict(data["numpy"])
        numpy_state["state"] = {
            "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
            "pos": int(numpy_state["state"]["pos"]),
        }
        random.setstate((int(version), tuple(int(v) for v in internal), gauss))
        np.random.set_state(numpy_state)
        generator.bit_generator.state = data["generator"]
        torch.set_rng_state(tensors["torch"].cpu().to(torch.uint8))
        if (
            "cuda" in tensors
            and torch.cuda.is_available()
            and torch.cuda.device_count() == len(tensors["cuda"])
        ):
            torch.cuda.set_rng_state_all(list(tensors["cuda"].cpu().to(torch.uint8)))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError, IndexError) as exc:
        raise ModelFileError(f"saved random number generator states are malformed ({exc})") from exc
