"""Algorithms: LSF-SAC and the QMIX, VDN, Weighted QMIX, QTRAN, QPLEX and DOP baselines on the shared ``MultiAgentAlgorithm`` base."""

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.dop import DOP
from marl_lsf.algorithms.lsfsac import LSFSAC
from marl_lsf.algorithms.qmix import QMIX, VDN
from marl_lsf.algorithms.qplex import QPLEX
from marl_lsf.algorithms.qtran import QTRAN
from marl_lsf.algorithms.wqmix import CWQMIX, OWQMIX, WQMIX

#: The algorithms by the names the command line and sweeps use.
ALGORITHMS: dict[str, type[MultiAgentAlgorithm]] = {
    "lsfsac": LSFSAC,
    "qmix": QMIX,
    "vdn": VDN,
    "ow_qmix": OWQMIX,
    "cw_qmix": CWQMIX,
    "qtran": QTRAN,
    "dop": DOP,
    "qplex": QPLEX,
}


def algorithm_class(name: str) -> type[MultiAgentAlgorithm]:
    """The algorithm class of a (case-insensitive) name such as ``lsfsac``, ``qmix`` or ``vdn``.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; valid algorithms: {', '.join(ALGORITHMS)}") from None


__all__ = [
    "ALGORITHMS",
    "CWQMIX",
    "DOP",
    "LSFSAC",
    "OWQMIX",
    "QMIX",
    "QPLEX",
    "QTRAN",
    "VDN",
    "WQMIX",
    "MultiAgentAlgorithm",
    "algorithm_class",
]
