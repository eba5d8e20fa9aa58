"""The geometric deep learning blueprint, one assembly for every domain.

    f = A ∘ σ_J ∘ B_J ∘ P_{J−1} ∘ … ∘ P_1 ∘ σ_1 ∘ B_1

A domain (plane, group, sphere, SO(3)) supplies the equivariant linear layer
B, the pointwise nonlinearity σ, the coarsening P and the invariant readout A.
:class:`Block` is one stage B → (norm) → σ → (residual) → P and
:class:`Blueprint` chains blocks and ends with readout and a head. Planar,
group and spherical models differ only in the modules they plug in here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Block(nn.Module):
    """One blueprint stage: ``h = P(σ(N(B(x))))``, or ``h = P(S(x) + σ(N(B(x))))`` if residual.

    Args:
        linear: the equivariant linear layer B.
        nonlinearity: σ (``nn.Identity()`` for none).
        norm: an equivariant normalization N applied before σ (optional).
        pool: the coarsening P (optional).
        shortcut: S, the map of the residual branch when B changes the
            shape (e.g. a 1×1 / degree-wise linear map); ``None`` with
            ``residual=True`` means the identity.
        residual: add the shortcut of the input before pooling.
    """

    def __init__(
        self,
        linear: nn.Module,
        nonlinearity: nn.Module | None = None,
        norm: nn.Module | None = None,
        pool: nn.Module | None = None,
        shortcut: nn.Module | None = None,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if shortcut is not None and not residual:
            raise ValueError("a shortcut module only makes sense with residual=True")
        self.linear = linear
        self.norm = norm if norm is not None else nn.Identity()
        self.nonlinearity = nonlinearity if nonlinearity is not None else nn.Identity()
        self.pool = pool if pool is not None else nn.Identity()
        self.residual = residual
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.nonlinearity(self.norm(self.linear(x)))
        if self.residual:
            skip = self.shortcut(x)
            if skip.shape != h.shape:
                raise ValueError(
                    f"residual branch shape {tuple(skip.shape)} does not match block output {tuple(h.shape)}; "
                    "give a shortcut module that maps the input to the output shape"
                )
            h = skip + h
        return self.pool(h)


class Blueprint(nn.Module):
    """``head(readout(blocks(x)))``: the whole model, any domain."""

    def __init__(self, blocks: Sequence[nn.Module], readout: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.readout = readout
        self.head = head if head is not None else nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant features (after the readout, before the head)."""
        return self.readout(self.blocks(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
