"""Linear centered kernel alignment (CKA) between layer representations.

* :func:`linear_cka`: full-batch linear CKA of Kornblith et al. (2019), biased (HSIC_0) or unbiased HSIC.
* :class:`MinibatchCKA`: Nguyen et al. (2021, "Do Wide and Deep Networks Learn the Same Things?"): the unbiased
  HSIC estimator of Song et al. (2012) accumulated over mini-batches, CKA = sum HSIC_1(K, L) /
  sqrt(sum HSIC_1(K, K) * sum HSIC_1(L, L)); memory stays O(layers^2 + batch^2) whatever the number of examples.

Examples are rows (images); a representation is flattened to [n, features] (tokens x channels, or attention maps).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ..errors import UserError


def _gram(x: Tensor) -> Tensor:
    """[n, ...] -> linear Gram matrix [n, n] in float64 of the batch-centred features.

    Both HSIC estimators are invariant to shifting the features; centring first keeps the precision when the
    examples differ little (e.g. near-uniform attention maps of a randomly initialised ViT).
    """
    x = x.reshape(x.shape[0], -1).double()
    x = x - x.mean(0, keepdim=True)
    return x @ x.T


def hsic0(k: Tensor, l: Tensor) -> Tensor:
    """Biased HSIC of Gram matrices [n, n]: tr(K H L H) / (n - 1)^2 (H centres)."""
    n = k.shape[0]
    h = torch.eye(n, dtype=k.dtype, device=k.device) - 1.0 / n
    return torch.trace(k @ h @ l @ h) / (n - 1) ** 2


def hsic1_matrix(grams_x: Tensor, grams_y: Tensor) -> Tensor:
    """Unbiased HSIC (Song et al. 2012) between every pair of Gram matrices: [A, n, n] x [B, n, n] -> [A, B].

    HSIC_1(K, L) = [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)), with K~ = K, zero diagonal.
    """
    n = grams_x.shape[-1]
    if n < 4:
        raise UserError(f"unbiased HSIC needs at least 4 examples per batch, got {n}: use a larger batch size")
    eye = torch.eye(n, dtype=torch.bool, device=grams_x.device)
    kx = grams_x.masked_fill(eye, 0.0)
    ky = grams_y.masked_fill(eye, 0.0)
    trace = torch.einsum("aij,bij->ab", kx, ky)  # tr(K~ L~) (both symmetric)
    rx, ry = kx.sum(-1), ky.sum(-1)  # row sums [A, n], [B, n]
    sx, sy = rx.sum(-1), ry.sum(-1)  # 1'K~1
    cross = rx @ ry.T  # 1'K~L~1 [A, B]
    return (trace + sx[:, None] * sy[None, :] / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross) / (n * (n - 3))


def linear_cka(x: Tensor, y: Tensor, unbiased: bool = False) -> float:
    """Full-batch linear CKA of representations x [n, ...] and y [n, ...] (same n)."""
    if x.shape[0] != y.shape[0]:
        raise UserError(f"CKA needs the same examples in both representations, got {x.shape[0]} and {y.shape[0]}")
    k, l = _gram(x), _gram(y)
    if unbiased:
        h = hsic1_matrix(torch.stack([k, l]), torch.stack([k, l]))
        return (h[0, 1] / (h[0, 0] * h[1, 1]).sqrt()).item()
    return (hsic0(k, l) / (hsic0(k, k) * hsic0(l, l)).sqrt()).item()


class MinibatchCKA:
    """Accumulates unbiased HSIC over mini-batches for every pair of (x-layer, y-layer); ``compute()`` gives CKA.

    ``update(xs, ys=None)``: ``xs`` a list of per-layer representations [B, ...] of the same B examples (``ys``
    defaults to ``xs``: layer-vs-layer self-similarity). Every batch needs B >= 4.
    """

    def __init__(self) -> None:
        self.xy: Optional[Tensor] = None  # [A, B] sums of HSIC_1(K_a, L_b)
        self.xx: Optional[Tensor] = None  # [A]
        self.yy: Optional[Tensor] = None  # [B]
        self.num_batches = 0
        self.num_examples = 0

    @torch.no_grad()
    def update(self, xs: Sequence[Tensor], ys: Optional[Sequence[Tensor]] = None) -> None:
        n = xs[0].shape[0]
        if any(t.shape[0] != n for t in list(xs) + list(ys or [])):
            raise UserError("every representation in one CKA update must hold the same examples (same batch size)")
        gx = torch.stack([_gram(t) for t in xs])  # [A, n, n]
        gy = gx if ys is None else torch.stack([_gram(t) for t in ys])
        xy = hsic1_matrix(gx, gy)
        xx = xy.diagonal() if ys is None else torch.stack([hsic1_matrix(g[None], g[None])[0, 0] for g in gx])
        yy = xy.diagonal() if ys is None else torch.stack([hsic1_matrix(g[None], g[None])[0, 0] for g in gy])
        if self.xy is None:
            self.xy, self.xx, self.yy = xy.clone(), xx.clone(), yy.clone()
        else:
            if self.xy.shape != xy.shape:
                raise UserError(f"layer count changed between updates: {tuple(self.xy.shape)} vs {tuple(xy.shape)}")
            self.xy += xy
            self.xx += xx
            self.yy += yy
        self.num_batches += 1
        self.num_examples += n

    def compute(self) -> Tensor:
        """CKA matrix [A, B] (float64); NaN where a representation has no variance (HSIC(K, K) <= 0: the
        unbiased estimate of a zero quantity can come out negative)."""
        if self.xy is None:
            raise RuntimeError("MinibatchCKA.compute() called before any update()")
        den = self.xx[:, None] * self.yy[None, :]
        ok = (self.xx[:, None] > 0) & (self.yy[None, :] > 0)
        return torch.where(ok, self.xy / den.clamp_min(1e-300).sqrt(), torch.full_like(den, float("nan")))
