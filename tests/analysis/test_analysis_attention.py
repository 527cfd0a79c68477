"""Prefix-token attention maps: probabilities, slicing through num_prefix_tokens, labels."""
import pytest
import torch

from dense_adapters.analysis.attention import cls_attention_features, prefix_attention


def test_rows_sum_to_one_and_match_softmax_of_q_k(photos_batch, ana):
    vit = ana.tiny_vit(num_register_tokens=2)
    res = prefix_attention(vit, photos_batch, [0, 2])
    probs, maps = res["probs"][1], res["maps"][1]  # block 2
    assert res["labels"] == ["cls", "reg0", "reg1"] and res["hw"] == (4, 6)
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
    assert maps.shape == (3, 3, 2, 4, 6)  # [B, P, heads, h, w]
    # patch columns + prefix columns = 1
    torch.testing.assert_close(maps.flatten(3).sum(-1) + probs[:, :, :3, :3].sum(-1).transpose(1, 2),
                               torch.ones(3, 3, 2))
    # the probabilities are softmax(q k^T / sqrt(d)) of the same block
    qk = vit.forward_blocks(photos_batch, [2], capture=("q", "k"))
    q, k = qk["q"][0], qk["k"][0]
    ref = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1)
    torch.testing.assert_close(probs, ref, rtol=1e-5, atol=1e-6)
    # maps keep the grid order: row r, col c is patch r * w + c
    torch.testing.assert_close(maps[:, 0, :, 2, 5], probs[:, :, 0, 3 + 2 * 6 + 5])
    f = cls_attention_features(probs, vit)
    assert f.shape == (3, 2 * 24)


def test_skip_blocks_and_missing_cls_refused(photos_batch, ana):
    vit = ana.tiny_vit(skip_layers=(1,))
    with pytest.raises(ValueError, match="SkipAt"):
        prefix_attention(vit, photos_batch, [1])
    with pytest.raises(ValueError, match="class token"):
        cls_attention_features(torch.zeros(1, 2, 5, 5), ana.tiny_vit(class_token=False))
