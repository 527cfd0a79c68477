"""Benchmark suites: which groups of cases are timed together (``--suite quick|cpu|gpu``) and the groups of
``--task backbone|seg|lost|uformer`` with their options. Cases of a group are compared with each other (ratios).
"""
from __future__ import annotations

import os.path as osp

from dense_adapters.benchmark import Group
from dense_adapters.errors import UserError

from . import cases as C

# the package's own configs (dense_adapters.cli.configs finds them in a checkout and in an installed wheel)
SEG_CONFIGS = tuple("dense_adapters::" + name for name in (
    "ade20k_regvit.py", "ade20k_regvit_upernet.py", "ade20k_regvit_skipat_upernet.py"))
SEG_LABELS = {"ade20k_regvit": "linear", "ade20k_regvit_upernet": "upernet",
              "ade20k_regvit_skipat_upernet": "skipat", "ade20k_dinov2_vits14_reg4_m2f": "m2f",
              "ade20k_dinov2_vits14_reg4_m2f_frozen": "m2f-frozen"}
# Mask2Former (docs/mask2former.md) next to UPerNet, on labels with a realistic number of classes per image
M2F_CONFIGS = tuple("dense_adapters::" + name for name in (
    "ade20k_regvit_upernet.py", "ade20k_dinov2_vits14_reg4_m2f.py", "ade20k_dinov2_vits14_reg4_m2f_frozen.py"))
M2F_CLASSES = 8
SUITES = ("quick", "cpu", "gpu", "gpu-check")
# per suite: warm-up steps, repeats, minimum seconds per timed run, threads (None: torch's default)
SUITE_TIMING = {"quick": (1, 1, 0.0, 1), "cpu": (2, 7, 1.0, None), "gpu": (5, 7, 0.5, None),
                "gpu-check": (3, 3, 0.2, None)}
# the timed parts of scripts/gpu_check.sh (benchmarks/gpu_check.py), each one step of the check
GPU_CHECK_PARTS = ("vit", "large", "lost", "ckpt", "compile")
GPU_CHECK_DRY_TIMING = (1, 1, 0.0)  # the dry run: one warm-up step, one timed step


# ------------------------------------------------------------------------------------------------ groups
def backbone_groups(archs, patches, sizes, batch, registers, impls, skipat, modes, dtypes, compile_) -> list:
    """One group per (arch, patch, registers, size, mode, dtype): the peers, SkipAt and compiled variants."""
    groups = []
    for arch in archs:
        for patch in patches:
            for reg in registers:
                for size in sizes:
                    if size % patch:
                        print(f"note: {size} px is not a multiple of patch {patch}: skipped (use e.g. 518 for /14)")
                        continue
                    for mode in modes:
                        for dtype in dtypes:
                            groups.append(_backbone_group(arch, patch, reg, size, batch, mode, dtype, impls,
                                                          skipat, compile_))
    return groups


def _backbone_group(arch, patch, reg, size, batch, mode, dtype, impls, skipat, compile_) -> "Group":
    kw = dict(arch=arch, patch=patch, size=size, batch=batch, mode=mode, registers=reg, dtype=dtype)
    cases, ratios = [], []
    if skipat != "only":
        for impl in impls:
            if impl == "mmseg" and reg:
                continue  # mmseg's ViT has no registers
            if compile_ != "only":
                cases.append(C.backbone_case(impl, impl, **kw))
            if compile_ in ("both", "only"):
                cases.append(C.backbone_case(f"{impl}+compile", impl, compile=True, **kw))
    if skipat in ("both", "only"):
        if compile_ != "only":
            cases.append(C.backbone_case("skipat", "ours", skip=True, **kw))
        if compile_ in ("both", "only"):
            cases.append(C.backbone_case("skipat+compile", "ours", skip=True, compile=True, **kw))
    labels = [c.label for c in cases]
    for suffix in ("", "+compile"):
        for num, den in (("ours", "timm"), ("ours", "mmseg"), ("skipat", "ours")):
            if num + suffix in labels and den + suffix in labels:
                ratios.append((num + suffix, den + suffix))
        for impl in ("ours", "timm", "mmseg", "skipat"):
            if suffix and impl in labels and impl + suffix in labels:
                ratios.append((impl + suffix, impl))
    name = f"{C.model_name(arch, patch, reg)} {size} bs{batch} {mode} {dtype}"
    return Group(name, cases, ratios)


def seg_groups(configs, batch, dtypes, compile_, crop=None, tiny=False, classes=None) -> list:
    groups = []
    for dtype in dtypes:
        cases = []
        for cfg in configs:
            name = osp.splitext(osp.basename(cfg.split("::")[-1]))[0]  # a file or dense_adapters::NAME.py
            label = SEG_LABELS.get(name, name)
            if compile_ != "only":
                cases.append(C.seg_case(label, cfg, batch, dtype, False, tiny, crop, classes))
            if compile_ in ("both", "only"):
                cases.append(C.seg_case(label + "+compile", cfg, batch, dtype, True, tiny, crop, classes))
        labels = [c.label for c in cases]
        pairs = [("skipat", "upernet"), ("m2f", "upernet"), ("m2f-frozen", "m2f")]
        ratios = [(n + s, d + s) for s in ("", "+compile") for n, d in pairs if n + s in labels and d + s in labels]
        name = f"ADE20K train step {crop or 'crop'} bs{batch} {dtype}" + (f" {classes} cls/img" if classes else "")
        groups.append(Group(name, cases, ratios, warmup=1 if not tiny else None, repeats=3 if not tiny else None))
    return groups


def dtype_group(arch, patch, size, batch, mode) -> "Group":
    """fp32 vs bf16 autocast for our ViT: is mixed precision worth it on this device?"""
    kw = dict(arch=arch, patch=patch, size=size, batch=batch, mode=mode)
    return Group(f"{C.model_name(arch, patch)} {size} bs{batch} {mode} fp32 vs bf16",
                   [C.backbone_case("fp32", "ours", **kw), C.backbone_case("bf16", "ours", dtype="bf16", **kw)],
                   [("bf16", "fp32")])


def lost_group(arch, patch, size, registers=4, tiny=False) -> "Group":
    return Group(f"LOST {C.model_name(arch, patch, registers)} {size}",
                   [C.lost_case("keys", arch, patch, size, registers, with_lost=False),
                    C.lost_case("keys+lost", arch, patch, size, registers, with_lost=True)],
                   [("keys+lost", "keys")])


def uformer_group(preset, size, batch, mode, tiny=False) -> "Group":
    return Group(f"Uformer-{preset} {size} bs{batch} {mode}",
                   [C.uformer_case("uformer", preset, size, batch, mode, False, tiny=tiny),
                    C.uformer_case("skipat", preset, size, batch, mode, True, tiny=tiny)],
                   [("skipat", "uformer")])


def backbone_peer_groups(arch, size, batch, modes, dtype, skipat="off", registers=0) -> list:
    return backbone_groups([arch], [16], [size], batch, [registers], C.IMPLS, skipat, modes, [dtype], "off")


def gpu_check_groups(part: str, tiny: bool = False, compile_backend=None) -> list:
    """The timed groups of one part of the GPU check (``GPU_CHECK_PARTS``), at GPU sizes or ``tiny`` (dry run).

    * ``vit``: ours vs timm vs mmseg, ViT-S/16 and ViT-B/16 at 224 and 512, bf16 autocast, forward and train
      step (SkipAt beside them at 512); fp32 vs bf16 for ViT-B/16 at 224 (forward, train: the MFU row).
    * ``large``: ViT-L/16 at 1024 (peers + SkipAt), ViT-B/16 SkipAt vs attention at 1024, and the DINOv3 presets
      (ours vs timm's) where ``dense_adapters.nn.PRESETS`` has them.
    * ``lost``: LOST batched vs image by image.
    * ``ckpt``: training step with and without gradient checkpointing (needs ``RegViT.set_grad_checkpointing``).
    * ``compile``: eager vs ``torch.compile`` (``compile_backend``; default inductor), ViT-B/16 at 224.
    """
    modes = ["forward", "train"]
    if part == "vit":
        g = []
        for arch, bs in ((("tiny-test", 2),) if tiny else (("small", 64), ("base", 32))):
            g += backbone_peer_groups(arch, 32 if tiny else 224, bs, modes, "bf16")
            g += backbone_peer_groups(arch, 48 if tiny else 512, bs if tiny else bs // 4, modes, "bf16", "both")
        arch, size, bs = ("tiny-test", 32, 2) if tiny else ("base", 224, 32)
        return g + [dtype_group(arch, 16, size, bs, mode) for mode in modes]
    if part == "large":
        arch, size = ("tiny-test", 64) if tiny else ("large", 1024)
        g = backbone_peer_groups(arch, size, 2 if tiny else 4, modes, "bf16", "both")
        if not tiny:
            g += backbone_groups(["base"], [16], [1024], 4, [0], ["ours"], "both", modes, ["bf16"], "off")
        for preset, psize, bs in (("dinov3_vitl16", 1024, 4), ("dinov3_vitb16", 512, 16)):
            if not C.preset_available(preset):
                continue
            psize, bs = (64, 2) if tiny else (psize, bs)
            for mode in modes:
                cases = [C.preset_case(impl, impl, preset, psize, bs, mode, "bf16", tiny=tiny)
                         for impl in ("ours", "timm")]
                g.append(Group(f"{C.preset_name(preset)} {psize} bs{bs} {mode} bf16", cases, [("ours", "timm")]))
            if tiny:
                break
        return g
    if part == "lost":
        arch, patch, size, bs = ("tiny-test", 16, 64, 3) if tiny else ("small", 14, 518, 32)
        cases = [C.lost_batch_case(label, arch, patch, size, bs, batched=label == "batched")
                 for label in ("batched", "per-image")]
        return [Group(f"LOST {C.model_name(arch, patch, 4)} {size} {bs} images", cases, [("batched", "per-image")])]
    if part == "ckpt":
        if not C.grad_ckpt_available():
            return []
        arch, size, bs = ("tiny-test", 64, 2) if tiny else ("large", 1024, 4)
        kw = dict(arch=arch, patch=16, size=size, batch=bs, mode="train", dtype="bf16")
        return [Group(f"{C.model_name(arch, 16)} {size} bs{bs} train bf16 grad checkpointing",
                      [C.backbone_case("plain", "ours", **kw), C.backbone_case("ckpt", "ours", grad_ckpt=True, **kw)],
                      [("ckpt", "plain")])]
    if part == "compile":
        arch, size, bs = ("tiny-test", 32, 2) if tiny else ("base", 224, 32)
        g = []
        for mode in modes:
            kw = dict(arch=arch, patch=16, size=size, batch=bs, mode=mode, dtype="bf16")
            g.append(Group(f"{C.model_name(arch, 16)} {size} bs{bs} {mode} bf16 eager vs compile",
                           [C.backbone_case("ours", "ours", **kw),
                            C.backbone_case("ours+compile", "ours", compile=True, compile_backend=compile_backend,
                                            **kw)],
                           [("ours+compile", "ours")]))
        return g
    raise UserError(f"unknown part {part!r} of the GPU check: use one of {GPU_CHECK_PARTS}")


def suite_groups(suite: str, cuda: bool) -> list:
    if suite == "quick":
        t = dict(archs=["tiny-test"], patches=[16], sizes=[64], batch=2, registers=[0], impls=C.IMPLS,
                 skipat="both", dtypes=["fp32"], compile_="off")
        return (backbone_groups(modes=["forward", "train"], **t)
                + [dtype_group("tiny-test", 16, 64, 2, "train")]
                + seg_groups(SEG_CONFIGS, 2, ["fp32"], "off", crop=56, tiny=True)
                + seg_groups(M2F_CONFIGS[:2], 2, ["fp32"], "off", crop=56, tiny=True, classes=M2F_CLASSES)
                + [lost_group("tiny-test", 16, 64), uformer_group("T", 32, 1, "train", tiny=True)])
    if suite == "cpu":  # what docs/benchmarks.md publishes; about 20 minutes on 1 core
        g = []
        g += backbone_groups(["small"], [16], [224], 4, [0], C.IMPLS, "both", ["forward", "train"], ["fp32"], "off")
        g += backbone_groups(["base"], [16], [224], 2, [0], C.IMPLS, "both", ["forward"], ["fp32"], "off")
        g += backbone_groups(["small", "base"], [16], [512], 1, [0], C.IMPLS, "both", ["forward"], ["fp32"], "off")
        g[-1].repeats = 5  # ViT-B/16 at 512: about 5 s a step on one core
        g += backbone_groups(["small"], [14], [518], 1, [4], C.IMPLS, "both", ["forward"], ["fp32"], "off")
        g += backbone_groups(["small"], [16], [224], 4, [0], ["ours"], "off", ["forward"], ["fp32"], "both")
        g += [dtype_group("small", 16, 224, 4, "train"), dtype_group("small", 16, 224, 4, "forward")]
        g += seg_groups(SEG_CONFIGS, 2, ["fp32"], "off")
        g += seg_groups(M2F_CONFIGS, 2, ["fp32"], "off", classes=M2F_CLASSES)  # about 6 minutes on 1 core
        g += [lost_group("small", 14, 518), uformer_group("T", 256, 1, "forward"),
              uformer_group("T", 256, 1, "train")]
        return g
    if suite == "gpu":
        g = []
        for arch, bs in (("small", 64), ("base", 32)):
            g += backbone_groups([arch], [16], [224], bs, [0], C.IMPLS, "both", ["forward", "train"],
                                 ["fp32", "bf16"], "both")
            g += backbone_groups([arch], [16], [512], bs // 4, [0], C.IMPLS, "both", ["forward", "train"],
                                 ["bf16"], "both")
            g += backbone_groups([arch], [14], [518], bs // 4, [4], C.IMPLS, "both", ["forward", "train"],
                                 ["bf16"], "off")
        g += seg_groups(SEG_CONFIGS, 8, ["fp32", "bf16"], "off")
        g += seg_groups(M2F_CONFIGS, 2, ["fp32", "bf16"], "off", classes=M2F_CLASSES)  # the recipe's 2 per GPU
        g += [lost_group("small", 14, 518), uformer_group("B", 256, 4, "train")]
        return g
    if suite == "gpu-check":  # the timed groups of scripts/gpu_check.sh, in one run
        return [grp for part in GPU_CHECK_PARTS for grp in gpu_check_groups(part)]
    raise UserError(f"unknown suite {suite!r}: use one of {SUITES}")


def task_groups(a) -> list:
    """The groups of ``dense-adapters-benchmark --task ...`` from its parsed options."""
    if a.task == "backbone":
        return backbone_groups(a.arch, a.patch, a.sizes, a.batch, a.registers, a.impls, a.skipat, a.modes,
                               a.dtypes, a.compile)
    if a.task == "seg":
        return seg_groups(a.configs, a.batch, a.dtypes, a.compile, a.crop, classes=a.seg_classes)
    if a.task == "lost":
        return [lost_group(arch, patch, size, max(a.registers)) for arch in a.arch for patch in a.patch
                for size in a.sizes]
    return [uformer_group(p, s, a.batch, m) for p in a.presets for s in a.sizes for m in a.modes]


