"""marl-lsf: LSF-SAC and value-decomposition baselines for cooperative multi-agent RL on PettingZoo."""

from marl_lsf.algorithms import (
    CWQMIX,
    DOP,
    LSFSAC,
    OWQMIX,
    QMIX,
    QPLEX,
    QTRAN,
    VDN,
    WQMIX,
    MultiAgentAlgorithm,
    load_model,
)
from marl_lsf.analysis import UtilityTables, utility_tables
from marl_lsf.evaluation import EvaluationResult, evaluate_policy, evaluate_random_policy

__version__ = "0.1.0"

__all__ = [
    "CWQMIX",
    "DOP",
    "LSFSAC",
    "OWQMIX",
    "QMIX",
    "QPLEX",
    "QTRAN",
    "VDN",
    "WQMIX",
    "EvaluationResult",
    "MultiAgentAlgorithm",
    "UtilityTables",
    "__version__",
    "evaluate_policy",
    "evaluate_random_policy",
    "load_model",
    "utility_tables",
]
