"""The command-line tools end to end on the planted-outlier model: files written, numbers right, bad input refused."""
import importlib
import json
import os
import re

import pytest

IMAGES = ["chelsea", "coffee", "rocket", "astronaut"]


def tool(name: str):
    """``argv -> summary`` of dense_adapters.cli.analysis.<name> (its run after its argument parsing)."""
    mod = importlib.import_module(f"dense_adapters.cli.analysis.{name}")
    return lambda argv: mod.run(mod.parse_args(argv))


def fails(name: str, argv: list, capsys) -> str:
    """The tool's main exits with 2 and one 'error: ...' line on stderr (no traceback); returns the line."""
    mod = importlib.import_module(f"dense_adapters.cli.analysis.{name}")
    assert mod.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def assert_files(files):
    assert files
    for f in files:
        assert os.path.getsize(f) > 1000, f  # a real PNG, not an empty file


def test_neurons_then_token_norms_before_and_after(planted_ckpt, tmp_path, ana):
    neurons = tmp_path / "neurons.json"
    res = tool("find_register_neurons")(IMAGES + planted_ckpt + ["--size", "56", "84", "--top-k", "1",
                                                                "--method", "per_neuron", "--out", str(neurons)])
    assert [(n["layer"], n["neuron"]) for n in res["neurons"]] == [(ana.PLANT["block"], ana.PLANT["neuron"])]
    saved = json.loads(neurons.read_text())
    assert saved["neurons"][0]["neuron"] == ana.PLANT["neuron"] and saved["method"] == "per_neuron"
    out = tmp_path / "norms"
    s = tool("token_norms")(IMAGES[:2] + planted_ckpt + ["--size", "56", "84", "--out-dir", str(out),
                                                         "--tt-registers", str(neurons)])
    want = sorted(ana.PLANT["positions"])
    last = s["layers"][-1]
    assert [sorted(map(tuple, o["positions"])) for o in last["outliers"]] == [want, want]
    assert last["patch"]["max"] > 150 and s["layers"][0]["num_outliers"] == 0
    assert all(L["num_outliers"] == 0 for L in s["tt_registers"]["layers"])
    assert s["tt_registers"]["layers"][-1]["registers"]["min"] > 150  # moved into the test-time register
    assert s["tt_registers"]["method"] == "per_neuron"  # as the JSON says
    names = {os.path.basename(f) for f in s["files"]}
    assert names == {"norms_hist.png", "norms_hist_tt.png", "chelsea_outliers.png", "coffee_outliers.png",
                     "chelsea_layers.png", "coffee_layers.png"}
    assert_files(s["files"])
    assert json.loads((out / "summary.json").read_text())["layers"][1]["num_outliers"] == 4


def test_search_presets_and_released_neurons(planted_ckpt, tmp_path, capsys):
    out = str(tmp_path / "n.json")
    res = tool("find_register_neurons")(IMAGES[:2] + planted_ckpt + ["--size", "56", "84", "--preset",
                                                                     "openclip_vitb16", "--out", out])
    assert (res["detect_layer"], res["threshold"], res["max_layer"], res["top_k"]) == (2, 30.0, 2, 10)
    assert res["preset"] == "openclip_vitb16" and res["backbone"]["arch"] == "vit_tiny_patch16_224"
    res = tool("find_register_neurons")(IMAGES[:2] + planted_ckpt + ["--size", "56", "84", "--preset",
                                                                     "dinov2_vitl14", "--threshold", "100",
                                                                     "--max-layer", "emergence", "--out", out])
    assert (res["detect_layer"], res["threshold"], res["max_layer"], res["top_k"]) == (1, 100.0, 1, 50)
    assert fails("token_norms", ["chelsea"] + planted_ckpt + ["--tt-registers", "dinov2_vitl14", "--out-dir",
                                                              str(tmp_path)], capsys).startswith(
        "error: the released register neurons 'dinov2_vitl14' were found on another architecture: depth 24")
    with pytest.raises(SystemExit):
        tool("find_register_neurons")(["chelsea"] + planted_ckpt + ["--max-layer", "last"])


def test_attention_maps_tool(planted_ckpt, tmp_path):
    s = tool("attention_maps")(["chelsea"] + planted_ckpt + ["--size", "84", "--out-dir", str(tmp_path),
                                                            "--layer", "1"])
    assert s["layer"] == 1 and list(s["images"]["chelsea"]) == ["cls"]
    st = s["images"]["chelsea"]["cls"]
    assert 0 < st["patch_mass"] <= 1 and st["entropy_bits"] <= st["max_entropy_bits"] + 1e-9
    assert_files(s["files"])
    assert (tmp_path / "attention.json").exists()


def test_layer_similarity_tool(planted_ckpt, tmp_path):
    s = tool("layer_similarity")(IMAGES[:3] + planted_ckpt + ["--size", "56", "84", "--views", "3",
                                                              "--batch-size", "4", "--out-dir", str(tmp_path)])
    assert s["num_examples"] == 8 and s["num_batches"] == 2  # 9 views, the 9th does not fill a batch
    for key in ("cls_attention", "attn_out"):
        m = s[key]["cka"]
        assert len(m) == 3 and all(abs(m[i][i] - 1) < 1e-9 for i in range(3))
        assert all(abs(m[i][j] - m[j][i]) < 1e-9 for i in range(3) for j in range(3))
    assert_files(s["files"])


def test_config_backbone(tmp_path):
    cfg = tmp_path / "cfg.py"
    cfg.write_text("default_scope = 'mmseg'\n"
                   "model = dict(type='EncoderDecoder', backbone=dict(type='dense_adapters.RegViT', arch='tiny', "
                   "embed_dim=32, depth=2, num_heads=2, num_register_tokens=2, img_size=56, patch_size=14))\n")
    s = tool("attention_maps")(["coffee", "--config", str(cfg), "--size", "56", "--out-dir", str(tmp_path)])
    assert list(s["images"]["coffee"]) == ["cls", "reg0", "reg1"]


def test_bad_input_is_refused(planted_ckpt, tmp_path, capsys):
    assert "exactly one of --config" in fails("token_norms", ["chelsea", "--out-dir", str(tmp_path)], capsys)
    assert "neither an image file, a folder, nor a sample photo" in fails(
        "token_norms", ["no_such_image.jpg"] + planted_ckpt + ["--out-dir", str(tmp_path)], capsys)
    assert re.search(r"no patch token above norm 1e\+06 at block 2", fails(
        "find_register_neurons", ["chelsea"] + planted_ckpt + ["--threshold", "1e6", "--out", str(tmp_path / "n.json")],
        capsys))
    # a bad option the analysis library refuses (analysis/norms.py: UserError) is one line too
    assert fails("token_norms", ["chelsea"] + planted_ckpt + ["--size", "56", "84", "--relative", "0", "--out-dir",
                                                             str(tmp_path)], capsys) == (
        "error: relative threshold must be > 0, got 0.0")
    # a block outside the model is refused, not wrapped round (the planted model has 3 blocks; -1 is the last)
    assert fails("token_norms", ["chelsea"] + planted_ckpt + ["--hist-layer", "9", "--out-dir", str(tmp_path)],
                 capsys) == "error: --hist-layer 9 is outside the model's blocks: give 0..2 (or -3..-1 from the end)"
    assert fails("attention_maps", ["chelsea"] + planted_ckpt + ["--layer", "-5", "--out-dir", str(tmp_path)],
                 capsys).startswith("error: --layer -5 is outside the model's blocks")
    with pytest.raises(SystemExit):
        tool("layer_similarity")(["chelsea"] + planted_ckpt + ["--batch-size", "3"])
    assert "no full batch" in fails("layer_similarity", ["chelsea"] + planted_ckpt + [
        "--views", "2", "--size", "56", "84", "--out-dir", str(tmp_path)], capsys)
    cfg = tmp_path / "nobb.py"
    cfg.write_text("model = dict(type='EncoderDecoder')\n")
    assert "has no model.backbone" in fails("token_norms", ["chelsea", "--config", str(cfg)], capsys)
    typo = tmp_path / "typo.py"
    typo.write_text("model = dict(type='EncoderDecoder', backbone=dict(type='dense_adapters.RegVit', depth=2))\n")
    assert re.match(r"error: cannot build the backbone of .*typo\.py: dense_adapters\.RegVit is not in the",
                    fails("token_norms", ["chelsea", "--config", str(typo)], capsys))
    # the old override spelling applies to presets only
    assert "--set overrides the RegViT arguments of an --arch preset" in fails(
        "token_norms", ["chelsea", "--config", str(cfg), "--set", "depth=2"], capsys)
