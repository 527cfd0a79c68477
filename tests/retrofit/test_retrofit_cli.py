"""The skipat_retrofit tool (dense_adapters.cli.skipat_retrofit) end to end on a tiny model, and --resume continuing exactly."""
import os

import pytest
import torch

from dense_adapters.errors import UserError
from dense_adapters.retrofit import read_retrofit, retrofit
from dense_adapters.cli.skipat_retrofit import build_parser, config_from_args, main, parse_args, run, summary
from dense_adapters.retrofit.engine import InterruptAt

from retrofit_helpers import SIZE, VIT_KW


def argv(photo_dir, teacher, out, *extra, skip=("--skip", "auto", "--num-skip", "2")):
    arch = [f"{k}={v!r}" for k, v in VIT_KW.items()]
    return ["--arch", "regvit", "--set", *arch, "--checkpoint", teacher, "--images", photo_dir, *skip,
            "--iters", "12", "--batch-size", "4", "--size", str(SIZE), "--workers", "0",
            "--ckpt-interval", "4", "--log-interval", "4", "--bench-batch", "2", "--bench-seconds", "0.02",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def cli_run(photo_dir, vit_teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "a"
    return run(parse_args(argv(photo_dir, vit_teacher, out))), out


def test_cli_end_to_end(cli_run):
    report, out = cli_run
    assert {"retrofit.pth", "report.json", "retrofit.png", "work"} <= set(os.listdir(out))
    sel = report["selection"]
    assert sel["mode"] == "auto" and len(report["skip_layers"]) == 2
    # the chosen blocks are the two of 1..depth-2 with the highest adjacent-block CKA of attention outputs
    ranked = sorted(range(1, VIT_KW["depth"] - 1), key=lambda i: -sel["adjacent_cka"][str(i)])
    assert report["skip_layers"] == sorted(ranked[:2])
    _, meta = read_retrofit(str(out / "retrofit.pth"))
    assert meta["skip_layers"] == report["skip_layers"]
    tp = report["throughput"]  # measured side by side, one batch, same device
    assert tp["teacher_img_per_s"] > 0 and tp["student_img_per_s"] > 0 and tp["speedup"] > 0
    text = summary(report)  # what main printed
    assert "held-out final patch cosine" in text and "GMACs/img" in text and "throughput (cpu" in text


def test_resume_continues_exactly(cli_run, photo_dir, vit_teacher, tmp_path):
    _, out_a = cli_run
    out_b = tmp_path / "b"
    cfg = config_from_args(build_parser().parse_args(argv(photo_dir, vit_teacher, out_b, "--no-bench")))
    cfg.extra_hooks = [InterruptAt(8)]  # a run killed after its checkpoint at iteration 8 (in stage 2)
    with pytest.raises(KeyboardInterrupt):
        retrofit(cfg)
    assert os.path.isfile(out_b / "work" / "iter_8.pth") and not os.path.exists(out_b / "retrofit.pth")
    assert main(argv(photo_dir, vit_teacher, out_b, "--resume", "--no-bench")) == 0
    a, _ = read_retrofit(str(out_a / "retrofit.pth"))
    b, _ = read_retrofit(str(out_b / "retrofit.pth"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from the uninterrupted one"


def _error_line(capsys, args) -> str:
    capsys.readouterr()
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("note: ")]
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_cli_refusals_are_one_line(cli_run, photo_dir, vit_teacher, tmp_path, capsys):
    _, out = cli_run
    assert "already holds a retrofit run" in _error_line(capsys, argv(photo_dir, vit_teacher, out))
    line = _error_line(capsys, argv(photo_dir, vit_teacher, out, "--resume", "--lr1", "0.5"))
    assert "--resume with other settings" in line and "lr1" in line
    assert "--num-skip" in _error_line(capsys, argv(photo_dir, vit_teacher, tmp_path / "c", skip=("--skip", "auto")))
    assert "block 0" in _error_line(capsys, argv(photo_dir, vit_teacher, tmp_path / "d", skip=("--skip", "0-2")))
    bad = argv(photo_dir, vit_teacher, tmp_path / "e")
    bad[bad.index(str(SIZE))] = "60"
    assert "multiple of the patch size 8" in _error_line(capsys, bad)


def test_config_iteration_split():
    args = build_parser().parse_args(["--arch", "dinov2_vits14", "--images", "x", "--out", "y", "--skip", "3-8",
                                      "--iters", "300"])
    cfg = config_from_args(args)
    assert (cfg.stage1_iters, cfg.stage2_iters, cfg.skip) == (100, 200, "3-8")
    with pytest.raises(UserError, match="give --skip"):
        config_from_args(build_parser().parse_args(["--arch", "dinov2_vits14", "--images", "x", "--out", "y"]))
