"""The Uformer authors' released weights through the tools: tools/denoise.py --checkpoint and tools/test.py route
them into the generator (converted, strict) with the SIDD config's shift_from_size; the convert tool checks them."""
import os.path as osp

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


def test_test_tool_routes_the_authors_weights_to_the_generator(tmp_path):
    _, path = authors_file(tmp_path)
    cfg = Config.fromfile(SIDD_T)
    assert test_tool._uformer_release(cfg, path, False)
    torch.save({"state_dict": {"generator.net." + k: v for k, v in create_uformer("T").state_dict().items()}},
               tmp_path / "ours.pth")  # a Runner checkpoint of ours: load_from as before
    assert not test_tool._uformer_release(cfg, str(tmp_path / "ours.pth"), False)


def test_convert_tool_checks_a_uformer_file(tmp_path, capsys):
    src, path = authors_file(tmp_path)
    out = str(tmp_path / "converted.pth")
    assert convert_checkpoint.main([path, out]) == 0
    assert "Uformer" in capsys.readouterr().out
    sd = torch.load(out, weights_only=True)
    assert sd.keys() == src.state_dict().keys()
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in sd.items())
