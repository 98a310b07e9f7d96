"""Saved optimizer and replay-buffer state that does not fit is refused at load, naming the field;
crafted files are refused under a memory limit.

Before these checks such files loaded and failed inside the first update (moments of the wrong
shape), or trained silently on garbage (negative episode lengths, actions out of range).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_hostile_inputs import altered, file_data, file_tensors

from marl_lsf import LSFSAC
from marl_lsf.envs import matrix_game_v0
from marl_lsf.save_util import ModelFileError


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A matrix-game LSF-SAC after a few updates, saved with its optimizers and replay buffer."""
    env = matrix_game_v0.parallel_env()
    model = LSFSAC("MlpPolicy", env, hidden_dim=8, batch_size=4, learning_starts=4, seed=0, device="cpu")
    model.learn(16)
    return model.save(tmp_path_factory.mktemp("model") / "model.zip", include_buffer=True)


def _edit(keys: tuple[object, ...], edit: Callable[[object], object]) -> Callable[[dict], None]:
    """An alteration that replaces the nested entry ``tensors[k0][k1]...`` with ``edit(entry)``."""

    def alter(tensors: dict) -> None:
        *parents, last = keys
        target = tensors
        for key in parents:
            target = target[key]
        target[last] = edit(target[last])

    return alter


def _set(keys: tuple[object, ...], value: object) -> Callable[[dict], None]:
    """An alteration that sets the nested entry ``tensors[k0][k1]...`` to ``value``."""
    return _edit(keys, lambda _: value)


def _put(tensor: torch.Tensor, value: float) -> torch.Tensor:
    """A copy of ``tensor`` with its first element set to ``value``."""
    tensor = tensor.clone()
    tensor.view(-1)[0] = value
    return tensor


ADAM = "optim/actor_optimizer"

CASES = {
    "moment of the wrong shape": (
        _set((ADAM, "state", 0, "exp_avg"), torch.zeros(3)),
        r"optim/actor_optimizer state exp_avg of parameter 0 \(group 0\) has shape \(3,\)",
    ),
    "negative step count": (
        _set((ADAM, "state", 0, "step"), torch.tensor(-5.0)),
        r"optim/actor_optimizer state of parameter 0 \(group 0\) has step -5.0",
    ),
    "learning rate as a string": (
        _set((ADAM, "param_groups", 0, "lr"), "fast"),
        r"optim/actor_optimizer param_groups/0/lr must be a finite number >= 0, got 'fast'",
    ),
    "beta of one or more": (
        _set((ADAM, "param_groups", 0, "betas"), (1.5, 0.999)),
        r"param_groups/0/betas must be two numbers in \[0, 1\)",
    ),
    "action out of range": (
        _edit(("buffer", "actions"), lambda t: _put(t, 7)),
        r"saved buffer actions must lie in 0..2",
    ),
    "negative episode length": (
        _edit(("buffer", "lengths"), lambda t: _put(t, -3)),
        r"saved buffer episode lengths must lie in 1..1",
    ),
    "ring position past its end": (
        _set(("buffer", "pos"), 10**6),
        r"saved buffer position 1000000, full=False .* do not fit",
    ),
    "observations of another team": (
        _edit(("buffer", "obs"), lambda t: torch.cat([t, t], dim=-1)),
        r"saved buffer field 'obs' must have shape",
    ),
    "termination flag of one half": (
        _edit(("buffer", "terminated"), lambda t: _put(t, 0.5)),
        r"saved buffer field 'terminated' must hold only 0 and 1",
    ),
    "missing field": (
        lambda tensors: tensors["buffer"].pop("reward"),
        r"saved buffer field 'reward' must have shape .* got NoneType",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_state_that_does_not_fit_is_refused_naming_the_field(
    trained_file: Path, tmp_path: Path, case: str
) -> None:
    alter, message = CASES[case]
    tensors = file_tensors(trained_file)
    alter(tensors)
    path = altered(trained_file, tmp_path / "altered.zip", tensors=tensors)
    with pytest.raises(ModelFileError, match=message):
        LSFSAC.load(path, env=matrix_game_v0.parallel_env())


def test_the_unaltered_file_loads_with_its_state_and_trains_on(trained_file: Path) -> None:
    model = LSFSAC.load(trained_file, env=matrix_game_v0.parallel_env())
    assert len(model.replay_buffer) == 16 and model.actor_optimizer.state
    model.learn(8, reset_num_timesteps=False)
    assert model.num_timesteps == 24


LOAD_UNDER_LIMIT = """
import resource, sys
from marl_lsf import LSFSAC
from marl_lsf.save_util import ModelFileError

with open("/proc/self/status") as status:
    in_use = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (in_use + 2**30, resource.RLIM_INFINITY))
for path in sys.argv[1:]:
    try:
        LSFSAC.load(path)
        print("loaded")
    except ModelFileError as exc:
        print("refused", str(exc).split(": ", 1)[1][:40])
"""


def test_bombs_are_refused_under_a_one_gib_memory_limit(trained_file: Path, tmp_path: Path) -> None:
    """Each file is loaded in a process allowed 1 GiB of address space beyond what its imports use."""
    bomb = tmp_path / "bomb.zip"  # 5 MB of deflate that would inflate to 1.25 GiB, over the limit
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("data.json", json.dumps(file_data(trained_file)))
        with archive.open("tensors.pt", "w", force_zip64=True) as member:
            for _ in range(80):
                member.write(bytes(2**24))
    data = file_data(trained_file)
    data["params"] |= {"hidden_dim": 10**6, "mixer_embed_dim": 3 * 10**6}  # ~10 TB of networks
    huge = altered(trained_file, tmp_path / "huge.zip", data_text=json.dumps(data))
    result = subprocess.run(
        [sys.executable, "-c", LOAD_UNDER_LIMIT, str(bomb), str(huge), str(trained_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    refusals = result.stdout.splitlines()
    assert len(refusals) == 3, result.stdout
    assert refusals[0].startswith("refused tensors.pt would inflate"), refusals[0]
    assert refusals[1].startswith("refused tensor module/actor/"), refusals[1]
    assert refusals[2] == "loaded"


def test_the_largest_file_the_limits_admit_loads_under_a_one_gib_memory_limit(tmp_path: Path) -> None:
    """The worst case the checks allow: ~10 MB of networks inflating ~39x (385 MB), a genuine file.

    Its weights are zero but for one normal draw in 54, so deflate shrinks them just under
    ``MAX_COMPRESSION_RATIO``; loading it holds the tensors and the networks at once.
    """
    model = LSFSAC("MlpPolicy", matrix_game_v0.parallel_env(), hidden_dim=3700, seed=0, device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in model._saved_modules:
            for parameter in getattr(model, name).parameters():
                flat = parameter.view(-1)
                flat.zero_()
                flat[::54] = torch.randn(flat[::54].shape, generator=generator)
    path = model.save(tmp_path / "largest.zip")
    del model
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("tensors.pt")
    assert path.stat().st_size <= 10 * 10**6 and member.file_size > 35 * member.compress_size
    result = subprocess.run(
        [sys.executable, "-c", LOAD_UNDER_LIMIT, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["loaded"]
