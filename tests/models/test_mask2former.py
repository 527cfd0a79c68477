"""Mask2Former on plain ViTs: the pixel decoder equals mmdet's, the configs follow mmseg's ADE20K recipe and need no
compiled op, layer-wise lr decay, and one clear line when mmdet is missing."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config, ConfigDict

from dense_adapters.models.layers import ms_deform_attn as M
from dense_adapters.models.layers.pixel_decoder import MMDET_HINT, has_mmdet
from dense_adapters.registry import MODELS
from dense_adapters.utils import register_all_modules, replace_syncbn

pytestmark = pytest.mark.skipif(not has_mmdet(), reason="Mask2Former needs mmdet (the m2f extra)")
register_all_modules()
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
M2F_CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs", "*_mask2former_*.py")))  # the leaves (not aliases)


def mmseg_reference() -> Config:
    import mmseg

    path = osp.join(osp.dirname(mmseg.__file__), ".mim", "configs", "mask2former",
                    "mask2former_r50_8xb2-160k_ade20k-512x512.py")
    return Config.fromfile(path)


def tiny_decoder_cfg(attn_type=None) -> ConfigDict:
    attn = dict(embed_dims=32, num_heads=2, num_levels=3, num_points=4, im2col_step=64, dropout=0.0,
                batch_first=True, norm_cfg=None, init_cfg=None)
    if attn_type:
        attn["type"] = attn_type
    return ConfigDict(
        in_channels=[32] * 4, strides=[4, 8, 16, 32], feat_channels=32, out_channels=32, num_outs=3,
        norm_cfg=dict(type="GN", num_groups=8), act_cfg=dict(type="ReLU"),
        encoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=attn, ffn_cfg=dict(
            embed_dims=32, feedforward_channels=64, num_fcs=2, ffn_drop=0.0, act_cfg=dict(type="ReLU", inplace=True)))),
        positional_encoding=dict(num_feats=16, normalize=True))


def test_pixel_decoder_equals_mmdet():
    from mmdet.models.layers import MSDeformAttnPixelDecoder

    torch.manual_seed(0)
    ours = MODELS.build(dict(tiny_decoder_cfg("dense_adapters.MultiScaleDeformableAttention"),
                             type="dense_adapters.MSDeformAttnPixelDecoder"))
    ours.init_weights()
    theirs = MSDeformAttnPixelDecoder(**tiny_decoder_cfg())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict())
    attns = [layer.self_attn for layer in ours.encoder.layers]
    assert len(attns) == 2 and all(type(a) is M.MultiScaleDeformableAttention for a in attns)
    assert ours.encoder.layers[0].self_attn.sampling_offsets.bias.abs().sum() > 0  # mmcv's init ran on ours too
    feats = [torch.randn(2, 32, 16, 20), torch.randn(2, 32, 8, 10), torch.randn(2, 32, 4, 5), torch.randn(2, 32, 2, 2)]
    with torch.no_grad():
        (mask_a, ms_a), (mask_b, ms_b) = ours(feats), theirs(feats)
    torch.testing.assert_close(mask_a, mask_b, rtol=1e-5, atol=1e-5)
    for a, b in zip(ms_a, ms_b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    default = MODELS.build(dict(tiny_decoder_cfg(), type="dense_adapters.MSDeformAttnPixelDecoder"))
    assert type(default.encoder.layers[0].self_attn) is M.MultiScaleDeformableAttention  # the default type


def _strip(node, drop=("type", "in_channels", "impl")):
    if isinstance(node, dict):
        return {k: _strip(v, drop) for k, v in node.items() if k not in drop}
    if isinstance(node, (list, tuple)):
        return [_strip(v, drop) for v in node]
    return node


def test_there_are_m2f_configs():
    names = {osp.basename(p) for p in M2F_CONFIGS}
    assert {f"{m}_mask2former_8xb2-160k_ade20k-512x512.py" for m in (
        "regvit-s14-reg4", "regvit-s14-reg4-frozen", "dinov3-vits16", "dinov3-vits16-frozen")} <= names
    for alias in ("ade20k_dinov2_vits14_reg4_m2f.py", "ade20k_dinov2_vits14_reg4_m2f_frozen.py",
                  "ade20k_dinov3_vits16_m2f.py", "ade20k_dinov3_vits16_m2f_frozen.py"):  # README names
        assert osp.isfile(osp.join(ROOT, "configs", alias))


@pytest.mark.parametrize("path", M2F_CONFIGS, ids=[osp.basename(p) for p in M2F_CONFIGS])
def test_config_follows_mmseg_ade20k_recipe(path):
    cfg, ref = Config.fromfile(path), mmseg_reference()
    head, ref_head = cfg.model.decode_head.to_dict(), ref.model.decode_head.to_dict()
    assert head["type"] == "dense_adapters.Mask2FormerHead"
    assert head["pixel_decoder"]["type"] == "dense_adapters.MSDeformAttnPixelDecoder"
    attn = head["pixel_decoder"]["encoder"]["layer_cfg"]["self_attn_cfg"]
    assert attn["type"] == "dense_adapters.MultiScaleDeformableAttention" and attn["impl"] == "auto"
    assert _strip(head) == _strip(ref_head)  # queries, layers, losses, matching, point sampling: all as mmseg
    assert head["num_queries"] == 100 and head["transformer_decoder"]["num_layers"] == 9
    assert head["in_channels"] == [cfg.model.neck.out_channels] * 4
    # data, optimiser and schedule as mmseg's (backbone lr x0.1 via the constructor instead of custom_keys)
    assert cfg.train_pipeline == ref.train_pipeline and cfg.test_pipeline == ref.test_pipeline
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16  # 8 GPUs x 2
    assert cfg.optim_wrapper.optimizer == ref.optim_wrapper.optimizer
    assert cfg.optim_wrapper.clip_grad == ref.optim_wrapper.clip_grad
    pw = cfg.optim_wrapper.paramwise_cfg
    assert pw.backbone_lr_mult == ref.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    for key in ("query_embed", "query_feat", "level_embed"):
        assert pw.custom_keys[key] == ref.optim_wrapper.paramwise_cfg.custom_keys[key]
    assert cfg.param_scheduler == ref.param_scheduler and cfg.train_cfg.max_iters == 160000
    assert cfg.model.test_cfg == ref.model.test_cfg
    # padding to a multiple of the coarsest stride (2 x patch), training batches included
    patch = 14 if "-s14-" in osp.basename(path) else 16
    assert cfg.model.data_preprocessor.test_cfg.size_divisor == 2 * patch
    assert all(s % (2 * patch) == 0 and s >= 512 for s in cfg.model.data_preprocessor.size)
    frozen = "frozen" in osp.basename(path)
    assert cfg.model.backbone.get("frozen", False) == frozen
    assert len(cfg.model.backbone.out_indices) == (4 if frozen else 1)


@pytest.mark.parametrize("path", M2F_CONFIGS, ids=[osp.basename(p) for p in M2F_CONFIGS])
def test_config_model_needs_no_compiled_op(path):
    cfg = Config.fromfile(path).model.to_dict()
    cfg["backbone"].pop("init_cfg", None)
    replace_syncbn(cfg)
    model = MODELS.build(cfg)
    attns = [m for m in model.modules() if isinstance(m, M.MMCVMultiScaleDeformableAttention)]
    assert len(attns) == 6 and all(type(m) is M.MultiScaleDeformableAttention for m in attns)
    for m in attns:  # on a GPU under mmcv-lite, the PyTorch kernel; never mmcv's missing op
        assert M.resolve_impl(m.impl, "cuda", compiled=False) == "pytorch"
    ops = {type(m).__module__ for m in model.modules() if type(m).__module__.startswith("mmcv.ops")}
    assert not ops, f"modules from mmcv.ops (compiled): {ops}"


def test_layer_decay_and_backbone_lr():
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(osp.join(ROOT, "configs", "regvit-s14-reg4_mask2former_8xb2-160k_ade20k-512x512.py"))
    model = torch.nn.Module()
    model.backbone = MODELS.build(dict(type="dense_adapters.RegViT", img_size=28, patch_size=14, embed_dim=32,
                                       depth=3, num_heads=2, num_register_tokens=2))
    model.neck = MODELS.build(dict(type="dense_adapters.SimpleFeaturePyramid", in_channels=32, out_channels=32))
    model.query_embed = torch.nn.Embedding(4, 32)
    ow = cfg.optim_wrapper.to_dict()
    ow["paramwise_cfg"]["layer_decay_rate"] = 0.5
    opt = build_optim_wrapper(model, ow).optimizer
    group = {id(g["params"][0]): g for g in opt.param_groups}
    lr, wd, base = {}, {}, 1e-4
    for name, p in model.named_parameters():
        lr[name], wd[name] = group[id(p)]["lr"], group[id(p)].get("weight_decay", 0.05)
    L = 3  # backbone lr = base x 0.1 x 0.5 ** (L + 1 - layer)
    assert lr["backbone.vit.patch_embed.proj.weight"] == pytest.approx(base * 0.1 * 0.5 ** (L + 1))
    assert lr["backbone.vit.cls_token"] == pytest.approx(base * 0.1 * 0.5 ** (L + 1))
    for i in range(L):
        assert lr[f"backbone.vit.blocks.{i}.mlp.fc1.weight"] == pytest.approx(base * 0.1 * 0.5 ** (L - i))
    assert lr["backbone.vit.norm.weight"] == pytest.approx(base * 0.1)
    assert lr["neck.stages.0.0.weight"] == pytest.approx(base) and lr["query_embed.weight"] == pytest.approx(base)
    # mmengine's rules still apply inside the backbone: no decay on norms and tokens; decay on weights
    assert wd["backbone.vit.blocks.0.norm1.weight"] == 0 and wd["backbone.vit.pos_embed"] == 0
    assert wd["backbone.vit.reg_token"] == 0 and wd["query_embed.weight"] == 0
    assert wd["backbone.vit.blocks.0.mlp.fc1.weight"] == pytest.approx(0.05)
    model.backbone.vit.requires_grad_(False)  # frozen: no backbone parameter reaches the optimiser
    opt = build_optim_wrapper(model, ow).optimizer
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(p.requires_grad for p in model.parameters())


def test_bad_layer_decay_is_a_user_error():
    from mmengine.optim import build_optim_wrapper

    from dense_adapters.errors import UserError

    with pytest.raises(UserError, match="layer_decay_rate=1.5"):
        build_optim_wrapper(torch.nn.Linear(2, 2), dict(
            constructor="dense_adapters.LayerDecayOptimWrapperConstructor",
            optimizer=dict(type="AdamW", lr=1e-4), paramwise_cfg=dict(layer_decay_rate=1.5)))


def test_without_mmdet_the_tools_say_what_to_install(ade_sample, tmp_path):
    """mmdet made unimportable in a fresh process: the train tool ends in one error line naming the extra."""
    argv = [M2F_CONFIGS[0], "--work-dir", str(tmp_path), "--data-root", ade_sample,
            "--cfg-options", "model.backbone.init_cfg=None"]
    code = ("import sys; sys.modules['mmdet'] = None; "
            f"from dense_adapters.cli.train import main; sys.exit(main({argv!r}))")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == f"error: {MMDET_HINT}"
    assert "Traceback" not in r.stderr
