"""Register neurons (Jiang et al. 2025): the MLP neurons that write the high-norm outlier tokens of a ViT.

The search follows the authors' released code (``shared/algorithms.py`` + ``register_neurons.ipynb`` of
github.com/nickjiang2378/test-time-registers). Per image: the outliers are the tokens whose norm at the output of
``detect_layer`` exceeds ``threshold``; every neuron of every block scores its mean |activation| over those
positions, and the score is zeroed unless the neuron is *sparse* on that image (at least ``sparsity_fraction`` of
the tokens have activation below ``sparsity_activation``: this drops neurons that are large everywhere). Scores are
averaged over the images that have outliers; the neurons of blocks ``0..max_layer`` are ranked and the ``top_k``
kept. Activations are the input of ``blocks[i].mlp.fc2`` (the authors hook the output of ``mlp.act``: the same
tensor for a GELU MLP; for SwiGLU the gated product).

Deliberate differences from that code (see docs/analysis.md): outliers are patch tokens only unless
``include_prefix=True`` (theirs also count cls when its norm passes the threshold); neurons whose score is 0 are
never listed (theirs can fill the top k with them in arbitrary order); images may come in batches (theirs: one).

Published settings per model are in :data:`SEARCH_PRESETS`; the authors' released neuron list for DINOv2 ViT-L/14
ships as data (:func:`released_register_neurons`), so it can be applied without a search.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import Iterable, Mapping, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import DataError, UserError
from ..nn.vit import RegViT

FORMAT = "dense_adapters.register_neurons/v1"
NeuronSpec = Union[str, Mapping, Iterable]

# Intervention methods (how the found neurons are applied, see test_time_registers.py); recorded in the search
# result so that applying a file uses the method it was meant for.
METHODS = ("jiang2025", "per_neuron")

# The authors' settings per model (configs/*.yaml of their repository; all used with one test-time register).
SEARCH_PRESETS: dict[str, dict] = {
    "dinov2_vitl14": dict(detect_layer=-2, threshold=150.0, max_layer=17, top_k=50,
                          source="configs/dinov2_large.yaml (DINOv2 ViT-L/14, LVD-142M)"),
    "openclip_vitb16": dict(detect_layer=-1, threshold=30.0, max_layer=5, top_k=10,
                            source="configs/openclip_base.yaml (OpenCLIP ViT-B/16 laion2b_s34b_b88k); "
                                   "configs/openai_clip_base.yaml uses the same for OpenAI's ViT-B/16"),
}

# Neuron lists released by the authors, shipped in dense_adapters/analysis/data/.
RELEASED = {"dinov2_vitl14": "register_neurons_dinov2_vitl14.json"}


def _fc2(vit: nn.Module, layer: int) -> nn.Module:
    mlp = vit.blocks[layer].mlp
    if not hasattr(mlp, "fc2"):
        raise UserError(f"block {layer}'s MLP ({type(mlp).__name__}) has no fc2: register neurons need a timm "
                        "Mlp/GluMlp-style FFN whose fc2 input is the neuron activations")
    return mlp.fc2


def model_shape(vit: RegViT) -> dict:
    """``{'depth', 'embed_dim', 'mlp_hidden'}``: what a neuron list must fit."""
    return {"depth": vit.depth, "embed_dim": vit.embed_dim, "mlp_hidden": _fc2(vit, 0).in_features}


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"unknown test-time register method {method!r}: use one of {', '.join(METHODS)}")
    return method


# ------------------------------------------------------------------------------------------------ search
@torch.no_grad()
def find_register_neurons(
    vit: RegViT,
    batches: Iterable[Tensor],
    *,
    detect_layer: int = -1,
    threshold: float = 150.0,
    relative: Optional[float] = None,
    top_k: int = 10,
    max_layer: Union[None, int, str] = None,
    sparsity_fraction: float = 0.5,
    sparsity_activation: float = 0.5,
    include_prefix: bool = False,
    emergence_fraction: float = 0.5,
    method: str = "jiang2025",
) -> dict:
    """Rank MLP neurons as Jiang et al.'s search does and keep the ``top_k`` (see the module docstring).

    Args:
        batches: normalised images [B, 3, H, W] (any batch size: every image is scored on its own).
        detect_layer: block whose output norms define the outliers (negative: from the end).
        threshold: outlier norm (strictly above). ``relative``: instead, above this many times the image's median
            patch norm.
        max_layer: highest block whose neurons are kept (None: all blocks; ``'emergence'``: the first block whose
            output already has ``emergence_fraction`` of the outlier positions, this toolkit's earlier default).
        sparsity_fraction, sparsity_activation: the sparsity filter; ``sparsity_fraction=0`` switches it off.
        include_prefix: count cls/register tokens above the threshold as outliers too (the authors' code does).
        method: how the neurons are meant to be applied (recorded; see :data:`METHODS`).

    Returns the JSON-ready dict that :func:`load_register_neurons` and ``add_test_time_registers`` read.
    """
    _check_method(method)
    if not 0 <= sparsity_fraction <= 1:
        raise UserError(f"sparsity_fraction must be in [0, 1] (0: no filter), got {sparsity_fraction}")
    if top_k < 1:
        raise UserError(f"top_k must be >= 1, got {top_k}")
    depth = vit.depth
    if not -depth <= detect_layer < depth:
        raise UserError(f"detect_layer {detect_layer} out of range for a model of depth {depth}")
    det = detect_layer % depth
    if max_layer is None:
        last = depth - 1
    elif max_layer == "emergence":
        last = det  # scored up to the detection block, cut at the emergence block below
    elif isinstance(max_layer, int) and max_layer >= -depth:
        last = min(max_layer, depth - 1) % depth  # blocks <= max_layer, as the authors' filter_layers
    else:
        raise UserError(f"max_layer must be a block index, None (all blocks) or 'emergence', got {max_layer!r}")
    p = vit.num_prefix_tokens
    acts: dict[int, Tensor] = {}
    hooks = [_fc2(vit, i).register_forward_pre_hook(lambda m, a, i=i: acts.__setitem__(i, a[0].detach()))
             for i in range(last + 1)]
    score_sum = torch.zeros(last + 1, _fc2(vit, 0).in_features, dtype=torch.float64)  # [layers, hidden]
    hits = torch.zeros(det + 1, dtype=torch.float64)  # outlier positions already outliers at block i
    n_outliers, n_images, n_with = 0, 0, 0
    try:
        for x in batches:
            res = vit.forward_blocks(x, list(range(max(det, last) + 1)), capture=("out",))
            norms = [t.float().norm(dim=-1) for t in res["out"][: det + 1]]  # [B, N] per block
            if relative is not None:
                if relative <= 0:
                    raise UserError(f"relative threshold must be > 0, got {relative}")
                thr = relative * norms[det][:, p:].median(dim=1, keepdim=True).values  # [B, 1]
            else:
                if threshold <= 0:
                    raise UserError(f"threshold must be > 0, got {threshold}")
                thr = torch.full((x.shape[0], 1), float(threshold))
            mask = norms[det] > thr  # [B, N]
            if not include_prefix:
                mask[:, :p] = False
            count = mask.sum(1)  # [B]
            has = count > 0
            n_images += x.shape[0]
            n_with += int(has.sum())
            n_outliers += int(count.sum())
            for i in range(det + 1):
                hits[i] += float(((norms[i] > thr) & mask).sum())
            if not has.any():
                continue
            for layer in range(last + 1):
                a = acts[layer].float()  # [B, N, hidden]
                s = (a.abs() * mask[..., None]).sum(1) / count.clamp_min(1)[:, None]  # [B, hidden]
                if sparsity_fraction > 0:
                    sparse = (a < sparsity_activation).sum(1) >= sparsity_fraction * a.shape[1]  # [B, hidden]
                    s = s * sparse
                score_sum[layer] += s[has].double().sum(0)
    finally:
        for h in hooks:
            h.remove()
    if n_with == 0:
        crit = f"{relative} x the median norm" if relative is not None else f"norm {threshold:g}"
        raise DataError(f"no patch token above {crit} at block {det} in {n_images} images: lower --threshold, "
                        "use --relative, or pass more images")
    frac = (hits / n_outliers).tolist()
    emergence = next((i for i, f in enumerate(frac) if f >= emergence_fraction), det)
    cut = emergence if max_layer == "emergence" else last
    scores = score_sum[: cut + 1] / n_with  # [cut + 1, hidden]
    hidden = scores.shape[1]
    vals, order = scores.flatten().sort(descending=True, stable=True)
    keep = vals > 0
    vals, order = vals[keep][:top_k], order[keep][:top_k]
    neurons = [{"layer": int(i) // hidden, "neuron": int(i) % hidden, "score": float(v)} for v, i in zip(vals, order)]
    return {
        "format": FORMAT, "method": method, "model": model_shape(vit),
        "detect_layer": det, "threshold": threshold, "relative": relative, "include_prefix": include_prefix,
        "sparsity_filter": ({"fraction": sparsity_fraction, "activation": sparsity_activation}
                            if sparsity_fraction > 0 else None),
        "max_layer": cut, "top_k": top_k, "emergence_layer": emergence, "outlier_fraction_by_layer": frac,
        "num_images": n_images, "num_images_with_outliers": n_with, "num_outliers": n_outliers,
        "neurons": neurons,
    }


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class RegisterNeurons:
    """A parsed neuron list: ``neurons`` {layer: sorted neuron ids}, and what its file says about its use."""

    neurons: dict[int, list[int]]
    method: Optional[str] = None  # intervention the list was found for (None: not stated)
    model: Optional[dict] = None  # {'depth', 'embed_dim', 'mlp_hidden'} of the model it was found on
    name: str = "register neurons"

    def check_fits(self, vit: RegViT) -> None:
        """Raise a one-line error if the list cannot belong to ``vit`` (shape, layer or neuron out of range)."""
        shape = model_shape(vit)
        if self.model is not None:
            diff = {k: (v, shape.get(k)) for k, v in self.model.items() if k in shape and shape[k] != v}
            if diff:
                said = ", ".join(f"{k} {a} (this model: {b})" for k, (a, b) in diff.items())
                raise UserError(f"{self.name} were found on another architecture: {said}; search this model's own "
                                "with tools/analysis/find_register_neurons.py")
        for layer, ns in self.neurons.items():
            if not 0 <= layer < vit.depth:
                raise UserError(f"register neuron layer {layer} out of range for depth {vit.depth}")
            hidden = _fc2(vit, layer).in_features
            if max(ns) >= hidden or min(ns) < 0:
                bad = max(ns) if max(ns) >= hidden else min(ns)
                raise UserError(f"register neuron {bad} out of range for block {layer}'s MLP width {hidden}")


def released_register_neurons() -> list[str]:
    """Names of the neuron lists released by the authors and shipped with the package."""
    return sorted(RELEASED)


def _released(name: str) -> dict:
    text = resources.files(__package__).joinpath("data", RELEASED[name]).read_text()
    return json.loads(text)


def read_register_neurons(spec: NeuronSpec) -> RegisterNeurons:
    """Parse a neuron list: a released name (:func:`released_register_neurons`, e.g. ``'dinov2_vitl14'``), a JSON
    path, a dict written by :func:`find_register_neurons`, a ``{layer: [neurons]}`` mapping, or ``(layer, neuron)``
    pairs. An existing file wins over a released name."""
    name = "register neurons"
    if isinstance(spec, str):
        if os.path.isfile(spec):
            try:
                with open(spec) as f:
                    spec_d = json.load(f)
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DataError(f"cannot read register neurons from {spec!r}: {e}") from e
            name = f"the register neurons in {spec}"
        elif spec in RELEASED:
            spec_d, name = _released(spec), f"the released register neurons {spec!r}"
        else:
            raise DataError(f"cannot read register neurons from {spec!r}: no such file, and not a released list "
                            f"({', '.join(released_register_neurons())})")
        spec = spec_d
    method = model = None
    if isinstance(spec, Mapping) and "neurons" in spec:
        method, model = spec.get("method"), spec.get("model")
        if method is not None:
            _check_method(method)
        try:
            spec = [(n["layer"], n["neuron"]) for n in spec["neurons"]]
        except (TypeError, KeyError) as e:
            raise DataError(f"{name}: every entry of 'neurons' needs 'layer' and 'neuron' ({e})") from e
    out: dict[int, list[int]] = {}
    try:
        items = spec.items() if isinstance(spec, Mapping) else [(l, [n]) for l, n in spec]
        for layer, ns in items:
            out.setdefault(int(layer), []).extend(int(n) for n in ns)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name}: expected {{layer: [neuron, ...]}} or (layer, neuron) pairs ({e})") from e
    if not out:
        raise UserError("no register neurons given: run tools/analysis/find_register_neurons.py first, or use a "
                        f"released list ({', '.join(released_register_neurons())})")
    return RegisterNeurons({k: sorted(set(v)) for k, v in sorted(out.items())}, method, model, name)


def load_register_neurons(spec: NeuronSpec) -> dict[int, list[int]]:
    """``{layer: [neuron, ...]}`` from any spec :func:`read_register_neurons` accepts."""
    return read_register_neurons(spec).neurons
