"""The default network: an MLP classifier with its input normalisation built in.

The per-feature mean and standard deviation of the training split are buffers of the network,
so the saved state_dict (contract.MODEL_FILE) is all that inference needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Default hidden layer sizes: wide enough that Lightning's fixed per-step cost is small next to
#: the step itself (see bench/training_loop.py), small enough for a CPU-only minute.
HIDDEN_SIZES = (1024, 1024)


class MLP(nn.Module):
    """x -> (x - mean) / std -> [Linear -> ReLU] * len(hidden) -> Linear -> logits."""

    def __init__(
        self, in_features: int, num_classes: int, hidden: Sequence[int] = HIDDEN_SIZES
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.hidden = tuple(int(h) for h in hidden)
        self.register_buffer("input_mean", torch.zeros(in_features))
        self.register_buffer("input_std", torch.ones(in_features))
        layers: list[nn.Module] = []
        width = in_features
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - self.input_mean) / self.input_std)
