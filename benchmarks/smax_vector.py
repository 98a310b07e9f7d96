"""Battle-steps per second of SMAX: many battles in one vmapped call vs one battle per call.

Three ways to step ``num_envs`` battles of one map with random available actions:

* ``SmaxTeamVecEnv``: all battles in one jitted ``jax.vmap`` call (what the algorithms use);
* ``SMAXEnv`` (the PettingZoo ParallelEnv): one jitted call per battle, plus the dict API;
* the single-battle jitted step alone: one call per battle, no PettingZoo dicts.

Only the env calls are timed (action sampling is not); JIT compilation is measured separately and
excluded (the vector env's vmapped functions and the single-battle ones compile separately).
Writes a markdown report (table, machine, date, command).

Usage::

    python benchmarks/smax_vector.py --map 3m --num-envs 16 --steps 300
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marl_lsf.envs import smax_v0  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "smax_vector.md"


def sample(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random available action per row of ``avail [..., A]`` (Gumbel-max)."""
    noise = rng.gumbel(size=avail.shape)
    return np.where(avail, noise, -np.inf).argmax(-1)


def bench_vector(map_name: str, num_envs: int, steps: int, seed: int) -> tuple[float, float]:
    """(compile seconds, battle-steps per second) of ``SmaxTeamVecEnv``."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    vec = smax_v0.SmaxTeamVecEnv(map_name, num_envs=num_envs)
    current = vec.reset(seed=seed)
    current = vec.step(sample(current.avail, rng)).next
    compile_s = time.perf_counter() - start
    elapsed = 0.0
    for _ in range(steps):
        actions = sample(current.avail, rng)
        tick = time.perf_counter()
        current = vec.step(actions).next
        elapsed += time.perf_counter() - tick
    return compile_s, steps * num_envs / elapsed


def bench_parallel_envs(map_name: str, num_envs: int, steps: int, seed: int) -> tuple[float, float]:
    """(compile seconds, battle-steps per second) of ``num_envs`` separate ``SMAXEnv``s."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    envs = [smax_v0.parallel_env(map_name) for _ in range(num_envs)]
    observations = [env.reset(seed=seed + e)[0] for e, env in enumerate(envs)]
    for e, env in enumerate(envs):
        observations[e] = _step_parallel(env, observations[e], rng)
    compile_s = time.perf_counter() - start
    elapsed = 0.0
    for _ in range(steps):
        for e, env in enumerate(envs):
            actions = {
                a: int(sample(observations[e][a]["action_mask"].astype(bool), rng)) for a in env.agents
            }
            tick = time.perf_counter()
            observations[e], *_ = env.step(actions)
            if not env.agents:
                observations[e], _ = env.reset()
            elapsed += time.perf_counter() - tick
    return compile_s, steps * num_envs / elapsed


def _step_parallel(env: smax_v0.SMAXEnv, obs: dict, rng: np.random.Generator) -> dict:
    actions = {a: int(sample(obs[a]["action_mask"].astype(bool), rng)) for a in env.agents}
    obs, *_ = env.step(actions)
    return obs if env.agents else env.reset()[0]


def bench_single_jit(map_name: str, num_envs: int, steps: int, seed: int) -> tuple[float, float]:
    """(warm-up seconds, battle-steps per second) of the single-battle jitted step, one call per battle."""
    import jax

    rng = np.random.default_rng(seed)
    core = smax_v0.parallel_env(map_name)._core
    start = time.perf_counter()
    battles = [list(core.reset(jax.random.PRNGKey(seed + e))) for e in range(num_envs)]
    for battle in battles:
        _step_single(core, battle, rng)
    compile_s = time.perf_counter() - start
    elapsed = 0.0
    for _ in range(steps):
        for battle in battles:
            elapsed += _step_single(core, battle, rng)
    return compile_s, steps * num_envs / elapsed


def _step_single(core: object, battle: list, rng: np.random.Generator) -> float:
    """Step one battle in place (resetting it when it ends); returns the seconds the env took."""
    import jax

    key, state, arrays = battle
    actions = sample(np.asarray(arrays[2]), rng).astype(np.int32)
    tick = time.perf_counter()
    key, state, arrays, _, terminated, truncated, _ = core.step(key, state, actions)
    arrays = jax.device_get(arrays)
    if bool(terminated) or bool(truncated):
        key, state, arrays = core.reset(key)
        arrays = jax.device_get(arrays)
    battle[:] = [key, state, arrays]
    return time.perf_counter() - tick


def main(argv: list[str] | None = None) -> None:
    """Run the three measurements and write the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", default="3m", help="SMAX map name")
    parser.add_argument("--num-envs", type=int, default=16, help="battles stepped per round")
    parser.add_argument("--steps", type=int, default=300, help="timed rounds (each steps every battle once)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report to write")
    args = parser.parse_args(argv)

    smax_v0.map_names()  # import JAX and JaxMARL before any timing
    vec_compile, vec_rate = bench_vector(args.map, args.num_envs, args.steps, args.seed)
    par_compile, par_rate = bench_parallel_envs(args.map, args.num_envs, args.steps, args.seed)
    _, jit_rate = bench_single_jit(args.map, args.num_envs, args.steps, args.seed)

    import jax
    import jaxmarl

    command = (
        "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]]) if argv is None else ""
    )
    n = args.num_envs
    report = f"""# SMAX: {n} battles in one vmapped call vs {n} single-battle calls

Map `{args.map}`, random available actions, {args.steps} timed rounds of {n} battle-steps each (after
warm-up; only the env calls are timed, action sampling is not). Finished battles reset
(inside the vmapped call for the vector env; by a separate reset call for the single battles).

| way of stepping {n} battles | battle-steps/s | vmapped is faster by | first reset + step (JIT compile) |
|---|---:|---:|---:|
| `SmaxTeamVecEnv`: one jitted `jax.vmap` call for all {n} | {vec_rate:,.0f} | 1.0x | {vec_compile:.1f} s |
| {n} × `SMAXEnv` (PettingZoo ParallelEnv), one call each | {par_rate:,.0f} | {vec_rate / par_rate:.1f}x | {par_compile:.1f} s |
| {n} × single-battle jitted step (no PettingZoo dicts) | {jit_rate:,.0f} | {vec_rate / jit_rate:.1f}x | (shares `SMAXEnv`'s) |

All three numbers come from one run. Acceptance target: >= 8x over the {n} separate `SMAXEnv`s.

- machine: `nproc` = {os.cpu_count()}, {platform.machine()}, {platform.system()}
- software: JAX {jax.__version__} on {jax.devices()[0].platform.upper()}, JaxMARL {jaxmarl.__version__}, Python {platform.python_version()}
- date: {datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
- command (from the repository root): `{command}`
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
