"""dense_adapters.cli.configs: ``dense_adapters::NAME.py`` as a tool's config and as a base of a user's config, in
the checkout (the installed wheel: tests/test_packaging.py)."""
import glob
import os
import os.path as osp

import pytest
from mmengine.config import Config

from dense_adapters.cli import configs as C
from dense_adapters.errors import UserError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _plain(cfg) -> dict:
    return cfg.to_dict()


def test_the_checkout_configs_are_the_packaged_names():
    assert C.checkout_root() == ROOT and C.config_dir() == osp.join(ROOT, "configs")
    files = sorted(osp.relpath(p, osp.join(ROOT, "configs"))
                   for p in glob.glob(osp.join(ROOT, "configs", "**", "*.py"), recursive=True))
    assert C.list_configs() == files and "ade20k_regvit.py" in files and "_base_/default_runtime.py" in files
    assert C.resolve_config("dense_adapters::ade20k_regvit.py") == osp.join(ROOT, "configs", "ade20k_regvit.py")
    # the package's own configs never use the prefix: their relative bases work the same inside a wheel
    for path in glob.glob(osp.join(ROOT, "configs", "**", "*.py"), recursive=True):
        assert C.PREFIX not in open(path).read(), path


def test_packaged_name_reads_as_the_file():
    a = C.read_config("dense_adapters::ade20k_regvit.py")
    b = Config.fromfile(osp.join(ROOT, "configs", "ade20k_regvit.py"))
    assert _plain(a) == _plain(b)
    assert _plain(C.read_config("dense_adapters::_base_/schedules/dinov2-seg-linear_40k.py")) == _plain(
        Config.fromfile(osp.join(ROOT, "configs", "_base_", "schedules", "dinov2-seg-linear_40k.py")))


def test_user_config_inherits_a_packaged_config(tmp_path):
    """A user's chain (a relative base of their own, predefined variables, non-ASCII text) with a packaged base."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.py").write_text(
        "_base_ = ['dense_adapters::ade20k_regvit.py']  # « packaged »\n"
        "work_dir = '{{ fileDirname }}/runs'\n"
        "train_cfg = dict(max_iters=7)\n", encoding="utf-8")
    user = tmp_path / "exp_a.py"
    user.write_text("# ünïcode before the bases\n_base_ = [\n    './sub/mine.py',\n]\n"
                    "name = '{{ fileBasenameNoExtension }}'\noptim_wrapper = dict(optimizer=dict(lr=0.5))\n",
                    encoding="utf-8")
    cfg = C.read_config(str(user))
    ref = Config.fromfile(osp.join(ROOT, "configs", "ade20k_regvit.py"))
    assert cfg.train_cfg.max_iters == 7 and cfg.train_cfg.val_interval == ref.train_cfg.val_interval
    assert cfg.optim_wrapper.optimizer.lr == 0.5 and cfg.optim_wrapper.optimizer.type == \
        ref.optim_wrapper.optimizer.type
    assert cfg.name == "exp_a" and cfg.work_dir == f"{tmp_path}/sub/runs"  # the user's files, not the copies
    assert cfg.model == ref.model and cfg.custom_imports == ref.custom_imports
    assert osp.basename(cfg.filename) == "exp_a.py"
    assert not glob.glob(osp.join(osp.dirname(osp.dirname(cfg.filename)), "dense_adapters_cfg_*"))  # cleaned up
    assert "ünïcode" in user.read_text(encoding="utf-8")  # the user's file is untouched


def test_config_without_the_prefix_is_read_as_it_is(tmp_path):
    user = tmp_path / "plain.py"
    user.write_text(f"_base_ = ['{ROOT}/configs/ade20k_regvit.py']\ntrain_cfg = dict(max_iters=3)\n")
    cfg = C.read_config(str(user))
    assert cfg.filename == str(user) and cfg.train_cfg.max_iters == 3


@pytest.mark.parametrize("path, message", [
    ("dense_adapters::ade20k_regvt.py", "did you mean dense_adapters::ade20k_regvit.py"),
    ("dense_adapters::nothing_like_it_at_all.py", "the names are the files of"),
    ("configs/nope.py", "config not found: configs/nope.py"),
    ("mmseg::_base_/default_runtime.py", "other packages' configs (mmseg::...) can be bases"),
])
def test_bad_names_are_one_line_errors(path, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        C.resolve_config(path)


def test_a_user_base_with_a_typo_names_the_base(tmp_path):
    user = tmp_path / "u.py"
    user.write_text("_base_ = ['dense_adapters::ade20k_regvitt.py']\n")
    with pytest.raises(UserError, match="no config 'dense_adapters::ade20k_regvitt.py'"):
        C.read_config(str(user))


def test_tools_take_packaged_names(tmp_path, capsys, ade_sample):
    from dense_adapters.cli import check_dataset, skipat_retrofit, train
    from dense_adapters.cli.backbone import build_backbone
    from dense_adapters.cli.runner import default_work_dir

    assert default_work_dir("dense_adapters::ade20k_regvit.py") == osp.join("work_dirs", "ade20k_regvit")
    vit = build_backbone(config="dense_adapters::ade20k_regvit.py",
                         cfg_options={"model.backbone.depth": 2, "model.backbone.init_cfg": None})
    assert len(vit.blocks) == 2 and vit.num_prefix_tokens == 5
    retro = skipat_retrofit.config_from_args(skipat_retrofit.parse_args(
        ["--config", "dense_adapters::ade20k_regvit.py", "--skip", "3-8", "--images", str(tmp_path), "--out",
         str(tmp_path / "r")]))
    assert retro.spec.family == "regvit" and retro.spec.preset == "dinov2_vits14_reg4"
    assert retro.checkpoint == "checkpoints/dinov2_vits14_reg4_pretrain.pth"  # the config's init_cfg
    assert check_dataset.main(["dense_adapters::ade20k_regvit.py", "--split", "val", "--limit", "2",
                               "--data-root", ade_sample]) == 0
    assert train.main(["dense_adapters::ade20k_regvit_upernett.py", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: no config 'dense_adapters::ade20k_regvit_upernett.py' in this package: did you mean "
        "dense_adapters::ade20k_regvit_upernet.py, dense_adapters::ade20k_vit_upernet.py, "
        "dense_adapters::ade20k_regvit_skipat_upernet.py?"]


def test_demo_defaults_without_a_checkout(monkeypatch, tmp_path):
    from dense_adapters.cli import demo

    monkeypatch.setattr(demo, "checkout_root", lambda: None)
    monkeypatch.setenv("DENSE_ADAPTERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    args = demo.parse_args([])
    assert args.data == str(tmp_path / "cache" / "samples" / "ade")
    assert args.work_dir == str(tmp_path / "work_dirs" / "demo") and args.config == "dense_adapters::ade20k_regvit.py"
    monkeypatch.delenv("DENSE_ADAPTERS_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert demo.parse_args([]).data == str(tmp_path / "home" / ".cache" / "dense_adapters" / "samples" / "ade")
    monkeypatch.undo()
    assert demo.parse_args([]).data == osp.join(ROOT, "data", "samples", "ade")  # a clone: as scripts/demo.sh
