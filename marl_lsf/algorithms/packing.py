"""Per-step networks on the real steps of a padded episode batch only.

A training batch pads every episode to the longest one sampled; on predator-prey a team that hunts
ends most episodes well before the 200-step limit, while one episode of the batch that does not
sets the length for all of them. An ``MlpPolicy`` network treats every step on its own, so it can
run on the real steps alone, packed into one long sequence, and its outputs be put back in place
with zeros on the padding (which every loss masks out). Recurrent networks need the padded
sequences and are left as they are. Mixers and other networks of the state read each transition
on its own whatever the agents' network, so they always run on the filled transitions only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class StepPacking:
    """Packs the steps ``[B, T+1]`` of a batch that hold data (each episode's ``T_b`` transitions and
    the observation after its last one) into ``[1, V]``, and unpacks network outputs back.

    Args:
        filled: ``[B, T]`` True on real transitions (``EpisodeBatch.filled``).
        enabled: False for recurrent networks: ``pack`` and ``unpack`` then return their input.
        next_step: True packs ``[B, T+1]`` tensors (every step an agent network reads); False packs
            ``[B, T]`` tensors of transitions (what the mixers read), the ``filled`` ones only.
    """

    def __init__(self, filled: torch.Tensor, enabled: bool = True, next_step: bool = True) -> None:
        if next_step:
            steps = torch.arange(filled.shape[1] + 1, device=filled.device)
            real = steps[None, :] <= filled.sum(1, keepdim=True)
        else:
            real = filled
        self.shape = tuple(real.shape)
        self.index = real.flatten().nonzero().squeeze(1) if enabled and not bool(real.all()) else None

    @property
    def active(self) -> bool:
        """Whether some steps are padding (and packing is enabled), so packing changes anything."""
        return self.index is not None

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T(+1), ...]`` -> its real steps ``[1, V, ...]``."""
        if self.index is None:
            return x
        return x.flatten(0, 1).index_select(0, self.index).unsqueeze(0)

    def unpack(self, y: torch.Tensor) -> torch.Tensor:
        """A network output ``[1, V, ...]`` on packed steps -> ``[B, T(+1), ...]``, zeros on the padding."""
        if self.index is None:
            return y
        out = y.new_zeros((self.shape[0] * self.shape[1], *y.shape[2:]))
        return out.index_copy(0, self.index, y[0]).view(*self.shape, *y.shape[2:])

    def apply(self, network: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
        """``network(*inputs)`` computed on the real steps only, unpacked (e.g. a mixer on ``(Q, s)``)."""
        return self.unpack(network(*(self.pack(x) for x in inputs)))
