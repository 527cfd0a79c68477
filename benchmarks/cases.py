"""Benchmark cases: what is timed (model builders and one step of work each), for ``dense-adapters-benchmark``.

A case is a :class:`dense_adapters.benchmark.Case` whose ``build(device)`` makes a model, an input and a step; the
harness (``dense_adapters.benchmark``) times the cases of a group interleaved. Backbone peers: ``impl='ours'``
(:class:`dense_adapters.nn.RegViT`), ``'timm'`` (``timm.models.vision_transformer.VisionTransformer``) and
``'mmseg'`` (``mmseg.models.backbones.VisionTransformer``), built with the same width, depth, heads, patch and
tokens; timm's weights are converted into ours and mmseg's, so the three compute the same function (a test checks
it). ``'tiny-test'`` is a 64-wide, 4-deep ViT for the quick suite and the tests.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from dense_adapters.benchmark import Case, Workload, autocast, count_gmacs, make_step, maybe_compile
from dense_adapters.errors import UserError
from dense_adapters.models.backbones.timm_to_mmseg import timm_to_mmseg
from dense_adapters.nn import RegViT
from dense_adapters.nn.convert import adapt_to_model, convert_timm
from dense_adapters.nn.vit import ARCHS

IMPLS = ("ours", "timm", "mmseg")
SKIPAT_DEFAULT = (3, 4, 5, 6, 7, 8)  # SkipAt paper, ViT with 12 blocks (0-based)
TINY_ARCH, TINY_DIMS = "tiny-test", (64, 4, 2)


# ------------------------------------------------------------------------------------------------ models
def vit_dims(arch: str) -> tuple[int, int, int]:
    """(embed_dim, depth, heads) of an ``ARCHS`` name, or of 'tiny-test' (64, 4, 2: the quick suite and the tests)."""
    if arch == TINY_ARCH:
        return TINY_DIMS
    if arch not in ARCHS:
        raise UserError(f"unknown arch {arch!r}: use one of {sorted(ARCHS)} or 'tiny-test'")
    dim, depth, heads, ffn = ARCHS[arch]
    if ffn != "mlp":
        raise UserError(f"arch {arch!r} uses a {ffn} FFN, which timm/mmseg peers do not share: pick another")
    return dim, depth, heads


def model_name(arch: str, patch: int, registers: int = 0, skip: bool = False) -> str:
    letter = {"tiny": "Ti", "small": "S", "base": "B", "large": "L"}.get(arch, arch)
    return f"ViT-{letter}/{patch}" + (f"+reg{registers}" if registers else "") + ("+SkipAt" if skip else "")


def skip_layers_for(depth: int) -> tuple[int, ...]:
    """SkipAt's default blocks 3..8 for 12 blocks; for shallower test models the middle half."""
    if depth == 12:
        return SKIPAT_DEFAULT
    return tuple(range(max(1, depth // 4), max(2, depth - depth // 4)))


def build_timm_vit(arch: str, patch: int, size: int, registers: int = 0) -> nn.Module:
    """timm ViT laid out as ours: cls + registers, patch-only position embedding, no head, final norm."""
    from timm.models.vision_transformer import VisionTransformer

    dim, depth, heads = vit_dims(arch)
    return VisionTransformer(img_size=size, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads,
                             reg_tokens=registers, no_embed_class=True, num_classes=0, global_pool="")


def build_mmseg_vit(arch: str, patch: int, size: int) -> nn.Module:
    """mmseg's ViT backbone with the same math as timm's (LN eps 1e-6, patch bias, final norm, last block out)."""
    import dense_adapters.registry  # noqa: F401  (mmseg imports under mmcv-lite only after this)
    from mmseg.models.backbones import VisionTransformer

    dim, depth, heads = vit_dims(arch)
    return VisionTransformer(img_size=size, patch_size=patch, embed_dims=dim, num_layers=depth, num_heads=heads,
                             out_indices=(depth - 1,), final_norm=True, patch_bias=True,
                             norm_cfg=dict(type="LN", eps=1e-6))


def build_peers(arch: str, patch: int, size: int, registers: int = 0, impls: Sequence[str] = IMPLS,
                skip: bool = False) -> dict[str, nn.Module]:
    """The requested implementations with shared weights (timm's, converted); SkipAt only exists in ours."""
    bad = set(impls) - set(IMPLS)
    if bad:
        raise UserError(f"unknown impl {sorted(bad)}: use {IMPLS}")
    if skip and set(impls) != {"ours"}:
        raise UserError("SkipAt exists only in our ViT: use impls=('ours',) with skip=True")
    if registers and "mmseg" in impls:
        raise UserError("mmseg's VisionTransformer has no register tokens: drop 'mmseg' or set registers=0")
    ref = build_timm_vit(arch, patch, size, registers)
    out: dict[str, nn.Module] = {}
    if "timm" in impls:
        out["timm"] = ref
    if "ours" in impls:
        dim, depth, heads = vit_dims(arch)
        ours = RegViT(arch="small", embed_dim=dim, depth=depth, num_heads=heads, img_size=size, patch_size=patch,
                      num_register_tokens=registers, skip_layers=skip_layers_for(depth) if skip else ())
        sd, _ = adapt_to_model(convert_timm(ref.state_dict()), ours, "timm")
        ours.load_state_dict(sd, strict=not skip)
        out["ours"] = ours
    if "mmseg" in impls:
        mm = build_mmseg_vit(arch, patch, size)
        mm.load_state_dict(timm_to_mmseg(ref.state_dict()), strict=True)
        out["mmseg"] = mm
    return out


def features(impl: str, model: nn.Module, x: Tensor) -> Tensor:
    """Last-block tokens after the final norm as each implementation returns them for dense use."""
    if impl == "timm":
        return model.forward_features(x)  # [B, P + N, C]
    if impl == "mmseg":
        return model(x)[0]  # [B, C, h, w]
    return model(x)  # ours: [B, P + N, C]


# ------------------------------------------------------------------------------------------------ backbone
_GMACS_CACHE: dict = {}


def grad_ckpt_available() -> bool:
    """Whether our ViT has gradient checkpointing (``RegViT.set_grad_checkpointing``)."""
    return hasattr(RegViT, "set_grad_checkpointing")


def enable_grad_ckpt(model: nn.Module) -> None:
    """Recompute blocks in the backward pass (ours and timm: ``set_grad_checkpointing``)."""
    fn = getattr(model, "set_grad_checkpointing", None)
    if fn is None:
        raise UserError(f"{type(model).__name__} has no set_grad_checkpointing: gradient checkpointing is not "
                        "available for it")
    fn(True)


def backbone_case(label: str, impl: str, arch: str, patch: int, size: int, batch: int, mode: str,
                  registers: int = 0, skip: bool = False, dtype: str = "fp32", compile: bool = False,
                  grad_ckpt: bool = False, compile_backend: Optional[str] = None) -> Case:
    """A ViT backbone case: random images [batch, 3, size, size] through ``impl``'s ViT (``grad_ckpt``: blocks
    recomputed in the backward pass; ``compile_backend``: torch.compile's backend, default inductor)."""

    def build(device: torch.device) -> Workload:
        torch.manual_seed(0)
        model = build_peers(arch, patch, size, registers, (impl,), skip)[impl].to(device)
        if grad_ckpt:
            enable_grad_ckpt(model)
        x = torch.randn(batch, 3, size, size, device=device)
        run = maybe_compile(model, compile, compile_backend)
        step = make_step(lambda t: features(impl, run, t), model, x, mode, dtype, device)
        key = (impl, arch, patch, size, registers, skip)

        def flops() -> float:
            if key not in _GMACS_CACHE:
                _GMACS_CACHE[key] = count_gmacs(model, (x[:1],))
            return _GMACS_CACHE[key]

        return Workload(model, step, batch, flops)

    return Case(label, model_name(arch, patch, registers, skip) + ("+ckpt" if grad_ckpt else "")
                + ("" if impl == "ours" else f" ({impl})"), str(size), batch, mode, dtype, compile, build)


# ------------------------------------------------------------------------ presets (DINOv3, large DINOv2)
# our preset -> timm's model of the same architecture (timm's plain DINOv3 models have no qkv bias; ours hold the
# bias that the released weights carry: the same cost up to one add). Random weights: these cases time speed only.
TIMM_PRESET_PEERS = {
    "dinov3_vits16": "vit_small_patch16_dinov3", "dinov3_vits16plus": "vit_small_plus_patch16_dinov3",
    "dinov3_vitb16": "vit_base_patch16_dinov3", "dinov3_vitl16": "vit_large_patch16_dinov3",
    "dinov3_vith16plus": "vit_huge_plus_patch16_dinov3", "dinov3_vit7b16": "vit_7b_patch16_dinov3",
    "dinov2_vitl14_reg4": "vit_large_patch14_reg4_dinov2", "dinov2_vitg14_reg4": "vit_giant_patch14_reg4_dinov2",
}
TINY_PRESET = dict(embed_dim=64, depth=2, num_heads=2)  # a preset's layer types at test size


def preset_available(name: str) -> bool:
    from dense_adapters.nn import PRESETS

    return name in PRESETS


def preset_name(preset: str) -> str:
    """'dinov3_vitl16' -> 'DINOv3-L/16', 'dinov3_vith16plus' -> 'DINOv3-H+/16', 'dinov2_vitg14_reg4' ->
    'DINOv2-g/14+reg4' (the names of the papers' tables)."""
    import re

    family, _, rest = preset.partition("_vit")
    m = re.match(r"(\d*[a-z])(\d+)(plus)?", rest)
    if m is None:
        return preset
    size = m.group(1) if m.group(1) == "g" else m.group(1).upper()
    nice = {"dinov2": "DINOv2", "dinov3": "DINOv3"}.get(family, family)
    return f"{nice}-{size}{'+' if m.group(3) else ''}/{m.group(2)}" + ("+reg4" if preset.endswith("_reg4") else "")


def build_preset(impl: str, preset: str, size: int, tiny: bool = False) -> nn.Module:
    """Our ``create_regvit(preset)`` or timm's model of the same architecture (``TIMM_PRESET_PEERS``), with
    random weights; ``tiny`` keeps the layer types at width 64 and depth 2 (dry runs)."""
    extra = dict(TINY_PRESET) if tiny else {}
    if impl == "ours":
        from dense_adapters.nn import create_regvit

        return create_regvit(preset, img_size=size, **extra)
    if impl != "timm":
        raise UserError(f"unknown impl {impl!r} for a preset: use 'ours' or 'timm'")
    if preset not in TIMM_PRESET_PEERS:
        raise UserError(f"no timm peer known for preset {preset!r}: add it to TIMM_PRESET_PEERS")
    import timm

    return timm.create_model(TIMM_PRESET_PEERS[preset], pretrained=False, img_size=size, num_classes=0, **extra)


def preset_case(label: str, impl: str, preset: str, size: int, batch: int, mode: str, dtype: str = "bf16",
                grad_ckpt: bool = False, compile: bool = False, compile_backend: Optional[str] = None,
                tiny: bool = False) -> Case:
    """A preset backbone (e.g. ``dinov3_vitl16``) on random images [batch, 3, size, size]: ours or timm's."""

    def build(device: torch.device) -> Workload:
        torch.manual_seed(0)
        model = build_preset(impl, preset, size, tiny).to(device)
        if grad_ckpt:
            enable_grad_ckpt(model)
        x = torch.randn(batch, 3, size, size, device=device)
        run = maybe_compile(model, compile, compile_backend)
        step = make_step(lambda t: features(impl, run, t), model, x, mode, dtype, device)
        return Workload(model, step, batch, lambda: count_gmacs(model, (x[:1],)))

    name = preset_name(preset) + (" (tiny)" if tiny else "") + ("+ckpt" if grad_ckpt else "")
    return Case(label, name + ("" if impl == "ours" else f" ({impl})"), str(size), batch, mode, dtype, compile, build)


# ------------------------------------------------------------------------------------- ADE20K train step
def shrink_seg_model(model_cfg: dict, dim: int = 64, depth: int = 4, heads: int = 2) -> None:
    """Make a segmentation config's model tiny in place (unit tests): backbone, neck and heads to width ``dim``."""
    from dense_adapters.nn import PRESETS

    bb = model_cfg["backbone"]
    old = bb.get("embed_dim") or ARCHS[bb.get("arch") or PRESETS[bb["preset"]]["arch"]][0]
    bb.update(embed_dim=dim, depth=depth, num_heads=heads)
    if len(bb.get("out_indices", ())) > 1:
        bb["out_indices"] = tuple(range(depth - len(bb["out_indices"]), depth))
    if bb.get("skip_layers"):
        bb["skip_layers"] = skip_layers_for(depth)
    if "Mask2FormerHead" in str(model_cfg["decode_head"].get("type")):
        _shrink_mask2former(model_cfg, dim)
    for key in ("neck", "decode_head", "auxiliary_head"):
        part = model_cfg.get(key)
        if not part or "Mask2FormerHead" in str(part.get("type")):
            continue
        v = part.get("in_channels")
        if isinstance(v, (list, tuple)):
            part["in_channels"] = [dim if c == old else c for c in v]
        elif v == old:
            part["in_channels"] = dim
        if "out_channels" in part:
            part["out_channels"] = dim
        if "channels" in part:
            part["channels"] = 16


def _shrink_mask2former(model_cfg: dict, dim: int) -> None:
    """Mask2Former at width ``dim`` (a multiple of 32, for the pixel decoder's GroupNorm): 10 queries, 3 decoder
    layers, 1 pixel-decoder layer, 2 heads, 256 sampled points; the neck's output follows."""
    head = model_cfg["decode_head"]
    head.update(in_channels=[dim] * len(head["in_channels"]), feat_channels=dim, out_channels=dim, num_queries=10)
    head["positional_encoding"]["num_feats"] = dim // 2
    pd = head["pixel_decoder"]
    pd["positional_encoding"]["num_feats"] = dim // 2
    pd["encoder"]["num_layers"] = 1
    pd["encoder"]["layer_cfg"]["self_attn_cfg"].update(embed_dims=dim, num_heads=2)
    pd["encoder"]["layer_cfg"]["ffn_cfg"].update(embed_dims=dim, feedforward_channels=2 * dim)
    td = head["transformer_decoder"]
    td["num_layers"] = 3
    for key in ("self_attn_cfg", "cross_attn_cfg"):
        td["layer_cfg"][key].update(embed_dims=dim, num_heads=2)
    td["layer_cfg"]["ffn_cfg"].update(embed_dims=dim, feedforward_channels=2 * dim)
    head["train_cfg"]["num_points"] = 256
    if model_cfg.get("neck"):
        model_cfg["neck"]["out_channels"] = dim


def region_labels(size: int, classes: int, num_classes: int, generator: torch.Generator) -> Tensor:
    """[1, size, size] labels with ``classes`` classes: the Voronoi regions of as many random seeds, each a distinct
    random class (a realistic class count per image for mask-classification heads such as Mask2Former)."""
    seeds = torch.rand(classes, 2, generator=generator) * size
    ids = torch.randperm(num_classes, generator=generator)[:classes]
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dist = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    return ids[dist.argmin(0)][None]


def autocast_optim_wrapper(model: nn.Module, optim_cfg: dict, device: torch.device, dtype: str):
    """The ``OptimWrapper`` of ``optim_cfg`` (fp32) or its mixed-precision form for ``device``, exactly as
    ``tools/train.py --amp`` builds it (``dense_adapters.engine.amp.amp_optim_wrapper_cfg``: bf16 autocast on the
    CPU, mmengine's AmpOptimWrapper on CUDA)."""
    from mmengine.optim import build_optim_wrapper

    from dense_adapters.engine.amp import amp_optim_wrapper_cfg
    from dense_adapters.utils import register_all_modules

    if dtype == "fp32":
        return build_optim_wrapper(model, optim_cfg)
    register_all_modules()
    return build_optim_wrapper(model, amp_optim_wrapper_cfg(optim_cfg, device.type, dtype))


def seg_case(label: str, config: str, batch: int, dtype: str = "fp32", compile: bool = False,
             tiny: bool = False, crop: Optional[int] = None, classes: Optional[int] = None) -> Case:
    """One mmseg training step (data preprocessor, forward, losses, backward, AdamW) of a config's model.

    The model is built with the backbone's ``init_cfg=None`` (random weights: speed only), SyncBN as BN;
    the batch is random uint8 images and labels of the config's crop size (``crop`` overrides it): uniform random
    labels over all classes, or with ``classes`` the regions of :func:`region_labels` (per-pixel losses cost the
    same either way; Mask2Former matches and supervises one mask per class present).
    """
    from dense_adapters.cli.configs import PREFIX, read_config, resolve_config

    if config.startswith(PREFIX):
        config = resolve_config(config)
    if not osp.isfile(config):
        raise FileNotFoundError(f"config not found: {config}: give the path of a file in configs/")
    if classes is not None and classes < 1:
        raise UserError(f"classes={classes}: labels need at least one class per image")
    if batch < 2:
        raise UserError(f"batch={batch}: a training step needs >= 2 images (BatchNorm of UPerNet's 1x1 pooling "
                         "branch cannot train on one): use --batch 2 or more")

    def build(device: torch.device) -> Workload:
        from mmengine.structures import PixelData

        from mmseg.registry import MODELS
        from mmseg.structures import SegDataSample

        from dense_adapters.utils import register_all_modules, replace_syncbn

        register_all_modules()

        cfg = read_config(config)
        mcfg = cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model)
        mcfg["backbone"]["init_cfg"] = None
        replace_syncbn(mcfg)  # SyncBN needs a process group; one process uses BN (same cost per device)
        if tiny:
            shrink_seg_model(mcfg)
        size = crop or mcfg["data_preprocessor"]["size"][0]
        mcfg["data_preprocessor"]["size"] = (size, size)
        torch.manual_seed(0)
        model = MODELS.build(mcfg).to(device)
        model.train()
        optim = autocast_optim_wrapper(model, dict(cfg.optim_wrapper), device, dtype)
        num_classes = mcfg["decode_head"]["num_classes"]
        g = torch.Generator().manual_seed(0)

        def sample() -> SegDataSample:
            ds = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
            labels = (torch.randint(0, num_classes, (1, size, size)) if classes is None
                      else region_labels(size, min(classes, num_classes), num_classes, g))
            ds.gt_sem_seg = PixelData(data=labels.to(device))
            return ds

        data = dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8, device=device)
                            for _ in range(batch)], data_samples=[sample() for _ in range(batch)])
        if compile:  # the backbone, in place (state-dict keys unchanged). mmengine's cfg.compile compiles
            model.backbone.compile()  # train_step, which fails in torch 2.14 on the optimizer step

        def step() -> None:
            model.train_step(data, optim)

        def flops() -> float:
            x = model.data_preprocessor(dict(inputs=data["inputs"][:1], data_samples=None), False)["inputs"]
            return count_gmacs(model, (x,))

        return Workload(model, step, batch, flops)

    name = (osp.splitext(osp.basename(config))[0] + (" (tiny)" if tiny else "")
            + (f" ({classes} classes/img)" if classes else ""))
    return Case(label, name, str(crop) if crop else "crop", batch, "train", dtype, compile, build)


# ------------------------------------------------------------------------------------------ LOST, Uformer
def lost_case(label: str, arch: str, patch: int, size: int, registers: int = 4, with_lost: bool = True,
              dtype: str = "fp32") -> Case:
    """LOST on one image batch: keys of the last block (``extract_features``) and, with ``with_lost``, the
    seed/expansion/box steps of :func:`dense_adapters.discovery.lost`."""

    def build(device: torch.device) -> Workload:
        from dense_adapters.discovery import extract_features, lost

        dim, depth, heads = vit_dims(arch)
        torch.manual_seed(0)
        vit = RegViT(embed_dim=dim, depth=depth, num_heads=heads, img_size=size, patch_size=patch,
                     num_register_tokens=registers).to(device).eval()
        x = torch.randn(1, 3, size, size, device=device)

        def step() -> None:
            with autocast(device, dtype):
                feats, hw = extract_features(vit, x, "k", -1)
            if with_lost:
                lost(feats, hw)

        return Workload(vit, step, 1, None)

    return Case(label, model_name(arch, patch, registers) + (" +LOST" if with_lost else " keys only"),
                str(size), 1, "forward", dtype, False, build)


def lost_boxes(vit: nn.Module, x: Tensor, batched: bool, dtype: str = "fp32") -> Tensor:
    """LOST boxes [B, 4] of images ``x``: one call for the whole batch, or one call per image."""
    from dense_adapters.discovery import extract_features, lost

    out = []
    for chunk in (x,) if batched else x.split(1):
        with autocast(x.device, dtype):
            feats, hw = extract_features(vit, chunk, "k", -1)
        out.append(lost(feats, hw).box)
    return torch.cat(out)


def lost_batch_case(label: str, arch: str, patch: int, size: int, batch: int, registers: int = 4,
                    batched: bool = True, dtype: str = "fp32") -> Case:
    """LOST (keys of the last block + seed, expansion, box) on ``batch`` images, batched or image by image."""

    def build(device: torch.device) -> Workload:
        dim, depth, heads = vit_dims(arch)
        torch.manual_seed(0)
        vit = RegViT(embed_dim=dim, depth=depth, num_heads=heads, img_size=size, patch_size=patch,
                     num_register_tokens=registers).to(device).eval()
        x = torch.randn(batch, 3, size, size, device=device)
        return Workload(vit, lambda: lost_boxes(vit, x, batched, dtype), batch, None)

    return Case(label, model_name(arch, patch, registers) + " +LOST " + ("batched" if batched else "per image"),
                str(size), batch, "forward", dtype, False, build)


def uformer_case(label: str, preset: str, size: int, batch: int, mode: str, skip: bool,
                 dtype: str = "fp32", compile: bool = False, tiny: bool = False) -> Case:
    """Uformer (``create_uformer(preset)``) with or without SkipAt in the decoder, on noisy images [B, 3, s, s]."""

    def build(device: torch.device) -> Workload:
        from dense_adapters.nn.uformer import create_uformer

        torch.manual_seed(0)
        extra = dict(embed_dim=8, depths=(1,) * 5) if tiny else {}
        model = create_uformer(preset, skip_mode="parametric" if skip else None, **extra).to(device)
        x = torch.rand(batch, 3, size, size, device=device)
        run = maybe_compile(model, compile)
        return Workload(model, make_step(run, model, x, mode, dtype, device), batch,
                        lambda: count_gmacs(model, (x[:1],)))

    return Case(label, f"Uformer-{preset}" + (" (tiny)" if tiny else "") + ("+SkipAt" if skip else ""),
                str(size), batch, mode, dtype, compile, build)
