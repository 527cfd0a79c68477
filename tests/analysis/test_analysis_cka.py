"""Linear CKA: invariances and agreement with the textbook full-batch formulas."""
import pytest
import torch

from dense_adapters.analysis.cka import MinibatchCKA, hsic1_matrix, linear_cka


def reference_cka(x, y):
    """Kornblith et al. (2019), feature space: ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F) on centred features."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    return ((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm())).item()


def reference_hsic1(x, y):
    """Song et al. (2012) unbiased HSIC, written out term by term."""
    n = x.shape[0]
    k, l = x.double() @ x.double().T, y.double() @ y.double().T
    k = k - torch.diag(torch.diag(k))
    l = l - torch.diag(torch.diag(l))
    one = torch.ones(n, 1, dtype=torch.float64)
    t1 = torch.trace(k @ l)
    t2 = (one.T @ k @ one) * (one.T @ l @ one) / ((n - 1) * (n - 2))
    t3 = 2.0 / (n - 2) * (one.T @ k @ l @ one)
    return ((t1 + t2 - t3) / (n * (n - 3))).item()


def feats(n=40, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = x @ torch.randn(d, 9, generator=g) + 0.5 * torch.randn(n, 9, generator=g)
    return x.double(), y.double()


def test_matches_reference_formulas():
    x, y = feats()
    assert linear_cka(x, y) == pytest.approx(reference_cka(x, y), rel=1e-10)
    h = hsic1_matrix(torch.stack([x.double() @ x.double().T]), torch.stack([y.double() @ y.double().T]))
    assert h.item() == pytest.approx(reference_hsic1(x, y), rel=1e-10)
    ub = reference_hsic1(x, y) / (reference_hsic1(x, x) * reference_hsic1(y, y)) ** 0.5
    assert linear_cka(x, y, unbiased=True) == pytest.approx(ub, rel=1e-10)


def test_self_similarity_and_invariances():
    x, y = feats()
    q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    for unbiased in (False, True):
        assert linear_cka(x, x, unbiased) == pytest.approx(1.0, abs=1e-12)
        base = linear_cka(x, y, unbiased)
        assert linear_cka(x.double() @ q, y, unbiased) == pytest.approx(base, rel=1e-9)  # orthogonal
        assert linear_cka(7.5 * x, 0.01 * y, unbiased) == pytest.approx(base, rel=1e-9)  # isotropic scaling
    # not invariant to a non-isotropic scaling: the test can fail
    assert linear_cka(x * torch.linspace(0.1, 10, 12), y) != pytest.approx(linear_cka(x, y), rel=1e-3)


def test_minibatch_accumulates_hsic_over_batches():
    x, y = feats(n=64)
    acc = MinibatchCKA()
    for i in range(0, 64, 8):
        acc.update([x[i : i + 8], y[i : i + 8]])
    m = acc.compute()
    assert acc.num_examples == 64 and m.shape == (2, 2)
    torch.testing.assert_close(m.diagonal(), torch.ones(2, dtype=torch.float64))
    b = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)]
    want = sum(reference_hsic1(a, c) for a, c in b) / (
        sum(reference_hsic1(a, a) for a, _ in b) * sum(reference_hsic1(c, c) for _, c in b)) ** 0.5
    assert m[0, 1].item() == pytest.approx(want, rel=1e-9)
    assert m[0, 1].item() == pytest.approx(m[1, 0].item(), rel=1e-12)
    # one batch holding everything: the full-batch unbiased CKA
    one = MinibatchCKA()
    one.update([x], [y])
    assert one.compute().item() == pytest.approx(linear_cka(x, y, unbiased=True), rel=1e-9)


def test_minibatch_estimate_close_to_full_batch_on_many_examples():
    x, y = feats(n=2048, seed=3)
    acc = MinibatchCKA()
    for i in range(0, 2048, 64):
        acc.update([x[i : i + 64]], [y[i : i + 64]])
    assert acc.compute().item() == pytest.approx(linear_cka(x, y), abs=0.02)


def test_bad_inputs():
    x, y = feats(n=3)
    with pytest.raises(ValueError, match="at least 4 examples"):
        MinibatchCKA().update([x, y])
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(x, feats(n=5)[1])
    with pytest.raises(RuntimeError, match="before any update"):
        MinibatchCKA().compute()


def test_shift_invariance_precision_and_constant_representation():
    x, y = feats(n=16)
    acc, shifted = MinibatchCKA(), MinibatchCKA()
    acc.update([x, y])
    # features that differ little around a large common value, as near-uniform attention maps do
    shifted.update([(1.0 + 1e-4 * x).float(), y])
    torch.testing.assert_close(shifted.compute(), acc.compute(), rtol=1e-3, atol=1e-3)
    const = MinibatchCKA()
    const.update([torch.ones(8, 3), y[:8]])
    m = const.compute()
    assert torch.isnan(m[0]).all() and m[1, 1] == pytest.approx(1.0)
