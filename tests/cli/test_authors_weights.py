"""The Uformer authors' released weights through the tools: tools/denoise.py --checkpoint and tools/test.py route
them into the generator (converted, strict) with the SIDD config's shift_from_size; the convert tool checks them."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dense_adapters.cli import convert_checkpoint, denoise
from dense_adapters.cli import test as test_tool
from dense_adapters.nn import create_uformer
from dense_adapters.nn.convert import uformer_to_authors

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIDD_T = osp.join(ROOT, "configs", "uformer-t_1xb32-750k_sidd-128x128.py")


def authors_file(tmp_path) -> tuple:
    torch.manual_seed(4)
    src = create_uformer("T", shift_from_size=128).eval()
    path = str(tmp_path / "Uformer_T.pth")
    torch.save({"epoch": 250, "state_dict": {f"module.{k}": v for k, v in uformer_to_authors(src.state_dict()).items()}},
               path)
    return src, path


def test_denoise_loads_the_authors_weights(tmp_path):
    src, path = authors_file(tmp_path)
    model = denoise.build_model(SIDD_T, path, "cpu")
    net = model.generator.net
    assert net.shift_from_size == 128  # the SIDD config fixes the shifts as the authors' model
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in net.state_dict().items())


def test_convert_tool_checks_a_uformer_file(tmp_path, capsys):
    src, path = authors_file(tmp_path)
    out = str(tmp_path / "converted.pth")
    assert convert_checkpoint.main([path, out]) == 0
    assert "Uformer" in capsys.readouterr().out
    sd = torch.load(out, weights_only=True)
    assert sd.keys() == src.state_dict().keys()
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in sd.items())


def test_skipat_release_to_an_imagenet_classifier(tmp_path):
    """SkipAt's ViT-T file ({'model': ...}, .t7, with its args) -> --with-head -> a checkpoint that the DeiT SkipAt
    classification config loads strictly; its logits are the released head on our converted backbone's cls token."""
    import argparse

    from dense_adapters.errors import UserError
    from dense_adapters.nn import create_regvit
    from dense_adapters.nn.convert import regvit_to_skipat
    from dense_adapters.registry import MODELS
    from dense_adapters.utils import register_all_modules
    from mmengine.registry import DefaultScope

    torch.manual_seed(5)
    vit = create_regvit("skipat_tiny_patch16_224").eval()
    sd = regvit_to_skipat(vit.state_dict(), vit.skip_layers)
    for i in vit.skip_layers:  # their skipped blocks keep unused attention weights
        sd.update({f"blocks.{i}.{k}": v for k, v in vit.blocks[0].state_dict().items() if k.startswith(("attn.", "norm1."))})
    head_w, head_b = torch.randn(1000, 192) * 0.05, torch.randn(1000) * 0.05
    sd.update({"head.weight": head_w, "head.bias": head_b})
    torch.save({"model": sd, "args": argparse.Namespace(model="skipat_tiny")}, tmp_path / "skipat_t.t7")
    out = str(tmp_path / "cls.pth")
    argv = [str(tmp_path / "skipat_t.t7"), out, "--preset", "skipat_tiny_patch16_224", "--with-head"]
    assert convert_checkpoint.main(argv) == 0
    with pytest.raises(UserError, match="--with-head needs --preset"):
        convert_checkpoint.run(convert_checkpoint.parse_args(argv[:2] + ["--with-head"]))
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, "configs", "vit-t16-skipat_deit_8xb128-300e_in1k-224x224.py"))
    with DefaultScope.overwrite_default_scope("mmseg"):
        model = MODELS.build(cfg.model).eval()
    model.load_state_dict(torch.load(out, weights_only=True)["state_dict"], strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        cls = vit(x)[:, 0]  # normed tokens: the cls token after the final norm
        assert torch.allclose(model(x, mode="tensor"), torch.nn.functional.linear(cls, head_w, head_b), atol=1e-5)


def test_test_tool_scores_the_authors_weights_as_the_same_weights_of_ours(tmp_path):
    """tools/test.py with the authors' file (converted into the generator) gives the metrics of the same weights
    given as a Runner checkpoint of ours (load_from): the routing loads every tensor, nothing stays random."""
    from dense_adapters.datasets.samples.denoise import make_denoise_sample

    root = make_denoise_sample(str(tmp_path / "data"), max_side=48)
    src, path = authors_file(tmp_path)
    ours = str(tmp_path / "ours.pth")
    torch.save({"state_dict": {f"generator.net.{k}": v for k, v in src.state_dict().items()}}, ours)
    cfg = osp.join(ROOT, "configs", "uformer-t_1xb8-2k_synthetic-noise-64x64.py")
    opts = ["--cfg-options", f"test_dataloader.dataset.data_root={root}", "test_dataloader.num_workers=0",
            "test_dataloader.persistent_workers=False", "+model.generator.shift_from_size=128"]  # + : a new key
    runs = [test_tool.run(test_tool.parse_args([cfg, ck, "--work-dir", str(tmp_path / name), *opts]))
            for name, ck in (("authors", path), ("ours", ours))]
    assert runs[0] == runs[1] and runs[0]  # e.g. {'PSNR': ..., 'SSIM': ...}
