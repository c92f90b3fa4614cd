"""Averages of a run's weights kept beside the model: an exponential moving average (`ema: 0.999` in a run
file) and the uniform average of a trunk's last steps (an averaged release, `renewlm update --release average`).

After every optimizer step that was not skipped, ema ← ema + (1 − decay)·(weights − ema): a cheap
stand-in for a learning-rate decay (WSM, Tian et al. 2025; torchtitan's components/ema.py and
OLMo-core keep one in the loop). The copy is fp32 and, under FSDP2, holds only this process's shard
(DTensors like the parameters), so it costs 4 bytes per parameter of the shard and DCP saves and
reshards it with the model. It starts as the run's first weights (no bias correction, like torchtitan's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.distributed.tensor import DTensor


def _local(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """This process's shard of each tensor (the tensor itself when it is not a DTensor); in place on it is in place on the tensor."""
    return [t._local_tensor if isinstance(t, DTensor) else t for t in tensors]


class Average:
    """An fp32 average of `model`'s parameters, moved towards them by `_lerp` after each step."""

    def __init__(self, model: nn.Module):
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        with torch.no_grad():
            self.average = [p.detach().to(torch.float32, copy=True) for p in self.params]

    def _lerp(self, weight: torch.Tensor) -> None:
        """average ← average + weight·(weights − average), `weight` a 0-d tensor on the device."""
        # The List overload takes tensor weights; the Scalar one would read a 0-d tensor back to the host.
        torch._foreach_lerp_(_local(self.average), [p.float() for p in _local(self.params)], [weight] * len(self.average))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The average by parameter name: DCP saves it, and loads into these very tensors in place."""
        return dict(zip(self.names, self.average))

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, tensor in self.state_dict().items():
            tensor.copy_(state[name])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the average inside the block (evaluate it, save it) and its own weights again after,
        bit for bit (they are kept aside meanwhile: a second copy of the shard for that while)."""
        with torch.no_grad():
            kept = [p.detach().clone() for p in _local(self.params)]
            torch._foreach_copy_(_local(self.params), _local(self.average))
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(_local(self.params), kept)

    def bytes(self) -> int:
        """Bytes this process holds for the average (its shard only, under FSDP)."""
        return sum(t.numel() * t.element_size() for t in _local(self.average))


class EMA(Average):
    """The exponential moving average with `decay` (the share of the average each step keeps)."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__(model)
        self.decay = decay

    @torch.no_grad()
    def update(self, step: int, found_inf: torch.Tensor) -> None:
        """Move the average towards the weights after `step`; `found_inf` (1.0 when the step was skipped) stays
        on the device: its weight is 0 then, so a skipped step leaves the average as it was, with no host sync."""
        self._lerp((1.0 - found_inf.float()) * (1.0 - self.decay))  # a tensor, not a Python number: `.item()` would sync


class WindowAverage(Average):
    """The uniform average of the weights after each step from `first_step` (0-based) to the run's end: an averaged
    release of a trunk at constant LR (PMA, Li et al. 2025; WSM, Tian et al. 2025), kept as the run goes, so no
    window checkpoint is written or read. After the n-th step counted, average ← average + (weights − average)/n."""

    def __init__(self, model: nn.Module, first_step: int):
        super().__init__(model)
        self.first_step = first_step
        self.count = torch.zeros((), dtype=torch.float32, device=self.average[0].device if self.average else None)

    @torch.no_grad()
    def update(self, step: int, found_inf: torch.Tensor) -> None:
        """Count the weights after `step` when it is in the window and was not skipped (on the device, no host sync)."""
        if step < self.first_step:
            return
        kept = 1.0 - found_inf.float()
        self.count += kept
        self._lerp(kept / self.count.clamp(min=1.0))  # the first step counted: weight 1, the average is its weights

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict(), "count": self.count}
