"""ViTDet's simple feature pyramid: strides and shapes for patch 16 and 14 (square and not), the one-block-per-scale
option, and the computation against a functional re-statement of detectron2's SimpleFeaturePyramid."""
import pytest
import torch
import torch.nn.functional as F

from dense_adapters.errors import UserError
from dense_adapters.models.necks.simple_fpn import LayerNorm2d, SimpleFeaturePyramid
from dense_adapters.registry import MODELS
from dense_adapters.utils import register_all_modules

register_all_modules()


def vit(patch: int, depth: int = 2, out_indices=(-1,)):
    return MODELS.build(dict(type="dense_adapters.RegViT", img_size=4 * patch, patch_size=patch, embed_dim=32,
                             depth=depth, num_heads=2, num_register_tokens=2, out_indices=out_indices)).eval()


@pytest.mark.parametrize("patch, size, grid, strides", [
    (16, (64, 64), (4, 4), (4, 8, 16, 32)),
    (16, (64, 96), (4, 6), (4, 8, 16, 32)),  # non-square
    (16, (96, 32), (6, 2), (4, 8, 16, 32)),
    (14, (56, 56), (4, 4), (3.5, 7, 14, 28)),
    (14, (56, 84), (4, 6), (3.5, 7, 14, 28)),
])
def test_strides_and_shapes(patch, size, grid, strides):
    neck = SimpleFeaturePyramid(in_channels=32, out_channels=24).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        feats = vit(patch)(x)
        outs = neck(feats)
    assert feats[0].shape[-2:] == grid
    assert [tuple(o.shape) for o in outs] == [(2, 24, int(grid[0] * s), int(grid[1] * s)) for s in (4, 2, 1, 0.5)]
    for o, s in zip(outs, strides):  # pixels of the input per output cell, on both axes
        assert (size[0] / o.shape[-2], size[1] / o.shape[-1]) == (s, s)


@pytest.mark.parametrize("size, grid, shapes", [
    ((512, 512), (37, 37), [(148, 148), (74, 74), (37, 37), (18, 18)]),  # ViT pads 512 -> 518 (centre, 3 px a side)
    ((532, 532), (38, 38), [(152, 152), (76, 76), (38, 38), (19, 19)]),  # what the S/14 configs pad batches to
    ((504, 700), (36, 50), [(144, 200), (72, 100), (36, 50), (18, 25)]),
])
def test_patch14_at_config_sizes(size, grid, shapes):
    neck = SimpleFeaturePyramid(in_channels=32, out_channels=8).eval()
    backbone = MODELS.build(dict(type="dense_adapters.RegViT", img_size=56, patch_size=14, embed_dim=32, depth=1,
                                 num_heads=2)).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, *size))
        outs = neck(feats)
    assert feats[0].shape[-2:] == grid
    assert [tuple(o.shape[-2:]) for o in outs] == shapes


def _reference(neck: SimpleFeaturePyramid, x: torch.Tensor) -> list:
    """detectron2's SimpleFeaturePyramid written out with functional ops, reading the neck's weights by role."""

    def ln(t, m):  # LayerNorm over channels, eps 1e-6
        return F.layer_norm(t.permute(0, 2, 3, 1), (t.shape[1],), m.weight, m.bias, 1e-6).permute(0, 3, 1, 2)

    outs = []
    for scale, stage in zip(neck.scale_factors, neck.stages):
        m = list(stage)
        if scale == 4.0:
            t = F.conv_transpose2d(x, m[0].weight, m[0].bias, stride=2)
            t = F.gelu(ln(t, m[1]))
            t = F.conv_transpose2d(t, m[3].weight, m[3].bias, stride=2)
            m = m[4:]
        elif scale == 2.0:
            t, m = F.conv_transpose2d(x, m[0].weight, m[0].bias, stride=2), m[1:]
        elif scale == 1.0:
            t = x
        else:
            t, m = F.max_pool2d(x, 2, 2), m[1:]
        assert m[0].bias is None and m[2].bias is None  # convs followed by a norm carry no bias (ViTDet)
        t = ln(F.conv2d(t, m[0].weight), m[1])
        outs.append(ln(F.conv2d(t, m[2].weight, padding=1), m[3]))
    return outs


def test_matches_vitdet_computation():
    torch.manual_seed(0)
    neck = SimpleFeaturePyramid(in_channels=32, out_channels=16)
    for p in neck.parameters():  # non-trivial norm affine parameters too
        p.data.normal_()
    x = torch.randn(2, 32, 5, 7)  # odd sides: max-pool floors to (2, 3)
    with torch.no_grad():
        got, want = neck((x,)), _reference(neck, x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    # widths as ViTDet: C -> C/2 -> C/4 at 4x, C/2 at 2x, then 1x1 to out_channels
    assert neck.stages[0][0].out_channels == 16 and neck.stages[0][3].out_channels == 8
    assert neck.stages[1][0].out_channels == 16 and neck.stages[0][4].in_channels == 8


def test_layernorm2d_is_channel_layernorm():
    m = LayerNorm2d(6)
    m.weight.data.normal_(), m.bias.data.normal_()
    x = torch.randn(2, 6, 3, 4)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), m.weight, m.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(m(x), ref)


def test_one_block_per_scale():
    backbone = vit(16, depth=4, out_indices=(0, 1, 2, 3))
    neck = SimpleFeaturePyramid(in_channels=32, out_channels=8, in_index=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 96))
        outs = neck(feats)
        assert not torch.equal(feats[0], feats[3])
        for k in range(4):  # scale k is computed from block k (the shallowest at 4x)
            assert torch.equal(outs[k], neck.stages[k](feats[k]))
    with pytest.raises(UserError, match="set the backbone's out_indices"):
        neck(feats[:1])


def test_norm_options_and_errors():
    bn = MODELS.build(dict(type="dense_adapters.SimpleFeaturePyramid", in_channels=32, out_channels=8,
                           norm_cfg=dict(type="BN")))
    assert isinstance(bn.stages[2][1], torch.nn.BatchNorm2d)
    plain = SimpleFeaturePyramid(in_channels=32, out_channels=8, norm_cfg=None)
    assert plain.stages[2][0].bias is not None and isinstance(plain.stages[2][1], torch.nn.Identity)
    assert len(SimpleFeaturePyramid(32, 8, scale_factors=(2.0, 1.0))((torch.randn(1, 32, 4, 4),))) == 2
    with pytest.raises(UserError, match="each must be one of"):
        SimpleFeaturePyramid(32, 8, scale_factors=(8.0,))
    with pytest.raises(UserError, match="one entry per scale"):
        SimpleFeaturePyramid(32, 8, in_index=(0, 1))
    with pytest.raises(UserError, match="divisible by 4"):
        SimpleFeaturePyramid(30, 8)
