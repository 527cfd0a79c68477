"""convert_checkpoint: every format offered by --from, config.json picks the architecture, wrong --from and partial
loads refused in one line."""
import pytest
import timm
import torch

from dense_adapters.nn import RegViT, load_pretrained


def _convert(capsys, *argv):
    from dense_adapters.cli import convert_checkpoint

    rc = convert_checkpoint.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_formats_and_refusals(tmp_path, capsys):
    from dense_adapters.cli.convert_checkpoint import parse_args
    from dense_adapters.nn.convert import source_names

    assert {"dinov3", "hf", "openclip", "mmseg", "timm", "dinov2", "deit3", "native"} <= set(source_names())
    parse_args(["a", "b", "--from", "mmseg"])  # every format is a --from choice
    t = timm.create_model("vit_small_patch16_dinov3", pretrained=False, num_classes=0, depth=2)
    torch.save(t.state_dict(), tmp_path / "timm.pth")
    rc, out, _ = _convert(capsys, tmp_path / "timm.pth", tmp_path / "out.pth", "--preset", "dinov3_vits16")
    assert rc == 2  # the preset has 12 blocks, the file 2: refused, not half-converted
    rc, out, err = _convert(capsys, tmp_path / "timm.pth", tmp_path / "out.pth", "--preset", "dinov3_vits16",
                            "--partial")
    assert rc == 0 and "PARTIAL LOAD" in out
    sd = torch.load(tmp_path / "out.pth", weights_only=True)
    assert not any(k.startswith("blocks.5.") for k in sd) and "blocks.1.attn.qkv.bias" in sd
    # a DINOv2 file given --from timm (issue 12 item 11): refused, not written with a wrong register advice
    dino = {k.replace("reg_token", "register_tokens"): v for k, v in
            RegViT(embed_dim=48, depth=2, num_heads=4, img_size=56, patch_size=14, num_register_tokens=4)
            .state_dict().items()}
    dino["pos_embed"] = torch.cat([torch.zeros(1, 1, 48), dino["pos_embed"]], 1)
    dino["mask_token"] = torch.zeros(1, 48)
    torch.save(dino, tmp_path / "dinov2.pth")
    rc, _, err = _convert(capsys, tmp_path / "dinov2.pth", tmp_path / "bad.pth", "--from", "timm")
    assert rc == 2 and err.strip().startswith("error: the checkpoint is in the 'dinov2' format") and \
        len(err.strip().splitlines()) == 1


def test_hugging_face_folder_needs_no_preset(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Dinov2WithRegistersConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                 image_size=56, patch_size=14, num_register_tokens=4)
    transformers.Dinov2WithRegistersModel(cfg).save_pretrained(tmp_path / "hf")
    rc, out, _ = _convert(capsys, tmp_path / "hf", tmp_path / "out.pth")
    assert rc == 0 and "loaded a hf checkpoint" in out and "missing (0)" in out
    vit = RegViT(embed_dim=64, depth=2, num_heads=4, img_size=56, patch_size=14, num_register_tokens=4,
                 init_values=1.0, mask_token=True, interpolate_antialias=True)
    assert load_pretrained(vit, str(tmp_path / "out.pth")).complete  # the output is a plain RegViT state dict
