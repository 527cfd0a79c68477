"""Token norms and outlier detection, checked on a model whose outliers are planted by hand."""
import pytest
import torch

from dense_adapters.analysis.norms import outlier_mask, split_prefix, summarize, token_norms


def test_planted_outliers_found_at_their_positions(photos_batch, ana):
    vit = ana.planted_vit()
    norms = token_norms(vit, photos_batch)
    assert [ln.layer for ln in norms] == [0, 1, 2]
    assert norms[0].patches.shape == (3, 4, 6)  # non-square grid kept
    want = sorted(ana.PLANT["positions"])
    assert not outlier_mask(norms[0].patches, 150).any()  # before the planted block: nothing
    for ln in norms[1:]:
        for b in range(3):
            assert sorted(map(tuple, outlier_mask(ln.patches, 150)[b].nonzero().tolist())) == want
    s = summarize(norms, 150, names=["chelsea", "coffee", "rocket"]).as_dict()
    assert s["layers"][0]["num_outliers"] == 0
    assert s["layers"][2]["num_outliers"] == 6 and s["layers"][2]["outlier_fraction"] == pytest.approx(6 / 72)
    assert [sorted(map(tuple, o["positions"])) for o in s["layers"][2]["outliers"]] == [want] * 3
    assert s["layers"][2]["outliers"][1]["image"] == "coffee"
    # the relative criterion finds the same cells
    assert torch.equal(outlier_mask(norms[2].patches, relative=10), outlier_mask(norms[2].patches, 150))


def test_norms_equal_block_outputs_split_by_prefix(photos_batch, ana):
    vit = ana.tiny_vit(num_register_tokens=2)
    out = vit.forward_blocks(photos_batch, [1], capture=("out",))["out"][0]  # [B, 3 + 24, C]
    ln = token_norms(vit, photos_batch, [1])[0]
    assert ln.registers.shape == (3, 2) and ln.cls.shape == (3,)
    torch.testing.assert_close(ln.cls, out[:, 0].norm(dim=-1))
    torch.testing.assert_close(ln.registers, out[:, 1:3].norm(dim=-1))
    torch.testing.assert_close(ln.patches.flatten(1), out[:, 3:].norm(dim=-1))
    cls, reg, patches = split_prefix(out, ana.tiny_vit(num_register_tokens=2, class_token=False))
    assert cls is None and reg.shape[1] == 2 and patches.shape[1] == out.shape[1] - 2


def test_bad_thresholds_are_refused():
    x = torch.ones(1, 2, 2)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        outlier_mask(x, threshold=0)
    with pytest.raises(ValueError, match="relative threshold must be > 0"):
        outlier_mask(x, relative=-1)
