"""Fine-tuning from a checkpoint of another class count: heads may differ, the backbone may not."""
import pytest
import torch

from dense_adapters.engine.checkpoint_fit import check_fits
from dense_adapters.errors import CheckpointMismatch


@pytest.mark.parametrize("head", ["head", "heads.3", "decode_head.conv_seg", "auxiliary_head.conv_seg"])
def test_finetune_skips_any_head_of_another_class_count(head):
    own = {"backbone.vit.blocks.0.mlp.fc1.weight": torch.zeros(8, 4), f"{head}.weight": torch.zeros(1000, 4)}
    ckpt = {"backbone.vit.blocks.0.mlp.fc1.weight": torch.ones(8, 4), f"{head}.weight": torch.ones(10, 4)}
    assert check_fits(ckpt, own, mode="finetune") == [f"{head}.weight"]
    with pytest.raises(CheckpointMismatch):
        check_fits(ckpt, own, mode="strict")


def test_finetune_refuses_a_backbone_of_another_shape_even_named_like_a_head():
    own = {"backbone.vit.head_norm.weight": torch.zeros(8), "head.weight": torch.zeros(5, 8)}
    ckpt = {"backbone.vit.head_norm.weight": torch.zeros(16), "head.weight": torch.zeros(5, 16)}
    with pytest.raises(CheckpointMismatch, match="head_norm"):
        check_fits(ckpt, own, mode="finetune")
