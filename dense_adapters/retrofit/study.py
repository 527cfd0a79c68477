"""The CPU trade-off study of docs/skipat_retrofit.md: skipped blocks vs feature similarity vs speed, and what a
frozen linear probe (ADE20K sample) and LOST (VOC sample) give with the teacher and each retrofitted student.

    python -m dense_adapters.retrofit.study --out work_dirs/retrofit_study            # ~15-30 min on 2 CPU cores

No pretrained weights can be downloaded here, so the teacher is a *structured random* ViT (:func:`random_teacher`):
unit-gain weights, sharpened queries/keys, adjacent blocks' attention weights correlated. Its features carry no
semantics: the downstream numbers measure how much of the teacher's behaviour the student keeps (student vs teacher,
and the agreement of their LOST boxes), not the quality a pretrained DINOv2 would reach.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import RegViT


def random_teacher(embed_dim: int = 96, depth: int = 8, num_heads: int = 4, patch_size: int = 8, img_size: int = 96,
                   num_register_tokens: int = 4, init_values: float = 0.5, share: float = 0.8,
                   seed: int = 0) -> tuple[RegViT, dict]:
    """(ViT, its constructor kwargs): random weights whose blocks matter and whose adjacent attention is
    correlated (``share`` of block i's q/k/v/proj weights are block i-1's), as in a trained ViT."""
    kw = dict(arch="small", embed_dim=embed_dim, depth=depth, num_heads=num_heads, patch_size=patch_size,
              img_size=img_size, init_values=init_values, num_register_tokens=num_register_tokens)
    torch.manual_seed(seed)
    vit = RegViT(**kw)
    with torch.no_grad():
        for m in vit.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 1 / math.sqrt(m.in_features))
        for blk in vit.blocks:
            blk.attn.qkv.weight[: 2 * embed_dim] *= 2.0
        for prev, blk in zip(vit.blocks[:-1], vit.blocks[1:]):
            for a, b in ((prev.attn.qkv, blk.attn.qkv), (prev.attn.proj, blk.attn.proj)):
                b.weight.copy_(share * a.weight + math.sqrt(1 - share**2) * b.weight)
        vit.pos_embed.normal_(0, 0.5)
        for t in (vit.cls_token, vit.reg_token):
            if t is not None:
                t.normal_(0, 1.0)
    return vit.eval(), kw


# ------------------------------------------------------------------------------------------- linear probe
def _ade_split(root: str, split: str, size: int) -> tuple[Tensor, Tensor]:
    from PIL import Image

    from .data import to_tensor

    img_dir, ann_dir = osp.join(root, "images", split), osp.join(root, "annotations", split)
    xs, ys = [], []
    for f in sorted(os.listdir(img_dir)):
        img = Image.open(osp.join(img_dir, f)).convert("RGB").resize((size, size), Image.BICUBIC)
        lab = Image.open(osp.join(ann_dir, osp.splitext(f)[0] + ".png")).resize((size, size), Image.NEAREST)
        y = torch.from_numpy(np.asarray(lab, dtype=np.int64).copy()) - 1  # reduce_zero_label: 0 (other) -> -1
        xs.append(to_tensor(img))
        ys.append(y.masked_fill(y < 0, 255))
    return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def _probe_features(vit: RegViT, x: Tensor) -> Tensor:
    """Last block after the final norm, patch map concatenated with cls (the Registers paper's linear probe)."""
    maps, prefix = vit.forward_intermediates(x, [vit.depth - 1], norm=True, return_prefix_tokens=True)
    m, cls = maps[0], prefix[0][:, 0]
    return torch.cat([m, cls[:, :, None, None].expand_as(m)], dim=1)


def miou(pred: Tensor, gt: Tensor, num_classes: int, ignore: int = 255) -> float:
    """Mean IoU over the classes present in prediction or ground truth (valid pixels only)."""
    valid = gt != ignore
    p, g = pred[valid], gt[valid]
    inter = torch.bincount(g[p == g], minlength=num_classes).double()
    area_p = torch.bincount(p, minlength=num_classes).double()
    area_g = torch.bincount(g, minlength=num_classes).double()
    union = area_p + area_g - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else float("nan")


def linear_probe(vit: RegViT, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor], num_classes: int = 150,
                 steps: int = 300, lr: float = 1e-2, seed: int = 0) -> float:
    """Frozen features, BatchNorm + 1x1 conv (as ``LinearProbeHead``), logits upsampled bilinearly to the labels,
    cross-entropy with 'other' ignored; mIoU on ``val``."""
    ftr, fva = _probe_features(vit, train[0]), _probe_features(vit, val[0])
    torch.manual_seed(seed)
    head = nn.Sequential(nn.BatchNorm2d(ftr.shape[1]), nn.Conv2d(ftr.shape[1], num_classes, 1))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        logits = F.interpolate(head(ftr), size=train[1].shape[-2:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits, train[1], ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        pred = F.interpolate(head(fva), size=val[1].shape[-2:], mode="bilinear", align_corners=False).argmax(1)
    return miou(pred, val[1], num_classes)


# --------------------------------------------------------------------------------------------------- LOST
@torch.no_grad()
def lost_boxes(vit: RegViT, voc_root: str, long_side: int = 192) -> tuple[list[Tensor], list[Tensor]]:
    """LOST (keys of the last block, LOST's defaults) on every VOC-sample image: (pixel boxes, GT boxes)."""
    from PIL import Image

    from ..datasets.discovery import VOCBoxes
    from ..discovery import boxes_to_image, extract_features, lost
    from .data import to_tensor

    preds, gts = [], []
    ds = VOCBoxes(voc_root, "trainval")
    for item in (ds[i] for i in range(len(ds))):
        img = Image.open(item.path).convert("RGB")
        s = long_side / max(img.size)
        w, h = (max(vit.patch_size, round(v * s / vit.patch_size) * vit.patch_size) for v in img.size)
        x = to_tensor(img.resize((w, h), Image.BICUBIC))[None]
        feats, hw = extract_features(vit, x, "k", -1)
        box = boxes_to_image(lost(feats, hw).box, vit.patch_size, (h, w))[0]
        preds.append(box / torch.tensor([w / img.size[0], h / img.size[1]] * 2))
        gts.append(torch.as_tensor(item.boxes, dtype=torch.float64))
    return preds, gts


def corloc(preds: Sequence[Tensor], gts: Sequence[Tensor]) -> float:
    from ..discovery import corloc_hit

    return float(np.mean([corloc_hit(p, g) for p, g in zip(preds, gts)]))


def box_agreement(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    """Mean IoU between two models' LOST boxes on the same images."""
    from ..discovery import box_iou

    return float(np.mean([box_iou(x.reshape(1, 4), y.reshape(1, 4)).item() for x, y in zip(a, b)]))


# -------------------------------------------------------------------------------------------------- study
def run_study(out: str, num_skips: Sequence[int] = (2, 4, 6), iters: int = 600, size: int = 96,
              batch_size: int = 8, bench_sizes: Sequence[int] = (96, 224), seed: int = 0, embed_dim: int = 96,
              depth: int = 8, probe_size: int = 128, probe_steps: int = 300, log=print) -> dict:
    from ..datasets.samples.ade import make_ade_sample
    from ..datasets.samples.voc import make_voc_sample
    from .api import RetrofitConfig, retrofit
    from .checkpoint import build_from_retrofit
    from .report import gmacs, throughput
    from .spec import ModelSpec

    os.makedirs(out, exist_ok=True)
    ade = make_ade_sample(osp.join(out, "data"))
    voc = make_voc_sample(osp.join(out, "data"))
    teacher, kw = random_teacher(embed_dim=embed_dim, depth=depth, img_size=size, seed=seed)
    t_path = osp.join(out, "teacher.pth")
    torch.save(teacher.state_dict(), t_path)
    probe_tr, probe_va = _ade_split(ade, "training", probe_size), _ade_split(ade, "validation", probe_size)

    def probe(vit: RegViT) -> float:
        return linear_probe(vit, probe_tr, probe_va, steps=probe_steps)

    t_lost, gts = lost_boxes(teacher, voc)
    rows = [dict(name="teacher", skip_layers=[], probe_miou=probe(teacher),
                 lost_corloc=corloc(t_lost, gts), lost_agreement=1.0, final_patch_cos=1.0, final_rel_mse=0.0)]
    log(f"teacher: probe mIoU {rows[0]['probe_miou']:.4f}, LOST CorLoc {rows[0]['lost_corloc']:.3f}")
    # unlabelled training images: the ADE sample's training photos; its validation photos are held out
    images, val_images = osp.join(ade, "images", "training"), osp.join(ade, "images", "validation")
    for k in num_skips:
        run_dir = osp.join(out, f"skip{k}")
        report_path = osp.join(run_dir, "report.json")
        if not osp.isfile(report_path):
            retrofit(RetrofitConfig(ModelSpec("regvit", None, kw), images=images, val_images=val_images, out=run_dir,
                                    checkpoint=t_path, skip="auto", num_skip=k, size=size, batch_size=batch_size,
                                    stage1_iters=iters // 3, stage2_iters=iters - iters // 3, lr1=3e-3, lr2=1e-3,
                                    num_workers=0, log_interval=max(1, iters // 6), ckpt_interval=iters,
                                    eval_batch=4, bench=False, seed=seed))
        with open(report_path) as f:
            rep = json.load(f)
        student = build_from_retrofit(osp.join(run_dir, "retrofit.pth"))
        s_lost, _ = lost_boxes(student, voc)
        sims = rep["similarity"]
        row = dict(name=f"skip {k}", skip_layers=rep["skip_layers"],
                   final_patch_cos=sims["retrofit"]["final_patch_cos"], final_rel_mse=sims["retrofit"]["final_rel_mse"],
                   untrained_cos=sims["untrained"]["final_patch_cos"], identity_cos=sims["identity"]["final_patch_cos"],
                   stage1_cos=sims.get("stage1", {}).get("final_patch_cos"),
                   probe_miou=probe(student), lost_corloc=corloc(s_lost, gts),
                   lost_agreement=box_agreement(t_lost, s_lost))
        for s in bench_sizes:
            x = torch.randn(4, 3, s, s)
            g_t, g_s = gmacs(teacher, x), gmacs(student, x)
            tp = throughput(teacher, student, x, torch.device("cpu"), repeats=5, min_time=0.2, log=lambda m: None)
            row[f"gmacs_ratio_{s}"] = g_s / g_t if g_t and g_s else None
            row[f"speedup_{s}"] = tp["speedup"]
        rows.append(row)
        log(f"{row['name']} {row['skip_layers']}: cos {row['final_patch_cos']:.4f} (untrained "
            f"{row['untrained_cos']:.4f}, identity {row['identity_cos']:.4f}), probe {row['probe_miou']:.4f}, "
            f"LOST {row['lost_corloc']:.3f} (agree {row['lost_agreement']:.3f}), "
            + ", ".join(f"{s}px x{row[f'speedup_{s}']:.3f} (GMACs x{row[f'gmacs_ratio_{s}']:.3f})"
                        for s in bench_sizes))
    result = dict(teacher=kw, size=size, iters=iters, batch_size=batch_size, threads=torch.get_num_threads(),
                  probe_size=probe_size, probe_steps=probe_steps, rows=rows)
    with open(osp.join(out, "study.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(osp.join(out, "study.md"), "w") as f:
        f.write(markdown_table(result, bench_sizes))
    return result


def markdown_table(result: dict, bench_sizes: Sequence[int]) -> str:
    head = ["model", "skipped blocks", "final patch cos (untrained / identity / stage 1 / retrofit)", "rel. MSE",
            *[f"GMACs {s}px" for s in bench_sizes], *[f"speed {s}px" for s in bench_sizes], "probe mIoU",
            "LOST CorLoc", "LOST box IoU to teacher"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        if r["name"] == "teacher":
            cos = "1"
        else:
            cos = " / ".join(f"{r[k]:.3f}" if r.get(k) is not None else "-"
                             for k in ("untrained_cos", "identity_cos", "stage1_cos", "final_patch_cos"))
        cells = [r["name"], ",".join(map(str, r["skip_layers"])) or "-", cos, f"{r['final_rel_mse']:.3f}",
                 *[f"x{r[f'gmacs_ratio_{s}']:.3f}" if r.get(f"gmacs_ratio_{s}") else "1" for s in bench_sizes],
                 *[f"x{r[f'speedup_{s}']:.2f}" if r.get(f"speedup_{s}") else "1" for s in bench_sizes],
                 f"{r['probe_miou']:.3f}", f"{r['lost_corloc']:.2f}", f"{r['lost_agreement']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="work_dirs/retrofit_study")
    p.add_argument("--num-skips", type=int, nargs="+", default=[2, 4, 6])
    p.add_argument("--iters", type=int, default=600)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--bench-sizes", type=int, nargs="+", default=[96, 224])
    p.add_argument("--dim", type=int, default=96, help="teacher width")
    p.add_argument("--depth", type=int, default=8, help="teacher blocks")
    p.add_argument("--probe-size", type=int, default=128)
    p.add_argument("--probe-steps", type=int, default=300)
    args = p.parse_args(argv)
    res = run_study(args.out, args.num_skips, args.iters, args.size, args.batch_size, args.bench_sizes,
                    embed_dim=args.dim, depth=args.depth, probe_size=args.probe_size, probe_steps=args.probe_steps)
    print(markdown_table(res, args.bench_sizes))
    return res


if __name__ == "__main__":
    main()
