"""Algorithms: LSF-SAC and the QMIX/VDN baselines on the shared ``MultiAgentAlgorithm`` base."""

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.lsfsac import LSFSAC
from marl_lsf.algorithms.qmix import QMIX, VDN

__all__ = ["LSFSAC", "QMIX", "VDN", "MultiAgentAlgorithm"]
