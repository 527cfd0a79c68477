"""tools/train.py and tools/test.py on the Mask2Former configs, shrunk (tiny ViT, 10 queries, 3 decoder layers) so a
real run on the ADE sample takes seconds: the loss falls, a checkpoint is written, test.py prints mIoU."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from dense_adapters.models.layers.pixel_decoder import has_mmdet

pytestmark = pytest.mark.skipif(not has_mmdet(), reason="Mask2Former needs mmdet (the m2f extra)")
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the leaf's recipe (head type, pixel decoder, deformable attention, losses, matching, optimiser) with small sizes
TINY = """
_base_ = ['{root}/configs/{leaf}']
model = dict(
    data_preprocessor=dict(size=({size}, {size})),  # a multiple of 2 x patch, as the leaves pad
    backbone=dict({backbone}, embed_dim=32, depth=2, num_heads=2, init_cfg=None, drop_path_rate=0.0),
    neck=dict(in_channels=32, out_channels=32),
    decode_head=dict(
        in_channels=[32] * 4, feat_channels=32, out_channels=32, num_queries=10,
        pixel_decoder=dict(positional_encoding=dict(num_feats=16), encoder=dict(num_layers=1, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=32, num_heads=2), ffn_cfg=dict(embed_dims=32, feedforward_channels=64)))),
        positional_encoding=dict(num_feats=16),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=32, num_heads=2), cross_attn_cfg=dict(embed_dims=32, num_heads=2),
            ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
        train_cfg=dict(num_points=784)))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=({size}, {size}), keep_ratio=False), dict(type='PackSegInputs')]))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=[  # 50x70: padded at test time
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(70, 50), keep_ratio=False),
    dict(type='LoadAnnotations', reduce_zero_label=True), dict(type='PackSegInputs')]))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = []
train_cfg = dict(max_iters=20, val_interval=20)
default_hooks = dict(checkpoint=dict(interval=20, save_best=None), logger=dict(interval=1))
"""
# (validation at the end of training runs the padded test path too: 50x70 images padded to multiples of 2 x patch)
# patch 16 with the DINOv3 preset (RoPE, 4 registers) at a small width; patch 14 with a plain tiny RegViT
LEAVES = [("ade20k_dinov3_vits16_m2f.py", "preset='dinov3_vits16'", 64, True),
          ("ade20k_dinov2_vits14_reg4_m2f.py", "preset=None, img_size=56, patch_size=14, num_register_tokens=2", 56,
           False)]


def run_tool(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.parametrize("leaf, backbone, size, test_tool", LEAVES, ids=[leaf for leaf, *_ in LEAVES])
def test_train_then_test_prints_miou(leaf, backbone, size, test_tool, ade_sample, tmp_path):
    cfg = tmp_path / "cfg" / "tiny.py"  # not in the work dir, where the runner dumps its config
    cfg.parent.mkdir()
    cfg.write_text(TINY.format(root=ROOT, leaf=leaf, backbone=backbone, size=size))
    work = tmp_path / "work"
    run_tool("tools/train.py", str(cfg), "--work-dir", str(work), "--data-root", ade_sample)
    assert osp.isfile(work / "iter_20.pth")
    log = glob.glob(str(work / "*" / "vis_data" / "scalars.json"))[0]
    rows = [json.loads(line) for line in open(log)]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 20 and all(v == v for v in losses)
    assert sum(losses[-5:]) < 0.9 * sum(losses[:5])  # 20 steps on 8 images: the matching losses fall
    assert {"decode.loss_cls", "decode.loss_mask", "decode.loss_dice", "decode.d2.loss_dice"} <= set(rows[0])
    val = [r for r in rows if "mIoU" in r]
    assert len(val) == 1 and 0 <= val[0]["mIoU"] <= 100
    if not test_tool:  # one tools/test.py run (the DINOv3 leaf) is enough: it is the same code for both
        return
    r = run_tool("tools/test.py", str(cfg), str(work / "iter_20.pth"), "--work-dir", str(tmp_path / "test"),
                 "--data-root", ade_sample)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("metrics:")][0]
    metrics = dict(kv.split("=") for kv in line[len("metrics: "):].split(", "))
    assert {"aAcc", "mIoU", "mAcc"} <= set(metrics) and 0 <= float(metrics["mIoU"]) <= 100
    # the checkpoint holds the trained model: testing it reproduces the validation at the end of training
    assert float(metrics["mIoU"]) == pytest.approx(val[-1]["mIoU"], abs=0.01)
