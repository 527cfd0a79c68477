"""What the two training stages and the evaluation compute, per model family, through the core's public API.

RegViT (:class:`ViTAdapter`), block ``i`` skipped, ``a_j`` the attention-branch output of block ``j``:

* stage 1 (teacher-forced): ``Phi_i`` gets the *teacher's* ``a_{i-1}`` and regresses the teacher's ``a_i`` on the
  patch tokens (prefix tokens reuse ``a_{i-1}`` by design). The error is measured after the block's LayerScale,
  i.e. in the units the block adds to the residual stream (DINOv2's per-channel gammas differ 100-fold, so an
  unscaled error would spend Phi's capacity on channels the block barely writes), as a relative MSE. All skipped
  blocks learn from one teacher pass, independently of each other;
* stage 2 (end to end): the student with all its skips vs the teacher, after the final norm, on patch tokens and
  cls of the feature blocks (the last block and the 4 evenly spaced blocks heads read), ``cosine + relative MSE``
  (:mod:`.losses`). Blocks before the first skip are identical in both models and left out.

Uformer (:class:`UformerAdapter`): every decoder block skips; its attention branch is ``lift(Phi(a))`` of the
matching encoder block's attention output ``a``, which is the same in teacher and student (the encoder is shared),
so stage 1 is exact teacher forcing: the student's decoder block, fed the teacher's input, regresses the teacher
block's attention output. Stage 2 matches the predicted residual image and each decoder stage's output.
"""
from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from typing import Iterable, Optional, Sequence

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..nn import RegViT
from .losses import charbonnier, cosine_distance, feature_loss, rel_mse

TRAINABLE = ("norms", "layerscale")


def head_blocks(depth: int, n: int = 4) -> list[int]:
    """``n`` evenly spaced blocks ending with the last (depth 12: 2, 5, 8, 11, DINOv2's "linear 4" blocks)."""
    return sorted({max(0, depth * (k + 1) // n - 1) for k in range(n)})


def _params(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    seen, out = set(), []
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def _stage_out(stage: int, block_losses: Tensor) -> dict[str, Tensor]:
    """Logged values: 'loss' (summed by mmengine), the stage, and stage 1's worst block."""
    return {"loss": block_losses.mean(), "stage": torch.tensor(float(stage)),
            "phi_worst_rel_mse": block_losses.max().detach()}


class _Mean:
    """Running means of named scalars or per-block lists (weighted by a count)."""

    def __init__(self) -> None:
        self.sum: dict = defaultdict(float)
        self.n: dict = defaultdict(float)

    def add(self, key, value: float, n: float = 1.0) -> None:
        self.sum[key] += float(value) * n
        self.n[key] += n

    def get(self, key) -> Optional[float]:
        return self.sum[key] / self.n[key] if self.n.get(key) else None


class ViTAdapter:
    """Stages and evaluation of a :class:`RegViT` student with ``skip_layers``."""

    family = "regvit"

    def __init__(self, skip_layers: Sequence[int], depth: int, feature_blocks: Optional[Sequence[int]] = None) -> None:
        self.skip_layers = sorted(int(i) for i in skip_layers)
        if not self.skip_layers:
            raise UserError("nothing to retrofit: no block is skipped (give --skip 3-8 or --skip auto --num-skip K)")
        self.depth = depth
        blocks = sorted({int(b) % depth for b in (feature_blocks or head_blocks(depth))} | {depth - 1})
        self.feature_blocks = [b for b in blocks if b >= self.skip_layers[0]]  # earlier blocks are identical

    # ---------------------------------------------------------------------------------------- parameters
    def trainable(self, student: RegViT, extra: Sequence[str] = ()) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(Phi parameters, the ``extra`` ones: LayerNorms / LayerScales of the blocks from the first skip on)."""
        bad = set(extra) - set(TRAINABLE)
        if bad:
            raise UserError(f"unknown --train {sorted(bad)}: Phi always trains; add any of {TRAINABLE}")
        phi = _params(student.blocks[i].skip_fn for i in self.skip_layers)
        later = [student.blocks[b] for b in range(self.skip_layers[0], student.depth)]
        mods: list[nn.Module] = []
        if "norms" in extra:
            mods += [m for blk in later for m in blk.modules() if isinstance(m, nn.LayerNorm)] + [student.norm]
        if "layerscale" in extra:
            mods += [m for blk in later for m in (blk.ls1, blk.ls2) if not isinstance(m, nn.Identity)]
            if not any(True for m in mods if not isinstance(m, nn.LayerNorm)):
                raise UserError("--train layerscale: this model has no LayerScale (init_values=None)")
        phi_ids = {id(p) for p in phi}
        return phi, [p for p in _params(mods) if id(p) not in phi_ids]

    # -------------------------------------------------------------------------------------------- stages
    def stage1(self, teacher: RegViT, student: RegViT, x: Tensor) -> dict[str, Tensor]:
        p = teacher.num_prefix_tokens
        with torch.no_grad():
            res = teacher.forward_blocks(x, list(range(self.skip_layers[-1] + 1)), capture=("out", "attn_out"))
        hw, outs, attn = res["hw"], res["out"], res["attn_out"]
        losses = []
        for i in self.skip_layers:
            pred, _ = student.blocks[i].attention(outs[i - 1], hw, attn[i - 1])  # teacher-forced input
            ls = teacher.blocks[i].ls1
            losses.append(rel_mse(ls(pred[:, p:].float()), ls(attn[i][:, p:].float())))
        return _stage_out(1, torch.stack(losses))

    def _features(self, model: RegViT, x: Tensor, blocks: Sequence[int]) -> list[Tensor]:
        outs = model.forward_blocks(x, list(blocks), capture=("out",))["out"]
        return [model.norm(o) for o in outs]

    def stage2(self, teacher: RegViT, student: RegViT, x: Tensor) -> dict[str, Tensor]:
        p, c = teacher.num_prefix_tokens, int(teacher.has_class_token)
        with torch.no_grad():
            ft = self._features(teacher, x, self.feature_blocks)
        fs = self._features(student, x, self.feature_blocks)
        terms, cos = [], []
        for s, t in zip(fs, ft):
            term = feature_loss(s[:, p:], t[:, p:])
            if c:
                term = term + feature_loss(s[:, 0], t[:, 0])
            terms.append(term)
            cos.append(1.0 - cosine_distance(s[:, p:].detach(), t[:, p:]))
        return {"loss": torch.stack(terms).mean(), "stage": torch.tensor(2.0), "final_patch_cos": cos[-1]}

    # ---------------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def similarity(self, teacher: RegViT, model: RegViT, batches: Iterable[Tensor]) -> dict:
        """Per-block and final cosine similarity of ``model``'s features to the teacher's (after the final norm;
        patch tokens averaged over tokens and images, cls over images) and the final relative MSE."""
        blocks = list(range(teacher.depth))
        p, c = teacher.num_prefix_tokens, int(teacher.has_class_token)
        acc = _Mean()
        for x in batches:
            ft, fs = self._features(teacher, x, blocks), self._features(model, x, blocks)
            for b, s, t in zip(blocks, fs, ft):
                cos = torch.nn.functional.cosine_similarity(s[:, p:].float(), t[:, p:].float(), dim=-1)
                acc.add(("patch", b), cos.mean().item(), cos.numel())
                if c:
                    acc.add(("cls", b), torch.nn.functional.cosine_similarity(s[:, 0], t[:, 0], dim=-1).mean().item(),
                            x.shape[0])
            err = (fs[-1][:, p:].float() - ft[-1][:, p:].float()).pow(2).sum().item()
            acc.add("err", err)
            acc.add("ref", ft[-1][:, p:].float().pow(2).sum().item())
        out = {"blocks": blocks, "patch_cos": [acc.get(("patch", b)) for b in blocks]}
        if c:
            out["cls_cos"] = [acc.get(("cls", b)) for b in blocks]
        out["final_patch_cos"] = out["patch_cos"][-1]
        out["final_cls_cos"] = out["cls_cos"][-1] if c else None
        out["final_rel_mse"] = acc.sum["err"] / max(acc.sum["ref"], 1e-12)
        return out


# ------------------------------------------------------------------------------------------------ Uformer
@contextlib.contextmanager
def capture_lewin(model: nn.Module):
    """Record every LeWin block's inputs and outputs of the next forward: ``{('enc'|'dec', stage, block):
    dict(x=, hw=, a=, out=)}`` (stage 'bottleneck' is not recorded)."""
    rec: dict = {}
    handles = []

    def hook(key):
        def fn(module, args, output):
            x, hw = args[0], args[1]
            rec[key] = dict(x=x, hw=tuple(hw), out=output[0], a=output[1])
        return fn

    for part, stages in (("enc", model.encoders), ("dec", model.decoders)):
        for s, stage in enumerate(stages):
            for i, blk in enumerate(stage.blocks):
                handles.append(blk.register_forward_hook(hook((part, s, i))))
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()


class UformerAdapter:
    """Stages and evaluation of a Uformer student with SkipAt in every decoder block."""

    family = "uformer"

    def __init__(self, model: nn.Module) -> None:
        self.levels = model.num_levels
        self.dec_blocks = [(k, i) for k in range(self.levels) for i in range(len(model.decoders[k].blocks))]
        self.skip_layers = list(range(self.levels))

    def trainable(self, student: nn.Module, extra: Sequence[str] = ()) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        if "layerscale" in extra:
            raise UserError("--train layerscale: Uformer has no LayerScale; use --train norms or nothing")
        bad = set(extra) - set(TRAINABLE)
        if bad:
            raise UserError(f"unknown --train {sorted(bad)}: use norms")
        blocks = [student.decoders[k].blocks[i] for k, i in self.dec_blocks]
        phi = _params([m for b in blocks for m in (b.skip_fn, b.lift)])
        extra_p = _params([b.norm2 for b in blocks]) if "norms" in extra else []
        return phi, extra_p

    def _encoder_reuse(self, rec: dict, k: int, i: int) -> Tensor:
        level = self.levels - 1 - k
        n = sum(1 for key in rec if key[:2] == ("enc", level))
        return rec[("enc", level, min(i, n - 1))]["a"]  # as UformerStage: block i reuses reuse[min(i, len - 1)]

    def stage1(self, teacher: nn.Module, student: nn.Module, x: Tensor) -> dict[str, Tensor]:
        with torch.no_grad(), capture_lewin(teacher) as rec:
            teacher(x)
        losses = []
        for k, i in self.dec_blocks:
            r = rec[("dec", k, i)]
            _, a = student.decoders[k].blocks[i](r["x"], r["hw"], self._encoder_reuse(rec, k, i))
            losses.append(rel_mse(a, r["a"]))
        return _stage_out(1, torch.stack(losses))

    def stage2(self, teacher: nn.Module, student: nn.Module, x: Tensor) -> dict[str, Tensor]:
        with torch.no_grad(), capture_lewin(teacher) as rt:
            yt = teacher(x)
        with capture_lewin(student) as rs:
            ys = student(x)
        last = [(k, len(student.decoders[k].blocks) - 1) for k in range(self.levels)]
        feats = torch.stack([rel_mse(rs[("dec",) + key]["out"], rt[("dec",) + key]["out"]) for key in last])
        res = rel_mse(ys - x, yt - x)
        return {"loss": res + feats.mean() + charbonnier(ys, yt), "stage": torch.tensor(2.0),
                "residual_rel_mse": res.detach()}

    @torch.no_grad()
    def similarity(self, teacher: nn.Module, model: nn.Module, batches: Iterable[Tensor]) -> dict:
        """Per decoder block cosine of output tokens to the teacher's; final: PSNR (dB) of the restored image
        against the teacher's and the residual's relative MSE."""
        acc = _Mean()
        for x in batches:
            with capture_lewin(teacher) as rt:
                yt = teacher(x)
            with capture_lewin(model) as rs:
                ys = model(x)
            for j, (k, i) in enumerate(self.dec_blocks):
                cos = torch.nn.functional.cosine_similarity(rs[("dec", k, i)]["out"], rt[("dec", k, i)]["out"], dim=-1)
                acc.add(j, cos.mean().item(), cos.numel())
            mse = (ys.clamp(0, 1) - yt.clamp(0, 1)).pow(2).mean(dim=(1, 2, 3))
            for m in mse.tolist():
                acc.add("psnr", 10 * math.log10(1.0 / max(m, 1e-12)))
            acc.add("err", (ys - yt).pow(2).sum().item())
            acc.add("ref", (yt - x).pow(2).sum().item())
        cos = [acc.get(j) for j in range(len(self.dec_blocks))]
        return {"blocks": [f"dec{k}.{i}" for k, i in self.dec_blocks], "patch_cos": cos, "final_patch_cos": cos[-1],
                "final_psnr_to_teacher": acc.get("psnr"), "final_rel_mse": acc.sum["err"] / max(acc.sum["ref"], 1e-12)}


def make_adapter(family: str, student: nn.Module, skip_layers: Sequence[int],
                 feature_blocks: Optional[Sequence[int]] = None):
    if family == "regvit":
        return ViTAdapter(skip_layers, student.depth, feature_blocks)
    return UformerAdapter(student)
