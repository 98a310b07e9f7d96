"""PettingZoo ParallelEnvs used by marl-lsf.

Import the module you need, e.g. ``from marl_lsf.envs import predator_prey_v0`` then
``predator_prey_v0.parallel_env()``. This package imports nothing itself, so optional
dependencies (StarCraft II, JAX) are only needed by the modules that use them.
"""
