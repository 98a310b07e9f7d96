"""PettingZoo ParallelEnvs used by marl-lsf, in a source checkout.

The environments live in the repository's top-level ``envs/`` folder. An installed wheel ships
that folder as this package (``pyproject.toml`` maps ``marl_lsf.envs`` to ``envs/``), so this file
is not installed; in a checkout it points the package's search path at ``envs/``, so that
``from marl_lsf.envs import predator_prey_v1`` works from the source tree as it does installed.
"""

from pathlib import Path

__path__ = [str(Path(__file__).resolve().parents[2] / "envs")]
