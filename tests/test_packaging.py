"""The wheel runs the toolkit without a clone: it carries every config and the benchmark cases, its commands work,
a user's config inherits ``dense_adapters::...`` from it, and the demo trains and evaluates from it.

The wheel is built once per session (scripts/build_wheel.sh, the environment's setuptools, no download) and installed
with ``--no-deps`` into a folder that is the only entry of PYTHONPATH; every command runs outside the checkout.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MIM = "dense_adapters/.mim/"


def _repo_files(folder: str) -> dict:
    """Every file of the checkout's ``folder`` (caches aside), relative path -> bytes."""
    out = {}
    for path in glob.glob(osp.join(ROOT, folder, "**", "*"), recursive=True):
        if osp.isfile(path) and "__pycache__" not in path and not path.endswith((".pyc", ".pyo")):
            with open(path, "rb") as f:
                out[osp.relpath(path, osp.join(ROOT, folder)).replace(os.sep, "/")] = f.read()
    return out


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("wheel")
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", osp.join(ROOT, "scripts", "build_wheel.sh"), str(out)], env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip().splitlines()[-1]
    assert osp.isfile(path) and osp.dirname(path) == str(out), r.stdout
    return path


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory) -> dict:
    """The wheel installed into a target folder; the environment that puts only that folder on PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
                        "--target", str(target), wheel], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), PYTHONWARNINGS="ignore", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return {"target": str(target), "env": env, "cwd": str(tmp_path_factory.mktemp("elsewhere"))}


def _run(installed, args, timeout=300, **kw):
    return subprocess.run(args, env=installed["env"], cwd=installed["cwd"], capture_output=True, text=True,
                          timeout=timeout, **kw)


def test_wheel_holds_every_config_benchmark_case_and_command(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for folder in ("configs", "benchmarks"):
            files = _repo_files(folder)
            assert len(files) > (50 if folder == "configs" else 2)
            for rel, data in files.items():
                assert z.read(MIM + f"{folder}/{rel}") == data, rel  # every file, byte for byte
            shipped = {n[len(MIM + folder) + 1:] for n in names if n.startswith(f"{MIM}{folder}/")}
            assert shipped == set(files)  # and nothing stale
        assert "Import: []" in z.read(MIM + "model-index.yml").decode()  # what mmengine's pkg:: lookup reads first
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    with open(osp.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    for name, target in scripts.items():
        assert f"{name} = {target}" in entry_points
    assert not any(n.startswith(("tests/", "benchmarks/", "configs/")) for n in names)


USER_CONFIG = """_base_ = ['dense_adapters::ade20k_regvit.py']
train_cfg = dict(max_iters=5)
"""
PROBE = """
import contextlib, io, json, sys
from importlib import import_module
from importlib.metadata import entry_points

import dense_adapters
from dense_adapters.cli.configs import config_dir, read_config
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE

out = dict(package=dense_adapters.__file__, configs=config_dir())
cfg = read_config('user.py')
ref = Config.fromfile(config_dir() + '/regvit-s14-reg4_dinov2-lin_8xb2-40k_ade20k-512x512.py')
out.update(max_iters=cfg.train_cfg.max_iters, same_model=cfg.model == ref.model,
           same_data=cfg.train_dataloader == ref.train_dataloader)
# mmengine's own pkg:: lookup finds the wheel's .mim layout once a user registers the name (mmengine 0.10.7 asks
# for a folder in the path and knows OpenMMLab's packages only: open-mmlab/mmengine#1410)
MODULE2PACKAGE['dense_adapters'] = 'dense-adapters'
native = Config.fromfile('native.py')
out.update(native_scope=native.default_scope, native_imports=native.custom_imports.imports)
out['scripts'] = {}
for e in entry_points(group='console_scripts'):
    if e.name.startswith('dense-adapters-'):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                rc = e.load()(['--help'])
            except SystemExit as x:
                rc = x.code
        out['scripts'][e.name] = dict(rc=rc, help=buf.getvalue(), file=import_module(e.module).__file__)
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def probe(installed) -> dict:
    """One interpreter on the installed package: a user's config, mmengine's own lookup, every command's --help."""
    cwd = installed["cwd"]
    with open(osp.join(cwd, "user.py"), "w") as f:
        f.write(USER_CONFIG)
    with open(osp.join(cwd, "native.py"), "w") as f:
        f.write("_base_ = ['dense_adapters::_base_/default_runtime.py']\n")
    r = _run(installed, [sys.executable, "-c", PROBE])
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_user_config_inherits_from_the_installed_package(installed, probe):
    target = installed["target"]
    assert probe["package"].startswith(target)  # the wheel's package, not the checkout's
    assert probe["configs"] == osp.join(target, "dense_adapters", ".mim", "configs")
    assert probe["max_iters"] == 5 and probe["same_model"] and probe["same_data"]
    assert probe["native_scope"] == "mmseg" and "dense_adapters.models" in probe["native_imports"]


def test_every_console_script_from_the_installed_package(installed, probe):
    """Every command's --help from the wheel (benchmark included: its cases come from the wheel), and one through
    its script file."""
    with open(osp.join(ROOT, "pyproject.toml"), "rb") as f:
        names = set(tomllib.load(f)["project"]["scripts"])
    assert set(probe["scripts"]) == names
    for name, res in probe["scripts"].items():
        assert res["rc"] in (0, None) and res["help"].strip(), (name, res["rc"])
        assert res["file"].startswith(installed["target"]), name
    assert "--suite" in probe["scripts"]["dense-adapters-benchmark"]["help"]
    r = _run(installed, [osp.join(installed["target"], "bin", "dense-adapters-dist-train"), "--help"])
    assert r.returncode == 0 and r.stdout.startswith("usage: dense-adapters-dist-train"), r.stderr


def test_demo_from_the_installed_package(installed, tmp_path):
    """The embedded default, tiny: sample made where asked, trained, evaluated, outputs where asked."""
    data, work = tmp_path / "sample", tmp_path / "out"
    r = _run(installed, [osp.join(installed["target"], "bin", "dense-adapters-demo"), "--iters", "2", "--crop", "56",
                         "--data", str(data), "--work-dir", str(work),
                         "--cfg-options", "model.backbone.depth=2", "model.test_cfg.mode=whole"], timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "mIoU" in r.stdout and "written:" in r.stdout
    assert len(glob.glob(str(data / "ADEChallengeData2016" / "images" / "*" / "*.jpg"))) >= 8
    from mmengine.config import Config

    cfg = Config.fromfile(str(work / "demo_config.py"))  # the demo's config, as the runner saved it (merged)
    assert cfg.train_cfg.max_iters == 2 and cfg.model.backbone.depth == 2 and cfg.crop == (56, 56)
    assert cfg.model.backbone.preset == "dinov2_vits14_reg4" and cfg.model.backbone.init_cfg is None
    assert (work / "iter_2.pth").is_file()
    assert glob.glob(str(work / "vis" / "**" / "*.png"), recursive=True)
    assert not osp.exists(osp.join(installed["cwd"], "work_dirs"))  # nothing written where it was not asked
