"""LSF-SAC on SMAX 3m: three marines against three, without StarCraft II.

SMAX is JaxMARL's JAX re-implementation of the SMAC scenarios (``pip install marl-lsf[smax]``);
``marl_lsf.envs.smax_v0`` steps all ``n_envs`` battles in one jitted call. Run::

    python examples/smax_3m.py

``MARL_LSF_EXAMPLE_STEPS`` sets the training budget. With real StarCraft II, swap the env for
``marl_lsf.envs.smac_v1.parallel_env(map_name="3m")``.
"""

from __future__ import annotations

import importlib.util
import os


def main() -> None:
    """Train on 3m and report the win rate of the greedy policies."""
    if importlib.util.find_spec("jaxmarl") is None:
        print("skipping: SMAX needs JaxMARL; install it with `pip install marl-lsf[smax]`")
        return
    from marl_lsf import LSFSAC, evaluate_policy
    from marl_lsf.envs import smax_v0
    from marl_lsf.presets import preset, preset_policy

    steps = int(float(os.environ.get("MARL_LSF_EXAMPLE_STEPS", 200_000)))
    # The SMAX preset (benchmarks/results/smax_lsfsac_epsilon_max_fkl.md): GRU agents, 8 battles per
    # jitted call, an update per 4 finished battles, epsilon-greedy acting on argmax pi over the
    # first 5% of the run, the max TD target and the forward-KL actor.
    model = LSFSAC(
        preset_policy("smax", "lsfsac"),
        smax_v0.parallel_env(map_name="3m", seed=0),
        seed=0,
        **preset("smax", "lsfsac"),
    )
    model.learn(steps, progress_bar=True)
    # Evaluate 16 battles, 8 at a time in one jitted call (any PettingZoo env works here too).
    battles = smax_v0.parallel_env(map_name="3m").make_team_vec_env(num_envs=8)
    result = evaluate_policy(model, battles, n_eval_episodes=16, seed=1)
    print(f"win rate {result.win_rate:.0%}, mean return {result.mean_return:.2f}")


if __name__ == "__main__":
    main()
