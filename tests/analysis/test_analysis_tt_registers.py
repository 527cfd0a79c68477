"""Test-time registers: the search finds the planted neuron; the shift removes the outlier and changes little else."""
import json

import pytest
import torch

from dense_adapters.analysis.norms import outlier_mask, token_norms
from dense_adapters.analysis.test_time_registers import (TestTimeRegisterMixin, TestTimeRegisterViT,
                                                         add_test_time_registers, find_register_neurons,
                                                         load_register_neurons)


def test_search_ranks_the_planted_neuron_first(photos_batch, ana):
    vit = ana.planted_vit()
    res = find_register_neurons(vit, [photos_batch[:2], photos_batch[2:]], threshold=150, top_k=5)
    top = res["neurons"][0]
    assert (top["layer"], top["neuron"]) == (ana.PLANT["block"], ana.PLANT["neuron"])
    assert top["score"] > 10 * res["neurons"][1]["score"]
    # every block is scored (the authors' procedure); the emergence block is reported
    assert res["emergence_layer"] == ana.PLANT["block"] and res["max_layer"] == 2
    assert {n["layer"] for n in res["neurons"][1:]} - {ana.PLANT["block"]}
    assert res["outlier_fraction_by_layer"] == [0.0, 1.0, 1.0]
    assert res["num_outliers"] == 6 and res["num_images_with_outliers"] == 3
    assert res["method"] == "jiang2025" and res["sparsity_filter"] == {"fraction": 0.5, "activation": 0.5}
    assert ana.PLANT["neuron"] in load_register_neurons(json.loads(json.dumps(res)))[ana.PLANT["block"]]
    # this toolkit's earlier layer range: blocks up to the emergence block only
    early = find_register_neurons(vit, [photos_batch], threshold=150, top_k=5, max_layer="emergence")
    assert early["max_layer"] == ana.PLANT["block"]
    assert all(n["layer"] <= ana.PLANT["block"] for n in early["neurons"])


def test_no_outliers_gives_a_clear_error(photos_batch, ana):
    with pytest.raises(ValueError, match="no patch token above norm 150"):
        find_register_neurons(ana.tiny_vit(), [photos_batch])


def test_shift_removes_outliers_and_keeps_other_outputs(photos_batch, ana):
    vit = ana.planted_vit()
    before = vit(photos_batch)  # [B, 1 + 24, C]
    pre = vit.forward_blocks(photos_batch, [2])["out"][0]  # before the final norm
    n_before = token_norms(vit, photos_batch)
    keys = set(vit.state_dict())
    add_test_time_registers(vit, {ana.PLANT["block"]: [ana.PLANT["neuron"]]})
    assert isinstance(vit, TestTimeRegisterMixin) and vit.num_prefix_tokens == 2
    assert set(vit.state_dict()) == keys  # no new parameters: checkpoints stay interchangeable
    after = vit(photos_batch)  # [B, 2 + 24, C]
    n_after = token_norms(vit, photos_batch)
    for ln in n_after:
        assert not outlier_mask(ln.patches, 150).any()
        assert ln.patches.max() < 15  # the planted cells keep only their position marker (2 sqrt(32) ~ 11)
    # the outlier norm now sits in the test-time register
    assert n_after[2].registers.shape == (3, 1)
    assert n_after[2].registers.min() > 150
    assert n_after[0].registers.max() < 1  # an ordinary (zero-initialised) token before the register neuron's block
    # the other patches barely move (< 2 % of their norm)
    planted = torch.zeros(4, 6, dtype=torch.bool)
    for r, c in ana.PLANT["positions"]:
        planted[r, c] = True
    keep = ~planted.flatten()
    rel = (after[:, 2:] - before[:, 1:]).norm(dim=-1) / before[:, 1:].norm(dim=-1)  # [B, 24] (final norm applied)
    assert rel[:, keep].max() < 0.02 and rel[:, ~keep].min() > 0.5
    # cls moves by < 1 % of the outlier norm that moved (in a random model it attends to the outliers a lot)
    out_b, out_a = pre[:, 0], vit.forward_blocks(photos_batch, [2])["out"][0][:, 0]
    assert (out_a - out_b).norm(dim=-1).max() < 0.01 * n_before[2].patches.max()
    # ... while without the shift they are far from it at the planted cells
    assert (n_before[2].patches[:, planted] > 150).all()
    # intermediate dense features keep their grid
    maps = vit.forward_intermediates(photos_batch, [2])
    assert maps[0].shape == (3, 32, 4, 6)
    vit.remove_test_time_registers()
    assert type(vit).__name__ == "RegViT" and vit.num_prefix_tokens == 1
    torch.testing.assert_close(vit(photos_batch), before)


def test_constructor_matches_conversion_with_registers_and_skipat(photos_batch, ana):
    kw = dict(num_register_tokens=2, skip_layers=(2,))
    spec = [(1, 5), (0, 3)]
    a = add_test_time_registers(ana.tiny_vit(**kw), spec, num_test_time_registers=2)
    torch.manual_seed(0)
    b = TestTimeRegisterViT(spec, 2, **{**ana.TINY, **kw}).eval()
    assert a.num_prefix_tokens == b.num_prefix_tokens == 5
    assert all(blk.num_prefix_tokens == 5 for blk in a.blocks)
    torch.testing.assert_close(a(photos_batch), b(photos_batch))
    f = a.forward_features(photos_batch)
    assert f["x_norm_regtokens"].shape == (3, 4, 32) and f["x_norm_patchtokens"].shape == (3, 24, 32)
    # both test-time registers receive the same peak activation: identical tokens
    torch.testing.assert_close(f["x_norm_regtokens"][:, 2], f["x_norm_regtokens"][:, 3])
    with pytest.raises(ValueError, match="already has test-time registers"):
        add_test_time_registers(a, spec)


def test_neuron_specs_and_bad_input(tmp_path, ana):
    assert load_register_neurons([(2, 7), (0, 1), (2, 3)]) == {0: [1], 2: [3, 7]}
    assert load_register_neurons({"1": [4, 4]}) == {1: [4]}
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"neurons": [{"layer": 1, "neuron": 2, "score": 3.0}]}))
    assert load_register_neurons(str(path)) == {1: [2]}
    with pytest.raises(ValueError, match="cannot read register neurons"):
        load_register_neurons(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="no register neurons"):
        load_register_neurons([])
    with pytest.raises(ValueError, match="layer 9 out of range"):
        add_test_time_registers(ana.tiny_vit(), [(9, 0)])
    with pytest.raises(ValueError, match="out of range for block 0's MLP width 128"):
        add_test_time_registers(ana.tiny_vit(), [(0, 128)])
    with pytest.raises(TypeError, match="needs a dense_adapters.nn.RegViT"):
        add_test_time_registers(torch.nn.Linear(2, 2), [(0, 0)])
