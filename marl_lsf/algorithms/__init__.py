"""Algorithms: LSF-SAC and the QMIX, VDN, Weighted QMIX, QTRAN, QPLEX and DOP baselines on the shared ``MultiAgentAlgorithm`` base."""

from pathlib import Path
from typing import Any

from marl_lsf.algorithms.base import MultiAgentAlgorithm
from marl_lsf.algorithms.dop import DOP
from marl_lsf.algorithms.lsfsac import LSFSAC
from marl_lsf.algorithms.qmix import QMIX, VDN
from marl_lsf.algorithms.qplex import QPLEX
from marl_lsf.algorithms.qtran import QTRAN
from marl_lsf.algorithms.wqmix import CWQMIX, OWQMIX, WQMIX
from marl_lsf.save_util import ModelFileError, load_model_file, model_path

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


def load_model(path: str | Path, env: Any = None, device: str = "auto", **kwargs: Any) -> MultiAgentAlgorithm:
    """Load a model saved by any marl-lsf algorithm: the file says which (``LSFSAC.load`` and the
    others need the class up front). ``env``, ``device`` and ``kwargs`` are ``load``'s.

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelFileError: not a model file, or one of an algorithm this installation lacks.
    """
    path = Path(path)
    if not path.is_file() and model_path(path).is_file():
        path = model_path(path)
    data, _ = load_model_file(path)
    name = data.get("algorithm")
    cls = {algo.__name__: algo for algo in ALGORITHMS.values()}.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(
            f"{path} holds a {name!r} model, which this marl_lsf installation does not provide"
        )
    return cls.load(path, env=env, device=device, **kwargs)


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
    "load_model",
]
