"""Networks shared by every algorithm: torsos, actor, critics with latent messages, mixers."""

from marl_lsf.nets.agents import AgentNetwork, LatentCritic, LatentOutput
from marl_lsf.nets.mixers import QMixer, VDNMixer, make_mixer
from marl_lsf.nets.torsos import GRUTorso, MLPTorso, Torso, make_torso

__all__ = [
    "AgentNetwork",
    "GRUTorso",
    "LatentCritic",
    "LatentOutput",
    "MLPTorso",
    "QMixer",
    "Torso",
    "VDNMixer",
    "make_mixer",
    "make_torso",
]
