"""tools/train.py and tools/test.py on the classification configs, shrunk to a tiny ViT on the class sample: the
linear-probe grid (train, then test with the head chosen on held-out images), SkipAt fine-tuning with DeiT's
recipe, k-NN without a checkpoint; and the error when ImageNet is not where the configs look."""
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = "dict(type='LoadImageFromFile', imdecode_backend='pillow', color_type='color_ignore_orientation')"
EVAL = f"[{LOAD}, dict(type='dense_adapters.TimmClsTransform', input_size=32, crop_pct=0.875), " \
       "dict(type='dense_adapters.PackClsInputs')]"
SMALL = "dict(preset=None, arch='small', img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2"
LINEAR = f"""
_base_ = ['{ROOT}/configs/regvit-s14-reg4_dinov2-linear_8xb128-12.5k_in1k-224x224.py']
model = dict(backbone={SMALL}, num_register_tokens=2, init_cfg=None), num_classes=10, n_last_blocks=(1, 2),
             learning_rates=(1e-3, 1e-2, 0.1))
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False, dataset=dict(heldout_per_class=4,
    pipeline=[{LOAD}, dict(type='dense_adapters.TimmClsTransform', is_training=True, input_size=32, color_jitter=None),
              dict(type='dense_adapters.PackClsInputs')]))
val_dataloader = dict(batch_size=20, num_workers=0, persistent_workers=False,
                      dataset=dict(heldout_per_class=4, pipeline={EVAL}))
test_dataloader = dict(batch_size=20, num_workers=0, persistent_workers=False, dataset=dict(pipeline={EVAL}))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=20, eta_min=0.0, by_epoch=False, begin=0, end=20)]
train_cfg = dict(max_iters=20, val_interval=20)
default_hooks = dict(checkpoint=dict(interval=20), logger=dict(interval=5))
"""
SKIPAT = f"""
_base_ = ['{ROOT}/configs/vit-t16-skipat_deit_8xb128-300e_in1k-224x224.py']
model = dict(backbone={SMALL}, skip_layers=(1, 2)), num_classes=10)
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False, dataset=dict(pipeline=[{LOAD},
    dict(type='dense_adapters.TimmClsTransform', is_training=True, input_size=32, color_jitter=0.4,
         auto_augment='rand-m9-mstd0.5-inc1'), dict(type='dense_adapters.PackClsInputs')]))
val_dataloader = dict(batch_size=20, num_workers=0, persistent_workers=False, dataset=dict(pipeline={EVAL}))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.02))  # x 16 / 512 with the config's linear scaling
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2),
                   dict(type='CosineAnnealingLR', T_max=3, eta_min=1e-5, by_epoch=True, begin=0, end=3)]
train_cfg = dict(max_epochs=3, val_interval=3)
default_hooks = dict(logger=dict(interval=5))
"""


KNN = f"""
_base_ = ['{ROOT}/configs/regvit-s14-reg4_knn-20nn_in1k-224x224.py']
model = dict(backbone={SMALL}, num_register_tokens=2, init_cfg=None), num_classes=10, ks=(1, 20))
test_dataloader = dict(batch_size=20, num_workers=0, dataset=dict(pipeline={EVAL}))
"""


def run_tool(*args, check=True):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def _scalars(work):
    path = glob.glob(os.path.join(work, "*", "vis_data", "scalars.json"))[0]
    return [json.loads(line) for line in open(path)]


@pytest.fixture(scope="module")
def cfg_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cls_cfg")
    (d / "linear.py").write_text(LINEAR)
    (d / "skipat.py").write_text(SKIPAT)
    (d / "knn.py").write_text(KNN)
    return d


def test_linear_probe_trains_and_tests_with_the_heldout_head(class_sample, cfg_dir, tmp_path):
    work = str(tmp_path / "train")
    run_tool("tools/train.py", str(cfg_dir / "linear.py"), "--work-dir", work, "--data-root", class_sample)
    logs = _scalars(work)
    assert [r for r in logs if "accuracy/top1" in r], "no validation on the held-out split"
    assert any("Scaling the original LR by 0.0625" in line for line in open(glob.glob(f"{work}/*/*.log")[0]))
    r = run_tool("tools/test.py", str(cfg_dir / "linear.py"), os.path.join(work, "iter_20.pth"),
                 "--work-dir", str(tmp_path / "test"), "--data-root", class_sample)
    assert "selected on val_dataloader (40 images" in r.stdout + r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("metrics:")][0]
    assert "accuracy/top1=" in line and "accuracy/top5=" in line and "accuracy/head=" in line


def test_skipat_fine_tuning_runs_end_to_end(class_sample, cfg_dir, tmp_path):
    work = str(tmp_path / "ft")
    run_tool("tools/train.py", str(cfg_dir / "skipat.py"), "--work-dir", work, "--data-root", class_sample)
    logs = _scalars(work)
    losses = [r["loss"] for r in logs if "loss" in r]
    assert len(losses) >= 5 and all(0 < v < 10 for v in losses)
    val = [r for r in logs if "accuracy/top1" in r]
    assert val and 0 <= val[-1]["accuracy/top1"] <= 100 and val[-1]["accuracy/top5"] >= val[-1]["accuracy/top1"]
    assert os.path.isfile(os.path.join(work, "epoch_3.pth"))


def test_knn_runs_through_tools_test_without_a_checkpoint(class_sample, cfg_dir, tmp_path):
    r = run_tool("tools/test.py", str(cfg_dir / "knn.py"), "--work-dir", str(tmp_path), "--data-root", class_sample)
    assert "k-NN bank: 160 features of dimension 32" in r.stdout + r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("metrics:")][0]
    assert "accuracy/top1=" in line and "accuracy/k1_top1=" in line and "accuracy/k20_top5=" in line


def test_missing_imagenet_is_one_clear_line():
    """The check tools/train.py runs before building anything (its printing is tested on ADE20K in
    test_train_test_tools.py): the same configs look for data/imagenet and name --data-root."""
    from dense_adapters.errors import UserError
    from dense_adapters.cli.runner import check_data, load_config

    for name in ("vit-t16-skipat_deit_8xb128-300e_in1k-224x224.py",
                 "regvit-s14-reg4_dinov2-linear_8xb128-12.5k_in1k-224x224.py"):
        cfg = load_config(os.path.join(ROOT, "configs", name), None, None, "none")
        with pytest.raises(UserError) as e:
            check_data(cfg, ("train_dataloader", "val_dataloader"))
        msg = str(e.value)
        assert "\n" not in msg and "data/imagenet" in msg and "--data-root" in msg
