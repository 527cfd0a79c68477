"""LOST as tensor functions: planted objects, prefix tokens, and a NumPy/SciPy reference from the paper."""
import numpy as np
import pytest
import scipy.ndimage
import torch

from dense_adapters.discovery import (box_iou, boxes_to_image, corloc_hit, extract_features, lost, patch_degree,
                                      patch_tokens, seed_component, similarity)
from dense_adapters.nn import RegViT


# ----------------------------------------------------------------------------------- reference (paper text)
def reference_lost(f: np.ndarray, h: int, w: int, k: int, center: bool = False, bias: float = 0.0) -> dict:
    """LOST for one image, written from the paper's description with loops, NumPy and scipy.ndimage.label."""
    f = f.astype(np.float64)
    if center:
        f = f - f.mean(0, keepdims=True)
    L = f.shape[0]
    A = np.empty((L, L))
    for i in range(L):
        for j in range(L):
            A[i, j] = float(np.dot(f[i], f[j])) + bias
    degree = np.array([sum(1 for j in range(L) if j != i and A[i, j] > 0) for i in range(L)])
    order = np.argsort(degree, kind="stable")
    seed = int(order[0])
    similars = [int(p) for p in order[:k] if A[seed, p] > 0]
    M = np.zeros(L)
    for p in similars:
        M += A[p]
    mask = (M > 0).reshape(h, w)
    labels, _ = scipy.ndimage.label(mask)  # 4-connectivity, as LOST
    r, c = divmod(seed, w)
    comp = labels == labels[r, c]
    ys, xs = np.nonzero(comp)
    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return dict(seed=seed, degree=degree, similars=sorted(similars), mask=mask, comp=comp, box=box)


def planted(h: int, w: int, rect: tuple, extra: tuple = None, c: int = 24, seed: int = 0) -> torch.Tensor:
    """Patch features [h*w, C]: background along one direction, the object (rows/cols ``rect``) along an opposite
    one, so object patches correlate only with each other (lowest degree). ``extra``: a larger second blob."""
    g = torch.Generator().manual_seed(seed)
    bg, obj = torch.zeros(c), torch.zeros(c)
    bg[0], obj[0], obj[1] = 1.0, -0.5, 1.0
    f = bg + 0.05 * torch.randn(h, w, c, generator=g)
    for (r0, r1, c0, c1) in [rect] + ([extra] if extra else []):
        f[r0:r1, c0:c1] = obj + 0.05 * torch.randn(r1 - r0, c1 - c0, c, generator=g)
    return f.reshape(h * w, c)


# ------------------------------------------------------------------------------------------- planted object
def test_planted_object_is_recovered_on_a_non_square_grid():
    h, w = 6, 9
    feats = planted(h, w, (2, 4, 5, 8)).unsqueeze(0)  # object rows 2-3, cols 5-7
    out = lost(feats, (h, w), k_patches=100)
    r, c = divmod(int(out.seed[0]), w)
    assert 2 <= r < 4 and 5 <= c < 8
    assert out.box[0].tolist() == [5, 2, 8, 4]
    assert boxes_to_image(out.box, 14)[0].tolist() == [70.0, 28.0, 112.0, 56.0]
    assert out.mask.shape == (1, h, w) and out.mask[0, 2:4, 5:8].all() and out.mask.sum() == 6


def test_box_is_the_seed_component_not_the_whole_mask():
    h, w = 8, 10
    feats = planted(h, w, (1, 3, 1, 3), extra=(4, 8, 5, 10)).unsqueeze(0)  # small blob + larger blob
    out = lost(feats, (h, w), k_patches=100)
    assert out.mask[0, 4:8, 5:10].all()  # the larger blob is in the mask ...
    assert out.box[0].tolist() == [1, 1, 3, 3]  # ... but the box is the seed's (smaller, lower-degree) blob


def test_prefix_tokens_never_become_seeds():
    """cls + registers made extremely low-degree: removed through num_prefix_tokens, they are never the seed,
    whereas the classic bug ``tokens[:, 1:]`` keeps the registers and picks one of them."""
    h, w, P = 5, 7, 5  # cls + 4 registers
    patches = planted(h, w, (1, 3, 2, 4))  # [35, C]
    prefix = torch.zeros(P, patches.shape[1])
    prefix[:, 0] = -50.0 * torch.arange(1, P + 1)  # hugely anti-correlated with the background
    prefix[:, 2 + torch.arange(P)] = 100.0  # and with nothing else
    tokens = torch.cat([prefix, patches]).unsqueeze(0)  # [1, P + h*w, C]
    out = lost(patch_tokens(tokens, P, (h, w)), (h, w))
    r, c = divmod(int(out.seed[0]), w)
    assert 1 <= r < 3 and 2 <= c < 4 and out.box[0].tolist() == [2, 1, 4, 3]
    buggy = tokens[:, 1:]  # registers kept as if they were patches
    assert int(patch_degree(similarity(buggy)).argmin()) < P - 1  # the bug would seed on a register
    with pytest.raises(ValueError, match="cls AND register"):
        patch_tokens(tokens, 1, (h, w))
    with pytest.raises(ValueError, match="h\\*w"):
        lost(buggy, (h, w))


# --------------------------------------------------------------------------------- reference comparison
@pytest.mark.parametrize("k,center,bias", [(100, False, 0.0), (5, False, 0.0), (12, True, 0.0), (8, False, 3.0)])
def test_matches_reference_implementation(k, center, bias):
    h, w, B = 5, 7, 4
    g = torch.Generator().manual_seed(k)
    # small integers: every dot product is exact in float32, so signs (and ties, and zeros) agree exactly
    feats = torch.randint(-2, 3, (B, h * w, 6), generator=g).float()
    out = lost(feats, (h, w), k_patches=k, center=center, bias=bias)
    for b in range(B):
        ref = reference_lost(feats[b].numpy(), h, w, k, center, bias)
        assert int(out.seed[b]) == ref["seed"]
        np.testing.assert_array_equal(out.degree[b].numpy(), ref["degree"])
        assert torch.nonzero(out.similars[b]).flatten().tolist() == ref["similars"]
        np.testing.assert_array_equal(out.mask[b].numpy(), ref["mask"])
        np.testing.assert_array_equal(out.component[b].numpy(), ref["comp"])
        assert out.box[b].tolist() == ref["box"]


def test_batched_equals_one_by_one():
    feats = torch.randn(3, 4 * 6, 16, generator=torch.Generator().manual_seed(1))
    full = lost(feats, (4, 6), k_patches=10)
    for b in range(3):
        one = lost(feats[b : b + 1], (4, 6), k_patches=10)
        assert one.seed.item() == full.seed[b].item() and one.box[0].tolist() == full.box[b].tolist()
        assert torch.equal(one.component[0], full.component[b])


def test_seed_component_matches_scipy_label():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(16, 9, 13, generator=g) > 0.45
    snake = torch.zeros(1, 9, 13, dtype=torch.bool)  # a long serpentine: many flood-fill steps
    snake[0, 0::2] = True
    snake[0, 1::4, -1] = True
    snake[0, 3::4, 0] = True
    masks = torch.cat([masks, snake])
    seeds = torch.stack([torch.nonzero(m.flatten()).flatten()[0] for m in masks])
    comp = seed_component(masks, seeds)
    for m, s, cp in zip(masks.numpy(), seeds.tolist(), comp.numpy()):
        labels, _ = scipy.ndimage.label(m)
        np.testing.assert_array_equal(cp, labels == labels[divmod(s, 13)])
    assert comp[-1].sum() == snake.sum()


def test_negative_bias_degenerate_case_falls_back_to_the_seed_patch():
    feats = torch.randn(1, 12, 4, generator=torch.Generator().manual_seed(0))
    out = lost(feats, (3, 4), bias=-1e6)  # nothing is positively correlated, not even a patch with itself
    assert not out.seed_in_mask[0] and out.component[0].sum() == 1
    r, c = divmod(int(out.seed[0]), 4)
    assert out.box[0].tolist() == [c, r, c + 1, r + 1]


# ---------------------------------------------------------------------------------------- boxes & corloc
def test_boxes_to_image_scales_clips_and_offsets():
    box = torch.tensor([[0, 0, 5, 3], [2, 1, 4, 2]])
    out = boxes_to_image(box, (14, 16), image_hw=torch.tensor([[40, 70], [100, 100]]))
    assert out.tolist() == [[0.0, 0.0, 70.0, 40.0], [32.0, 14.0, 64.0, 28.0]]
    assert boxes_to_image(box[1:], 16, offset=(4, 8)).tolist() == [[24.0, 12.0, 56.0, 28.0]]


def test_box_iou_and_corloc():
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    gt = torch.tensor([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(box_iou(pred, gt)[0].numpy(), [50 / 150, 0.5, 0.0])
    assert corloc_hit(pred[0], gt)  # IoU 0.5 counts
    assert not corloc_hit(pred[0], gt[[0, 2]]) and not corloc_hit(pred[0], torch.zeros(0, 4))


# ----------------------------------------------------------------------------------------- model features
@pytest.mark.parametrize("which", ["k", "q", "v", "out"])
def test_extract_features_drops_cls_and_registers(which):
    torch.manual_seed(0)
    vit = RegViT(embed_dim=32, depth=2, num_heads=4, patch_size=16, num_register_tokens=4, img_size=64).eval()
    x = torch.randn(2, 3, 48, 80)  # 3 x 5 grid
    feats, hw = extract_features(vit, x, which)
    assert hw == (3, 5) and feats.shape == (2, 15, 32)
    res = vit.forward_blocks(x, [-1], capture=(which,))
    t = res[which][0]
    if which != "out":  # [B, heads, N, d]: LOST concatenates the heads per token
        t = torch.cat([t[:, i] for i in range(t.shape[1])], dim=-1)
    torch.testing.assert_close(feats, t[:, 5:])
    out = lost(feats, hw, k_patches=7)
    assert out.box.shape == (2, 4) and (out.box[:, 2] <= 5).all() and (out.box[:, 3] <= 3).all()
    with pytest.raises(ValueError, match="unknown features"):
        extract_features(vit, x, "attn")


def test_degenerate_seed_is_reported_and_the_registers_setting_removes_it():
    """All correlations positive (a large component shared by every patch, as DINOv2's keys have): every degree is
    L - 1, the seed is patch 0 by the tie rule and the box is the whole image; the flag says so. The Gram-matrix bias
    of the 'registers-dinov2' setting recovers the planted object."""
    from dense_adapters.discovery import SETTINGS, gram_bias

    h, w = 6, 9
    feats = planted(h, w, (2, 4, 5, 8))
    shared = torch.zeros(feats.shape[1])
    shared[5] = 3.0
    feats = (feats + shared).unsqueeze(0)
    plain = lost(feats, (h, w))
    assert bool(plain.degenerate[0]) and int(plain.seed_ties[0]) == h * w and int(plain.seed[0]) == 0
    assert plain.box[0].tolist() == [0, 0, w, h]  # the silent whole-image box
    setting = SETTINGS["registers-dinov2"]
    fixed = lost(feats, (h, w), center=setting["center"], bias=setting["bias"])
    assert not bool(fixed.degenerate[0]) and fixed.box[0].tolist() == [5, 2, 8, 4]
    A = similarity(feats)
    off = A[0][~torch.eye(h * w, dtype=torch.bool)]
    assert torch.allclose(fixed.bias, -off.mean().view(1)) and torch.allclose(gram_bias(A, "median"), -off.median())
    ok = lost(planted(h, w, (2, 4, 5, 8)).unsqueeze(0), (h, w))
    assert not bool(ok.degenerate[0]) and int(ok.seed_ties[0]) < h * w
    with pytest.raises(ValueError, match="unknown LOST bias 'avg'"):
        lost(feats, (h, w), bias="avg")
