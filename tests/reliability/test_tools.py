"""tools/check_dataset.py, the launch scripts' usage errors, and the FSDP config (built here; it runs on GPUs)."""
from __future__ import annotations

import os.path as osp
import subprocess

import numpy as np
from PIL import Image

from reliability_utils import ROOT, call_tool, copy_sample, error_line, write_config


def test_check_dataset_clean_sample(capsys, ade_root, tmp_path):
    cfg = write_config(str(tmp_path / "c_ok.py"), ade_root)
    code, out = call_tool("check_dataset.py", cfg, "--split", "train", capsys=capsys, stdout=True)
    assert code == 0, out
    labels = set()
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle_left", "camera",
                 "coins"):
        lab = np.array(Image.open(osp.join(ade_root, "annotations", "training", f"{name}.png"))).astype(int) - 1
        labels |= set(np.unique(lab[lab >= 0]).tolist())  # reduce_zero_label: 0 -> ignored, k -> k - 1
    assert f"train_dataloader: 8 samples in {ade_root}/images/training (*.jpg)" in out
    assert f"labels: {len(labels)} of 150 classes present ({', '.join(map(str, sorted(labels)))})" in out
    assert "problems: 0" in out


def test_check_dataset_lists_every_bad_file(capsys, ade_root, tmp_path):
    root = copy_sample(ade_root, str(tmp_path / "ade"))
    tr = osp.join(root, "images", "training")
    with open(osp.join(tr, "coffee.jpg"), "rb") as f:
        data = f.read()
    with open(osp.join(tr, "coffee.jpg"), "wb") as f:
        f.write(data[: len(data) // 3])  # truncated: OpenCV decodes it with a warning, PIL refuses it
    png = osp.join(root, "annotations", "training", "camera.png")
    lab = np.array(Image.open(png))
    lab[0, 0] = 180
    Image.fromarray(lab).save(png)
    rgb = osp.join(root, "annotations", "training", "coins.png")  # colour-coded labels: a crash in training before
    Image.fromarray(np.stack([np.array(Image.open(rgb))] * 3, -1)).save(rgb)
    deep = osp.join(root, "annotations", "training", "rocket.png")  # 16-bit ids above 255: wrapped into classes
    lab16 = np.array(Image.open(deep)).astype(np.uint16)
    lab16[:2, :2] = 513
    Image.fromarray(lab16).save(deep)
    cfg = write_config(str(tmp_path / "c_bad.py"), root)
    code, out = call_tool("check_dataset.py", cfg, capsys=capsys, stdout=True)
    assert code == 1
    assert "problems: 4" in out
    assert f"  {rgb}: a 3-channel RGB image, not a single-channel label map" in out
    assert f"  {deep}: a 16-bit label map with values up to 513 (4 pixels above 255): labels are read as 8 bits, " \
           "so 513 would become class 1" in out
    assert f"  {tr}/coffee.jpg: corrupt (image file is truncated" in out
    assert f"  {png}: label values 179 outside 0..149 (ignore_index 255)" in out


def test_check_dataset_missing_root(capsys, ade_root, tmp_path):
    cfg = write_config(str(tmp_path / "c_missing.py"), ade_root)
    code, err = call_tool("check_dataset.py", cfg, "--split", "val", "--data-root", str(tmp_path / "none"),
                          capsys=capsys)
    assert code == 2
    assert error_line(err).startswith(f"error: dataset not found: val_dataloader looks for '{tmp_path / 'none'}'")


def test_launch_scripts_print_usage():
    for script, usage in (("dist_train.sh", "usage: bash tools/dist_train.sh CONFIG NPROC"),
                          ("slurm_train.sh", "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG")):
        res = subprocess.run(["bash", osp.join(ROOT, "tools", script)], capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.startswith(usage), res.stderr


def test_fsdp_large_config_builds(tmp_path):
    import torch
    from mmengine.config import Config
    from mmengine.registry import FUNCTIONS, STRATEGIES

    from dense_adapters.nn.block import Block
    from dense_adapters.registry import MODELS
    from dense_adapters.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, "configs", "ade20k_regvit_large_fsdp.py"))
    assert cfg.runner_type == "FlexibleRunner" and cfg.strategy.type == "FSDPStrategy"
    strategy = STRATEGIES.build({**cfg.strategy, "work_dir": str(tmp_path)})  # it makes a log folder there
    assert type(strategy).__name__ == "FSDPStrategy"
    assert cfg.model.backbone.preset == "dinov2_vitl14_reg4"
    # the full ViT-L (383M parameters) builds too, in ~10 s; 4 of its 24 blocks keep this test quick
    cfg.model.backbone.update(init_cfg=None, depth=4, out_indices=(0, 1, 2, 3))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    vit = model.backbone.vit
    assert vit.num_register_tokens == 4 and vit.embed_dim == 1024 and len(vit.blocks) == 4
    policy = FUNCTIONS.get(cfg.strategy.model_wrapper.auto_wrap_policy.type)
    check = FUNCTIONS.get(cfg.strategy.activation_checkpointing.check_fn)
    units = [m for m in model.modules() if policy(m, False, 0)]
    assert len(units) == 4 and all(isinstance(m, Block) for m in units) and policy(model, True, 0)
    assert sum(check(m) for m in model.modules()) == 4
