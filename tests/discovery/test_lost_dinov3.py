"""LOST on the VOC sample with a DINOv3 backbone (``--arch dinov3_vits16``: RoPE, 4 registers dropped through
num_prefix_tokens), degenerate images reported per image and in results.json, and a Hugging Face folder as
--checkpoint without --arch."""
import json
import os

import pytest
import torch

from dense_adapters.nn import create_regvit

ARCH = ["--arch", "dinov3_vits16", "--cfg-options", "depth=2"]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> str:
    from dense_adapters.datasets.samples.voc import make_voc_sample

    return make_voc_sample(str(tmp_path_factory.mktemp("voc")), max_side=128)


def _run(tmp_path, name, voc_root, *extra):
    from dense_adapters.cli import lost

    out = str(tmp_path / name)
    assert lost.main([*extra, "--dataset", "VOC07", "--data-root", voc_root, "--out", out]) == 0
    with open(os.path.join(out, "preds.json")) as f:
        preds = json.load(f)
    with open(os.path.join(out, "results.json")) as f:
        return preds, json.load(f)


def test_lost_dinov3_and_degenerate_images(voc_root, tmp_path, capsys):
    torch.manual_seed(0)
    vit = create_regvit("dinov3_vits16", depth=2)
    torch.save(vit.state_dict(), tmp_path / "w.pth")
    preds, res = _run(tmp_path, "plain", voc_root, *ARCH, "--checkpoint", str(tmp_path / "w.pth"))
    assert res["num_prefix_tokens"] == 5 and res["num_images"] == 6 and "num_degenerate" in res
    assert all({"degenerate", "seed_ties", "bias"} <= set(p) for p in preds)
    assert "5 prefix tokens (4 registers)" in capsys.readouterr().out
    # a key component shared by every patch (a large K bias, as DINOv2's keys have): all degrees equal
    with torch.no_grad():
        vit.blocks[-1].attn.qkv.bias[384:768] = 50.0
    torch.save(vit.state_dict(), tmp_path / "shared.pth")
    preds, res = _run(tmp_path, "shared", voc_root, *ARCH, "--checkpoint", str(tmp_path / "shared.pth"))
    assert res["num_degenerate"] == 6 and sorted(res["degenerate_images"]) == sorted(p["name"] for p in preds)
    assert all(p["degenerate"] and p["seed"] == [0, 0] for p in preds)
    assert "every patch has the same degree" in capsys.readouterr().err
    preds, res = _run(tmp_path, "bias", voc_root, *ARCH, "--checkpoint", str(tmp_path / "shared.pth"),
                      "--setting", "registers-dinov2")
    assert res["num_degenerate"] == 0 and res["setting"] == "registers-dinov2" and res["bias"] == "mean"
    assert all(p["bias"] < 0 for p in preds)


def test_lost_with_a_hugging_face_folder_and_no_arch(voc_root, tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.DINOv3ViTConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_register_tokens=4)
    transformers.DINOv3ViTModel(cfg).save_pretrained(tmp_path / "hf")
    preds, res = _run(tmp_path, "hf_run", voc_root, "--checkpoint", str(tmp_path / "hf"))
    assert res["num_prefix_tokens"] == 5 and len(preds) == 6
