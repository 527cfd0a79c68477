"""Benchmark suites: which groups of cases are timed together (``--suite quick|cpu|gpu``) and the groups of
``--task backbone|seg|lost|uformer`` with their options. Cases of a group are compared with each other (ratios).
"""
from __future__ import annotations

import os.path as osp

from dense_adapters.benchmark import Group
from dense_adapters.errors import UserError

from . import cases as C

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))  # the checkout holding benchmarks/ and configs/
SEG_CONFIGS = tuple(osp.join(ROOT, "configs", name) for name in (
    "ade20k_regvit.py", "ade20k_regvit_upernet.py", "ade20k_regvit_skipat_upernet.py"))
SEG_LABELS = {"ade20k_regvit": "linear", "ade20k_regvit_upernet": "upernet",
              "ade20k_regvit_skipat_upernet": "skipat"}
SUITES = ("quick", "cpu", "gpu")
# per suite: warm-up steps, repeats, minimum seconds per timed run, threads (None: torch's default)
SUITE_TIMING = {"quick": (1, 1, 0.0, 1), "cpu": (2, 7, 1.0, None), "gpu": (5, 7, 0.5, None)}


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


def seg_groups(configs, batch, dtypes, compile_, crop=None, tiny=False) -> list:
    groups = []
    for dtype in dtypes:
        cases = []
        for cfg in configs:
            label = SEG_LABELS.get(osp.splitext(osp.basename(cfg))[0], osp.splitext(osp.basename(cfg))[0])
            if compile_ != "only":
                cases.append(C.seg_case(label, cfg, batch, dtype, False, tiny, crop))
            if compile_ in ("both", "only"):
                cases.append(C.seg_case(label + "+compile", cfg, batch, dtype, True, tiny, crop))
        labels = [c.label for c in cases]
        ratios = [(n, d) for n, d in (("skipat", "upernet"), ("skipat+compile", "upernet+compile"))
                  if n in labels and d in labels]
        groups.append(Group(f"ADE20K train step {crop or 'crop'} bs{batch} {dtype}", cases, ratios,
                              warmup=1 if not tiny else None, repeats=3 if not tiny else None))
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


def suite_groups(suite: str, cuda: bool) -> list:
    if suite == "quick":
        t = dict(archs=["tiny-test"], patches=[16], sizes=[64], batch=2, registers=[0], impls=C.IMPLS,
                 skipat="both", dtypes=["fp32"], compile_="off")
        return (backbone_groups(modes=["forward", "train"], **t)
                + [dtype_group("tiny-test", 16, 64, 2, "train")]
                + seg_groups(SEG_CONFIGS, 2, ["fp32"], "off", crop=56, tiny=True)
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
        g += [lost_group("small", 14, 518), uformer_group("B", 256, 4, "train")]
        return g
    raise UserError(f"unknown suite {suite!r}: use one of {SUITES}")


def task_groups(a) -> list:
    """The groups of ``dense-adapters-benchmark --task ...`` from its parsed options."""
    if a.task == "backbone":
        return backbone_groups(a.arch, a.patch, a.sizes, a.batch, a.registers, a.impls, a.skipat, a.modes,
                               a.dtypes, a.compile)
    if a.task == "seg":
        return seg_groups(a.configs, a.batch, a.dtypes, a.compile, a.crop)
    if a.task == "lost":
        return [lost_group(arch, patch, size, max(a.registers)) for arch in a.arch for patch in a.patch
                for size in a.sizes]
    return [uformer_group(p, s, a.batch, m) for p in a.presets for s in a.sizes for m in a.modes]


