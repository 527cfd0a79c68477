"""dense_adapters.cli: one run_cli, one override syntax (old spellings as aliases), one backbone builder, the runner
builder's CPU process group, the dist-train command, and the denoise tool end to end on a tiny restorer."""
import argparse
import os
import socket

import numpy as np
import pytest
import torch

from dense_adapters.cli.core import add_cfg_options, run_cli
from dense_adapters.errors import CheckpointMismatch, DataError, UserError

TINY_UFORMER = ("model = dict(type='dense_adapters.Restorer', generator=dict(type='dense_adapters.Uformer', "
                "embed_dim=16, depths=(1, 1, 1, 1, 1), win_size=4, drop_path_rate=0.0))\n")


def _only_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_run_cli_prints_user_errors_as_one_line(capsys):
    def bad():
        raise DataError("images/a.png is corrupt:\n  replace the file")

    assert run_cli(bad) == 2
    assert capsys.readouterr().err == "error: images/a.png is corrupt: replace the file\n"
    assert run_cli(lambda: open("/no/such/file")) == 2
    assert "No such file or directory: '/no/such/file'" in _only_error(capsys.readouterr().err)
    # a DataLoader worker re-raises with the worker's traceback in the text: the last line is the message
    worker = DataError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                       "last):\n  File \"x.py\", line 1\ndense_adapters.errors.DataError: cannot read b.jpg\n")

    def in_worker():
        raise worker

    assert run_cli(in_worker) == 2
    assert capsys.readouterr().err == "error: cannot read b.jpg\n"
    assert run_cli(lambda: 1) == 1 and run_cli(lambda: {"a": 1}) == 0 and run_cli(lambda: None) == 0


def test_run_cli_keeps_tracebacks_of_bugs(capsys):
    def bug():
        raise ValueError("a bug, not the user's input")

    with pytest.raises(ValueError, match="a bug"):
        run_cli(bug)

    def user():  # the library's classes are ValueErrors too, so `except ValueError` callers keep working
        raise UserError("threshold must be > 0, got 0")

    assert issubclass(UserError, ValueError) and issubclass(DataError, ValueError)
    assert run_cli(user) == 2
    assert capsys.readouterr().err == "error: threshold must be > 0, got 0\n"

    def interrupted():
        raise KeyboardInterrupt

    assert run_cli(interrupted) == 130


def test_one_override_syntax_with_deprecated_spellings(capsys):
    p = argparse.ArgumentParser()
    add_cfg_options(p, deprecated=("--set", "--arch-options"))
    a = p.parse_args(["--cfg-options", "depth=4", "img_size=(56,84)", "init_cfg=None", "--set", "lr=0.5",
                      "--arch-options", "flag=true", "names=[a,b]"])
    assert a.cfg_options == dict(depth=4, img_size=(56, 84), init_cfg=None, lr=0.5, flag=True, names=["a", "b"])
    err = capsys.readouterr().err
    assert "note: --set is deprecated, use --cfg-options" in err and "note: --arch-options is deprecated" in err
    assert p.parse_args([]).cfg_options == {}


def test_backbone_builder_from_preset_and_config(tmp_path, capsys):
    from dense_adapters.cli.backbone import build_backbone
    from dense_adapters.nn import create_regvit

    vit = build_backbone(arch="vit_tiny_patch16_224", cfg_options=dict(depth=2, num_register_tokens=3))
    assert vit.depth == 2 and vit.num_register_tokens == 3 and not vit.training
    assert "RANDOM weights" in capsys.readouterr().err
    with pytest.raises(UserError, match="cannot build --arch nope"):
        build_backbone(arch="nope")
    with pytest.raises(UserError, match="exactly one of --config"):
        build_backbone()
    torch.manual_seed(3)
    ref = create_regvit("vit_tiny_patch16_224", depth=2, num_register_tokens=1)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    cfg = tmp_path / "seg.py"
    cfg.write_text("model = dict(type='EncoderDecoder', backbone=dict(type='dense_adapters.RegViT', "
                   "preset='vit_tiny_patch16_224', depth=4, num_register_tokens=1))\n")
    # --cfg-options edits the config before the backbone is built; --checkpoint loads (and is reported)
    vit = build_backbone(config=str(cfg), cfg_options={"model.backbone.depth": 2},
                         checkpoint=str(tmp_path / "w.pth"), source="native")
    assert vit.depth == 2 and "missing (0)" in capsys.readouterr().out
    for k, v in ref.state_dict().items():
        assert torch.equal(vit.state_dict()[k], v)
    with pytest.raises(UserError, match="has no model.backbone"):
        (tmp_path / "none.py").write_text("x = 1\n")
        build_backbone(config=str(tmp_path / "none.py"))


def test_dist_train_command():
    from dense_adapters.cli.dist_train import main, torchrun_command

    cmd = torchrun_command("c.py", "2", ["--work-dir", "w"], env=dict(NNODES="2", NODE_RANK="1", PORT="29999"))
    assert cmd[1:] == ["-m", "torch.distributed.run", "--nnodes=2", "--node_rank=1", "--master_addr=127.0.0.1",
                       "--nproc_per_node=2", "--master_port=29999", "-m", "dense_adapters.cli.train", "c.py",
                       "--launcher", "pytorch", "--work-dir", "w"]
    assert main(["c.py"]) == 2


def test_cpu_process_group_is_started_by_the_tool_not_by_patching(monkeypatch):
    """init_distributed starts gloo without torch.cuda.set_device; mmengine's Runner then finds it initialised."""
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.dist import is_distributed

    from dense_adapters.cli.runner import adjust_for_device, init_distributed

    if torch.cuda.is_available():
        pytest.skip("on CUDA machines mmengine's launcher is used as it is")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)).items():
        monkeypatch.setenv(k, v)
    cfg = Config(dict(launcher="pytorch", env_cfg=dict(dist_cfg=dict(backend="nccl", timeout=60)),
                      model=dict(norm=dict(type="SyncBN"))))
    adjust_for_device(cfg)
    assert cfg.model.norm.type == "BN" and cfg.model_wrapper_cfg.device_ids is None
    try:
        init_distributed(cfg)
        assert is_distributed() and dist.get_backend() == "gloo" and dist.get_world_size() == 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_denoise_tool_end_to_end(tmp_path, capsys):
    from PIL import Image

    from dense_adapters.cli import denoise
    from dense_adapters.datasets.samples import photos
    from dense_adapters.evaluation.restoration import psnr
    from dense_adapters.registry import MODELS
    from dense_adapters.utils import register_all_modules

    cfg = tmp_path / "tiny.py"
    cfg.write_text(TINY_UFORMER)
    register_all_modules()
    torch.manual_seed(0)
    from mmengine.config import Config

    model = MODELS.build(Config.fromfile(str(cfg)).model).eval()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, tmp_path / "ckpt.pth")
    clean = np.asarray(Image.fromarray(photos()["coffee"]).resize((48, 32)))
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    os.makedirs(tmp_path / "in")
    os.makedirs(tmp_path / "gt")
    Image.fromarray(noisy).save(tmp_path / "in" / "coffee.png")
    Image.fromarray(clean).save(tmp_path / "gt" / "coffee.png")
    out = tmp_path / "out"
    assert denoise.main([str(tmp_path / "in"), str(out), "--config", str(cfg), "--checkpoint",
                         str(tmp_path / "ckpt.pth"), "--gt", str(tmp_path / "gt"), "--device", "cpu"]) == 0
    result = np.asarray(Image.open(out / "coffee.png"))
    with torch.no_grad():
        expect = denoise.denoise(model, noisy)
    assert np.array_equal(result, expect)
    assert Image.open(out / "coffee_compare.png").size == (3 * 48, 32)  # noisy | denoised | ground truth
    printed = capsys.readouterr().out
    assert f"coffee: PSNR {psnr(noisy, clean):.2f} -> {psnr(expect, clean):.2f} dB" in printed
    # a checkpoint of another model and overlapping tiles are one line each
    other = {k: torch.zeros(1) for k in model.state_dict()}
    torch.save({"state_dict": other}, tmp_path / "other.pth")
    assert denoise.main([str(tmp_path / "in"), str(out), "--config", str(cfg), "--checkpoint",
                         str(tmp_path / "other.pth")]) == 2
    assert "does not fit this model" in _only_error(capsys.readouterr().err)
    assert denoise.main([str(tmp_path / "in"), str(out), "--config", str(cfg), "--tile", "16",
                         "--tile-overlap", "16"]) == 2
    assert _only_error(capsys.readouterr().err) == "error: --tile-overlap 16 must be smaller than --tile 16"
    with pytest.raises(CheckpointMismatch):
        denoise.build_model(str(cfg), str(tmp_path / "other.pth"), "cpu")


def test_every_tool_has_a_console_script_and_a_thin_shim(capsys):
    """[project.scripts] names a main(argv=None) per tool; each tools/*.py only imports that main (no sys.path)."""
    import ast
    import glob
    import importlib
    import re
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    targets = set(scripts.values())
    for name, target in scripts.items():
        module, func = target.split(":")
        mod = importlib.import_module(module)
        main = getattr(mod, func)
        try:
            code = main(["--help"])
        except SystemExit as e:  # argparse's --help
            code = e.code
        assert code in (0, None), name
        assert mod.__doc__.splitlines()[0] in capsys.readouterr().out, name  # the tool's docstring is its help
    shims = sorted(glob.glob(os.path.join(root, "tools", "**", "*.py"), recursive=True))
    assert len(shims) == len(targets) - 2  # dist-train and env have no .py shim (tools/dist_train.sh; -m)
    for path in shims:
        src = open(path).read()
        assert "sys.path" not in src, path
        module = re.search(r"^from (dense_adapters\.cli\.[\w.]+) import main$", src, re.M).group(1)
        assert f"{module}:main" in targets, path
        body = ast.parse(src).body  # docstring, import sys, the import of main, the __main__ guard
        assert [type(n).__name__ for n in body] == ["Expr", "Import", "ImportFrom", "If"], path
