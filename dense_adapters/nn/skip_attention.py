"""SkipAt (Venkataramanan et al., arXiv 2301.02240): a cheap function Phi that stands in for self-attention.

A skipped layer computes no attention; its attention output is Phi applied to the attention output of the layer
before it. Phi works on patch tokens laid out on their grid, so the grid's height and width are always passed in.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..errors import UserError


class ECA(nn.Module):
    """Efficient channel attention over tokens: mean over tokens -> 1-D conv over channels -> sigmoid gate."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # x: [B, N, C]
        y = x.mean(dim=1, keepdim=True)  # [B, 1, C]
        y = self.conv(y).sigmoid()  # [B, 1, C]
        return x * y


class SkipAttention(nn.Module):
    """Parametric SkipAt function Phi: Linear d->2d, GELU, depthwise kxk conv on the grid, GELU, Linear 2d->d, ECA.

    Args:
        dim: token width d.
        hidden_ratio: width of the hidden layer relative to ``dim`` (paper: 2).
        kernel_size: depthwise convolution kernel (paper: 5).
        eca_kernel: kernel of ECA's 1-D channel convolution.
    """

    def __init__(self, dim: int, hidden_ratio: float = 2.0, kernel_size: int = 5, eca_kernel: int = 3) -> None:
        super().__init__()
        hidden = int(dim * hidden_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.act1 = nn.GELU()
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.act2 = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.eca = ECA(eca_kernel)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        """x: [B, H*W, C] patch tokens in row-major grid order; hw: (H, W) -> [B, H*W, C]."""
        B, N, _ = x.shape
        H, W = hw
        if H * W != N:
            raise UserError(f"SkipAttention got {N} tokens for a {H}x{W} grid: pass the patch grid's (H, W)")
        x = self.act1(self.fc1(x))
        x = x.transpose(1, 2).reshape(B, -1, H, W)  # [B, 2C, H, W]
        x = self.act2(self.dwconv(x))
        x = x.flatten(2).transpose(1, 2)  # [B, H*W, 2C]
        return self.eca(self.fc2(x))


class IdentitySkip(nn.Module):
    """SkipAt's ``identity`` mode: the previous attention output is reused unchanged."""

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        return x


def build_skip_fn(mode: str, dim: int) -> nn.Module:
    """``'parametric'`` -> :class:`SkipAttention`, ``'identity'`` -> :class:`IdentitySkip`."""
    if mode == "parametric":
        return SkipAttention(dim)
    if mode == "identity":
        return IdentitySkip()
    raise UserError(f"unknown skip mode {mode!r}: use 'parametric' or 'identity'")

