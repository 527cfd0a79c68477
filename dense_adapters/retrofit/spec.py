"""What model is retrofitted: a preset (or none) plus constructor overrides, and the teacher/student pair built
from it with the public constructors of the core.

The teacher is the pretrained backbone as it is; the student is the same architecture built with ``skip_layers``
(RegViT) or ``skip_mode`` (Uformer's decoder), holding the teacher's weights wherever the architectures share a
tensor. Dropout, drop-path and RoPE augmentation are turned off in both: distillation compares two deterministic
functions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import nn

from ..errors import CheckpointMismatch, UserError
from ..nn import PRESETS, RegViT, UFORMER_PRESETS, Uformer
from ..nn.convert import adapt_to_model, load_file, load_pretrained, unwrap_state_dict

FAMILIES = ("regvit", "uformer")
SKIP_MODES = ("parametric", "identity")
# constructor arguments of the mmseg/mmengine wrappers that are not the core model's
_WRAPPER_KEYS = ("type", "preset", "out_indices", "output_cls_token", "final_norm", "frozen", "with_cp", "init_cfg")
# the teacher is frozen in eval mode; the student trains: no dropout, no drop-path and no RoPE train-time augmentation
# (DINOv3's rescale: it would move the student's patch positions away from the teacher's)
_NO_DROP = {"regvit": dict(drop_path_rate=0.0, attn_drop_rate=0.0, proj_drop_rate=0.0, pos_drop_rate=0.0,
                           rope_shift_coords=None, rope_jitter_coords=None, rope_rescale_coords=None),
            "uformer": dict(drop_path_rate=0.0)}


@dataclass
class ModelSpec:
    """``family`` 'regvit' or 'uformer'; ``preset`` a key of ``PRESETS`` / ``UFORMER_PRESETS`` or None;
    ``arch_kwargs`` constructor keywords on top of the preset (all of them when there is no preset), never
    ``skip_layers`` / ``skip_mode``, which are the retrofit's to choose."""

    family: str = "regvit"
    preset: Optional[str] = None
    arch_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise UserError(f"unknown model family {self.family!r}: use one of {FAMILIES}")
        presets = PRESETS if self.family == "regvit" else UFORMER_PRESETS
        if self.preset is not None and self.preset not in presets:
            raise UserError(f"unknown {self.family} preset {self.preset!r}: use one of {sorted(presets)}")
        bad = {"skip_layers", "skip_mode"} & set(self.arch_kwargs)
        if bad:
            raise UserError(f"{sorted(bad)} in the architecture arguments: the retrofit sets them (use --skip and "
                            "--skip-mode)")

    def build(self, skip_layers: Sequence[int] = (), skip_mode: Optional[str] = None) -> nn.Module:
        """The model with dropout off; RegViT: ``skip_layers`` in ``skip_mode``; Uformer: ``skip_mode`` (None or
        a mode) in every decoder block."""
        if self.family == "regvit":
            kw = {**(PRESETS[self.preset] if self.preset else {}), **self.arch_kwargs, **_NO_DROP["regvit"]}
            try:
                return RegViT(**kw, skip_layers=tuple(skip_layers), skip_mode=skip_mode or "parametric")
            except (TypeError, ValueError) as e:
                raise UserError(f"cannot build the RegViT {self.describe()}: {e}") from e
        kw = {**(UFORMER_PRESETS[self.preset] if self.preset else {}), **self.arch_kwargs, **_NO_DROP["uformer"]}
        try:
            return Uformer(**kw, skip_mode=skip_mode)
        except (TypeError, ValueError) as e:
            raise UserError(f"cannot build the Uformer {self.describe()}: {e}") from e

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in self.arch_kwargs.items())
        return f"{self.preset or self.family}" + (f" ({extra})" if extra else "")

    def meta(self) -> dict:
        return dict(preset=self.preset, arch_kwargs=dict(self.arch_kwargs))


def spec_from_arch(arch: str, overrides: Optional[dict] = None) -> ModelSpec:
    """``--arch`` name: a RegViT preset (``dinov2_vits14_reg4``), ``uformer_T`` / ``uformer_S`` / ``uformer_B``,
    or a bare family (``regvit`` / ``uformer``) whose architecture comes from ``overrides`` alone."""
    overrides = dict(overrides or {})
    if arch in FAMILIES:
        return ModelSpec(arch, None, overrides)
    m = re.fullmatch(r"uformer[_-](\w+)", arch, flags=re.IGNORECASE)
    if m:
        return ModelSpec("uformer", m.group(1).upper(), overrides)
    if arch not in PRESETS:
        raise UserError(f"unknown --arch {arch!r}: use a RegViT preset ({', '.join(sorted(PRESETS))}), "
                        f"uformer_{{{','.join(sorted(UFORMER_PRESETS))}}}, or 'regvit'/'uformer' with --set")
    return ModelSpec("regvit", arch, overrides)


def spec_from_config(path) -> tuple[ModelSpec, Optional[str]]:
    """(spec, checkpoint from ``init_cfg`` or None) from an mmengine config (a file, or a loaded ``Config``):
    ``model.backbone`` of type ``dense_adapters.RegViT`` or a restorer's ``model.generator`` of type
    ``dense_adapters.Uformer``."""
    import os.path as osp

    from mmengine.config import Config

    if isinstance(path, str):
        if not osp.isfile(path):
            raise UserError(f"config not found: {path}: give the path of a file in configs/")
        cfg = Config.fromfile(path)
    else:
        cfg, path = path, path.filename
    model = cfg.get("model") or {}
    for key, family in (("backbone", "regvit"), ("generator", "uformer")):
        part = model.get(key)
        if isinstance(part, dict) and str(part.get("type", "")).rsplit(".", 1)[-1] in ("RegViT", "Uformer"):
            part = part.to_dict() if hasattr(part, "to_dict") else dict(part)
            init = part.get("init_cfg") or {}
            kwargs = {k: v for k, v in part.items() if k not in _WRAPPER_KEYS + ("skip_layers", "skip_mode")}
            family = "uformer" if part["type"].endswith("Uformer") else "regvit"
            for k in list(_NO_DROP[family]):
                kwargs.pop(k, None)
            ckpt = init.get("checkpoint") if isinstance(init, dict) and init.get("type") == "Pretrained" else None
            return ModelSpec(family, part.get("preset"), kwargs), ckpt
    raise UserError(f"config {path!r} has neither a model.backbone of type dense_adapters.RegViT nor a "
                    "model.generator of type dense_adapters.Uformer: pass --arch instead")


def parse_skip(text: str, depth: int) -> list[int]:
    """``'3-8'``, ``'3,5,7'``, ``'2-4,9'`` -> sorted 0-based block indices, checked against ``depth``."""
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(-?\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"--skip {text!r}: expected block indices like '3-8' or '3,5,7' (0-based) or 'auto'")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo > hi:
            raise UserError(f"--skip {text!r}: range {part} runs backwards")
        out.update(range(lo, hi + 1))
    bad = sorted(i for i in out if not 1 <= i < depth)
    if bad:
        raise UserError(f"--skip {text!r}: blocks {bad} do not exist or cannot skip (the model has blocks "
                        f"0..{depth - 1}"
                        " and block 0 has no earlier attention to reuse)")
    return sorted(out)


def load_teacher_weights(teacher: nn.Module, spec: ModelSpec, checkpoint: Optional[str], source: str = "auto",
                         trust_pickle: bool = False) -> str:
    """Load ``checkpoint`` into the teacher; returns the load report as text (or a note when there is none)."""
    if checkpoint is None:
        return "no checkpoint: the teacher keeps its random initial weights"
    if spec.family == "regvit":
        return str(load_pretrained(teacher, checkpoint, source=source, trust_pickle=trust_pickle))
    sd = unwrap_state_dict(load_file(checkpoint, trust_pickle=trust_pickle))
    for prefix in ("generator.", "net."):  # a Restorer checkpoint: generator.net.<core keys>
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    try:
        teacher.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointMismatch(f"{checkpoint} does not fit the plain Uformer {spec.describe()}: "
                                 f"{str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e}; "
                                 "give the preset it was trained with (a SkipAt Uformer cannot be a teacher)") from None
    return f"loaded a Uformer checkpoint ({len(sd)} tensors)"


def build_student(teacher: nn.Module, spec: ModelSpec, skip_layers: Sequence[int], skip_mode: str,
                  seed: int = 0) -> nn.Module:
    """The student: ``spec`` with the skips, the teacher's weights copied in, Phi freshly initialised from ``seed``."""
    if skip_mode not in SKIP_MODES:
        raise UserError(f"unknown skip mode {skip_mode!r}: use one of {SKIP_MODES}")
    with torch.random.fork_rng(devices=[]):  # built on the CPU; the caller's random streams stay untouched
        torch.manual_seed(seed)
        student = spec.build(skip_layers, skip_mode)
    sd = teacher.state_dict()
    if spec.family == "regvit":
        sd, _ = adapt_to_model(sd, student, "teacher")  # drops the skipped blocks' attention
        own = student.state_dict()
        new = [k for k in own if k not in sd]
        if any(".skip_fn." not in k for k in new):
            odd = [k for k in new if ".skip_fn." not in k][:4]
            raise CheckpointMismatch(f"the student misses teacher tensors {odd}"
                                     ": the teacher and student architectures differ")
        student.load_state_dict(sd, strict=False)
    else:
        own = student.state_dict()
        shared = {k: v for k, v in sd.items() if k in own}
        new = [k for k in own if k not in shared]
        if any(".skip_fn." not in k and ".lift." not in k for k in new):
            raise CheckpointMismatch("the SkipAt Uformer misses teacher tensors outside skip_fn/lift: "
                                     f"{[k for k in new if '.skip_fn.' not in k and '.lift.' not in k][:4]}")
        student.load_state_dict(shared, strict=False)
    return student.to(next(teacher.parameters()).device)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode, no gradients (the teacher)."""
    model.eval()
    model.requires_grad_(False)
    return model
