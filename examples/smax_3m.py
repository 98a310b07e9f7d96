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

    steps = int(float(os.environ.get("MARL_LSF_EXAMPLE_STEPS", 200_000)))
    # The settings of benchmarks/smax.py: a gradient step per 4 finished battles, a lower entropy
    # target than the library's 0.5 log|A| and a faster temperature (see benchmarks/results/smax.md).
    model = LSFSAC(
        "RnnPolicy",
        smax_v0.parallel_env(map_name="3m", seed=0),
        n_envs=8,
        train_freq=4,
        target_entropy_scale=0.2,
        ent_coef_learning_rate=5e-3,
        seed=0,
    )
    model.learn(steps, progress_bar=True)
    # Evaluate 16 battles, 8 at a time in one jitted call (any PettingZoo env works here too).
    battles = smax_v0.parallel_env(map_name="3m").make_team_vec_env(num_envs=8)
    result = evaluate_policy(model, battles, n_eval_episodes=16, seed=1)
    print(f"win rate {result.win_rate:.0%}, mean return {result.mean_return:.2f}")


if __name__ == "__main__":
    main()
