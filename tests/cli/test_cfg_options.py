"""--cfg-options is checked against the config: a typo names the nearest key, a new entry needs a leading + (or
must be an argument of the class its dict names), values keep their type, and every item needs '='."""
import argparse
import os.path as osp

import pytest

from dense_adapters.cli.cfg_options import CfgOptionsAction
from dense_adapters.cli.runner import load_config
from dense_adapters.errors import UserError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, "configs", "ade20k_regvit.py")


@pytest.fixture(scope="module", autouse=True)
def registered():
    from dense_adapters.utils import register_all_modules

    register_all_modules()


@pytest.mark.parametrize("key, value, message", [
    ("trian_cfg.max_iters", 1, "no key 'trian_cfg' at the top level of the config: did you mean train_cfg? (to add a "
                               "new entry on purpose, write +trian_cfg.max_iters=...)"),
    ("train_cfg.max_iter", 1, "no key 'max_iter' in train_cfg: did you mean train_cfg.max_iters?"),
    ("optim_wrapper.optimizer.lrr", 1e-3, "no key 'lrr' in optim_wrapper.optimizer: did you mean "
                                          "optim_wrapper.optimizer.lr?"),
    ("model.backbone.drop_pth_rate", 0.1, "no key 'drop_pth_rate' in model.backbone: did you mean "
                                          "model.backbone.drop_path_rate?"),
    ("train_dataloader.dataset.pipeline.9.prob", 0.3, "train_dataloader.dataset.pipeline is a list of 7: address its "
                                                      "entries by index 0..6"),
    ("train_cfg.max_iters", "abc", "train_cfg.max_iters is an integer (40000 in the config), not 'abc'"),
    ("train_cfg.max_iters", 1.5, "train_cfg.max_iters is an integer (40000 in the config), not 1.5"),
    ("model.backbone.frozen", 3, "model.backbone.frozen is true/false (True in the config), not 3"),
    ("model.backbone", "x", "model.backbone is a dict (type='dense_adapters.RegViT'): set its entries"),
])
def test_bad_override_is_one_line_naming_the_fix(key, value, message):
    with pytest.raises(UserError) as e:
        load_config(CFG, {key: value})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_legitimate_new_entries_are_accepted():
    cfg = load_config(CFG, {
        "model.backbone.drop_path_rate": 0.1,  # an argument of RegViT (through the core RegViT it builds)
        "train_cfg.val_begin": 2,  # an argument of IterBasedTrainLoop
        "resume": True, "optim_wrapper.optimizer.lr": 1,  # an int where a float was: fine
        "+my_note.text": "hello",  # a new entry on purpose
        "+model.backbone.init_cfg.checkpoint": "w.pth"})  # '+' also makes a dict where there is None
    assert cfg.model.backbone.drop_path_rate == 0.1 and cfg.train_cfg.val_begin == 2 and cfg.my_note.text == "hello"
    assert cfg.optim_wrapper.optimizer.lr == 1 and cfg.model.backbone.init_cfg.checkpoint == "w.pth"


@pytest.mark.parametrize("item", ["train_cfg.max_iters", "=3", "a=[1,2", "model.init_cfg=dict(type='P',checkpoint='x')"])
def test_item_without_key_value_form_is_a_usage_error(item, capsys):
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--cfg-options", nargs="+", action=CfgOptionsAction, default={})
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--cfg-options", item])
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("t: error: argument --cfg-options: --cfg-options ") and len(err) == 2


def test_train_tool_refuses_a_typo_before_anything_runs(capsys, tmp_path):
    from dense_adapters.cli import train

    work = tmp_path / "w"
    code = train.main([CFG, "--work-dir", str(work), "--cfg-options", "trian_cfg.max_iters=1"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        "error: --cfg-options trian_cfg.max_iters=1: no key 'trian_cfg' at the top level of the config: did you "
        "mean train_cfg?")
    assert not work.exists()
