"""BenchMARL's side of the peer benchmark: QMIX or MASAC on PettingZoo MPE simple_spread (discrete).

Run with the python of BenchMARL's virtual environment (``setup_benchmarl.sh``), never marl-lsf's:

    OMP_NUM_THREADS=1 /work/benchmarl-venv/bin/python benchmarks/peers/benchmarl_side.py --algorithm qmix

Trains one ``benchmarl.experiment.Experiment`` for ``--frames`` frames and prints one JSON line:
library, algorithm, mode, frames, gradient updates, wall seconds of ``Experiment.run()``,
frames per second, the mean episode return of the last collected batch and of greedy evaluation
episodes run afterwards (not timed). One torch thread; no loggers, no evaluation, rendering or
checkpoints during training.

Equal-work mode (the default) sets the off-policy iteration to ``common``'s values: 10 envs,
6000 frames per batch, 1000 optimizer steps per batch of 128 frames, a replay memory of 1M
frames, and a [256, 256] MLP (Tanh). ``--defaults`` keeps BenchMARL's own ``base_experiment.yaml``
and MLP yaml for those (today the same numbers). Both modes use BenchMARL's default algorithm
configurations, CPU devices, discrete actions (``prefer_continuous_actions=False``, or MASAC would
take MPE's continuous actions) and 25-step episodes (the task's yaml says 100).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time

import benchmarl
import common
import torch
from benchmarl.algorithms import MasacConfig, QmixConfig
from benchmarl.algorithms.common import AlgorithmConfig
from benchmarl.environments import PettingZooTask
from benchmarl.experiment import Experiment, ExperimentConfig
from benchmarl.experiment.callback import Callback
from benchmarl.models.mlp import MlpConfig
from tensordict import TensorDictBase

ALGORITHMS: dict[str, type[AlgorithmConfig]] = {"qmix": QmixConfig, "masac": MasacConfig}


class WorkCounter(Callback):
    """Counts the gradient updates of training and keeps the returns of the evaluation episodes."""

    def __init__(self) -> None:
        super().__init__()
        self.updates = 0
        self.eval_returns: list[float] = []

    def on_train_end(self, training_td: TensorDictBase, group: str) -> None:
        """Add this iteration's optimizer steps (one row of ``training_td`` each)."""
        self.updates += training_td.batch_size[0]

    def on_evaluation_end(self, rollouts: list[TensorDictBase]) -> None:
        """Record each episode's return: the sum over steps of the reward, averaged over the agents."""
        for rollout in rollouts:
            per_group = [
                rollout.get(("next", group, "reward")).sum(0).mean() for group in self.experiment.group_map
            ]
            self.eval_returns.append(float(torch.stack(per_group).mean()))


def experiment_config(args: argparse.Namespace, folder: str) -> ExperimentConfig:
    """BenchMARL's default experiment configuration with this benchmark's settings applied."""
    config = ExperimentConfig.get_from_yaml()
    if not args.defaults:
        config.off_policy_collected_frames_per_batch = common.FRAMES_PER_BATCH
        config.off_policy_n_envs_per_worker = common.N_ENVS
        config.off_policy_n_optimizer_steps = common.UPDATES_PER_BATCH
        config.off_policy_train_batch_size = common.TRAIN_BATCH_TRANSITIONS
        config.off_policy_memory_size = common.MEMORY_FRAMES
        config.off_policy_init_random_frames = 0
    if args.frames_per_batch is not None:
        config.off_policy_collected_frames_per_batch = args.frames_per_batch
    if args.updates_per_batch is not None:
        config.off_policy_n_optimizer_steps = args.updates_per_batch
    config.sampling_device = config.train_device = config.buffer_device = "cpu"
    config.prefer_continuous_actions = False
    config.max_n_frames = args.frames
    config.max_n_iters = None
    config.evaluation = False
    config.render = False
    config.evaluation_episodes = args.eval_episodes
    config.evaluation_deterministic_actions = True
    config.loggers = []
    config.create_json = False
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False
    config.save_folder = folder
    return config


def main() -> None:
    """Train, evaluate and print the result line."""
    args = common.parse_args(tuple(ALGORITHMS), __doc__.splitlines()[0])
    torch.set_num_threads(1)
    task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()
    task.config.update({key: common.env_kwargs()[key] for key in ("N", "local_ratio", "max_cycles")})
    model_config = MlpConfig.get_from_yaml()
    if not args.defaults:
        model_config.num_cells = [common.HIDDEN_DIM, common.HIDDEN_DIM]
    counter = WorkCounter()
    with tempfile.TemporaryDirectory(prefix="benchmarl_side_") as folder:
        config = experiment_config(args, folder)
        start = time.perf_counter()
        experiment = Experiment(
            task=task,
            algorithm_config=ALGORITHMS[args.algorithm].get_from_yaml(),
            model_config=model_config,
            seed=args.seed,
            config=config,
            callbacks=[counter],
        )
        setup_s = time.perf_counter() - start
        start = time.perf_counter()
        with common.counted_flops(args.count_flops) as counted:
            experiment.run()
        wall_s = time.perf_counter() - start
        with contextlib.redirect_stdout(sys.stderr):  # evaluate() prints where its results were logged
            experiment.evaluate()
    common.emit(
        {
            "library": "benchmarl",
            "version": benchmarl.__version__,
            "algorithm": args.algorithm,
            "mode": "defaults" if args.defaults else "equal",
            "frames": experiment.total_frames,
            "updates": counter.updates,
            "wall_s": round(wall_s, 3),
            "frames_per_s": round(experiment.total_frames / wall_s, 1),
            "setup_s": round(setup_s, 3),
            "n_envs": config.off_policy_n_envs_per_worker,
            "frames_per_batch": config.off_policy_collected_frames_per_batch,
            "updates_per_batch": config.off_policy_n_optimizer_steps,
            "batch_transitions": config.off_policy_train_batch_size,
            "mlp_cells": list(model_config.num_cells),
            "discrete_actions": not experiment.continuous_actions,
            "train_return": common.finite_or_none(experiment.mean_return),
            "eval_return": common.finite_or_none(
                sum(counter.eval_returns) / len(counter.eval_returns) if counter.eval_returns else None
            ),
            "eval_episodes": len(counter.eval_returns),
            "torch": torch.__version__,
            **common.flop_fields(counted, counter.updates),
        }
    )


if __name__ == "__main__":
    main()
