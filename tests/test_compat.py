"""The compat layer: mmseg imports under mmcv-lite, compiled ops fail with their name, checkpoints stay safe."""
import pytest
import torch

from dense_adapters import compat
from dense_adapters.registry import register_all_modules

register_all_modules()


@pytest.mark.skipif(compat.has_compiled_mmcv(), reason="full mmcv installed: the stand-in is not used")
def test_compiled_op_under_mmcv_lite_names_the_op():
    from mmcv.utils import ext_loader

    ext = ext_loader.load_ext("_ext", ["nms"])
    with pytest.raises(compat.CompiledOpUnavailable, match="mmcv op 'nms' needs compiled mmcv"):
        ext.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)


def test_mmseg_models_and_heads_import():
    from mmseg.models.decode_heads import FCNHead, UPerHead  # noqa: F401
    from mmseg.models.segmentors import EncoderDecoder  # noqa: F401


def test_mmengine_message_hub_round_trips_with_weights_only(tmp_path):
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("compat_test")
    for v in (1.0, 2.0, 3.0):
        hub.update_scalar("train/loss", v)
    torch.save({"message_hub": hub.state_dict()}, tmp_path / "ckpt.pth")
    state = torch.load(tmp_path / "ckpt.pth", weights_only=True)["message_hub"]
    buf = state["log_scalars"]["train/loss"]
    assert buf.mean() == 2.0 and buf.statistics("max") == 3.0
