"""LOST (Siméoni et al., BMVC 2021) as pure, batched tensor functions (CPU and GPU).

LOST localises the main object of an image from the patch features of a self-supervised ViT (by default the
keys of the last block, heads concatenated):

1. similarity ``A = F F^T`` between the patch features ``F`` [L, C] (prefix tokens removed);
2. degree of each patch = number of *other* patches with positive similarity; the seed is the patch of lowest
   degree (objects cover less of the image than background, so their patches correlate with fewer patches);
3. expansion: among the ``k_patches`` lowest-degree patches, keep those positively correlated with the seed and
   sum their similarity rows: ``M = sum_{p in S} A[p, :]``;
4. the mask ``M > 0``; its 4-connected component that contains the seed gives the box (patch units), which is
   then scaled by the patch size and clipped to the image.

Facts taken from the authors' code (valeoai/LOST ``object_discovery.py``, ``main_lost.py``): raw (not normalised)
features, heads concatenated; degree counts ``A > 0`` with the diagonal zeroed; the seed's own row takes part in
the expansion (its self-similarity is positive); components are 4-connected (``scipy.ndimage.label``); the box
spans ``[min, max + 1)`` patches. Ties in degree are broken here by the lowest patch index (stable sort; the
original's unstable ``argsort`` leaves them unspecified).

Options for backbones other than DINO, as in the Registers paper's LOST experiments: ``center=True`` subtracts
the per-image mean patch feature before the similarity, and ``bias`` is added to every similarity (the Gram
matrix), moving the "positive correlation" threshold from 0 to ``-bias``: a number, or ``'mean'`` / ``'median'`` for
minus the mean / median off-diagonal similarity of each image (a threshold at the image's typical similarity). Both
default to LOST's behaviour (off, 0). :data:`SETTINGS` names the combinations used per backbone family.

Degenerate images: when every patch has the same degree (e.g. DINOv2 keys, where every correlation is positive, so
every degree is L - 1) the seed is arbitrary (the lowest index wins the tie: patch (0, 0)) and the box is
meaningless, usually the whole image. ``LOSTOutput.degenerate`` flags it per image; ``seed_ties`` counts the patches
that share the seed's degree.

Prefix tokens (cls and registers) are removed through ``num_prefix_tokens`` only: slicing ``[:, 1:]`` would feed
the registers to LOST as if they were patches (and break the grid reshape).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError

FEATURES = ("k", "q", "v", "out")
BIAS_MODES = ("mean", "median")

# Named settings (features, centring, Gram-matrix bias). 'lost': the paper's, for DINO ViT-S/16 keys.
# 'registers-dinov2': the Registers paper ran LOST on DINOv2 keys with a constant added to the Gram matrix (see
# docs/lost.md: the constant itself is not published in the sources we could read), so the bias here is minus the
# image's mean off-diagonal similarity, which removes the all-positive degeneracy the same way.
SETTINGS = {
    "lost": dict(which="k", center=False, bias=0.0),
    "registers-dinov2": dict(which="k", center=False, bias="mean"),
    "centered": dict(which="k", center=True, bias=0.0),
}


@dataclass
class LOSTOutput:
    """Everything LOST computes for a batch; grid tensors are [B, h, w] (row-major patch order)."""

    seed: Tensor  # [B] long: flat patch index of the seed
    degree: Tensor  # [B, L] long: number of positive correlations per patch
    potentials: Tensor  # [B, k] long: the k lowest-degree patches, lowest first
    similars: Tensor  # [B, L] bool: patches whose similarity rows are summed (seed expansion)
    expansion: Tensor  # [B, L] float: M, summed similarities
    mask: Tensor  # [B, h, w] bool: M > 0
    component: Tensor  # [B, h, w] bool: connected component of the mask containing the seed
    box: Tensor  # [B, 4] long: (x0, y0, x1, y1) in patch units, x1/y1 exclusive
    seed_in_mask: Tensor  # [B] bool: False only in degenerate cases (negative bias), box is then the seed patch
    seed_ties: Tensor  # [B] long: patches with the seed's (lowest) degree, the seed included
    degenerate: Tensor  # [B] bool: every patch has the same degree, so the seed is arbitrary
    bias: Tensor  # [B] float: the bias added to the similarities


# --------------------------------------------------------------------------------------------- features
def heads_to_channels(t: Tensor) -> Tensor:
    """Per-head [B, heads, N, d] -> [B, N, heads * d] (LOST concatenates the heads)."""
    B, nh, N, d = t.shape
    return t.transpose(1, 2).reshape(B, N, nh * d)


def patch_tokens(tokens: Tensor, num_prefix_tokens: int, hw: Optional[tuple[int, int]] = None) -> Tensor:
    """Drop the prefix tokens (cls + registers): [B, P + L, C] -> [B, L, C], checking L = h * w when given."""
    if tokens.ndim == 4:
        tokens = heads_to_channels(tokens)
    if not 0 <= num_prefix_tokens < tokens.shape[1]:
        raise UserError(f"num_prefix_tokens={num_prefix_tokens} does not fit {tokens.shape[1]} tokens")
    out = tokens[:, num_prefix_tokens:]
    if hw is not None and out.shape[1] != hw[0] * hw[1]:
        raise UserError(f"{out.shape[1]} patch tokens after removing {num_prefix_tokens} prefix tokens, but the "
                         f"grid is {hw[0]}x{hw[1]}: num_prefix_tokens must count cls AND register tokens")
    return out


@torch.no_grad()
def extract_features(vit: nn.Module, images: Tensor, which: str = "k", block: int = -1) -> tuple[Tensor, tuple]:
    """Patch features of ``images`` [B, 3, H, W] from a RegViT (or a wrapper with ``.vit``).

    ``which``: ``'k'``, ``'q'``, ``'v'`` (attention keys/queries/values of ``block``, heads concatenated) or
    ``'out'`` (the block's output tokens, before the final norm). Returns ([B, h*w, C], (h, w)).
    """
    if which not in FEATURES:
        raise UserError(f"unknown features {which!r}: use one of {FEATURES}")
    vit = getattr(vit, "vit", vit)
    if not hasattr(vit, "forward_blocks"):
        raise UserError(f"{type(vit).__name__} has no forward_blocks: LOST needs a dense_adapters RegViT")
    res = vit.forward_blocks(images, [block], capture=(which,))
    return patch_tokens(res[which][0], vit.num_prefix_tokens, res["hw"]), tuple(res["hw"])


# ------------------------------------------------------------------------------------------------ steps
def gram_bias(A: Tensor, bias: Union[float, str]) -> Tensor:
    """The per-image bias [B] for a similarity matrix [B, L, L]: a constant, or minus the mean / median off-diagonal
    similarity (``'mean'`` / ``'median'``)."""
    B, L, _ = A.shape
    if not isinstance(bias, str):
        return torch.full((B,), float(bias), device=A.device)
    if bias not in BIAS_MODES:
        raise UserError(f"unknown LOST bias {bias!r}: give a number or one of {BIAS_MODES}")
    off = A.masked_select(~torch.eye(L, dtype=torch.bool, device=A.device)).view(B, L * (L - 1)) if L > 1 else A
    return -(off.mean(1) if bias == "mean" else off.median(1).values)


def similarity(feats: Tensor, center: bool = False, bias: Union[float, str, Tensor] = 0.0) -> Tensor:
    """Patch-patch similarity ``F F^T (+ bias)``: [B, L, C] -> [B, L, L] in float32 (``bias``: a number, 'mean',
    'median' (see :func:`gram_bias`) or a per-image tensor [B])."""
    f = feats.float()
    if center:
        f = f - f.mean(dim=1, keepdim=True)
    A = f @ f.transpose(1, 2)
    if isinstance(bias, Tensor):
        return A + bias.view(-1, 1, 1)
    if isinstance(bias, str):
        return A + gram_bias(A, bias).view(-1, 1, 1)
    return A + bias if bias else A


def patch_degree(A: Tensor) -> Tensor:
    """Number of positive correlations of each patch with the other patches: [B, L, L] -> [B, L] long."""
    off_diag = ~torch.eye(A.shape[-1], dtype=torch.bool, device=A.device)
    return ((A > 0) & off_diag).sum(-1)


def _dilate4(x: Tensor) -> Tensor:
    """4-neighbourhood binary dilation of [B, h, w] bool."""
    p = F.pad(x, (1, 1, 1, 1))
    return x | p[:, :-2, 1:-1] | p[:, 2:, 1:-1] | p[:, 1:-1, :-2] | p[:, 1:-1, 2:]


def seed_component(mask: Tensor, seed: Tensor, check_every: int = 4) -> Tensor:
    """The 4-connected component of ``mask`` [B, h, w] containing the flat index ``seed`` [B] (flood fill).

    Empty where the seed is outside the mask.
    """
    B, h, w = mask.shape
    comp = torch.zeros(B, h * w, dtype=torch.bool, device=mask.device)
    comp[torch.arange(B, device=mask.device), seed] = True
    comp = comp.view(B, h, w) & mask
    for i in range(h * w):
        nxt = _dilate4(comp) & mask
        if i % check_every == 0 and torch.equal(nxt, comp):
            break
        comp = nxt
    return comp


def mask_box(comp: Tensor) -> Tensor:
    """Tight box (x0, y0, x1, y1), x1/y1 exclusive, of each non-empty [B, h, w] mask: [B, 4] long."""
    B, h, w = comp.shape
    rows, cols = comp.any(2), comp.any(1)  # [B, h], [B, w]
    ar_h = torch.arange(h, device=comp.device).expand(B, h)
    ar_w = torch.arange(w, device=comp.device).expand(B, w)
    y0 = torch.where(rows, ar_h, h).amin(1)
    y1 = torch.where(rows, ar_h, -1).amax(1) + 1
    x0 = torch.where(cols, ar_w, w).amin(1)
    x1 = torch.where(cols, ar_w, -1).amax(1) + 1
    return torch.stack([x0, y0, x1, y1], 1)


# ------------------------------------------------------------------------------------------------- LOST
def lost(feats: Tensor, hw: tuple[int, int], k_patches: int = 100, center: bool = False,
         bias: Union[float, str] = 0.0) -> LOSTOutput:
    """Run LOST on patch features ``feats`` [B, L, C] (prefix tokens already removed) of an (h, w) grid.

    ``bias``: added to every similarity: a number, or ``'mean'`` / ``'median'`` (per image, see :func:`gram_bias`).
    """
    h, w = int(hw[0]), int(hw[1])
    if feats.ndim != 3 or feats.shape[1] != h * w:
        raise UserError(f"feats must be [B, h*w, C] = [B, {h * w}, C] for a {h}x{w} grid, got {tuple(feats.shape)}"
                        " (remove prefix tokens with patch_tokens(tokens, num_prefix_tokens))")
    if k_patches < 1:
        raise UserError(f"k_patches must be >= 1, got {k_patches}")
    B, L = feats.shape[:2]
    bidx = torch.arange(B, device=feats.device)
    A = similarity(feats, center)  # [B, L, L]
    b = gram_bias(A, bias)  # [B]
    if bool(b.any()):
        A = A + b.view(B, 1, 1)
    degree = patch_degree(A)  # [B, L]
    order = torch.sort(degree, dim=1, stable=True).indices  # lowest degree first
    seed = order[:, 0]  # [B]
    low = degree.gather(1, seed[:, None])  # [B, 1]
    seed_ties = (degree == low).sum(1)
    degenerate = degree.amax(1) == degree.amin(1)
    potentials = order[:, : min(k_patches, L)]  # [B, k]
    to_seed = A[bidx, seed].gather(1, potentials)  # [B, k]: A[seed, p]
    similars = torch.zeros(B, L, dtype=torch.bool, device=feats.device)
    similars.scatter_(1, potentials, to_seed > 0)
    M = (similars.float().unsqueeze(1) @ A).squeeze(1)  # [B, L]: sum of rows A[p, :] over p in S
    mask = (M > 0).view(B, h, w)
    comp = seed_component(mask, seed)
    seed_in_mask = mask.view(B, L)[bidx, seed]
    if not bool(seed_in_mask.all()):  # only with a negative bias: fall back to the seed patch
        lone = torch.zeros(B, L, dtype=torch.bool, device=feats.device)
        lone[bidx, seed] = True
        comp = torch.where(seed_in_mask.view(B, 1, 1), comp, lone.view(B, h, w))
    return LOSTOutput(seed, degree, potentials, similars, M, mask, comp, mask_box(comp), seed_in_mask, seed_ties,
                      degenerate, b)


def boxes_to_image(box: Tensor, patch_size: Union[int, Sequence[int]],
                   image_hw: Union[None, Sequence[int], Tensor] = None,
                   offset: Sequence[int] = (0, 0)) -> Tensor:
    """Patch-unit boxes [B, 4] -> pixel boxes [B, 4] float (x0, y0, x1, y1), clipped to the image.

    ``patch_size`` int or (ph, pw); ``image_hw`` the original (H, W), one pair or [B, 2], to clip boxes that reach
    into the padding (LOST pads bottom/right); ``offset`` (top, left) padding added before the grid, if any.
    """
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    scale = torch.tensor([pw, ph, pw, ph], dtype=torch.float32, device=box.device)
    shift = torch.tensor([offset[1], offset[0], offset[1], offset[0]], dtype=torch.float32, device=box.device)
    out = box.float() * scale - shift
    if image_hw is not None:
        hw = torch.as_tensor(image_hw, dtype=torch.float32, device=box.device).reshape(-1, 2)
        hi = torch.stack([hw[:, 1], hw[:, 0], hw[:, 1], hw[:, 0]], 1)  # [1 or B, 4]
        out = torch.minimum(out.clamp(min=0), hi)
    return out


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of xyxy boxes a [n, 4] and b [m, 4] (continuous coordinates, no +1, as LOST): [n, m]."""
    from torchvision.ops import box_iou as tv_box_iou

    return tv_box_iou(a.double(), b.double())


def corloc_hit(pred: Tensor, gt: Tensor, threshold: float = 0.5) -> bool:
    """CorLoc criterion: the predicted box [4] has IoU >= ``threshold`` with any ground-truth box [m, 4]."""
    if gt.numel() == 0:
        return False
    return bool((box_iou(pred.reshape(1, 4), gt.reshape(-1, 4)) >= threshold).any())
