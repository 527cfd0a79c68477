"""PNG figures of the analysis tools, with matplotlib's object API (no pyplot, no display needed)."""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def _np(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if hasattr(x, "detach") else np.asarray(x)


def _save(fig: Figure, path: str, dpi: int) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def norm_histogram(groups: dict, path: str, threshold: Optional[float] = None, title: str = "",
                   bins: int = 60, dpi: int = 80) -> str:
    """Histogram of token norms per group (e.g. patch / cls / registers), log-scale counts, threshold line."""
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    vals = {k: _np(v).ravel() for k, v in groups.items() if v is not None and _np(v).size}
    hi = max(v.max() for v in vals.values())
    edges = np.linspace(0, hi * 1.02 + 1e-6, bins + 1)
    for name, v in vals.items():
        ax.hist(v, bins=edges, alpha=0.6, label=f"{name} ({v.size})")
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("token norm")
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path, dpi)


def _outlier_boxes(ax, mask: np.ndarray, patch: tuple[float, float], offset: float = 0.0, color: str = "red") -> None:
    """Box every True cell of ``mask``; ``offset`` -0.5 for axes in pixel-centre coordinates (imshow of a grid)."""
    for r, c in zip(*np.nonzero(mask)):
        ax.add_patch(Rectangle((c * patch[1] + offset, r * patch[0] + offset), patch[1], patch[0], fill=False,
                               ec=color, lw=1.2))


def outlier_overlays(image: np.ndarray, panels: Sequence[tuple], path: str, dpi: int = 80) -> str:
    """One row per panel ``(title, patch_norms [h, w], outlier_mask [h, w])``: image with outlier patches boxed,
    and the norm map (shared colour scale across panels, so before/after compare directly)."""
    H, W = image.shape[:2]
    vmax = max(float(_np(p[1]).max()) for p in panels)
    fig = Figure(figsize=(6, 3 * len(panels) * H / W + 0.4))
    axes = np.atleast_2d(fig.subplots(len(panels), 2, squeeze=False))
    for (title, norms, mask), (a0, a1) in zip(panels, axes):
        norms, mask = _np(norms), _np(mask).astype(bool)
        h, w = norms.shape
        a0.imshow(image)
        _outlier_boxes(a0, mask, (H / h, W / w), offset=-0.5)
        a0.set_title(f"{title}: {int(mask.sum())} outliers", fontsize=8)
        im = a1.imshow(norms, cmap="viridis", vmin=0, vmax=vmax)
        a1.set_title(f"patch norms (max {norms.max():.1f})", fontsize=8)
        fig.colorbar(im, ax=a1, fraction=0.046, pad=0.02)
        for a in (a0, a1):
            a.axis("off")
    return _save(fig, path, dpi)


def layer_norm_grid(norm_maps: Sequence, masks: Sequence, layers: Sequence[int], path: str,
                    fractions: Optional[Sequence[float]] = None, dpi: int = 80) -> str:
    """Patch-norm map per layer (one image), outliers boxed; last panel: outlier fraction per layer."""
    n = len(norm_maps) + (fractions is not None)
    cols = min(6, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.0 * cols, 2.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, m, k, layer in zip(axes, norm_maps, masks, layers):
        m = _np(m)
        ax.imshow(m, cmap="viridis")
        _outlier_boxes(ax, _np(k).astype(bool), (1.0, 1.0), offset=-0.5)
        ax.set_xlim(-0.5, m.shape[1] - 0.5)
        ax.set_ylim(m.shape[0] - 0.5, -0.5)
        ax.set_title(f"block {layer}: max {m.max():.0f}", fontsize=7)
        ax.axis("off")
    used = len(norm_maps)
    if fractions is not None:
        ax = axes[used]
        ax.plot(list(layers), [100 * f for f in fractions], "o-", ms=3)
        ax.set_xlabel("block", fontsize=7)
        ax.set_title("% outlier patches", fontsize=7)
        ax.tick_params(labelsize=6)
        used += 1
    for ax in axes[used:]:
        ax.axis("off")
    return _save(fig, path, dpi)


def attention_grid(image: np.ndarray, maps, labels: Sequence[str], path: str, title: str = "",
                   max_heads: Optional[int] = None, dpi: int = 80) -> str:
    """Rows: prefix tokens (cls, registers); columns: mean over heads then each head; overlaid on the image.

    ``maps``: [P, heads, h, w] attention to the patches. Each map is scaled to its own maximum.
    """
    maps = _np(maps)
    P, heads = maps.shape[:2]
    nh = heads if max_heads is None else min(heads, max_heads)
    H, W = image.shape[:2]
    fig = Figure(figsize=(1.6 * (nh + 2), 1.6 * P * H / W + 0.3))
    axes = np.atleast_2d(fig.subplots(P, nh + 2, squeeze=False))
    for r in range(P):
        panels = [("image", None), ("mean", maps[r].mean(0))] + [(f"head {i}", maps[r, i]) for i in range(nh)]
        for c, (name, m) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(image)
            if m is not None:
                ax.imshow(m / max(m.max(), 1e-12), cmap="inferno", alpha=0.65, extent=(0, W, H, 0),
                          interpolation="nearest")
            ax.set_title(f"{labels[r]} {name}" if c else labels[r], fontsize=7)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path, dpi)


def similarity_heatmap(matrix, path: str, title: str = "", labels: Optional[Sequence] = None, dpi: int = 80) -> str:
    """Square heatmap of a layer-by-layer similarity matrix in [0, 1], values printed when small enough."""
    m = _np(matrix)
    fig = Figure(figsize=(0.35 * m.shape[1] + 2, 0.35 * m.shape[0] + 1.5))
    ax = fig.subplots()
    im = ax.imshow(m, cmap="magma", vmin=0, vmax=1, origin="lower")
    labels = list(labels) if labels is not None else list(range(m.shape[0]))
    ax.set_xticks(range(m.shape[1]), labels, fontsize=6)
    ax.set_yticks(range(m.shape[0]), labels, fontsize=6)
    ax.set_xlabel("block", fontsize=8)
    ax.set_ylabel("block", fontsize=8)
    if m.shape[0] <= 16:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=5,
                        color="w" if m[i, j] < 0.6 else "k")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    return _save(fig, path, dpi)
