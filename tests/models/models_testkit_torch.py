"""PyTorch modules the model tests save by class path (importable as ``models_testkit_torch``)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, n_in: int = 4, n_hidden: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TiedNet(nn.Module):
    """Input embedding and output projection share one weight (saved once by safetensors)."""

    def __init__(self, vocab: int = 20, dim: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids).mean(dim=1))


class TwoInputs(nn.Module):
    def __init__(self, dim: int = 3) -> None:
        super().__init__()
        self.a = nn.Linear(dim, 1)
        self.b = nn.Linear(dim, 1)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return self.a(left) + self.b(right)


class NotAModule:
    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs

    def predict(self, data: object) -> object:
        return data
