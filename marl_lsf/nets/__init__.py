"""Networks shared by every algorithm: torsos, actor, critics with latent messages, mixers, acting policies."""

from marl_lsf.nets.agents import AgentNetwork, LatentCritic, LatentOutput
from marl_lsf.nets.mixers import (
    CentralFFMixer,
    DuplexDuelingMixer,
    LinearMixer,
    QMixer,
    QTranJointQ,
    VDNMixer,
    make_mixer,
)
from marl_lsf.nets.policies import (
    ActingPolicy,
    EpsilonGreedyPolicy,
    EpsilonSoftmaxPolicy,
    SoftmaxPolicy,
    with_agent_ids,
)
from marl_lsf.nets.torsos import GRUTorso, MLPTorso, Torso, make_torso

__all__ = [
    "ActingPolicy",
    "AgentNetwork",
    "CentralFFMixer",
    "DuplexDuelingMixer",
    "EpsilonGreedyPolicy",
    "EpsilonSoftmaxPolicy",
    "GRUTorso",
    "LatentCritic",
    "LatentOutput",
    "LinearMixer",
    "MLPTorso",
    "QMixer",
    "QTranJointQ",
    "SoftmaxPolicy",
    "Torso",
    "VDNMixer",
    "make_mixer",
    "make_torso",
    "with_agent_ids",
]
