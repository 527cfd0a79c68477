"""The authors' models, rebuilt outside the package, and the golden outputs the checkpoint tests compare against.

What it reproduces (written from the published code, in plain PyTorch, without importing dense_adapters):

- **Uformer** (github.com/ZhendongWang6/Uformer ``model.py``, the ``Uformer`` class as ``utils/model_utils.py``'s
  ``get_arch`` builds ``Uformer_T``/``_S``/``_B``: ``token_projection='linear'``, ``token_mlp='leff'``,
  ``modulator=True``, ``dd_in=3``). Its module names are the checkpoint's keys (``input_proj.proj.0``,
  ``encoderlayer_<l>``, ``dowsample_<l>.conv.0``, ``conv`` (bottleneck), ``upsample_<k>.deconv.0``,
  ``decoderlayer_<k>``, ``output_proj.proj.0``; per block ``attn.qkv.to_q`` / ``attn.qkv.to_kv``,
  ``mlp.linear1.0`` / ``mlp.dwconv.0`` / ``mlp.linear2.0``, the persistent ``relative_position_index`` buffer). As
  there, each block decides *when it is built*, from its stage's ``input_resolution = img_size // 2**level``,
  whether it shifts (none where the resolution is <= ``win_size``, which then also shrinks the window); at run time
  the grid side is ``sqrt(tokens)`` (square inputs whose side is a multiple of ``16 * win_size``), the SW-MSA mask is
  built from Swin's three slices per axis, modulators are added to every window before attention.
- **SkipAt ViT** (github.com/Qualcomm-AI-research/skip-attention ``model/vit_skipat.py`` on timm 0.5.4's
  ``VisionTransformer``): ``patch_embed.proj``, ``cls_token``, ``pos_embed`` (cls entry first), blocks
  ``norm1/attn.qkv/attn.proj/norm2/mlp.fc1/mlp.fc2`` (LayerNorm eps 1e-6, logits ``q @ k^T * scale``), ``norm``,
  ``head`` on the cls token; six Phi modules ``param_1..6`` (``model/uformer_utils.py``'s LeFF with ECA: Linear
  d->2d + GELU, depthwise 5x5 + GELU, Linear 2d->d, ECA over the token mean). ``forward_features`` as theirs: a
  skipped block's attention output is ``cat(cls of the latest computed attention, Phi_j(features_prev))``, where the
  first Phi reads the patch tokens of the latest computed attention and every later Phi the previous Phi's output,
  whatever gap lies between (their chaining rule).

Weights are not theirs (none are shipped): every tensor is drawn by :func:`fill` from a seed and its key name, so
the tests regenerate the same state dict from the ``(key, shape)`` list of these modules built on the meta device
(its digest is recorded, so a later edit of this file cannot go unnoticed) and the relative position indices from
:func:`swin_index`. Outputs are recorded reduced (an average-pooled map and a crop for Uformer; cls, patch mean,
three patch tokens and logits for the ViT), in float32, computed in float64.

How it was run (once; the result is ``tests/nn/data/authors_golden.pt``, ~30 KB):

    OMP_NUM_THREADS=1 python tests/nn/authors_reference.py tests/nn/data/authors_golden.pt

Cases: ``uformer_t_128`` (Uformer-T exactly, img_size 128, input 128x128), ``uformer_b_narrow_128`` (Uformer-B's
depths 1-2-8-8-2-8-8-2-1 with embed_dim 8 instead of 32, to keep the test cheap), ``uformer_narrow_256_from_128``
(embed_dim 8, depths 1-1-1-1-2-1-1-1-1, built with img_size 128 and run on a 256x256 input as their SIDD test
script does: its bottleneck never shifts; full Uformer-T at 256 takes ~7 s per forward on the shared CPU), ``skipat_tiny`` / ``skipat_small`` (ViT-T/S, skips 3..8, 96x96 inputs, 10 classes),
``skipat_tiny_gaps`` (ViT-T, skips 3, 4, 7, 8: the chaining over a gap). Also the digests of the ``(key, shape)``
lists and the parameter counts of Uformer T/S/B as the authors build them (meta device).
"""
from __future__ import annotations

import hashlib
import math
import sys
import zlib

import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------------------------------ Uformer (model.py)


def _partition(x, w):
    """[B, H, W, C] -> [B * nW, w, w, C], windows row-major."""
    B, H, W, C = x.shape
    return x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w, w, C)


def _merge(windows, w, H, W):
    """[B * nW, w, w, C] -> [B, H, W, C]."""
    B = windows.shape[0] // ((H // w) * (W // w))
    return windows.view(B, H // w, W // w, w, w, -1).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, -1)


def swin_index(w):
    """Relative position index of a w x w window, Swin's construction (row offset scaled by 2w - 1)."""
    ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
    flat = torch.stack([ys.flatten(), xs.flatten()])  # [2, w*w]
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)  # [N, N, 2]
    rel = rel + (w - 1)
    return rel[..., 0] * (2 * w - 1) + rel[..., 1]


class QKVLinear(nn.Module):
    """``LinearProjection``: q from ``to_q``, k and v from ``to_kv`` (k first)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)

    def forward(self, x):
        B, N, C = x.shape
        h = self.heads
        q = self.to_q(x).reshape(B, N, h, C // h).transpose(1, 2)
        kv = self.to_kv(x).reshape(B, N, 2, h, C // h).permute(2, 0, 3, 1, 4)
        return q, kv[0], kv[1]


class WinAttn(nn.Module):
    def __init__(self, dim, win, heads):
        super().__init__()
        self.win, self.heads = win, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * win - 1) ** 2, heads))
        self.register_buffer("relative_position_index", swin_index(win))  # persistent, as theirs
        self.qkv = QKVLinear(dim, heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        Bw, N, C = x.shape
        q, k, v = self.qkv(x)
        logits = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)].reshape(N, N, -1)
        logits = logits + bias.permute(2, 0, 1)[None]
        if mask is not None:
            nW = mask.shape[0]
            logits = (logits.view(Bw // nW, nW, self.heads, N, N) + mask[None, :, None]).view(Bw, self.heads, N, N)
        out = logits.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(Bw, N, C))


class LeFFRef(nn.Module):
    """Uformer's LeFF (3x3 depthwise, no ECA) or SkipAt's Phi (5x5 depthwise, ECA), names as theirs."""

    def __init__(self, dim, hidden, kernel=3, eca=False):
        super().__init__()
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden, hidden, kernel, 1, kernel // 2, groups=hidden), nn.GELU())
        self.linear2 = nn.Sequential(nn.Linear(hidden, dim))
        self.eca = ECARef() if eca else None

    def forward(self, x):
        B, L, _ = x.shape
        s = math.isqrt(L)
        y = self.linear1(x).transpose(1, 2).reshape(B, -1, s, s)
        y = self.linear2(self.dwconv(y).flatten(2).transpose(1, 2))
        return self.eca(y) if self.eca is not None else y


class ECARef(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)

    def forward(self, x):  # x [B, N, C]: gate channels by a 1-D conv over the token-mean descriptor
        return x * self.conv(x.mean(1, keepdim=True)).sigmoid()


class LeWinRef(nn.Module):
    def __init__(self, dim, resolution, heads, win=8, shift=0, mlp_ratio=4.0, modulator=False):
        super().__init__()
        self.win, self.shift = win, shift
        if resolution <= win:  # decided once, from the build-time resolution
            self.shift, self.win = 0, resolution
        self.modulator = nn.Embedding(win * win, dim) if modulator else None  # sized by the argument, as theirs
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WinAttn(dim, self.win, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = LeFFRef(dim, int(dim * mlp_ratio))

    def _shift_mask(self, H, W, like):
        w, s = self.win, self.shift
        img = torch.zeros(1, H, W, 1, dtype=like.dtype)
        label = 0
        for hs in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            for ws in (slice(0, -w), slice(-w, -s), slice(-s, None)):
                img[:, hs, ws, :] = label
                label += 1
        win = _partition(img, w).reshape(-1, w * w)
        diff = win[:, None, :] - win[:, :, None]
        return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)

    def forward(self, x):
        B, L, C = x.shape
        H = W = math.isqrt(L)
        mask = self._shift_mask(H, W, x) if self.shift > 0 else None
        shortcut = x
        y = self.norm1(x).view(B, H, W, C)
        if self.shift > 0:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        win = _partition(y, self.win).reshape(-1, self.win * self.win, C)
        if self.modulator is not None:
            win = win + self.modulator.weight
        win = self.attn(win, mask).view(-1, self.win, self.win, C)
        y = _merge(win, self.win, H, W)
        if self.shift > 0:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = shortcut + y.reshape(B, H * W, C)
        return x + self.mlp(self.norm2(x))


class StageRef(nn.Module):
    def __init__(self, dim, resolution, depth, heads, win, modulator):
        super().__init__()
        self.blocks = nn.ModuleList(LeWinRef(dim, resolution, heads, win, 0 if i % 2 == 0 else win // 2,
                                             modulator=modulator) for i in range(depth))

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def _tokens_to_map(x):
    B, L, C = x.shape
    s = math.isqrt(L)
    return x.transpose(1, 2).reshape(B, C, s, s)


class DownRef(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1))

    def forward(self, x):
        return self.conv(_tokens_to_map(x)).flatten(2).transpose(1, 2)


class UpRef(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.deconv = nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, stride=2))

    def forward(self, x):
        return self.deconv(_tokens_to_map(x)).flatten(2).transpose(1, 2)


class InProjRef(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.LeakyReLU(inplace=True))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class OutProjRef(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1))

    def forward(self, x):
        return self.proj(_tokens_to_map(x))


class UformerRef(nn.Module):
    """Their ``Uformer`` with four encoder levels, attribute names as theirs."""

    def __init__(self, img_size=128, embed_dim=32, depths=(2,) * 9, num_heads=(1, 2, 4, 8, 16, 16, 8, 4, 2),
                 win_size=8, modulator=True):
        super().__init__()
        C, r = embed_dim, img_size
        self.input_proj = InProjRef(3, C)
        self.output_proj = OutProjRef(2 * C, 3)
        for l in range(4):
            setattr(self, f"encoderlayer_{l}", StageRef(C * 2**l, r // 2**l, depths[l], num_heads[l], win_size, False))
            setattr(self, f"dowsample_{l}", DownRef(C * 2**l, C * 2 ** (l + 1)))
        self.conv = StageRef(C * 16, r // 16, depths[4], num_heads[4], win_size, False)
        cin = C * 16
        for k in range(4):
            l = 3 - k
            setattr(self, f"upsample_{k}", UpRef(cin, C * 2**l))
            setattr(self, f"decoderlayer_{k}", StageRef(C * 2 ** (l + 1), r // 2**l, depths[5 + k], num_heads[5 + k],
                                                        win_size, modulator))
            cin = C * 2 ** (l + 1)

    def forward(self, x):
        y = self.input_proj(x)
        skips = []
        for l in range(4):
            y = getattr(self, f"encoderlayer_{l}")(y)
            skips.append(y)
            y = getattr(self, f"dowsample_{l}")(y)
        y = self.conv(y)
        for k in range(4):
            y = torch.cat([getattr(self, f"upsample_{k}")(y), skips[3 - k]], -1)
            y = getattr(self, f"decoderlayer_{k}")(y)
        return x + self.output_proj(y)


# ---------------------------------------------------------------------------------- SkipAt (vit_skipat.py)
class ViTAttnRef(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * self.scale).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class MlpRef(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SkipBlockRef(nn.Module):
    """``BlockSkipAt``: attention (or the given ``feat_val``), then the MLP; returns (x, attention value)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ViTAttnRef(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MlpRef(dim, 4 * dim)

    def forward(self, x, feat_val=None):
        val = self.attn(self.norm1(x)) if feat_val is None else feat_val
        x = x + val
        return x + self.mlp(self.norm2(x)), val


class PatchRef(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class SkipAtViTRef(nn.Module):
    def __init__(self, img_size=224, patch=16, dim=192, depth=12, heads=3, num_classes=1000,
                 skip_indices=(3, 4, 5, 6, 7, 8)):
        super().__init__()
        self.skip = tuple(skip_indices)
        self.patch_embed = PatchRef(dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*[SkipBlockRef(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        for j in range(1, 7):  # their code always builds six
            setattr(self, f"param_{j}", LeFFRef(dim, 2 * dim, kernel=5, eca=True))

    def forward_tokens(self, x):
        """Normed tokens [B, 1 + N, C] (their forward_features before taking the cls token)."""
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        i_param, prev, rest, cls = 0, None, None, None
        for cnt, blk in enumerate(self.blocks):
            if cnt not in self.skip:
                x, feats = blk(x)
                cls, rest = feats[:, :1], feats[:, 1:]
            else:
                if i_param == 0:
                    prev = rest
                cur = getattr(self, f"param_{i_param + 1}")(prev)
                x, _ = blk(x, torch.cat([cls, cur], 1))
                prev = cur
                i_param += 1
        return self.norm(x)


# ------------------------------------------------------------------------------------------------- weights
def fill(key: str, shape, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """A deterministic tensor for ``key``: N(0, 1) from a generator seeded by (seed, crc32(key)), scaled so that
    activations stay of order one (fan-in for weights, small for biases, 1 + small for norm weights)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
    x = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
    leaf = key.rsplit(".", 1)[-1]
    if "relative_position_bias_table" in key:
        x = x * 1.0
    elif "norm" in key and leaf == "weight":
        x = 1.0 + 0.2 * x
    elif leaf == "bias" or len(shape) == 1:
        x = 0.2 * x
    elif key.endswith(("cls_token", "pos_embed", "modulator.weight")):
        x = 0.5 * x
    else:
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        x = x / math.sqrt(max(fan_in, 1))
    return x.to(dtype)


def fill_state_dict(keys, seed: int = 0, dtype=torch.float64, buffers=None) -> dict:
    """The state dict of ``keys`` = [(key, shape), ...]; ``buffers`` maps buffer keys (index tensors) to values."""
    buffers = buffers or {}
    return {k: (buffers[k] if k in buffers else fill(k, s, seed, dtype)) for k, s in keys}


def key_list(model: nn.Module) -> list:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def key_digest(keys) -> str:
    return hashlib.sha256("\n".join(f"{k}:{list(s)}" for k, s in keys).encode()).hexdigest()


def reduce_image(out: torch.Tensor) -> dict:
    """Uformer output [B, 3, H, W] -> a 16x16 average-pooled map and the central 16x16 crop."""
    H, W = out.shape[-2:]
    cy, cx = H // 2 - 8, W // 2 - 8
    return {"pool": F.avg_pool2d(out, (H // 16, W // 16)), "crop": out[..., cy : cy + 16, cx : cx + 16]}


def reduce_tokens(tokens: torch.Tensor, head_w: torch.Tensor, head_b: torch.Tensor) -> dict:
    """Normed ViT tokens [B, 1 + N, C] -> cls, patch mean, patch tokens 0 / N//2 / N-1, logits of the head."""
    N = tokens.shape[1] - 1
    return {"cls": tokens[:, 0], "patch_mean": tokens[:, 1:].mean(1), "patches": tokens[:, [1, 1 + N // 2, N]],
            "logits": F.linear(tokens[:, 0], head_w, head_b)}


def image_input(seed: int, shape) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def vit_input(seed: int, shape) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


UFORMER_CASES = {
    # name: (authors' constructor kwargs, input size)
    "uformer_t_128": (dict(img_size=128, embed_dim=16, depths=(2,) * 9), 128),
    "uformer_b_narrow_128": (dict(img_size=128, embed_dim=8, depths=(1, 2, 8, 8, 2, 8, 8, 2, 1)), 128),
    "uformer_narrow_256_from_128": (dict(img_size=128, embed_dim=8, depths=(1, 1, 1, 1, 2, 1, 1, 1, 1)), 256),
}
SKIPAT_CASES = {
    # name: (constructor kwargs, batch)
    "skipat_tiny": (dict(img_size=96, dim=192, heads=3, num_classes=10), 2),
    "skipat_small": (dict(img_size=96, dim=384, heads=6, num_classes=10), 1),
    "skipat_tiny_gaps": (dict(img_size=96, dim=192, heads=3, num_classes=10, skip_indices=(3, 4, 7, 8)), 2),
}
AUTHORS_ARCHS = {  # utils/model_utils.py get_arch
    "T": dict(embed_dim=16, depths=(2,) * 9),
    "S": dict(embed_dim=32, depths=(2,) * 9),
    "B": dict(embed_dim=32, depths=(1, 2, 8, 8, 2, 8, 8, 2, 1)),
}


@torch.no_grad()
def make_golden() -> dict:
    out: dict = {"uformer": {}, "skipat": {}, "archs": {}}
    for i, (name, (kw, size)) in enumerate(UFORMER_CASES.items()):
        torch.manual_seed(0)
        model = UformerRef(**kw).double().eval()
        keys = key_list(model)
        buffers = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("relative_position_index")}
        model.load_state_dict(fill_state_dict(keys, seed=i, buffers=buffers))
        x = image_input(100 + i, (1, 3, size, size))
        red = reduce_image(model(x))
        out["uformer"][name] = dict(kwargs=kw, size=size, seed=i, input_seed=100 + i, digest=key_digest(keys),
                                    **{k: v.float() for k, v in red.items()})
        print(name, {k: float(v.abs().mean()) for k, v in red.items()})
    for i, (name, (kw, batch)) in enumerate(SKIPAT_CASES.items()):
        model = SkipAtViTRef(**kw).double().eval()
        keys = key_list(model)
        sd = fill_state_dict(keys, seed=10 + i)
        model.load_state_dict(sd)
        x = vit_input(200 + i, (batch, 3, kw["img_size"], kw["img_size"]))
        red = reduce_tokens(model.forward_tokens(x), sd["head.weight"], sd["head.bias"])
        out["skipat"][name] = dict(kwargs=kw, batch=batch, seed=10 + i, input_seed=200 + i, digest=key_digest(keys),
                                   **{k: v.float() for k, v in red.items()})
        print(name, {k: float(v.abs().mean()) for k, v in red.items()})
    for name, kw in AUTHORS_ARCHS.items():
        with torch.device("meta"):
            model = UformerRef(img_size=128, **kw)
        keys = key_list(model)
        n_params = sum(p.numel() for p in model.parameters())
        out["archs"][name] = dict(kwargs=kw, n_keys=len(keys), digest=key_digest(keys), n_params=n_params)
        print(name, len(keys), n_params)
    return out


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/nn/data/authors_golden.pt"
    torch.save(make_golden(), path)
    print("wrote", path)
