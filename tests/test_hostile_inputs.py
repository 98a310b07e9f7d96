"""Hostile inputs: run folders that name code, masks with extreme logits, malformed model files."""

from __future__ import annotations

import io
import json
import re
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_reliability import RandomEnv

from marl_lsf import LSFSAC, QMIX, MultiAgentAlgorithm, evaluate_policy
from marl_lsf.algorithms import ALGORITHMS
from marl_lsf.cli import main
from marl_lsf.envs import matrix_game_v0
from marl_lsf.nets.agents import masked_argmax, masked_log_softmax, masked_sample
from marl_lsf.nets.policies import ActingPolicy
from marl_lsf.save_util import ModelFileError

MATRIX_FACTORY = "marl_lsf.envs.matrix_game_v0:parallel_env"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished matrix-game run folder (run.json, model.zip), trained for a few steps."""
    out = tmp_path_factory.mktemp("runs") / "mg"
    argv = ["train", "--env", "matrix_game", "--timesteps", "8", "--out", str(out), "--device", "cpu"]
    argv += ["--quiet", "--algo-kwargs", "batch_size=2", "hidden_dim=8", "mixer_embed_dim=4"]
    assert main(argv) == 0
    return out


def copy_run(run_folder: Path, dst: Path, **settings: object) -> Path:
    """A copy of ``run_folder`` at ``dst`` whose run.json is updated with ``settings``."""
    shutil.copytree(run_folder, dst)
    run_json = dst / "run.json"
    run_json.write_text(json.dumps(json.loads(run_json.read_text()) | settings))
    return dst


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The command's stderr, checked to be a single line."""
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


# -- run folders ----------------------------------------------------------------------------------


def test_issue_reproduction_os_system_run_json_is_refused_and_runs_nothing(
    run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "x"
    folder.mkdir()
    shutil.copy(run_folder / "model.zip", folder)
    (folder / "run.json").write_text(
        '{"algo":"lsfsac","env":"os:system","env_kwargs":{"command":"touch PWNED"},"timesteps":1}'
    )
    for argv in (["eval", "x/model.zip"], ["replay", "x/model.zip", "--text"], ["train", "--resume", "x"]):
        assert main(argv) == 2, argv
        err = one_line_error(capsys)
        assert "'os:system'" in err and "--trust-run-config" in err and "--env os:system" in err, err
        assert not (tmp_path / "PWNED").exists(), argv


def test_run_json_in_the_folder_above_is_also_refused(
    run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = copy_run(run_folder, tmp_path / "run", env="os:system", env_kwargs={"command": "touch PWNED"})
    (folder / "best").mkdir()
    shutil.copy(folder / "model.zip", folder / "best" / "model.zip")
    assert main(["eval", str(folder / "best" / "model.zip"), "--episodes", "1"]) == 2
    assert "may not choose code to run" in one_line_error(capsys)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("command", ["eval", "replay"])
def test_module_factory_env_runs_when_named_on_the_command_line_or_trusted(
    command: str, run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_run(run_folder, tmp_path / "run", env=MATRIX_FACTORY)
    model = str(folder / "model.zip")
    extra = ["--episodes", "1"] if command == "eval" else ["--text"]
    assert main([command, model, *extra]) == 2
    assert MATRIX_FACTORY in one_line_error(capsys)
    assert main([command, model, *extra, "--trust-run-config"]) == 0
    assert main([command, model, *extra, "--env", MATRIX_FACTORY]) == 0


def test_resume_of_a_module_factory_run_needs_the_same_env_or_trust(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_run(run_folder, tmp_path / "run", env=MATRIX_FACTORY)
    resume = ["train", "--resume", str(folder), "--device", "cpu", "--quiet"]
    assert main([*resume, "--timesteps", "10"]) == 2
    assert "--trust-run-config" in one_line_error(capsys)
    assert main([*resume, "--timesteps", "10", "--env", "matrix_game"]) == 2
    assert "differs from the run's env" in one_line_error(capsys)
    assert main([*resume, "--timesteps", "10", "--env", MATRIX_FACTORY]) == 0
    assert main([*resume, "--timesteps", "12", "--trust-run-config"]) == 0
    assert json.loads((folder / "run.json").read_text())["timesteps"] == 12


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"algo": "os:system"}, "unknown algorithm 'os:system'"),
        ({"algo": ["lsfsac"]}, '"algo" must be an algorithm name'),
        ({"env": {"target": "os:system"}}, '"env" must be an environment name'),
        ({"env_kwargs": ["touch PWNED"]}, '"env_kwargs" must be a JSON object'),
        ({"n_envs": 0}, '"n_envs" must be a whole number of at least 1'),
        ({"timesteps": "1e9"}, '"timesteps" must be a whole number'),
    ],
)
def test_malformed_run_json_is_named_on_resume(
    settings: dict[str, object],
    message: str,
    run_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = copy_run(run_folder, tmp_path / "run", **settings)
    assert main(["train", "--resume", str(folder), "--device", "cpu", "--quiet"]) == 2
    assert message in one_line_error(capsys)


def test_deeply_nested_run_json_is_one_line(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_run(run_folder, tmp_path / "run")
    (folder / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["eval", str(folder / "model.zip")]) == 2
    assert "is not valid JSON" in one_line_error(capsys)


# -- action masks ---------------------------------------------------------------------------------

#: The values a network output may take, from the issue: below, at and above the old -1e9 mask.
EXTREME_LOGITS = np.array([-np.inf, -1e30, -1e10, 0.0, 1e30], dtype=np.float32)


def hostile_scores(n_rows: int, n_actions: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores [n_rows, 1, A], avail [n_rows, 1, A])``: random masks (each with an available action)
    and logits drawn from ``EXTREME_LOGITS`` (0 standing for a normal draw), plus an adversarial
    block where every available action scores -inf and every unavailable one +1e30."""
    rng = np.random.default_rng(seed)
    avail = rng.random((n_rows, n_actions)) < 0.4
    avail[np.arange(n_rows), rng.integers(n_actions, size=n_rows)] = True
    scores = rng.choice(EXTREME_LOGITS, size=(n_rows, n_actions))
    normal = scores == 0.0
    scores[normal] = rng.normal(size=int(normal.sum()))
    adversarial = slice(0, n_rows // 10)
    scores[adversarial] = np.where(avail[adversarial], -np.inf, 1e30)
    return torch.as_tensor(scores, dtype=torch.float32)[:, None], torch.as_tensor(avail)[:, None]


def matrix_model(cls: type[MultiAgentAlgorithm], **kwargs: object) -> MultiAgentAlgorithm:
    """A small untrained model on the matrix game (two agents, three actions)."""
    return cls("MlpPolicy", matrix_game_v0.parallel_env(), hidden_dim=8, seed=0, device="cpu", **kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(LSFSAC, {}), (LSFSAC, {"exploration": "epsilon_greedy"}), (QMIX, {})],
    ids=["lsfsac", "lsfsac-epsilon-greedy", "qmix"],
)
def test_acting_never_chooses_an_unavailable_action_whatever_the_logits(
    cls: type[MultiAgentAlgorithm], kwargs: dict[str, object]
) -> None:
    policy = matrix_model(cls, **kwargs).policy
    if hasattr(policy, "exploration_rate"):
        policy.exploration_rate.fill_(0.5)
    torch.manual_seed(0)
    for seed, n_actions in enumerate((2, 5, 9)):
        scores, avail = hostile_scores(1000, n_actions, seed)
        for deterministic in (True, False):
            for _ in range(5 if not deterministic else 1):
                actions = policy.choose(scores, avail, deterministic)
                chosen = avail.gather(-1, actions.unsqueeze(-1))
                assert bool(chosen.all()), (cls.__name__, n_actions, deterministic)


def test_targets_and_sampling_choose_only_available_actions() -> None:
    torch.manual_seed(1)
    scores, avail = hostile_scores(1000, 6, seed=7)
    for actions in (masked_argmax(scores, avail), *(masked_sample(scores, avail) for _ in range(5))):
        assert bool(avail.gather(-1, actions.unsqueeze(-1)).all())
    # The best available action wins, even when an unavailable one scores far higher.
    row_scores, row_avail = torch.tensor([1e30, -1e10, -1e30, 3.0]), torch.tensor([True, True, True, False])
    assert masked_argmax(row_scores, row_avail).item() == 0
    assert masked_argmax(-row_scores, row_avail).item() == 2


def test_acting_refuses_an_agent_without_available_action() -> None:
    policy = matrix_model(LSFSAC).policy
    avail = torch.tensor([[[True, False, False], [False, False, False]]])
    with pytest.raises(ValueError, match=r"agent index 1 \(at batch index \(0,\)\) has no available action"):
        policy.choose(torch.zeros(1, 2, 3), avail, deterministic=True)


def test_masked_log_softmax_is_finite_and_ignores_unavailable_logits() -> None:
    rng = np.random.default_rng(3)
    avail = torch.as_tensor(rng.random((1000, 5)) < 0.5)
    avail[:, 0] = True
    finite = rng.choice(EXTREME_LOGITS[1:], size=(1000, 5))
    unavailable = rng.choice([np.nan, np.inf, -np.inf, 1e30], size=(1000, 5))
    logits = torch.as_tensor(np.where(avail, finite, unavailable), dtype=torch.float32).requires_grad_()
    log_pi = masked_log_softmax(logits, avail)
    pi = log_pi.exp()
    assert bool(log_pi.isfinite().all())
    assert bool((pi[~avail] == 0).all())
    torch.testing.assert_close(pi.sum(-1), torch.ones(1000))
    # The losses' pattern: entropy-like terms are finite, and no gradient is NaN or reaches masked logits.
    (pi * log_pi).sum().backward()
    assert bool(logits.grad.isfinite().all())
    assert bool((logits.grad[~avail] == 0).all())
    # A padded step (no available action) is a softmax over all actions, not NaN.
    padded = masked_log_softmax(torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.bool))
    torch.testing.assert_close(padded.exp(), torch.full((1, 4), 0.25))


@pytest.mark.parametrize("deterministic", [True, False])
def test_predict_takes_the_callers_action_masks(deterministic: bool) -> None:
    model = matrix_model(LSFSAC)
    env = matrix_game_v0.parallel_env()
    obs, _ = env.reset(seed=0)
    only_last = {"agent_0": [0, 0, 1], "agent_1": np.array([False, False, True])}
    as_infos = {agent: {"action_mask": mask} for agent, mask in only_last.items()}
    as_array = np.array([[False, False, True], [False, False, True]])
    for masks in (only_last, as_infos, as_array):
        for _ in range(20):
            actions, _ = model.predict(obs, deterministic=deterministic, action_masks=masks)
            assert actions == {"agent_0": 2, "agent_1": 2}
    actions, _ = model.predict(obs, action_masks={"agent_1": {}})  # an info without a mask restricts nothing
    assert set(actions) == {"agent_0", "agent_1"}
    array_actions, _ = model.predict(np.ones((4, 2, 1), np.float32), action_masks=as_array)
    assert (array_actions == 2).all()


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ({"agent_0": [0, 0, 0]}, "leaves agent 'agent_0' no available action"),
        ({"agent_1": [1, 0]}, r"action_masks\['agent_1'\] must be 3 True/False"),
        ({"agent_9": [1, 1, 1]}, "unknown agents \\['agent_9'\\]"),
        (np.ones((3, 3), bool), r"action_masks has shape \(3, 3\)"),
        (np.full((2, 3), 0.5), "only True/False"),
    ],
)
def test_predict_refuses_bad_action_masks_by_name(masks: object, message: str) -> None:
    model = matrix_model(QMIX)
    obs, _ = matrix_game_v0.parallel_env().reset(seed=0)
    with pytest.raises(ValueError, match=message):
        model.predict(obs, action_masks=masks)


#: Every value an acting network's output may take in the end-to-end test, NaN included.
HOSTILE_SCORES = np.array([-np.inf, -1e30, -1e10, -1e9, 0.0, 1e9, 1e30, np.inf, np.nan], dtype=np.float32)

#: Three agents with 2, 5 and 4 actions (so padded actions are unavailable too), random masks in
#: ``info`` at every step (``RandomEnv.step`` asserts every action it gets is available); the second
#: agent leaves at step 3 of each six-step episode.
MASKED_ENV = {
    "n_agents": 3,
    "obs_shapes": [(2,)] * 3,
    "action_counts": [2, 5, 4],
    "mask_mode": "info",
    "has_state": True,
    "state_dim": 3,
    "length": 6,
    "leave_steps": [None, 3, None],
    "fault": "none",
    "fault_step": 0,
    "seed": 0,
}


def make_hostile(policy: ActingPolicy, seed: int) -> None:
    """Replace the acting network's scores with values drawn from ``HOSTILE_SCORES`` (memory kept)."""
    rng = np.random.default_rng(seed)
    network_scores = policy.scores

    def scores(obs: torch.Tensor, memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, hidden = network_scores(obs, memory)
        drawn = rng.choice(HOSTILE_SCORES, size=tuple(out.shape))
        return torch.as_tensor(drawn, dtype=out.dtype, device=out.device), hidden

    policy.scores = scores  # type: ignore[method-assign]


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_no_algorithm_chooses_an_unavailable_action_in_predict_evaluate_or_learn(name: str) -> None:
    """End to end, for every algorithm: an env whose masks change at every step and a network whose
    outputs are anything from -inf to +inf (or NaN); the env asserts each action is available."""
    env = RandomEnv(MASKED_ENV)
    model = ALGORITHMS[name](
        "MlpPolicy",
        lambda: RandomEnv(MASKED_ENV),
        hidden_dim=8,
        batch_size=2,
        seed=0,
        device="cpu",
        n_threads=1,
    )
    make_hostile(model.policy, seed=1)
    decisions = 0
    for deterministic in (True, False):
        obs, infos = env.reset(seed=0)
        state, start = None, True
        for _ in range(300):  # 50 episodes
            actions, state = model.predict(obs, state, start, deterministic=deterministic, action_masks=infos)
            decisions += len(actions)
            obs, _, _, _, infos = env.step(actions)
            start = not env.agents
            if start:
                obs, infos = env.reset()
            obs = {agent: obs[agent] for agent in env.agents}  # an agent that left acts no more
    assert decisions > 1000
    for deterministic in (True, False):
        evaluate_policy(model, lambda: RandomEnv(MASKED_ENV), n_eval_episodes=20, deterministic=deterministic)
    assert model.learning_starts == 0  # learn acts with the hostile policy from its first step
    model.learn(300)
    assert model.num_timesteps == 300


# -- malformed model files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained LSF-SAC on the matrix game, saved with its optimizers."""
    return matrix_model(LSFSAC).save(tmp_path_factory.mktemp("model") / "model.zip")


def altered(src: Path, dst: Path, data_text: str | None = None, tensors: dict | None = None) -> Path:
    """A copy of the model file ``src`` at ``dst`` with ``data.json`` text and/or ``tensors.pt`` replaced."""
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in ("data.json", "tensors.pt")}
    if data_text is not None:
        members["data.json"] = data_text.encode()
    if tensors is not None:
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        members["tensors.pt"] = buffer.getvalue()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return dst


def file_data(path: Path) -> dict:
    """The ``data.json`` of a model file."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("data.json"))


def file_tensors(path: Path) -> dict:
    """The ``tensors.pt`` of a model file."""
    with zipfile.ZipFile(path) as archive:
        return torch.load(io.BytesIO(archive.read("tensors.pt")), weights_only=True)


def test_deeply_nested_data_json_is_a_model_file_error(model_file: Path, tmp_path: Path) -> None:
    path = altered(model_file, tmp_path / "deep.zip", data_text="[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelFileError, match="data.json is nested too deeply"):
        LSFSAC.load(path)


@pytest.mark.parametrize("counter", ["num_timesteps", "episode_num", "n_updates"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -3, 2.5, "12", True])
def test_non_integer_counters_are_named(
    model_file: Path, tmp_path: Path, counter: str, value: object
) -> None:
    text = json.dumps(file_data(model_file) | {counter: value})  # inf and NaN become Infinity and NaN
    path = altered(model_file, tmp_path / "counter.zip", data_text=text)
    with pytest.raises(ModelFileError, match=f"{counter} must be a non-negative whole number"):
        LSFSAC.load(path)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("learning_rate", "fast", "a finite float"),
        ("learning_rate", float("inf"), "a finite float"),
        ("gamma", None, "a finite float"),
        ("hidden_dim", 16.5, "a finite int"),
        ("buffer_size", float("inf"), "a finite int"),
        ("last_action_input", 1, "a bool"),
        ("ent_coef", [0.1], "a finite str or float"),
        ("seed", "0", "a finite int or None"),
    ],
)
def test_settings_of_the_wrong_type_are_named(
    model_file: Path, tmp_path: Path, setting: str, value: object, expected: str
) -> None:
    data = file_data(model_file)
    data["params"][setting] = value
    path = altered(model_file, tmp_path / "setting.zip", data_text=json.dumps(data))
    with pytest.raises(ModelFileError, match=f"model setting '{setting}' must be {expected}, got"):
        LSFSAC.load(path)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("n_critics", 10**6, "n_critics must be 1 or 2"),
        ("gamma", 5.0, "gamma must be in [0, 1]"),
        ("mixer", "nope", "mixer must be 'qmix' or 'vdn'"),
        ("policy", "Foo", "unknown policy 'Foo'"),
        ("team_reward", "x", "team_reward must be 'mean', 'sum' or a callable, got 'x'"),
    ],
)
def test_settings_the_constructor_refuses_are_a_model_file_error(
    model_file: Path, tmp_path: Path, setting: str, value: object, message: str
) -> None:
    data = file_data(model_file)
    if setting == "policy":
        data["policy"] = value
    else:
        data["params"][setting] = value
    path = altered(model_file, tmp_path / "refused.zip", data_text=json.dumps(data))
    for env in (None, matrix_game_v0.parallel_env()):
        with pytest.raises(ModelFileError, match=re.escape(f"model settings are invalid ({message}")):
            LSFSAC.load(path, env=env)
    if setting == "gamma":  # a setting the caller passes replaces the file's
        assert LSFSAC.load(path, gamma=0.9).gamma == 0.9


def _edit_data(data: dict, keys: tuple[object, ...], value: object) -> None:
    """Set the nested entry ``data[k0][k1]...`` to ``value``."""
    *parents, last = keys
    for key in parents:
        data = data[key]
    data[last] = value


#: Values of data.json that loaded and failed later (a traceback from torch or NumPy at load or
#: in ``learn``), found by replacing each entry of a saved LSF-SAC's data.json with odd values.
DATA_CASES = {
    "huge int size": (
        ("params", "hidden_dim"),
        10**30,
        "'hidden_dim' must be a whole number in 0..9223372036854775807",
    ),
    "negative size": (("params", "mixer_embed_dim"), -1, "'mixer_embed_dim' must be a whole number in 0.."),
    "int over float32": (
        ("params", "kl_coef"),
        10**39,
        "'kl_coef' must be at most 3.403e+38 in size (float32)",
    ),
    "float over float32": (("params", "target_entropy"), 1e308, "'target_entropy' must be at most 3.403e+38"),
    "negative learning rate": (
        ("params", "actor_learning_rate"),
        -1,
        "'actor_learning_rate' must be >= 0, got -1",
    ),
    "buffer over the memory": (
        ("params", "buffer_size"),
        10**15,  # refused by the replay buffer's memory estimate
        "the file's settings do not build a LSFSAC (",
    ),
    "params not an object": (("params",), "x", "params must be a JSON object, got 'x'"),
    "episode without a return": (
        ("ep_info_buffer",),
        [{}],
        "ep_info_buffer must be a list of objects of finite numbers, each with 'r' and 'l'",
    ),
    "numpy generator key": (
        ("rng", "numpy", "state", "key"),
        0,
        "random number generator states are malformed",
    ),
    "action count not a number": (("spec", "action_counts"), "x", "the saved spec is malformed (ValueError"),
    "no actions": (("spec", "action_counts"), [], "action_counts [], state_dim 1)"),
    "action count NaN": (("spec", "action_counts", 0), float("nan"), "the saved spec is malformed"),
    "huge observation": (("spec", "obs_shapes", 0, 0), 10**30, "the saved spec is malformed: agents"),
    "negative state size": (("spec", "state_dim"), -1, "the saved spec is malformed: agents"),
    "agents fewer than spaces": (
        ("spec", "agents"),
        ["agent_0"],
        "the saved spec is malformed: agents ['agent_0']",
    ),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_malformed_data_json_is_a_model_file_error_at_load(
    model_file: Path, tmp_path: Path, case: str
) -> None:
    keys, value, message = DATA_CASES[case]
    data = file_data(model_file)
    _edit_data(data, keys, value)
    path = altered(model_file, tmp_path / "data.zip", data_text=json.dumps(data))
    for env in (None, matrix_game_v0.parallel_env()):
        with pytest.raises(ModelFileError, match=re.escape(message)):
            LSFSAC.load(path, env=env)


def test_an_int_for_a_float_setting_loads_as_a_float(model_file: Path, tmp_path: Path) -> None:
    data = file_data(model_file)
    data["params"]["kl_coef"] = 10**30  # multiplied with a float32 loss, an int this large overflowed
    path = altered(model_file, tmp_path / "int.zip", data_text=json.dumps(data))
    model = LSFSAC.load(path)
    assert model.kl_coef == 1e30 and isinstance(model.kl_coef, float)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(
    model_file: Path, tmp_path: Path, bad: float
) -> None:
    tensors = file_tensors(model_file)
    tensors["module/actor"]["head.weight"][0, 0] = bad
    path = altered(model_file, tmp_path / "nan.zip", tensors=tensors)
    with pytest.raises(ModelFileError, match="tensor module/actor/head.weight contains NaN or inf"):
        LSFSAC.load(path)


def test_non_finite_optimizer_state_is_refused(model_file: Path, tmp_path: Path) -> None:
    model = LSFSAC.load(model_file, env=matrix_game_v0.parallel_env()).learn(16)
    saved = model.save(tmp_path / "trained.zip")
    tensors = file_tensors(saved)
    tensors["optim/actor_optimizer"]["state"][0]["exp_avg"].fill_(float("nan"))
    path = altered(saved, tmp_path / "nan_optim.zip", tensors=tensors)
    with pytest.raises(ModelFileError, match="tensor optim/actor_optimizer/state/0/exp_avg contains NaN"):
        LSFSAC.load(path)


@pytest.mark.parametrize("setting", ["hidden_dim", "mixer_embed_dim", "latent_dim"])
def test_huge_network_settings_are_refused_before_allocating(
    model_file: Path, tmp_path: Path, setting: str
) -> None:
    data = file_data(model_file)
    data["params"][setting] = 10**9  # terabytes of weights if the networks were built
    path = altered(model_file, tmp_path / "huge.zip", data_text=json.dumps(data))
    with pytest.raises(
        ModelFileError, match=r"tensor module/\w+/[\w.]+ has shape .* but the file's settings make it"
    ):
        LSFSAC.load(path)


def test_missing_tensor_is_named(model_file: Path, tmp_path: Path) -> None:
    tensors = file_tensors(model_file)
    del tensors["module/actor"]["head.bias"]
    path = altered(model_file, tmp_path / "missing.zip", tensors=tensors)
    with pytest.raises(ModelFileError, match="tensor module/actor/head.bias is missing"):
        LSFSAC.load(path)


def test_whole_float_for_an_int_setting_still_loads(model_file: Path, tmp_path: Path) -> None:
    data = file_data(model_file)
    data["params"]["learning_starts"] = 100.0  # LSFSAC(..., learning_starts=1e2) saves a float
    path = altered(model_file, tmp_path / "float.zip", data_text=json.dumps(data))
    assert LSFSAC.load(path).learning_starts == 100


def test_huge_random_state_is_a_model_file_error(model_file: Path, tmp_path: Path) -> None:
    data = file_data(model_file)
    data["rng"]["python"][1][0] = 10**40
    path = altered(model_file, tmp_path / "rng.zip", data_text=json.dumps(data))
    with pytest.raises(ModelFileError, match="random number generator states are malformed"):
        LSFSAC.load(path)


def test_malformed_model_is_one_line_on_the_command_line(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tensors = file_tensors(model_file)
    tensors["module/critics"][next(iter(tensors["module/critics"]))].fill_(float("nan"))
    path = altered(model_file, tmp_path / "nan.zip", tensors=tensors)
    assert main(["eval", str(path), "--env", "matrix_game", "--episodes", "1"]) == 2
    assert "contains NaN or inf" in one_line_error(capsys)


def test_zip_bomb_is_refused_before_it_is_inflated(model_file: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("data.json", json.dumps(file_data(model_file)))
        with archive.open("tensors.pt", "w", force_zip64=True) as member:
            chunk = bytes(2**24)
            for _ in range(8):  # 128 MiB of zeros in 0.6 MB
                member.write(chunk)
    assert bomb.stat().st_size < 10 * 2**20
    tracemalloc.start()  # reading the member would allocate its 128 MiB as Python bytes
    try:
        with pytest.raises(ModelFileError, match=r"tensors.pt would inflate .*MAX_COMPRESSION_RATIO"):
            LSFSAC.load(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"loading the bomb allocated {peak:,} bytes"


def test_large_data_json_and_odd_compression_are_refused(model_file: Path, tmp_path: Path) -> None:
    big = altered(model_file, tmp_path / "big.zip", data_text=json.dumps({"pad": "x" * (17 * 2**20)}))
    with pytest.raises(ModelFileError, match="data.json declares .* bytes, over"):
        LSFSAC.load(big)
    lzma = tmp_path / "lzma.zip"
    with zipfile.ZipFile(model_file) as src, zipfile.ZipFile(lzma, "w", zipfile.ZIP_LZMA) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    with pytest.raises(ModelFileError, match="compression method 14, not deflate"):
        LSFSAC.load(lzma)
