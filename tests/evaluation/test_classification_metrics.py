"""Top-k accuracy against a direct count, DINO's k-NN against a NumPy reference, the probe grid's per-head metric."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from dense_adapters.evaluation.classification import (LinearProbeAccuracy, TopKAccuracy, knn_neighbours, knn_vote,
                                                      topk_hits)


def _samples(scores, labels):
    return [BaseDataElement(pred_score=torch.as_tensor(s), gt_label=torch.tensor([int(y)]))
            for s, y in zip(scores, labels)]


def _direct_topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows whose label has fewer than k scores strictly above it (no ties in random data)."""
    above = (scores > scores[np.arange(len(labels)), labels][:, None]).sum(1)
    return 100.0 * float((above < k).mean())


def test_topk_accuracy_equals_a_direct_count():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(97, 12)), rng.integers(0, 12, 97)
    metric = TopKAccuracy(topk=(1, 3, 5))
    alt = rng.normal(size=(97, 12))
    for lo in range(0, 97, 10):  # batches
        batch = _samples(scores[lo:lo + 10], labels[lo:lo + 10])
        for s, a in zip(batch, alt[lo:lo + 10]):
            s.pred_scores = {"alt": torch.as_tensor(a)}
        metric.process(None, batch)
    res = metric.evaluate(97)
    for k in (1, 3, 5):
        assert res[f"accuracy/top{k}"] == pytest.approx(_direct_topk(scores, labels, k))
        assert res[f"accuracy/alt_top{k}"] == pytest.approx(_direct_topk(alt, labels, k))
    assert res["accuracy/top1"] == pytest.approx(100 * np.mean(scores.argmax(1) == labels))
    # fewer classes than k: top-k is capped at the number of classes (always right)
    assert topk_hits(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), (5,)).all()


def _numpy_knn(train, train_labels, test, k, T, C):
    """DINO's eval_knn.py classifier written out: cosine sims, top-k, exp(sim / T) votes per class."""
    sims = test @ train.T
    idx = np.argsort(-sims, axis=1)[:, :k]
    votes = np.zeros((len(test), C))
    for i in range(len(test)):
        for j in idx[i]:
            votes[i, train_labels[j]] += np.exp(sims[i, j] / T)
    return votes


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_knn_vote_equals_dino_numpy_reference():
    rng = np.random.default_rng(1)
    C, D = 7, 16
    centres = rng.normal(size=(C, D))
    train_labels = rng.integers(0, C, 150)
    test_labels = rng.integers(0, C, 40)
    train = _unit(centres[train_labels] + 1.5 * rng.normal(size=(150, D)))
    test = _unit(centres[test_labels] + 1.5 * rng.normal(size=(40, D)))
    ks = (1, 5, 20, 400)  # 400 > bank size: all 150 vote
    votes = knn_vote(torch.tensor(test, dtype=torch.float32), torch.tensor(train, dtype=torch.float32),
                     torch.tensor(train_labels), C, ks, temperature=0.07, chunk_size=32)
    for k in ks:
        ref = _numpy_knn(train, train_labels, test, min(k, 150), 0.07, C)
        ours = votes[k].double().numpy()
        # same votes up to DINOv2's per-query softmax normalisation
        assert np.allclose(ours / ours.sum(1, keepdims=True), ref / ref.sum(1, keepdims=True), atol=1e-5)
        for top in (1, 5):
            assert _direct_topk(ours, test_labels, top) == _direct_topk(ref, test_labels, top)
    assert 30 < _direct_topk(votes[20].numpy(), test_labels, 1) < 100  # the clusters are learnable, not trivial


def test_knn_neighbours_chunking_is_exact():
    g = torch.Generator().manual_seed(0)
    q, bank = torch.randn(9, 8, generator=g), torch.randn(101, 8, generator=g)
    s1, i1 = knn_neighbours(q, bank, 10, chunk_size=7)
    s2, i2 = knn_neighbours(q, bank, 10, chunk_size=1000)
    assert torch.equal(i1, i2) and torch.allclose(s1, s2)
    assert torch.equal(i2, (q @ bank.T).topk(10, dim=1).indices)


def test_linear_probe_metric_per_head_best_and_selected():
    rng = np.random.default_rng(2)
    H, C, N = 4, 6, 50
    labels = rng.integers(0, C, N)
    scores = rng.normal(size=(N, H, C))
    scores[np.arange(N), 2, labels] += 2.0  # head 2 is the best
    names = [f"h{i}" for i in range(H)]

    def run(selected, use_selected):
        m = LinearProbeAccuracy(topk=(1, 5), use_selected=use_selected)
        batch = [BaseDataElement(grid_scores=torch.tensor(s), grid_names=names, selected_head=selected,
                                 gt_label=torch.tensor([int(y)])) for s, y in zip(scores, labels)]
        m.process(None, batch)
        return m.evaluate(N), m.table

    res, table = run(-1, False)
    for h in range(H):
        assert table[h]["top1"] == pytest.approx(_direct_topk(scores[:, h], labels, 1))
        assert table[h]["top5"] == pytest.approx(_direct_topk(scores[:, h], labels, 5))
    assert res["accuracy/best_head"] == 2 == res["accuracy/head"]
    assert res["accuracy/top1"] == pytest.approx(table[2]["top1"])
    res, _ = run(1, True)  # the head chosen on a held-out split is reported, whatever this split prefers
    assert res["accuracy/head"] == 1 and res["accuracy/top1"] == pytest.approx(table[1]["top1"])
    assert res["accuracy/best_head"] == 2
