"""The protocol configs (DINOv2 and DINOv3) equal their references setting by setting (docs/protocols.md lists each with its source),
and their learning-rate / momentum schedules equal the reference runners' formulas at every iteration.

Each setting is read from the merged config (no model is built): a few milliseconds each.
"""
import functools
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import PARAM_SCHEDULERS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LIN = "regvit-s14-reg4_dinov2-lin_8xb2-40k_ade20k-512x512.py"
LIN_NOREG = "vit-s14_dinov2-lin_8xb2-40k_ade20k-512x512.py"
MS = "regvit-s14-reg4_dinov2-ms_8xb2-40k_ade20k-640x640.py"
LIN1 = "regvit-s14-reg4_dinov2-lin1_8xb2-38k_nyu-416x544.py"
LIN4 = "regvit-s14-reg4_dinov2-lin4_8xb2-38k_nyu-416x544.py"
DPT = "regvit-s14-reg4_dinov2-dpt_8xb2-38k_nyu-416x544.py"


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict:
    return Config.fromfile(osp.join(ROOT, "configs", name)).to_dict()


def step(cfg: dict, loader: str, type_: str) -> dict:
    """The pipeline step of ``type_`` in ``loader``'s dataset pipeline."""
    return next(t for t in cfg[loader]["dataset"]["pipeline"] if t["type"] == type_)


def losses(cfg: dict) -> dict:
    return {loss["loss_name"]: loss for loss in cfg["model"]["decode_head"]["loss_decode"]}


ADE_MODEL = {  # DINOv2 official linear config + semantic_segmentation notebook (get_intermediate_layers, norm=True)
    "backbone last block": (lambda c: c["model"]["backbone"]["out_indices"], (-1,)),
    "backbone final norm": (lambda c: c["model"]["backbone"]["final_norm"], True),
    "backbone frozen": (lambda c: c["model"]["backbone"]["frozen"], True),
    "no cls token": (lambda c: (c["model"]["backbone"]["output_cls_token"], c["model"]["decode_head"]["use_cls_token"]),
                     (False, False)),
    "centre padding to 14": (lambda c: c["model"]["backbone"]["pad_mode"], "center"),
    "head": (lambda c: (c["model"]["decode_head"]["type"], c["model"]["decode_head"]["in_channels"],
                        c["model"]["decode_head"]["upsample"], c["model"]["decode_head"]["dropout_ratio"]),
             ("dense_adapters.LinearProbeHead", 384, 1, 0.0)),
    "SyncBN": (lambda c: c["model"]["decode_head"]["norm_cfg"]["type"], "SyncBN"),
    "cross-entropy over all pixels": (lambda c: (c["model"]["decode_head"]["loss_decode"]["type"],
                                                 c["model"]["decode_head"]["loss_decode"]["avg_non_ignore"],
                                                 c["model"]["decode_head"]["loss_decode"]["loss_weight"]),
                                      ("CrossEntropyLoss", False, 1.0)),
    "slide test 512/341": (lambda c: c["model"]["test_cfg"], dict(mode="slide", crop_size=(512, 512), stride=(341, 341))),
    "normalisation": (lambda c: (c["model"]["data_preprocessor"]["mean"], c["model"]["data_preprocessor"]["std"],
                                 c["model"]["data_preprocessor"]["bgr_to_rgb"]),
                      ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375], True)),
}
ADE_DATA = {
    "rescale short side 512 x [0.5, 2]": (lambda c: {k: step(c, "train_dataloader", "RandomResize")[k]
                                                     for k in ("scale", "ratio_range", "keep_ratio")},
                                          dict(scale=(99999999, 512), ratio_range=(0.5, 2.0), keep_ratio=True)),
    "crop 512, cat_max_ratio 0.75": (lambda c: (step(c, "train_dataloader", "RandomCrop")["crop_size"],
                                                step(c, "train_dataloader", "RandomCrop")["cat_max_ratio"]),
                                     ((512, 512), 0.75)),
    "flip 0.5": (lambda c: step(c, "train_dataloader", "RandomFlip")["prob"], 0.5),
    "photometric distortion (defaults)": (lambda c: step(c, "train_dataloader", "PhotoMetricDistortion"),
                                          dict(type="PhotoMetricDistortion")),
    "pad to 512 (preprocessor)": (lambda c: c["model"]["data_preprocessor"]["size"], (512, 512)),
    "test short side 512": (lambda c: step(c, "test_dataloader", "Resize")["scale"], (99999999, 512)),
    "2 images per GPU, 8 GPUs": (lambda c: c["train_dataloader"]["batch_size"], 2),
}
DINOV2_SEG_SCHEDULE = {
    "AdamW 1e-3, wd 1e-4": (lambda c: c["optim_wrapper"]["optimizer"],
                            dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4)),
    "no gradient clipping": (lambda c: c["optim_wrapper"].get("clip_grad"), None),
    "40k iterations": (lambda c: c["train_cfg"]["max_iters"], 40000),
    "warm-up from 1e-6 over 1500, poly from 0": (lambda c: [(s["type"], s.get("start_factor"), s["begin"], s["end"])
                                                            for s in c["param_scheduler"]],
                                                 [("LinearLR", 1e-6, 0, 1501), ("PolyLR", None, 0, 40001)]),
}
MS_OVERRIDES = {
    "backbone last 4 blocks": (lambda c: c["model"]["backbone"]["out_indices"], (-4, -3, -2, -1)),
    "head": (lambda c: (c["model"]["decode_head"]["in_channels"], c["model"]["decode_head"]["in_index"]),
             ([384] * 4, [0, 1, 2, 3])),
    "rescale short side 640 x [1, 3]": (lambda c: (step(c, "train_dataloader", "RandomResize")["scale"],
                                                   step(c, "train_dataloader", "RandomResize")["ratio_range"]),
                                        ((99999999, 640), (1.0, 3.0))),
    "crop 640, cat_max_ratio 0.75": (lambda c: (step(c, "train_dataloader", "RandomCrop")["crop_size"],
                                                step(c, "train_dataloader", "RandomCrop")["cat_max_ratio"]),
                                     ((640, 640), 0.75)),
    "pad to 640 (preprocessor)": (lambda c: c["model"]["data_preprocessor"]["size"], (640, 640)),
    "test short side 640": (lambda c: step(c, "test_dataloader", "Resize")["scale"], (99999999, 640)),
    "multi-scale test: 5 scales x flip": (
        lambda c: ([t["scale"] for t in c["tta_pipeline"][1]["transforms"][0]],
                   [t["prob"] for t in c["tta_pipeline"][1]["transforms"][1]], c["tta_model"]["type"]),
        ([(int(99999999 * r), int(640 * r)) for r in (1.0, 1.32, 1.73, 2.28, 3.0)], [0.0, 1.0], "SegTTAModel")),
    "slide test 640": (lambda c: c["model"]["test_cfg"]["crop_size"], (640, 640)),
}
DEPTH_COMMON = {  # DINOv2 hub/depthers.py + the training config stored in the released NYU heads
    "backbone without final norm": (lambda c: c["model"]["backbone"]["final_norm"], False),
    "backbone returns cls": (lambda c: c["model"]["backbone"]["output_cls_token"], True),
    "backbone frozen": (lambda c: c["model"]["backbone"]["frozen"], True),
    "centre padding, resize to image": (lambda c: (c["model"]["backbone"]["pad_mode"], c["model"]["crop_padding"]),
                                        ("center", False)),
    "depth range 1e-3..10 m": (lambda c: (c["model"]["decode_head"]["min_depth"], c["model"]["decode_head"]["max_depth"]),
                               (1e-3, 10.0)),
    "SigLoss as DINOv2's": (lambda c: {k: losses(c)["loss_depth"][k] for k in (
        "type", "variance_focus", "reduction", "min_depth", "max_depth", "log_offset", "unbiased", "warmup_iters",
        "loss_weight")}, dict(type="dense_adapters.SILogLoss", variance_focus=0.85, reduction="batch", min_depth=0.0,
                              max_depth=None, log_offset=1e-3, unbiased=True, warmup_iters=100, loss_weight=1.0)),
    "GradientLoss as written, weight 0.5": (lambda c: (losses(c)["loss_grad"]["variant"],
                                                       losses(c)["loss_grad"]["loss_weight"],
                                                       losses(c)["loss_grad"]["min_depth"]), ("dinov2", 0.5, 0.0)),
    "whole-image test with flip": (lambda c: c["model"]["test_cfg"], dict(mode="whole", flip=True)),
    "NYU crop": (lambda c: {k: step(c, "train_dataloader", "dense_adapters.FixedCrop")[k]
                            for k in ("top", "bottom", "left", "right")}, dict(top=45, bottom=472, left=43, right=608)),
    "rotate 2.5 deg, p 0.5": (lambda c: {k: step(c, "train_dataloader", "RandomRotate")[k]
                                         for k in ("prob", "degree", "seg_pad_val")},
                              dict(prob=0.5, degree=2.5, seg_pad_val=0)),
    "flip 0.5": (lambda c: step(c, "train_dataloader", "RandomFlip")["prob"], 0.5),
    "crop 416x544": (lambda c: step(c, "train_dataloader", "RandomCrop")["crop_size"], (416, 544)),
    "colour aug": (lambda c: {k: step(c, "train_dataloader", "dense_adapters.GammaBrightnessColorAug")[k]
                              for k in ("prob", "gamma_range", "brightness_range", "color_range")},
                   dict(prob=0.5, gamma_range=(0.9, 1.1), brightness_range=(0.75, 1.25), color_range=(0.9, 1.1))),
    "test: full image, no resize": (lambda c: [t["type"] for t in c["test_dataloader"]["dataset"]["pipeline"]],
                                    ["LoadImageFromFile", "LoadDepthAnnotation", "PackSegInputs"]),
    "Eigen crop, 1e-3 < gt < 10": (lambda c: {k: c["test_evaluator"][k] for k in ("crop", "min_depth", "max_depth")},
                                   dict(crop="eigen", min_depth=1e-3, max_depth=10.0)),
    "2 images per GPU, 8 GPUs": (lambda c: c["train_dataloader"]["batch_size"], 2),
    "AdamW 1e-4, wd 0.01, beta1 from 0.95": (lambda c: c["optim_wrapper"]["optimizer"],
                                             dict(type="AdamW", lr=1e-4, betas=(0.95, 0.999), weight_decay=0.01)),
    "gradient clipping at 35": (lambda c: c["optim_wrapper"]["clip_grad"], dict(max_norm=35, norm_type=2)),
    "38.4k iterations": (lambda c: c["train_cfg"]["max_iters"], 38400),
}
LINEAR_DEPTH_HEAD = {
    "head": (lambda c: {k: c["model"]["decode_head"][k] for k in (
        "type", "use_cls_token", "upsample", "n_bins", "bins_strategy", "norm_strategy", "use_bn", "init_cfg")},
        dict(type="dense_adapters.DepthLinearHead", use_cls_token=True, upsample=4, n_bins=256, bins_strategy="UD",
             norm_strategy="linear", use_bn=False, init_cfg=None)),
}
LIN1_ONLY = {"last block": (lambda c: (c["model"]["backbone"]["out_indices"], c["model"]["decode_head"]["in_channels"]),
                            ((-1,), [384]))}
LIN4_ONLY = {"blocks 3, 6, 9, 12": (lambda c: (c["model"]["backbone"]["out_indices"],
                                               c["model"]["decode_head"]["in_channels"]), ((2, 5, 8, 11), [384] * 4))}
DPT_ONLY = {
    "blocks 3, 6, 9, 12": (lambda c: c["model"]["backbone"]["out_indices"], (2, 5, 8, 11)),
    "DPT head": (lambda c: {k: c["model"]["decode_head"][k] for k in (
        "type", "embed_dims", "post_process_channels", "readout_type", "channels", "norm_cfg")},
        dict(type="dense_adapters.DepthDPTHead", embed_dims=384, post_process_channels=[48, 96, 192, 384],
             readout_type="project", channels=256, norm_cfg=None)),
}

CASES = ([(LIN, k, *v) for k, v in {**ADE_MODEL, **ADE_DATA, **DINOV2_SEG_SCHEDULE}.items()]
         + [(LIN_NOREG, "no registers", lambda c: c["model"]["backbone"]["preset"], "dinov2_vits14")]
         + [(LIN_NOREG, k, *v) for k, v in ADE_MODEL.items() if k != "backbone last block"]
         + [(MS, k, *v) for k, v in {**ADE_MODEL, **ADE_DATA, **DINOV2_SEG_SCHEDULE, **MS_OVERRIDES}.items()
            if k not in ("backbone last block", "slide test 512/341", "rescale short side 512 x [0.5, 2]",
                         "crop 512, cat_max_ratio 0.75", "pad to 512 (preprocessor)", "test short side 512")]
         + [(name, k, *v) for name in (LIN1, LIN4, DPT) for k, v in DEPTH_COMMON.items()]
         + [(name, k, *v) for name in (LIN1, LIN4) for k, v in LINEAR_DEPTH_HEAD.items()]
         + [(LIN1, k, *v) for k, v in LIN1_ONLY.items()] + [(LIN4, k, *v) for k, v in LIN4_ONLY.items()]
         + [(DPT, k, *v) for k, v in DPT_ONLY.items()])


def _tuples(x):
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return tuple(_tuples(v) for v in x)
    return x


@pytest.mark.parametrize("config, setting, get, expected", CASES, ids=[f"{c.split('_')[1]}-{c.split('_')[-1][:-3]}:{s}"
                                                                        for c, s, _, _ in CASES])
def test_protocol_setting(config, setting, get, expected):
    assert _tuples(get(load(config))) == _tuples(expected)


@pytest.mark.parametrize("alias, target", [("ade20k_regvit.py", LIN), ("ade20k_vit.py", LIN_NOREG),
                                           ("nyu_regvit_linear.py", LIN1), ("nyu_regvit_linear4.py", LIN4),
                                           ("nyu_regvit_dpt.py", DPT)])
def test_readme_names_are_the_protocols(alias, target):
    assert load(alias) == load(target)


# ----------------------------------------------------------------- schedules
def _run_schedulers(cfgs, lr, betas, n):
    """(lr, beta1) used at each of ``n`` iterations by mmengine's schedulers (ParamSchedulerHook steps them after
    every iteration)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=lr, betas=betas)
    schedulers = [PARAM_SCHEDULERS.build(dict(c, optimizer=opt)) for c in cfgs]
    out = np.empty((n, 2))
    for i in range(n):
        out[i] = opt.param_groups[0]["lr"], opt.param_groups[0]["betas"][0]
        for s in schedulers:
            s.step()
    return out


def _anneal_cos(start, end, pct):  # mmcv's annealing_cos
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def test_dinov2_segmentation_schedule_is_mmcv_poly_with_linear_warmup():
    """mmcv 0.x, lr_config=dict(policy='poly', warmup='linear', warmup_iters=1500, warmup_ratio=1e-6, power=1.0,
    min_lr=0.0): lr_i = lr (1 - i/T) x (1 - (1 - i/W)(1 - r)) for i < W, lr (1 - i/T) after."""
    cfg = load(LIN)
    opt = cfg["optim_wrapper"]["optimizer"]
    T, W, r, base = 40000, 1500, 1e-6, 1e-3
    got = _run_schedulers(cfg["param_scheduler"], opt["lr"], opt["betas"], T)[:, 0]
    i = np.arange(T)
    ref = base * (1 - i / T) * np.where(i < W, 1 - (1 - i / W) * (1 - r), 1.0)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-18)


def test_dinov2_depth_schedule_is_mmcv_cosine_warmup_and_onecycle_momentum():
    """mmcv 1.x: lr_config=dict(policy='CosineAnnealing', warmup='linear', warmup_iters=12800, warmup_ratio=1e-3,
    min_lr_ratio=1e-8) and momentum_config=dict(policy='OneCycle') (beta1 cos 0.95 -> 0.85 until iteration
    0.3 T - 1, then back to 0.95 at T - 1)."""
    cfg = load(LIN1)
    opt = cfg["optim_wrapper"]["optimizer"]
    T, W, r, base = 38400, 12800, 1e-3, 1e-4
    got = _run_schedulers(cfg["param_scheduler"], opt["lr"], opt["betas"], T)
    lr_ref = np.array([_anneal_cos(base, base * 1e-8, i / T) * ((1 - (1 - i / W) * (1 - r)) if i < W else 1.0)
                       for i in range(T)])
    end1 = 0.3 * T - 1
    beta_ref = np.array([_anneal_cos(0.95, 0.85, i / end1) if i <= end1 else
                         _anneal_cos(0.85, 0.95, (i - end1) / (T - 1 - end1)) for i in range(T)])
    np.testing.assert_allclose(got[:, 0], lr_ref, rtol=1e-8)
    np.testing.assert_allclose(got[:, 1], beta_ref, atol=1e-12)


# ------------------------------------------------------- the pipelines run
@pytest.mark.parametrize("config, sample, crop", [(LIN1, "nyu", (416, 544)), (LIN, "ade", (512, 512)),
                                                  (MS, "ade", (640, 640))])
def test_protocol_training_pipeline_runs_on_the_sample(config, sample, crop, tmp_path):
    """The protocol's own training pipeline on the bundled sample: one sample comes out at the crop size."""
    from mmengine.registry import init_default_scope

    from dense_adapters.registry import DATASETS

    init_default_scope("mmseg")
    if sample == "nyu":
        from dense_adapters.datasets.samples.nyu import make_nyu_sample
        root = make_nyu_sample(str(tmp_path))
    else:
        from dense_adapters.datasets.samples.ade import make_ade_sample
        root = make_ade_sample(str(tmp_path))
    ds_cfg = dict(load(config)["train_dataloader"]["dataset"], data_root=root)
    np.random.seed(0)
    out = DATASETS.build(ds_cfg)[0]
    h, w = out["inputs"].shape[1:]
    assert h <= crop[0] and w <= crop[1] and (h == crop[0] or w == crop[1])  # the preprocessor pads the rest
    if sample == "nyu":
        assert (h, w) == crop and tuple(out["data_samples"].gt_depth_map.data.shape[1:]) == crop


# ------------------------------------------------------------------- DINOv3
# dinov3/eval/segmentation and dinov3/eval/depth (docs/protocols.md, "DINOv3 linear")
SEG = "dinov3-vits16_dinov3-lin_4xb4-40k_ade20k-512x512.py"
DEPTH = "dinov3-vits16_dinov3-lin_4xb4-38k_nyu-416x544.py"
UPER = "dinov3-vits16_upernet_4xb4-40k_ade20k-512x512.py"

DINOV3_CASES = [
    # dinov3/eval/segmentation: config.py, models/__init__.py, heads/linear_head.py, config-ade20k-linear-training.yaml
    (SEG, "DINOv3 ViT-S/16, frozen", lambda c: (c["model"]["backbone"]["preset"], c["model"]["backbone"]["frozen"]),
     ("dinov3_vits16", True)),
    (SEG, "last block (LAST)", lambda c: c["model"]["backbone"]["out_indices"], (-1,)),
    (SEG, "backbone norm (use_backbone_norm)", lambda c: c["model"]["backbone"]["final_norm"], True),
    (SEG, "no cls token", lambda c: (c["model"]["backbone"]["output_cls_token"],
                                     c["model"]["decode_head"]["use_cls_token"]), (False, False)),
    (SEG, "Dropout2d(0.1) before SyncBN", lambda c: (c["model"]["decode_head"]["dropout_ratio"],
                                                      c["model"]["decode_head"]["dropout_first"],
                                                      c["model"]["decode_head"]["norm_cfg"]["type"]),
     (0.1, True, "SyncBN")),
    (SEG, "cross-entropy over all pixels", lambda c: c["model"]["decode_head"]["loss_decode"]["avg_non_ignore"], False),
    (SEG, "slide 512/341", lambda c: c["model"]["test_cfg"], dict(mode="slide", crop_size=(512, 512), stride=(341, 341))),
    (SEG, "AdamW 1e-3, wd 1e-3", lambda c: c["optim_wrapper"]["optimizer"],
     dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-3)),
    (SEG, "40k iterations, 4 x 4 GPUs", lambda c: (c["train_cfg"]["max_iters"], c["train_dataloader"]["batch_size"]),
     (40000, 4)),
    (SEG, "short side 512 x [0.5, 2], crop 512", lambda c: (step(c, "train_dataloader", "RandomResize")["scale"],
                                                            step(c, "train_dataloader", "RandomResize")["ratio_range"],
                                                            step(c, "train_dataloader", "RandomCrop")["crop_size"]),
     ((99999999, 512), (0.5, 2.0), (512, 512))),
    (SEG, "photometric: brightness 32, contrast/saturation 0.5-1.5, full hue circle",
     lambda c: {k: step(c, "train_dataloader", "PhotoMetricDistortion")[k] for k in (
         "brightness_delta", "contrast_range", "saturation_range", "hue_delta")},
     dict(brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5), hue_delta=90)),
    # dinov3/eval/depth/configs/config-nyu.yaml, read with config.py, models/__init__.py, linear_head.py, loss.py,
    # transforms.py (for what the yaml leaves at its defaults)
    (DEPTH, "last block after the norm, no cls", lambda c: (c["model"]["backbone"]["out_indices"],
                                                            c["model"]["backbone"]["final_norm"],
                                                            c["model"]["decode_head"]["use_cls_token"]),
     ((-1,), True, False)),
    (DEPTH, "256 linear bins, BN, no upsampling", lambda c: {k: c["model"]["decode_head"][k] for k in (
        "n_bins", "bins_strategy", "norm_strategy", "use_bn", "upsample")},
     dict(n_bins=256, bins_strategy="UD", norm_strategy="linear", use_bn=True, upsample=1)),
    (DEPTH, "SigLoss alone, with warm-up", lambda c: {k: losses(c)["loss_depth"][k] for k in (
        "log_offset", "unbiased", "warmup_iters", "loss_weight")} | {"losses": sorted(losses(c))},
     dict(log_offset=1e-3, unbiased=True, warmup_iters=100, loss_weight=1.0, losses=["loss_depth"])),
    (DEPTH, "AdamW 3e-4, betas 0.9/0.99, wd 1e-4, clip 35", lambda c: (
        c["optim_wrapper"]["optimizer"]["lr"], c["optim_wrapper"]["optimizer"]["betas"],
        c["optim_wrapper"]["optimizer"]["weight_decay"], c["optim_wrapper"]["clip_grad"]["max_norm"]),
     (3e-4, (0.9, 0.99), 1e-4, 35)),
    (DEPTH, "38.4k iterations, 4 x 4 GPUs, seed 321 + rank", lambda c: (
        c["train_cfg"]["max_iters"], c["train_dataloader"]["batch_size"], c["randomness"]),
     (38400, 4, dict(seed=321, diff_rank_seed=True))),
    (DEPTH, "colour aug brightness 0.75-1.25", lambda c: step(c, "train_dataloader",
                                                              "dense_adapters.GammaBrightnessColorAug")["brightness_range"],
     (0.75, 1.25)),
    (DEPTH, "random crop 416x544", lambda c: step(c, "train_dataloader", "RandomCrop")["crop_size"], (416, 544)),
    (DEPTH, "flip test", lambda c: c["model"]["test_cfg"], dict(mode="whole", flip=True)),
    (UPER, "DINOv3 backbone in the UPerNet recipe", lambda c: (c["model"]["backbone"]["preset"],
                                                              c["model"]["decode_head"]["type"],
                                                              c.get("model_wrapper_cfg", {}).get(
                                                                  "find_unused_parameters", False)),
     ("dinov3_vits16", "UPerHead", False)),  # the mask token has a gradient (0 * mask_token): no DDP flag
]


@pytest.mark.parametrize("config, setting, get, expected", DINOV3_CASES,
                         ids=[f"{c.split('_')[-1][:-3]}:{s}" for c, s, _, _ in DINOV3_CASES])
def test_dinov3_setting(config, setting, get, expected):
    assert _tuples(get(load(config))) == _tuples(expected)


def test_dinov3_segmentation_schedule_against_warmup_one_cycle():
    """DINOv3's WarmupOneCycleLR (warmup_iters=1500, warmup_ratio=1e-6, pct_start=0, anneal 'cos',
    final_div_factor=inf, use_beta1 False) stepped as its train.py does (scheduler.step() after every iteration
    but the first): the same lr at every iteration, beta1 untouched."""
    cfg = load(SEG)
    T, W, r, base = 40000, 1500, 1e-6, 1e-3

    def reference(i):
        s = max(i - 1, 0)  # scheduler steps taken before iteration i
        if s < W:
            return base * (1 - (1 - s / W) * (1 - r)) * (1 - s / T)
        return base * (math.cos(math.pi * (s + 1) / T) + 1) / 2

    got = _run_schedulers(cfg["param_scheduler"], base, (0.9, 0.999), T)
    ref = np.array([reference(i) for i in range(T)])
    np.testing.assert_allclose(got[:, 0], ref, rtol=1e-12)
    assert (got[:, 1] == 0.9).all()


def test_dinov3_depth_schedule_is_warmup_one_cycle_with_beta1():
    """config-nyu.yaml: WarmupOneCycleLR(total 38400, warmup_iters 12800, final_div_factor 1000, momentum
    0.85..0.95, use_beta1 on), stepped after every iteration (depth/train.py). Reference written from DINOv3's
    formulas: lr and AdamW's beta1 at every iteration, beta1 = 0 during the warm-up."""
    cfg = load(DEPTH)
    opt = cfg["optim_wrapper"]["optimizer"]
    T, W, base = 38400, 12800, 3e-4
    s = np.arange(T, dtype=float)
    warm = base / 1000 + base * (1 + np.cos(np.pi * s / T)) / 2 * s / W
    low = base / 25 / 1000
    after = low + (base - low) * (1 + np.cos(np.pi * (s + 1) / T)) / 2
    beta1 = np.where(s < W, 0.0, 0.95 + (0.85 - 0.95) * (1 + np.cos(np.pi * (s - W) / (T - W))) / 2)
    got = _run_schedulers(cfg["param_scheduler"], opt["lr"], opt["betas"], T)
    np.testing.assert_allclose(got[:, 0], np.where(s < W, warm, after), rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], beta1, rtol=1e-12, atol=1e-15)
    assert got[W - 1, 0] > 0.74 * base and abs(got[W, 1] - 0.85) < 1e-12  # no jump in lr; beta1 starts at 0.85
