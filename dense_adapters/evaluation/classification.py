"""Image-level metrics: top-k accuracy, DINO's weighted k-NN vote, and the linear-probe grid's per-head accuracy.

* :func:`topk_hits` / :class:`TopKAccuracy`: a sample counts for top-k when its label is among the k highest
  scores (k is capped at the number of classes); accuracies are percentages over all samples.
* :func:`knn_vote`: DINO's weighted k-NN classifier (Wu et al. 2018; ``eval_knn.py`` of DINO, ``eval/knn.py`` of
  DINOv2): cosine similarities of L2-normalised features, the k most similar training samples vote for their class
  with weight ``exp(sim / T)`` (T = 0.07), highest total wins. DINOv2 normalises the weights of the ``max(k)``
  neighbours with a softmax, a positive factor per query that changes no ranking; the votes here are that softmax.
* :class:`LinearProbeAccuracy`: top-1/top-5 of every head of a :class:`dense_adapters.LinearProbeClassifier`
  grid, the best head on this split, and (``use_selected``) the head chosen before on a held-out split.
"""
from __future__ import annotations

import json
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from torch import Tensor

from ..errors import DataError, UserError
from ..registry import METRICS


def topk_hits(scores: Tensor, labels: Tensor, topk: Sequence[int] = (1, 5)) -> Tensor:
    """bool [..., len(topk)]: is ``labels`` among the ``k`` highest of ``scores`` [..., C] (k capped at C)."""
    C = scores.shape[-1]
    kmax = min(max(topk), C)
    top = scores.topk(kmax, dim=-1).indices  # [..., kmax]
    eq = top == labels.unsqueeze(-1)
    return torch.stack([eq[..., : min(k, C)].any(-1) for k in topk], dim=-1)


def _label(sample: Any) -> Tensor:
    gt = sample.get("gt_label") if hasattr(sample, "get") else None
    if gt is None:
        raise DataError("a data sample has no gt_label: classification metrics need labelled data")
    return torch.as_tensor(gt).reshape(-1)[:1].cpu()


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """``type='dense_adapters.TopKAccuracy'``: top-k accuracy (%) of ``pred_score`` against ``gt_label``.

    Keys: ``<prefix>/top1``, ``<prefix>/top5`` (prefix ``accuracy`` by default). Samples that also carry
    ``pred_scores`` (a dict name -> scores, e.g. the k-NN votes for every k) get ``<prefix>/<name>_top1`` etc.
    """

    default_prefix = "accuracy"

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = "cpu",
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)
        if not self.topk or min(self.topk) < 1:
            raise UserError(f"topk must be positive integers, got {topk}")

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for s in data_samples:
            if s.get("pred_score") is None:
                raise UserError(f"{type(self).__name__} needs 'pred_score' in each data sample, got {sorted(s.keys())}")
            label = _label(s)
            out = {"": topk_hits(torch.as_tensor(s.get("pred_score")).float().cpu(), label[0], self.topk)}
            for name, sc in (s.get("pred_scores") or {}).items():
                out[f"{name}_"] = topk_hits(torch.as_tensor(sc).float().cpu(), label[0], self.topk)
            self.results.append({k: v.numpy() for k, v in out.items()})

    def compute_metrics(self, results: list) -> dict:
        out = {}
        for name in results[0]:
            hits = np.stack([r[name] for r in results])  # [N, len(topk)]
            for j, k in enumerate(self.topk):
                out[f"{name}top{k}"] = float(100.0 * hits[:, j].mean())
        return out


# ------------------------------------------------------------------------------------------------------ k-NN
@torch.no_grad()
def knn_neighbours(query: Tensor, bank: Tensor, k: int, chunk_size: int = 65536) -> tuple[Tensor, Tensor]:
    """The ``k`` most similar bank rows of each query row (dot products; normalise both for cosine similarity).

    query [B, D], bank [N, D] -> similarities [B, k] (descending) and bank indices [B, k]. The bank is scanned in
    chunks of ``chunk_size`` rows (memory B x chunk_size), each chunk's top-k merged into a running top-k.
    """
    k = min(k, bank.shape[0])
    best_sim, best_idx = None, None
    q = query.to(bank.dtype)
    for start in range(0, bank.shape[0], chunk_size):
        sims = q @ bank[start : start + chunk_size].T  # [B, n]
        s, i = sims.topk(min(k, sims.shape[1]), dim=1)
        i = i + start
        if best_sim is not None:
            s = torch.cat([best_sim, s], 1)
            s, j = s.topk(min(k, s.shape[1]), dim=1)
            i = torch.cat([best_idx, i], 1).gather(1, j)
        best_sim, best_idx = s, i
    return best_sim.float(), best_idx


@torch.no_grad()
def knn_vote(query: Tensor, bank: Tensor, bank_labels: Tensor, num_classes: int, ks: Sequence[int] = (20,),
             temperature: float = 0.07, chunk_size: int = 65536) -> dict[int, Tensor]:
    """DINO's weighted k-NN votes for each k of ``ks``: {k: [B, num_classes]} (see the module doc).

    ``query`` [B, D] and ``bank`` [N, D] should be L2-normalised; ``bank_labels`` int [N]. A k above N uses all N.
    """
    if temperature <= 0:
        raise UserError(f"k-NN temperature must be > 0, got {temperature}")
    kmax = min(max(ks), bank.shape[0])
    sims, idx = knn_neighbours(query, bank, kmax, chunk_size)
    labels = bank_labels.to(idx.device)[idx]  # [B, kmax]
    weights = torch.softmax(sims / temperature, dim=1)  # DINOv2's normalisation of exp(sim / T)
    onehot = F.one_hot(labels, num_classes).to(weights.dtype) * weights.unsqueeze(-1)  # [B, kmax, C]
    cum = onehot.cumsum(dim=1)  # votes of the first j neighbours
    return {k: cum[:, min(k, kmax) - 1] for k in ks}


# -------------------------------------------------------------------------------------------- linear probe
@METRICS.register_module()
class LinearProbeAccuracy(BaseMetric):
    """``type='dense_adapters.LinearProbeAccuracy'``: per-head top-k accuracy of a linear-probe grid.

    Each data sample carries ``grid_scores`` [num_heads, C] (and the head names in ``grid_names``). Reported
    (prefix ``accuracy``): ``top1``/``top5`` of the reported head, ``head`` its index, ``best_head``/``best_top1``
    the head with the highest top-1 on this split (the first on ties, as DINOv2).

    Args:
        use_selected: report the head the model selected before on a held-out split (``selected_head`` of the
            samples, set by :class:`dense_adapters.LinearProbeTestLoop`); without one, the best head of this split.
        out_file: also write every head's accuracies to this JSON file (rank 0).
        log_heads: how many of the best heads to log as a table.
    """

    default_prefix = "accuracy"

    def __init__(self, topk: Sequence[int] = (1, 5), use_selected: bool = False, out_file: Optional[str] = None,
                 log_heads: int = 5, collect_device: str = "cpu", prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)
        if 1 not in self.topk:
            raise UserError(f"LinearProbeAccuracy selects heads by top-1: topk must contain 1, got {topk}")
        self.use_selected, self.out_file, self.log_heads = use_selected, out_file, int(log_heads)
        self.names: Optional[list] = None
        self.table: Optional[list] = None

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for s in data_samples:
            scores = s.get("grid_scores")
            if scores is None:
                raise UserError("LinearProbeAccuracy needs 'grid_scores' in each data sample: use it with "
                                "dense_adapters.LinearProbeClassifier")
            if self.names is None:
                self.names = list(s.get("grid_names") or [f"head{i}" for i in range(len(scores))])
            hits = topk_hits(torch.as_tensor(scores).float().cpu(), _label(s)[0], self.topk)  # [H, len(topk)]
            self.results.append(dict(hits=hits.numpy(), selected=int(s.get("selected_head", -1))))

    def compute_metrics(self, results: list) -> dict:
        hits = np.stack([r["hits"] for r in results]).mean(0) * 100.0  # [H, len(topk)]
        j1 = self.topk.index(1)
        best = int(np.argmax(hits[:, j1]))  # first maximum, as DINOv2's strict '>' scan
        selected = results[0]["selected"]
        report = selected if self.use_selected and selected >= 0 else best
        if self.use_selected and selected < 0:
            print_log("no head was selected on a held-out split: reporting the best head of this split (DINOv2's "
                      "choice when the validation and test sets are one)", logger="current", level=30)
        names = self.names or [f"head{i}" for i in range(len(hits))]
        self.table = [dict(index=i, name=names[i], **{f"top{k}": float(hits[i, j]) for j, k in enumerate(self.topk)})
                      for i in range(len(hits))]
        order = sorted(range(len(hits)), key=lambda i: -hits[i, j1])[: self.log_heads]
        lines = [f"  {'*' if i == report else ' '} {names[i]:<36} " +
                 " ".join(f"top{k} {hits[i, j]:6.2f}" for j, k in enumerate(self.topk)) for i in order]
        print_log(f"linear probe: {len(hits)} heads, best {names[best]}, reported {names[report]} (*):\n" +
                  "\n".join(lines), logger="current")
        if self.out_file:
            with open(self.out_file, "w") as f:
                json.dump(dict(reported=report, best=best, heads=self.table), f, indent=1)
        out = {f"top{k}": float(hits[report, j]) for j, k in enumerate(self.topk)}
        out.update(head=report, best_head=best, best_top1=float(hits[best, j1]))
        return out
