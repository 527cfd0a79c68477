"""Test-time registers against an independent implementation of Jiang et al.'s released code.

The reference below is written from the authors' description (``shared/algorithms.py``, ``shared/hook_fn.py``,
``shared/utils.py:sign_max``, their DINOv2 ``prepare_tokens_with_masks`` and CLIP ``VisionTransformer.forward`` of
github.com/nickjiang2378/test-time-registers): one image at a time, forward hooks on ``mlp.act``, the blocks run one by one,
the extra tokens appended at the end of the sequence, NumPy float64 for the scores. It shares nothing with the code
under test but the model's own embedding and blocks.
"""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from dense_adapters.analysis.register_neurons import find_register_neurons, read_register_neurons
from dense_adapters.analysis.synthetic import plant_dense_neuron, plant_register_neuron
from dense_adapters.analysis.test_time_registers import add_test_time_registers
from dense_adapters.nn import RegViT

A, B = [(1, 2), (3, 4)], [(0, 0), (2, 1)]  # outlier cells written in block 1 and in block 2
TWO = {1: [5, 9], 2: [7]}  # planted register neurons
DECOY = (1, 11)  # active everywhere


# ------------------------------------------------------------------------------------- the reference
def sign_max(t: torch.Tensor) -> torch.Tensor:
    hi, lo = torch.max(t), torch.min(t)
    return hi if abs(hi) > abs(lo) else lo


def run_blocks(vit, t, hw):
    """The model's blocks on tokens ``t``, one by one (rotary tables passed where the model has them): the outputs."""
    rope = vit.rope_tables(hw) if hasattr(vit, "rope_tables") else None
    outs = []
    for blk in vit.blocks:
        t = (blk(t, hw) if rope is None else blk(t, hw, rope=rope))[0]
        outs.append(t)
    return outs


def ref_search(vit, images, detect_layer, threshold, highest_layer, top_k, apply_sparsity_filter=True,
               outliers="all_tokens"):
    """algorithms.find_register_neurons + utils.filter_layers + [:top_k], one image per forward."""
    depth = len(vit.blocks)
    acts = [None] * depth
    hooks = [blk.mlp.act.register_forward_hook(lambda m, i, o, k=k: acts.__setitem__(k, o[0].double().numpy()))
             for k, blk in enumerate(vit.blocks)]
    scores = []
    with torch.no_grad():
        for x in images:
            outs = [t[0].double().numpy() for t in run_blocks(vit, *vit.prepare_tokens(x[None]))]
            norm_map = np.linalg.norm(outs[detect_layer], axis=1)  # [N]: every token, cls included
            if outliers == "patches":
                norm_map[: vit.num_prefix_tokens] = 0
            locs = np.where(norm_map > threshold)[0]
            if len(locs) == 0:
                continue
            per_layer = []
            for a in acts:  # [N, hidden]
                s = np.abs(a[locs]).mean(0)
                if apply_sparsity_filter:
                    s = s * (np.sum(a < 0.5, axis=0) >= 0.5 * a.shape[0])
                per_layer.append(s)
            scores.append(np.stack(per_layer))
    for h in hooks:
        h.remove()
    mean = np.mean(scores, axis=0)  # [layers, hidden]
    hidden = mean.shape[1]
    order = np.argsort(-mean.flatten(), kind="stable")
    ranked = [(int(i) // hidden, int(i) % hidden, float(mean.flatten()[i])) for i in order]
    return [r for r in ranked if r[0] <= highest_layer][:top_k]


def ref_forward(vit, x, neurons, num_registers=1, value="sign_max", first_image_only=False, norm_pre=None):
    """The authors' intervention: zero tokens appended after the position embedding ([cls | patches | extra]),
    through ``norm_pre`` if given (CLIP's ln_pre), and hook_fn.activate_on_registers on ``mlp.act``."""

    def activate_on_registers(module, inputs, output, idx):
        for b in range(1 if first_image_only else output.shape[0]):
            sel = output[b, :, idx]
            if value == "sign_max":
                output[b, -num_registers:, idx] = sign_max(sel)
            else:  # the first released hook: each neuron's own maximum
                output[b, -num_registers:, idx] = torch.max(sel, dim=0).values
            output[b, 1:-num_registers, idx] = 0

    hooks = [vit.blocks[l].mlp.act.register_forward_hook(lambda m, i, o, idx=idx: activate_on_registers(m, i, o, idx))
             for l, idx in neurons.items()]
    own_norm_pre = getattr(vit, "norm_pre", None)
    if isinstance(own_norm_pre, nn.Module):
        vit.norm_pre = nn.Identity()  # applied below, after the extra tokens join
    with torch.no_grad():
        t, hw = RegViT.prepare_tokens(vit, x)  # [cls | patches], position embedding added, no norm_pre
        t = torch.cat([t, t.new_zeros(t.shape[0], num_registers, t.shape[2])], dim=1)
        if norm_pre is not None:
            t = norm_pre(t)
        out = vit.norm(run_blocks(vit, t, hw)[-1])
    for h in hooks:
        h.remove()
    if isinstance(own_norm_pre, nn.Module):
        vit.norm_pre = own_norm_pre
    return torch.cat([out[:, :1], out[:, -num_registers:], out[:, 1:-num_registers]], dim=1)  # our layout


# ------------------------------------------------------------------------------------- planted models
def planted(depth=4, **kw):
    """Register neurons 5 and 9 (different activations) in block 1 at cells A, 7 in block 2 at cells B, a dense
    decoy in block 1: outliers at A from block 1 on and at B from block 2 on."""
    torch.manual_seed(0)
    vit = RegViT(arch="tiny", embed_dim=32, depth=depth, num_heads=2, img_size=(56, 84), patch_size=14, **kw).eval()
    quiet = dict(avoid_channels=(0, 1))
    plant_register_neuron(vit, 1, 5, A, channel=0, gain=4.0, seed=0, **quiet)
    plant_register_neuron(vit, 1, 9, A, channel=0, gain=2.0, strength=200.0, seed=1, **quiet)
    plant_register_neuron(vit, 2, 7, B, channel=1, gain=4.0, seed=2, **quiet)
    plant_dense_neuron(vit, *DECOY)
    return vit


def norm_pre_vit(**kw):
    torch.manual_seed(0)
    vit = RegViT(norm_pre=True, **kw)  # the core's norm_pre: the whole sequence after the prefix concat (ln_pre)
    with torch.no_grad():
        vit.norm_pre.weight.uniform_(0.5, 1.5)
        vit.norm_pre.bias.normal_(0, 0.5)
    return vit.eval()


def listed(res):
    return [(n["layer"], n["neuron"]) for n in res["neurons"]]


# ------------------------------------------------------------------------------------- search
@pytest.mark.parametrize("det,highest", [(-1, 3), (-1, 2), (3, 1)])
def test_search_equals_the_authors(photos_batch, det, highest):
    vit = planted()
    ours = find_register_neurons(vit, [photos_batch], detect_layer=det, threshold=150, max_layer=highest, top_k=8)
    ref = ref_search(vit, photos_batch, det, 150, highest, 8)
    assert listed(ours) == [(l, n) for l, n, _ in ref]
    np.testing.assert_allclose([n["score"] for n in ours["neurons"]], [s for _, _, s in ref], rtol=1e-6)
    planted_here = {(l, n) for l, ns in TWO.items() for n in ns if l <= highest}
    assert set(listed(ours)[: len(planted_here)]) == planted_here
    assert DECOY not in listed(ours)


def test_without_the_filter_the_dense_decoy_wins(photos_batch):
    vit = planted()
    ours = find_register_neurons(vit, [photos_batch], threshold=150, top_k=5, sparsity_fraction=0)
    ref = ref_search(vit, photos_batch, -1, 150, 3, 5, apply_sparsity_filter=False)
    assert listed(ours) == [(l, n) for l, n, _ in ref]
    assert listed(ours)[0] == DECOY and ours["sparsity_filter"] is None


def test_a_register_neuron_one_block_after_emergence(photos_batch):
    vit = planted()
    res = find_register_neurons(vit, [photos_batch], threshold=150, top_k=3)
    assert res["emergence_layer"] == 1 and res["outlier_fraction_by_layer"] == [0.0, 0.5, 1.0, 1.0]
    assert set(listed(res)) == {(1, 5), (1, 9), (2, 7)}
    early = find_register_neurons(vit, [photos_batch], threshold=150, top_k=3, max_layer="emergence")
    assert (2, 7) not in listed(early)  # this toolkit's earlier default missed it


def test_cls_in_the_outlier_set_is_an_option(photos_batch):
    vit = planted()
    with torch.no_grad():
        vit.cls_token.normal_(0, 60)  # a cls token of norm ~340, above the threshold in every block
    ref_all = ref_search(vit, photos_batch, -1, 150, 3, 6)  # the authors count cls
    ref_patches = ref_search(vit, photos_batch, -1, 150, 3, 6, outliers="patches")
    ours_all = find_register_neurons(vit, [photos_batch], threshold=150, top_k=6, include_prefix=True)
    ours = find_register_neurons(vit, [photos_batch], threshold=150, top_k=6)
    for res, ref in ((ours_all, ref_all), (ours, ref_patches)):
        assert listed(res) == [r[:2] for r in ref]
        np.testing.assert_allclose([n["score"] for n in res["neurons"]], [r[2] for r in ref], rtol=1e-6)
    # cls is one of 5 outlier tokens per image: the planted neurons' mean drops by about a fifth
    assert ours_all["neurons"][0]["score"] < 0.9 * ours["neurons"][0]["score"]
    assert ours_all["num_outliers"] == ours["num_outliers"] + 3


def test_search_batch_equals_one_image_at_a_time(photos_batch):
    vit = planted()
    whole = find_register_neurons(vit, [photos_batch], threshold=150, top_k=10)
    single = find_register_neurons(vit, [x[None] for x in photos_batch], threshold=150, top_k=10)
    assert listed(whole) == listed(single)
    np.testing.assert_allclose([n["score"] for n in whole["neurons"]], [n["score"] for n in single["neurons"]],
                               rtol=1e-6)
    assert whole["num_outliers"] == single["num_outliers"] == 12


# ------------------------------------------------------------------------------------- intervention
@pytest.mark.parametrize("neurons", [{1: [5]}, TWO], ids=["one_per_block", "several_per_block"])
@pytest.mark.parametrize("method,value", [("jiang2025", "sign_max"), ("per_neuron", "max")])
def test_intervention_equals_the_authors(photos_batch, neurons, method, value):
    # float64: the two token orders sum attention in different orders, which next to norm-500 outliers leaves
    # ~1e-4 of fp32 rounding; in float64 any difference left is a difference of computation
    vit, x = planted().double(), photos_batch.double()
    ref = ref_forward(copy.deepcopy(vit), x, neurons, value=value)
    add_test_time_registers(vit, neurons, method=method)
    torch.testing.assert_close(vit(x), ref, atol=1e-9, rtol=1e-9)
    if neurons == TWO:  # the outliers are gone from the patches and sit in the extra token
        norms = vit.forward_blocks(x, [3])["out"][0].norm(dim=-1)  # [B, 2 + 24]
        assert norms[:, 2:].max() < 30 and norms[:, 1].min() > 400


def test_methods_differ_with_several_neurons_per_block(photos_batch):
    runs = {}
    for method in ("jiang2025", "per_neuron"):
        vit = add_test_time_registers(planted(), TWO, method=method)
        runs[method] = vit.forward_blocks(photos_batch, [3])["out"][0][:, 1]  # the test-time register [B, C]
    gap = (runs["jiang2025"] - runs["per_neuron"]).norm(dim=-1)
    assert gap.min() > 50  # neuron 9 gets neuron 5's peak (~2x its own) in 'jiang2025'
    one = [add_test_time_registers(planted(), {1: [5], 2: [7]}, method=m)(photos_batch)
           for m in ("jiang2025", "per_neuron")]
    torch.testing.assert_close(one[0], one[1])  # equal with one neuron per block


def test_batch_equals_one_image_at_a_time_and_the_authors_batch_bug(photos_batch):
    vit = planted()
    plain = copy.deepcopy(vit)
    add_test_time_registers(vit, TWO)
    batch = vit(photos_batch)
    torch.testing.assert_close(batch, torch.cat([vit(x[None]) for x in photos_batch]), atol=1e-5, rtol=1e-5)
    # their hook edits output[0] only: on a batch the first image matches ours, the others keep their outliers
    literal = ref_forward(plain, photos_batch, TWO, first_image_only=True)
    torch.testing.assert_close(literal[:1], batch[:1], atol=1e-5, rtol=1e-5)
    assert (literal[1:] - batch[1:]).abs().max() > 1


def test_extra_tokens_pass_through_norm_pre(photos_batch):
    vit = norm_pre_vit(arch="tiny", embed_dim=32, depth=4, num_heads=2, img_size=(56, 84), patch_size=14)
    plant_register_neuron(vit, 1, 5, A, channel=0, seed=0)
    ref = ref_forward(copy.deepcopy(vit), photos_batch, {1: [5]}, norm_pre=vit.norm_pre)
    add_test_time_registers(vit, {1: [5]})
    out = vit(photos_batch)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # the extra token entered as LN(0) = norm_pre.bias, not as a zero token after norm_pre
    plain = vit.remove_test_time_registers()
    after = ref_forward(plain, photos_batch, {1: [5]},
                        norm_pre=lambda t: torch.cat([plain.norm_pre(t[:, :-1]), t[:, -1:]], dim=1))
    assert (out - after).abs().max() > 1e-2


def test_released_dinov2_list_applies_without_a_search():
    spec = read_register_neurons("dinov2_vitl14")
    assert sum(map(len, spec.neurons.values())) == 45 and sorted(spec.neurons) == [12, 13, 14, 15, 16, 17]
    assert spec.neurons[17][:3] == [133, 464, 841] and spec.method == "jiang2025"
    with torch.device("meta"):  # the architecture without the memory
        big = RegViT(arch="large", img_size=28, patch_size=14)
    add_test_time_registers(big, "dinov2_vitl14")
    assert big.num_prefix_tokens == 2 and big.test_time_register_method == "jiang2025"
    with pytest.raises(ValueError, match="found on another architecture: depth 24 .this model: 4."):
        add_test_time_registers(planted(), "dinov2_vitl14")


def test_rope_model_leaves_the_extra_tokens_unrotated(photos_batch):
    # the reference appends the extra token after the patches, where the rotary embedding does not reach it either
    vit, x = planted(rope=True).double(), photos_batch.double()
    ref = ref_forward(copy.deepcopy(vit), x, TWO)
    add_test_time_registers(vit, TWO)
    torch.testing.assert_close(vit(x), ref, atol=1e-9, rtol=1e-9)
    assert {m.num_prefix_tokens for m in vit.modules() if hasattr(m, "num_prefix_tokens")} == {2}


# ------------------------------------------------------------------------------------- OpenCLIP, on open_clip itself
def authors_clip(vis, x, neurons, init):
    """The authors' CLIP recipe run on open_clip's own VisionTransformer: one extra token appended after the position
    embedding (zeros, or the patches' mean as their CLIP ``forward`` builds it), through ``ln_pre``, and the
    register neurons' activation edited at ``mlp.gelu`` per image (sign_max into the extra token, patches zeroed).
    Returns open_clip's (pooled, tokens): tokens [B, hw + 1, C] after ln_post, the extra token last."""

    def append(module, args):
        t = args[0]  # [B, 1 + hw, C]
        extra = t[:, 1:].mean(1, keepdim=True) if init == "mean" else t.new_zeros(t.shape[0], 1, t.shape[2])
        return (torch.cat([t, extra], dim=1),)

    def edit(output, idx):
        for b in range(output.shape[0]):
            peak = sign_max(output[b, :, idx])
            output[b, -1:, idx] = peak
            output[b, 1:-1, idx] = 0
        return output

    hooks = [vis.ln_pre.register_forward_pre_hook(append)] + [
        vis.transformer.resblocks[l].mlp.gelu.register_forward_hook(lambda m, i, o, idx=idx: edit(o, idx))
        for l, idx in neurons.items()]
    vis.output_tokens = True
    try:
        with torch.no_grad():
            return vis(x)
    finally:
        for h in hooks:
            h.remove()


@pytest.mark.parametrize("init", ["zero", "mean"])
def test_openclip_preset_equals_the_authors_clip_code(photos_batch, tmp_path, init):
    """The ``openclip_vitb16`` preset at test width (ln_pre, no patch bias, LayerNorm eps 1e-5) loaded from a random
    open_clip CLIP checkpoint: test-time registers equal the authors' recipe on open_clip's VisionTransformer (their
    token order, open_clip's attention and MLP), in float64."""
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    from dense_adapters.nn import create_regvit, load_pretrained

    torch.manual_seed(0)
    clip = open_clip.CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(layers=3, width=64, head_width=16, patch_size=14,
                                                                 image_size=(56, 84)),
                          text_cfg=CLIPTextCfg(context_length=8, vocab_size=100, width=32, heads=2, layers=1))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clip.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    torch.save(clip.state_dict(), tmp_path / "clip.pth")
    ours = create_regvit("openclip_vitb16", embed_dim=64, depth=3, num_heads=4, patch_size=14, img_size=(56, 84))
    assert load_pretrained(ours, str(tmp_path / "clip.pth")).complete
    vis, ours, x = clip.visual.double().eval(), ours.double().eval(), photos_batch.double()
    neurons = {0: [3, 17], 2: [40]}  # two neurons in one block (one peak for both), one in another
    pooled, tokens = authors_clip(vis, x, neurons, init)
    add_test_time_registers(ours, neurons, init=init)  # method 'jiang2025'
    with torch.no_grad():
        out = ours(x)  # [cls | test-time register | patches], after the final norm (ln_post)
    torch.testing.assert_close(out[:, 2:], tokens[:, :-1], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(out[:, 1], tokens[:, -1], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(out[:, 0] @ vis.proj, pooled, atol=1e-8, rtol=1e-9)  # a sum of 64 terms ~ 1
    plain = authors_clip(vis, x, {}, init)[1][:, :-1]  # the extra token alone, no neuron edited
    assert (plain - tokens[:, :-1]).abs().max() > 1e-4  # the edit moves the tokens far beyond the tolerance
