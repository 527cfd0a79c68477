"""Test-time registers (Jiang et al. 2025, "Vision Transformers Don't Need Trained Registers").

A few MLP neurons ("register neurons") fire at the positions of the high-norm outlier tokens and write them. At test
time their activation is moved into extra untrained tokens: in each block that holds register neurons the neuron's
activation at the extra tokens is set to its maximum over all tokens, and at the patch tokens to zero (cls and
trained registers keep theirs). The model is unchanged otherwise (no new parameters, same state dict).

Neuron activations are the input of ``blocks[i].mlp.fc2`` (timm ``Mlp``: fc1 -> act -> fc2; ``GluMlp``: the gated
product), read and edited by forward pre-hooks, so no core file changes.

Layout: the extra tokens are inserted after the existing prefix, ``[cls | registers | test-time registers |
patches]``, and counted in ``num_prefix_tokens``, so every consumer that slices through ``num_prefix_tokens`` (heads,
LOST, these tools) drops them like trained registers. Prefix tokens carry no position embedding, so this is the same
computation as appending them at the end of the sequence, as the reference code does.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping, Optional, Union

import torch
from torch import Tensor, nn

from ..nn.vit import RegViT
from .norms import outlier_mask

FORMAT = "dense_adapters.register_neurons/v1"
NeuronSpec = Union[str, Mapping, Iterable]


def _fc2(vit: nn.Module, layer: int) -> nn.Module:
    mlp = vit.blocks[layer].mlp
    if not hasattr(mlp, "fc2"):
        raise TypeError(f"block {layer}'s MLP ({type(mlp).__name__}) has no fc2: test-time registers need a timm "
                        "Mlp/GluMlp-style FFN whose fc2 input is the neuron activations")
    return mlp.fc2


# ------------------------------------------------------------------------------------------------ search
@torch.no_grad()
def find_register_neurons(
    vit: RegViT,
    batches: Iterable[Tensor],
    detect_layer: int = -1,
    threshold: float = 150.0,
    relative: Optional[float] = None,
    top_k: int = 10,
    max_layer: Optional[int] = None,
    emergence_fraction: float = 0.5,
) -> dict:
    """Rank MLP neurons by their mean |activation| at outlier patches (Jiang et al.'s detection), keep ``top_k``.

    Outliers are the patches whose norm at the output of ``detect_layer`` passes ``threshold`` (or ``relative`` x
    the image's median). Per image with outliers, each neuron of blocks 0..``max_layer`` scores its mean |activation|
    over those positions; scores are averaged over such images. ``max_layer`` None: the emergence block, the first
    block at whose output at least ``emergence_fraction`` of the final outlier positions are already outliers.
    Returns the JSON-ready dict that :func:`load_register_neurons` reads.
    """
    depth = vit.depth
    det = detect_layer % depth
    p = vit.num_prefix_tokens
    acts: dict[int, Tensor] = {}
    hooks = [_fc2(vit, i).register_forward_pre_hook(lambda m, a, i=i: acts.__setitem__(i, a[0].detach()))
             for i in range(det + 1)]
    score_sum: Optional[Tensor] = None  # [det + 1, hidden]
    per_layer_hits = torch.zeros(det + 1)
    total_outliers, n_images, n_with = 0, 0, 0
    try:
        for x in batches:
            res = vit.forward_blocks(x, list(range(det + 1)), capture=("out",))
            norms = [t.float().norm(dim=-1)[:, p:] for t in res["out"]]  # [B, hw] per block
            mask = outlier_mask(norms[det], threshold, relative)  # [B, hw]
            n_images += x.shape[0]
            if score_sum is None:
                score_sum = torch.zeros(det + 1, acts[0].shape[-1], dtype=torch.float64)
            for b in range(x.shape[0]):
                pos = mask[b].nonzero().squeeze(1)
                if pos.numel() == 0:
                    continue
                n_with += 1
                total_outliers += pos.numel()
                for layer in range(det + 1):
                    a = acts[layer][b, p + pos].abs().double()  # [n_out, hidden]
                    score_sum[layer] += a.mean(0)
                    per_layer_hits[layer] += outlier_mask(norms[layer][b : b + 1], threshold, relative)[0, pos].sum()
    finally:
        for h in hooks:
            h.remove()
    if n_with == 0:
        crit = f"{relative} x the median norm" if relative is not None else f"norm {threshold:g}"
        raise ValueError(f"no patch token above {crit} at block {det} in {n_images} images: lower --threshold, "
                         "use --relative, or pass more images")
    frac = (per_layer_hits / total_outliers).tolist()
    emergence = next((i for i, f in enumerate(frac) if f >= emergence_fraction), det)
    last = emergence if max_layer is None else max_layer % depth
    if last > det:
        raise ValueError(f"max_layer {last} is after detect_layer {det}: neurons after the detection block cannot be "
                         "scored")
    scores = score_sum[: last + 1] / n_with  # [last + 1, hidden]
    vals, flat = scores.flatten().topk(min(top_k, scores.numel()))
    hidden = scores.shape[1]
    neurons = [{"layer": int(i) // hidden, "neuron": int(i) % hidden, "score": float(v)} for v, i in zip(vals, flat)]
    return {
        "format": FORMAT, "detect_layer": det, "threshold": threshold, "relative": relative,
        "max_layer": last, "emergence_layer": emergence, "outlier_fraction_by_layer": frac,
        "num_images": n_images, "num_images_with_outliers": n_with, "num_outliers": total_outliers,
        "neurons": neurons,
    }


def load_register_neurons(spec: NeuronSpec) -> dict[int, list[int]]:
    """``{layer: [neuron, ...]}`` from a JSON path, a dict written by :func:`find_register_neurons`, a
    ``{layer: [neurons]}`` mapping, or a list of ``(layer, neuron)`` pairs."""
    if isinstance(spec, str):
        try:
            with open(spec) as f:
                spec = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read register neurons from {spec!r}: {e}") from e
    if isinstance(spec, Mapping) and "neurons" in spec:
        spec = [(n["layer"], n["neuron"]) for n in spec["neurons"]]
    out: dict[int, list[int]] = {}
    items = spec.items() if isinstance(spec, Mapping) else [(l, [n]) for l, n in spec]
    for layer, ns in items:
        out.setdefault(int(layer), []).extend(int(n) for n in ns)
    if not out:
        raise ValueError("no register neurons given: run tools/analysis/find_register_neurons.py first")
    return {k: sorted(set(v)) for k, v in sorted(out.items())}


# ------------------------------------------------------------------------------------------------ model
class TestTimeRegisterMixin:
    """Adds ``num_test_time_registers`` zero tokens and shifts register-neuron activations into them."""

    __test__ = False  # not a pytest class

    def _attach(self, register_neurons: NeuronSpec, num_test_time_registers: int = 1, init: str = "zero") -> None:
        if num_test_time_registers < 1:
            raise ValueError(f"num_test_time_registers must be >= 1, got {num_test_time_registers}")
        if init not in ("zero", "mean"):
            raise ValueError(f"unknown test-time register init {init!r}: use 'zero' or 'mean'")
        neurons = load_register_neurons(register_neurons)
        for layer, ns in neurons.items():
            if not 0 <= layer < self.depth:
                raise ValueError(f"register neuron layer {layer} out of range for depth {self.depth}")
            hidden = _fc2(self, layer).in_features
            if max(ns) >= hidden:
                raise ValueError(f"register neuron {max(ns)} out of range for block {layer}'s MLP width {hidden}")
        self.register_neurons = neurons
        self.num_test_time_registers = num_test_time_registers
        self.test_time_register_init = init
        self._base_prefix = self.num_prefix_tokens
        self.num_prefix_tokens = self._base_prefix + num_test_time_registers
        for blk in self.blocks:  # SkipAt blocks pass prefix tokens around their grid function
            blk.num_prefix_tokens = self.num_prefix_tokens
        self._tt_hooks = [
            _fc2(self, layer).register_forward_pre_hook(self._make_shift(torch.tensor(ns)))
            for layer, ns in neurons.items()
        ]

    def _make_shift(self, idx: Tensor):
        def shift(module: nn.Module, args: tuple) -> tuple:
            h = args[0]  # [B, N, hidden]
            p0, p1 = self._base_prefix, self.num_prefix_tokens
            sel = h[..., idx.to(h.device)]  # [B, N, k] (a copy)
            peak = sel.amax(dim=1, keepdim=True)  # [B, 1, k]
            sel[:, p0:p1] = peak
            sel[:, p1:] = 0
            h = h.clone()
            h[..., idx.to(h.device)] = sel
            return (h,) + tuple(args[1:])

        return shift

    def prepare_tokens(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """``[cls | registers | patches]`` -> ``[cls | registers | test-time registers | patches]``."""
        t, hw = super().prepare_tokens(x)
        p0 = self._base_prefix
        if self.test_time_register_init == "mean":
            extra = t[:, p0:].mean(1, keepdim=True).expand(-1, self.num_test_time_registers, -1)
        else:
            extra = t.new_zeros(t.shape[0], self.num_test_time_registers, t.shape[2])
        return torch.cat([t[:, :p0], extra, t[:, p0:]], dim=1), hw

    def remove_test_time_registers(self) -> RegViT:
        """Undo :func:`add_test_time_registers` in place (hooks removed, prefix count and class restored)."""
        for h in self._tt_hooks:
            h.remove()
        self.num_prefix_tokens = self._base_prefix
        for blk in self.blocks:
            blk.num_prefix_tokens = self._base_prefix
        self.__class__ = self._orig_class
        for name in ("register_neurons", "num_test_time_registers", "test_time_register_init", "_base_prefix",
                     "_tt_hooks", "_orig_class"):
            delattr(self, name)
        return self


class TestTimeRegisterViT(TestTimeRegisterMixin, RegViT):
    """A :class:`RegViT` with test-time registers: ``TestTimeRegisterViT(neurons_json, 1, **regvit_kwargs)``."""

    def __init__(self, register_neurons: NeuronSpec, num_test_time_registers: int = 1, init: str = "zero",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._orig_class = RegViT
        self._attach(register_neurons, num_test_time_registers, init)


def add_test_time_registers(vit: RegViT, register_neurons: NeuronSpec, num_test_time_registers: int = 1,
                            init: str = "zero") -> RegViT:
    """Give an existing (e.g. pretrained) RegViT test-time registers, in place; returns it.

    As ``torch.nn.utils.parametrize`` does, the module's class is swapped for a subclass that adds the behaviour;
    weights and state-dict keys are untouched, and ``vit.remove_test_time_registers()`` restores the model.
    """
    if isinstance(vit, TestTimeRegisterMixin):
        raise ValueError("this model already has test-time registers: call remove_test_time_registers() first")
    if not isinstance(vit, RegViT):
        raise TypeError(f"add_test_time_registers needs a dense_adapters.nn.RegViT, got {type(vit).__name__} "
                        "(for the mmseg backbone pass backbone.vit)")
    orig = type(vit)
    vit.__class__ = TestTimeRegisterViT if orig is RegViT else type(
        f"TestTimeRegister{orig.__name__}", (TestTimeRegisterMixin, orig), {})
    vit._orig_class = orig
    vit._attach(register_neurons, num_test_time_registers, init)
    return vit
