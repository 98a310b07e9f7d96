"""Algorithms: LSF-SAC on the shared ``MultiAgentAlgorithm`` base."""

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.lsfsac import LSFSAC

__all__ = ["LSFSAC", "MultiAgentAlgorithm"]
