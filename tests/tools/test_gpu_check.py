"""The GPU check (scripts/gpu_check.sh -> benchmarks/gpu_check.py, steps in benchmarks/gpu_steps.py): its dry run
passes on the CPU with one result line per step and never touches docs/; the runner fails a run whose step fails
or hangs (and ends what the step started); the GPU-only parts (commands, configs, MFU peaks) are built right."""
import hashlib
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

import pytest

from dense_adapters.cli.benchmark import load_benchmarks

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, "scripts", "gpu_check.sh")
bench = load_benchmarks(osp.join(ROOT, "benchmarks"))
steps_mod = importlib.import_module(bench.__name__ + ".gpu_steps")
_spec = importlib.util.spec_from_file_location("gpu_check_driver", osp.join(ROOT, "benchmarks", "gpu_check.py"))
gc = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check_driver"] = gc  # dataclasses look their module up by name
_spec.loader.exec_module(gc)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}  # no copy to a device machine's $OUT here
    env.update(PYTHON=sys.executable, PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def _docs_state():
    out = {}
    for name in ("benchmarks_gpu.md", "benchmarks_gpu.json"):
        p = osp.join(ROOT, "docs", name)
        out[name] = hashlib.sha256(open(p, "rb").read()).hexdigest() if osp.isfile(p) else None
    return out


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("gpu_check")
    before = _docs_state()
    t0 = time.monotonic()
    r = subprocess.run(["bash", SCRIPT, "--dry-run", "--work-dir", str(work), "--peak-tflops", "1"], cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=420)
    seconds = time.monotonic() - t0
    assert _docs_state() == before, "the dry run wrote into docs/"
    return r, work, seconds


def test_dry_run_passes_with_one_line_per_step(dry_run):
    r, work, seconds = dry_run
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.split()[1:2] in (["PASS"], ["FAIL"], ["SKIP"])]
    assert sorted(ln.split()[2] for ln in lines) == sorted(gc.STEP_NAMES)  # exactly one line per step
    status = {ln.split()[2]: ln.split()[1] for ln in lines}
    must_pass = {"env", "data", "train-bf16", "test-bf16", "dist-nccl", "bf16-agreement", "bench-vit", "bench-large",
                 "bench-lost", "bench-compile"}
    assert {n for n in must_pass if status[n] != "PASS"} == set(), r.stdout
    by = {ln.split()[2]: ln for ln in lines}
    for name in ("train-fp16", "fsdp"):  # CUDA-only: their configuration is built and checked
        assert status[name] == "SKIP" and "needs CUDA" in by[name] and "prepared:" in by[name]
    assert "AmpOptimWrapper float16, loss scale dynamic" in by["train-fp16"]
    assert "FSDPStrategy, one unit per block (3/3)" in by["fsdp"]
    assert status["test-fp16"] == "SKIP" and "needs CUDA" in by["test-fp16"]
    assert "backend gloo" in by["dist-nccl"] and "AutocastOptimWrapper bfloat16" in by["train-bf16"]
    if bench.cases.grad_ckpt_available():
        assert status["bench-ckpt"] == "PASS"
    else:
        assert status["bench-ckpt"] == "SKIP" and "not available" in by["bench-ckpt"]
    print(f"dry run: {seconds:.0f} s")


def test_dry_run_reports(dry_run):
    r, work, _ = dry_run
    report = json.loads((work / "report" / "benchmarks_gpu.json").read_text())
    md = (work / "report" / "benchmarks_gpu.md").read_text()
    assert report["mode"] == "dry-run" and report["passed"] is True
    assert [s["name"] for s in report["steps"]] == [n for n in gc.STEP_NAMES]
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["env"]["result"]["versions"]["mmseg"] and steps["env"]["result"]["gpu"] is None
    vit = steps["bench-vit"]["result"]["report"]
    train_rows = [row for row in vit["rows"] if row["mode"] == "train" and row["dtype"] == "bf16"]
    assert train_rows and all(row["mfu"] is not None and 0 < row["mfu"] < 1 for row in train_rows)  # peak given
    assert {q["ratio"] for q in vit["ratios"]} >= {"ours/timm", "ours/mmseg", "skipat/ours", "bf16/fp32"}
    lost = steps["bench-lost"]["result"]["extra"]
    assert lost["equal_boxes"] == lost["images"]
    test_metrics = steps["test-bf16"]["result"]["metrics"]
    assert 0 <= float(test_metrics["mIoU"]) <= 100
    for name in gc.STEP_NAMES:
        assert f"| {name} |" in md
    assert "#### Results" in md and "| MFU |" in md
    assert (work / "logs").is_dir() and (work / "gpu_check.log").read_text().count("gpu_check: ") >= len(gc.STEPS)


def _fake_step(name, argv, timeout=30.0, after=()):
    return gc.Step(name, name, "tools", timeout, timeout, lambda ctx, step, log: dict(status="pass", line="ok",
                                                                                       result={}),
                   command=lambda ctx: argv, after=after)


def test_runner_fails_on_exit_code_and_timeout_and_ends_the_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    hang = [sys.executable, "-c", "import subprocess, sys, time; "
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)"]
    steps = [_fake_step("ok", [sys.executable, "-c", "print('hi')"]),
             _fake_step("bad", [sys.executable, "-c", "import sys; print('error: it broke'); sys.exit(3)"]),
             _fake_step("after-bad", [sys.executable, "-c", "pass"], after=("bad",)),
             _fake_step("hang", hang, timeout=3.0)]
    ctx = gc.Ctx(dry=True, work=str(tmp_path), python=sys.executable, jobs=2, budget=60, iters=1)
    res = {r["name"]: r for r in gc.run_steps(ctx, steps, {s.name for s in steps}, fatal=())}
    assert res["ok"]["status"] == "pass"
    assert res["bad"]["status"] == "fail" and "exit code 3 (error: it broke)" in res["bad"]["line"]
    assert res["after-bad"]["status"] == "skip" and "needs bad" in res["after-bad"]["line"]
    assert res["hang"]["status"] == "fail" and "timed out after 3 s" in res["hang"]["line"]
    child = int(pidfile.read_text())
    time.sleep(0.5)
    assert not osp.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_runner_keeps_to_the_budget(tmp_path):
    steps = [_fake_step("slow", [sys.executable, "-c", "import time; time.sleep(30)"], timeout=60),
             _fake_step("late", [sys.executable, "-c", "pass"])]
    steps[1].phase = "timed"
    ctx = gc.Ctx(dry=False, work=str(tmp_path), python=sys.executable, jobs=1, budget=4, iters=1, min_start=2)
    res = {r["name"]: r for r in gc.run_steps(ctx, steps, {"slow", "late"}, fatal=())}
    assert res["slow"]["status"] == "skip" and "at the end of the time budget (4 s)" in res["slow"]["line"]
    assert res["late"]["status"] == "skip" and "out of time budget" in res["late"]["line"]
    assert "--steps late" in res["late"]["line"]


def test_gpu_commands_and_jobs(tmp_path):
    """What a GPU run executes: one process per step, the tools' commands with real files and CUDA settings."""
    ctx = gc.Ctx(dry=False, work=str(tmp_path), python="python3", jobs=4, budget=420, iters=10)
    for phases in gc.rounds(ctx):
        jobs = gc.plan_jobs(ctx, [s for s in gc.STEPS if s.phase in phases])
        assert all(len(j.steps) == 1 for j in jobs)
    jobs = {j.name: j for j in gc.plan_jobs(ctx, gc.STEPS)}
    assert jobs["train-fp16"].argv[1:] == [osp.join(ROOT, "tools", "train.py"), ctx.path("configs", "ade.py"),
                                           "--amp", "--amp-dtype", "float16", "--work-dir", ctx.path("train-fp16"),
                                           "--data-root", gc.data_root(ctx)]
    assert jobs["test-fp16"].argv[3] == ctx.path("train-fp16", "iter_10.pth")
    assert jobs["fsdp"].argv[:4] == ["bash", osp.join(ROOT, "tools", "dist_train.sh"), ctx.path("configs", "fsdp.py"),
                                     "1"]
    assert jobs["fsdp"].env["PORT"] != jobs["dist-nccl"].env["PORT"]  # they run at the same time
    assert jobs["bench-vit"].argv[2:4] == ["--worker", "bench-vit"] and "--dry-run" not in jobs["bench-vit"].argv
    for j in jobs.values():
        for a in j.argv:
            if a.startswith(ROOT):
                assert osp.exists(a), a
    dry = gc.Ctx(dry=True, work=str(tmp_path), python="python3", jobs=3, budget=300, iters=2)
    assert gc.rounds(dry) == [gc.PHASES]
    dry_jobs = gc.plan_jobs(dry, gc.STEPS)  # the worker steps in one process, the tools each in one
    workers = [j for j in dry_jobs if j.name == "workers"]
    assert len(workers) == 1 and len(dry_jobs) == 1 + sum(1 for s in gc.STEPS if s.command and not s.cuda_only)
    assert workers[0].argv[3:5] == ["env", "data"] and "prep-train-fp16" in workers[0].argv


def test_run_configs_load(tmp_path):
    from mmengine.config import Config

    for dry in (False, True):
        ctx = gc.Ctx(dry=dry, work=str(tmp_path / str(dry)), python="python3", jobs=1, budget=1, iters=3)
        gc.write_configs(ctx)
        ade = Config.fromfile(ctx.path("configs", "ade.py"))
        fsdp = Config.fromfile(ctx.path("configs", "fsdp.py"))
        for cfg in (ade, fsdp):
            assert cfg.model.backbone.init_cfg is None and cfg.val_cfg is None and cfg.val_dataloader is None
            assert cfg.train_cfg.max_iters == 3 and cfg.default_hooks.checkpoint.interval == 3
        assert ade.train_dataloader.batch_size == (2 if dry else 4) and fsdp.train_dataloader.batch_size == 2
        assert fsdp.runner_type == "FlexibleRunner" and fsdp.model.backbone.preset == "dinov2_vitl14_reg4"
        assert fsdp.model.neck.in_channels == [1024] * 4  # the FSDP config is never shrunk
        assert ade.model.backbone.get("embed_dim") == (64 if dry else None)
        assert ade.model.decode_head.in_channels == ([64] * 4 if dry else [384] * 4)


def test_peaks_and_mfu():
    peak = steps_mod.peak_bf16_tflops
    assert peak("NVIDIA H200")[0] == peak("NVIDIA H100 80GB HBM3")[0] == 989.4
    assert peak("NVIDIA H100 PCIe")[0] == 756.0 and peak("NVIDIA A100-SXM4-80GB")[0] == 312.0
    assert peak("NVIDIA L4")[0] == 121.0 and peak("NVIDIA L40S")[0] == 362.1 and peak("NVIDIA GH200 480GB")[0] == 989.4
    value, why = peak("Some GPU")
    assert value is None and "--peak-tflops" in why
    assert peak("Some GPU", 100.0) == (100.0, "given with --peak-tflops")
    # ViT-B/16 at 224 (17.58 GMACs) training at 1000 img/s on 989.4 TFLOP/s: 2 * 17.58e9 * 3 * 1000 / 989.4e12
    assert steps_mod.mfu(17.58, 1000.0, 989.4, train=True) == pytest.approx(0.10660, rel=1e-4)
    assert steps_mod.mfu(17.58, 1000.0, 989.4, train=False) == pytest.approx(0.03553, rel=1e-3)
    assert steps_mod.mfu(None, 1000.0, 989.4, True) is None and steps_mod.mfu(17.58, 1000.0, None, True) is None


def test_gpu_check_groups():
    S, C = bench.suites, bench.cases
    names = {part: [g.name for g in S.gpu_check_groups(part)] for part in S.GPU_CHECK_PARTS}
    assert "ViT-B/16 224 bs32 train bf16" in names["vit"] and "ViT-S/16 512 bs16 forward bf16" in names["vit"]
    assert "ViT-B/16 224 bs32 train fp32 vs bf16" in names["vit"]
    assert "ViT-L/16 1024 bs4 train bf16" in names["large"] and "ViT-B/16 1024 bs4 forward bf16" in names["large"]
    labels = {g.name: [c.label for c in g.cases] for part in S.GPU_CHECK_PARTS for g in S.gpu_check_groups(part)}
    assert labels["ViT-L/16 1024 bs4 train bf16"] == ["ours", "timm", "mmseg", "skipat"]
    assert labels["ViT-B/16 224 bs32 train bf16 eager vs compile"] == ["ours", "ours+compile"]
    assert labels["LOST ViT-S/14+reg4 518 32 images"] == ["batched", "per-image"]
    assert (names["ckpt"] != []) == C.grad_ckpt_available()
    assert C.preset_name("dinov3_vith16plus") == "DINOv3-H+/16" and C.preset_name("dinov2_vitg14_reg4") == \
        "DINOv2-g/14+reg4"
    with pytest.raises(Exception, match="unknown part"):
        S.gpu_check_groups("nope")


def test_script_says_how_to_get_the_wheels(tmp_path):
    """Without mmengine/mmseg and without carried wheels: one error line naming scripts/gpu_wheels.sh. A wheel of
    the package not built from this checkout is not used."""
    bare = shutil.which("python3", path="/usr/bin:/bin")
    if bare is None or subprocess.run([bare, "-c", "import mmengine"], capture_output=True).returncode == 0:
        pytest.skip("no interpreter without mmengine here")
    r = subprocess.run(["bash", SCRIPT, "--list"], cwd=ROOT, env=_env(PYTHON=bare, WHEEL_DIR=str(tmp_path)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: mmengine, mmcv or mmseg")
    assert "bash scripts/gpu_wheels.sh" in r.stderr
    (tmp_path / "dense_adapters-0.1.0-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "dense_adapters.sha256").write_text("0" * 64 + "\n")
    r = subprocess.run(["bash", SCRIPT, "--list"], cwd=ROOT, env=_env(WHEEL_DIR=str(tmp_path)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "was not built from this checkout: using the checkout's code" in r.stdout
    assert "bench-vit" in r.stdout and "[CUDA only]" in r.stdout


def test_source_hash_follows_the_package_files(tmp_path):
    root = tmp_path / "repo"
    (root / "dense_adapters" / "__pycache__").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "dense_adapters" / "a.py").write_text("x = 1\n")
    h1 = gc.source_hash(str(root))
    (root / "dense_adapters" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    assert gc.source_hash(str(root)) == h1
    (root / "dense_adapters" / "a.py").write_text("x = 2\n")
    assert gc.source_hash(str(root)) != h1
