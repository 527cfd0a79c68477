"""Deformable attention: the kernel choice (PyTorch whenever compiled ops are missing), the PyTorch kernel against a
reference written from the formula, the module against mmcv's on the CPU, and the compiled op where it exists."""
import pytest
import torch

from dense_adapters import _mmcv_lite
from dense_adapters.errors import CompiledOpUnavailable, UserError
from dense_adapters.models.layers import ms_deform_attn as M
from dense_adapters.registry import MODELS
from dense_adapters.utils import register_all_modules

MMCVAttention = M.MMCVMultiScaleDeformableAttention  # mmcv.ops' class (imported after the mmcv-lite stand-in)

register_all_modules()
SHAPES = [(6, 5), (3, 4), (2, 2)]  # (h, w) per level, non-square


def reference(value, shapes, locations, weights):
    """sum over levels l and points p of weight * bilinear(value_l, location), written out per corner.

    value [B, S, H, d]; locations [B, Q, H, L, P, 2] (x, y) in [0, 1] over the level's map (cell centres at
    (i + 0.5) / n, outside the map counts as zero); weights [B, Q, H, L, P] -> [B, Q, H * d], in float64.
    """
    B, S, H, d = value.shape
    Q, L, P = locations.shape[1], locations.shape[3], locations.shape[4]
    out = torch.zeros(B, Q, H, d, dtype=torch.float64)
    b = torch.arange(B)[:, None, None, None]
    head = torch.arange(H)[None, None, :, None]
    start = 0
    for lvl, (h, w) in enumerate(shapes):
        v = value[:, start:start + h * w].double().reshape(B, h, w, H, d)
        start += h * w
        px = locations[:, :, :, lvl, :, 0].double() * w - 0.5  # [B, Q, H, P] in pixel units
        py = locations[:, :, :, lvl, :, 1].double() * h - 0.5
        x0, y0 = px.floor(), py.floor()
        for cx in (x0, x0 + 1):
            for cy in (y0, y0 + 1):
                corner = (1 - (px - cx).abs()) * (1 - (py - cy).abs())
                inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
                vals = v[b, cy.clamp(0, h - 1).long(), cx.clamp(0, w - 1).long(), head]  # [B, Q, H, P, d]
                coef = weights[:, :, :, lvl].double() * corner * inside
                out += (coef[..., None] * vals).sum(3)
    return out.reshape(B, Q, H * d)


def random_inputs(B=2, Q=7, H=2, d=4, P=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    S = sum(h * w for h, w in SHAPES)
    value = torch.randn(B, S, H, d, generator=g)
    locations = torch.rand(B, Q, H, len(SHAPES), P, 2, generator=g) * 1.4 - 0.2  # some fall outside the map
    weights = torch.rand(B, Q, H, len(SHAPES), P, generator=g).softmax(-1)
    return value, torch.tensor(SHAPES), locations, weights


def test_pytorch_kernel_equals_reference():
    value, shapes, loc, w = random_inputs()
    got = M.deformable_attention_pytorch(value, shapes, loc, w)
    torch.testing.assert_close(got.double(), reference(value, SHAPES, loc, w), rtol=1e-5, atol=1e-5)


def test_pytorch_kernel_in_bf16_samples_in_fp32():
    value, shapes, loc, w = random_inputs(seed=1)
    got = M.deformable_attention_pytorch(value.bfloat16(), shapes, loc.bfloat16(), w.bfloat16())
    assert got.dtype == torch.bfloat16
    want = reference(value.bfloat16().float(), SHAPES, loc.bfloat16().float(), w.bfloat16().float())
    torch.testing.assert_close(got.double(), want, rtol=0.02, atol=0.02)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # under autocast too (grid_sample wants one dtype)
        M.deformable_attention_pytorch(value.bfloat16(), shapes, loc, w)


@pytest.mark.parametrize("impl, device, compiled, want", [
    ("auto", "cuda", False, "pytorch"),  # mmcv-lite on a GPU: the PyTorch kernel, not the missing op
    ("auto", "cuda", True, "cuda"),
    ("auto", "cpu", True, "pytorch"),
    ("auto", "cpu", False, "pytorch"),
    ("pytorch", "cuda", True, "pytorch"),
    ("cuda", "cuda", True, "cuda"),
])
def test_kernel_choice(impl, device, compiled, want):
    assert M.resolve_impl(impl, device, compiled) == want


def test_kernel_choice_errors():
    with pytest.raises(CompiledOpUnavailable, match="only mmcv-lite is installed"):
        M.resolve_impl("cuda", "cuda", compiled=False)
    with pytest.raises(CompiledOpUnavailable, match="CUDA tensors only"):
        M.resolve_impl("cuda", "cpu", compiled=True)
    with pytest.raises(UserError, match="unknown deformable-attention impl"):
        MODELS.build(dict(type="dense_adapters.MultiScaleDeformableAttention", impl="triton"))


def test_detected_lite_install_picks_pytorch_on_gpus():
    if _mmcv_lite.has_compiled_mmcv():
        pytest.skip("full mmcv installed: the compiled op is the default on GPUs")
    assert M.resolve_impl("auto", "cuda") == "pytorch"


def _pair(batch_first: bool):
    torch.manual_seed(0)
    kw = dict(embed_dims=16, num_heads=2, num_levels=len(SHAPES), num_points=3, dropout=0.0, batch_first=batch_first)
    ours = MODELS.build(dict(type="dense_adapters.MultiScaleDeformableAttention", **kw)).eval()
    theirs = MMCVAttention(**kw).eval()
    for p in ours.parameters():
        p.data.normal_(std=0.3)
    theirs.load_state_dict(ours.state_dict())  # same keys as mmcv's
    return ours, theirs


@pytest.mark.parametrize("batch_first", [True, False])
def test_module_equals_mmcv_on_cpu(batch_first, monkeypatch):
    ours, theirs = _pair(batch_first)
    S, B, Q = sum(h * w for h, w in SHAPES), 2, 5
    g = torch.Generator().manual_seed(3)
    value = torch.randn(B, S, 16, generator=g)
    query = torch.randn(B, Q, 16, generator=g)
    pos = torch.randn(B, Q, 16, generator=g)
    ref_pts = torch.rand(B, Q, len(SHAPES), 2, generator=g)
    shapes = torch.tensor(SHAPES)
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    if not batch_first:
        value, query, pos = value.transpose(0, 1), query.transpose(0, 1), pos.transpose(0, 1)
    monkeypatch.setattr(M.MultiScaleDeformableAttnFunction, "apply",
                        lambda *a: pytest.fail("the compiled op was called on the CPU"))
    kw = dict(query=query, value=value, query_pos=pos, reference_points=ref_pts, spatial_shapes=shapes,
              level_start_index=start)
    out = ours(**kw)
    torch.testing.assert_close(out, theirs(**kw), rtol=1e-5, atol=1e-5)
    boxes = torch.cat([ref_pts, torch.rand(B, Q, len(SHAPES), 2, generator=g)], -1)  # (cx, cy, w, h) references
    torch.testing.assert_close(ours(**dict(kw, reference_points=boxes)), theirs(**dict(kw, reference_points=boxes)),
                               rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for n, p in ours.named_parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_runs_on_cuda_and_matches_cpu():
    value, shapes, loc, w = random_inputs()
    cpu = M.deformable_attention_pytorch(value, shapes, loc, w)
    ours, _ = _pair(True)
    kernel = ours.cuda().kernel_for(value.cuda())
    assert kernel == ("cuda" if _mmcv_lite.has_compiled_mmcv() else "pytorch")
    gpu = M.deformable_attention_pytorch(value.cuda(), shapes.cuda(), loc.cuda(), w.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not (torch.cuda.is_available() and _mmcv_lite.has_compiled_mmcv()),
                    reason="needs a CUDA device and full (compiled) mmcv")
def test_compiled_op_equals_pytorch_kernel():
    value, shapes, loc, w = (t.cuda() for t in random_inputs())
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    for t in (value, loc, w):
        t.requires_grad_(True)
    compiled = M.MultiScaleDeformableAttnFunction.apply(value, shapes, start, loc, w, 64)
    grads_c = torch.autograd.grad(compiled.square().sum(), (value, loc, w))
    pytorch = M.deformable_attention_pytorch(value, shapes, loc, w)
    grads_p = torch.autograd.grad(pytorch.square().sum(), (value, loc, w))
    torch.testing.assert_close(compiled, pytorch, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads_c, grads_p):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
