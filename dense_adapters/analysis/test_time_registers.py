"""Test-time registers (Jiang et al. 2025, "Vision Transformers Don't Need Trained Registers").

A few MLP neurons ("register neurons", found by :func:`find_register_neurons`) fire at the positions of the
high-norm outlier tokens and write them. At test time their activation is moved into extra untrained tokens: in
every block that holds register neurons, the register neurons' activation at the extra tokens is set to a peak value
and at the patch tokens to zero (cls and trained registers keep theirs). The model is unchanged otherwise (no new
parameters, same state dict). The peak value (``method``):

- ``'jiang2025'`` (default, the authors' released code): one value per block and image, the largest-magnitude
  activation over all tokens and all register neurons of that block, with its sign, written to every register
  neuron of the block.
- ``'per_neuron'``: each register neuron gets its own maximum over all tokens (the authors' first version of the
  hook, and this toolkit's earlier default). With one neuron per block both are equal; with several, this one
  reproduces the original outlier vector in the extra token, while ``'jiang2025'`` writes the block's peak into all.

Neuron activations are the input of ``blocks[i].mlp.fc2`` (timm ``Mlp``: fc1 -> act -> fc2; ``GluMlp``: the gated
product), edited by forward pre-hooks, so no core file changes. Every image of a batch is edited on its own (the
authors' hook edits only the first image of a batch; ours equals their batch-size-1 runs).

Layout: the extra tokens are inserted after the existing prefix, ``[cls | registers | test-time registers |
patches]``, and counted in ``num_prefix_tokens`` (of the model and of every submodule that keeps such a count:
SkipAt blocks, RoPE attention), so every consumer that slices through ``num_prefix_tokens`` drops them like trained
registers, and rotary embeddings skip them as they skip cls. Prefix tokens carry no position embedding, so this is
the same computation as the authors' appending them at the end. Where the model has a ``norm_pre`` module (OpenCLIP's
``ln_pre``, applied to the whole sequence), the extra tokens are inserted before it and pass through it, as in the
authors' CLIP code.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..nn.vit import RegViT
from .register_neurons import (FORMAT, METHODS, SEARCH_PRESETS, NeuronSpec, _check_method, _fc2,
                               find_register_neurons, load_register_neurons, read_register_neurons,
                               released_register_neurons)

INITS = ("zero", "mean")

__all__ = ["FORMAT", "METHODS", "INITS", "SEARCH_PRESETS", "TestTimeRegisterMixin", "TestTimeRegisterViT",
           "add_test_time_registers", "find_register_neurons", "load_register_neurons", "read_register_neurons",
           "released_register_neurons", "register_peak"]


def register_peak(sel: Tensor, method: str) -> Tensor:
    """The value written into the extra tokens from the register neurons' activations ``sel`` [B, N, k].

    ``'jiang2025'``: [B, 1, 1], per image the signed activation of largest magnitude over all tokens and neurons
    (a tie goes to the negative one, as in the authors' ``sign_max``); ``'per_neuron'``: [B, 1, k], each neuron's
    maximum over the tokens.
    """
    if method == "jiang2025":
        hi, lo = sel.amax(dim=(1, 2)), sel.amin(dim=(1, 2))  # [B]
        return torch.where(hi.abs() > lo.abs(), hi, lo)[:, None, None]
    return sel.amax(dim=1, keepdim=True)


# ------------------------------------------------------------------------------------------------ model
class TestTimeRegisterMixin:
    """Adds ``num_test_time_registers`` tokens and shifts register-neuron activations into them."""

    __test__ = False  # not a pytest class

    def _attach(self, register_neurons: NeuronSpec, num_test_time_registers: int = 1, init: str = "zero",
                method: Optional[str] = None) -> None:
        if num_test_time_registers < 1:
            raise UserError(f"num_test_time_registers must be >= 1, got {num_test_time_registers}")
        if init not in INITS:
            raise UserError(f"unknown test-time register init {init!r}: use one of {', '.join(INITS)}")
        spec = read_register_neurons(register_neurons)
        spec.check_fits(self)
        method = _check_method(method or spec.method or "jiang2025")
        self.register_neurons = spec.neurons
        self.num_test_time_registers = num_test_time_registers
        self.test_time_register_init = init
        self.test_time_register_method = method
        self._base_prefix = self.num_prefix_tokens
        # every submodule that slices by a prefix count (SkipAt blocks, RoPE attention) must skip the new tokens too
        self._prefix_owners = [m for m in self.modules() if isinstance(getattr(m, "num_prefix_tokens", None), int)]
        for m in self._prefix_owners:
            m.num_prefix_tokens = m.num_prefix_tokens + num_test_time_registers
        self._tt_hooks = [
            _fc2(self, layer).register_forward_pre_hook(self._make_shift(torch.tensor(ns)))
            for layer, ns in spec.neurons.items()
        ]
        norm_pre = getattr(self, "norm_pre", None)
        if isinstance(norm_pre, nn.Module):  # insert before it: the new tokens pass through it (OpenCLIP's ln_pre)
            self._tt_hooks.append(norm_pre.register_forward_pre_hook(
                lambda m, args: (self._insert_test_time_registers(args[0]),) + tuple(args[1:])))

    def _make_shift(self, idx: Tensor):
        def shift(module: nn.Module, args: tuple) -> tuple:
            h = args[0]  # [B, N, hidden]
            p0, p1 = self._base_prefix, self.num_prefix_tokens
            i = idx.to(h.device)
            sel = h[..., i]  # [B, N, k] (a copy)
            sel[:, p0:p1] = register_peak(sel, self.test_time_register_method)
            sel[:, p1:] = 0
            h = h.clone()
            h[..., i] = sel
            return (h,) + tuple(args[1:])

        return shift

    def _insert_test_time_registers(self, t: Tensor) -> Tensor:
        """``[cls | registers | patches]`` [B, P + hw, C] -> ``[cls | registers | test-time registers | patches]``."""
        p0, k = self._base_prefix, self.num_test_time_registers
        if self.test_time_register_init == "mean":
            extra = t[:, p0:].mean(1, keepdim=True).expand(-1, k, -1)
        else:
            extra = t.new_zeros(t.shape[0], k, t.shape[2])
        self._tt_inserted = True
        return torch.cat([t[:, :p0], extra, t[:, p0:]], dim=1)

    def prepare_tokens(self, x: Tensor, *args, **kwargs) -> tuple[Tensor, tuple[int, int]]:
        """Tokens with the test-time registers after the prefix (inserted before ``norm_pre`` where there is one)."""
        self._tt_inserted = False
        t, hw = super().prepare_tokens(x, *args, **kwargs)
        if not self._tt_inserted:  # no norm_pre, or one the core does not call on the token sequence
            t = self._insert_test_time_registers(t)
        return t, hw

    def remove_test_time_registers(self) -> RegViT:
        """Undo :func:`add_test_time_registers` in place (hooks removed, prefix counts and class restored)."""
        for h in self._tt_hooks:
            h.remove()
        for m in self._prefix_owners:
            m.num_prefix_tokens = m.num_prefix_tokens - self.num_test_time_registers
        self.__class__ = self._orig_class
        for name in ("register_neurons", "num_test_time_registers", "test_time_register_init",
                     "test_time_register_method", "_base_prefix", "_tt_hooks", "_prefix_owners", "_orig_class",
                     "_tt_inserted"):
            if hasattr(self, name):
                delattr(self, name)
        return self


class TestTimeRegisterViT(TestTimeRegisterMixin, RegViT):
    """A :class:`RegViT` with test-time registers: ``TestTimeRegisterViT('dinov2_vitl14', 1, **regvit_kwargs)``."""

    def __init__(self, register_neurons: NeuronSpec, num_test_time_registers: int = 1, init: str = "zero",
                 method: Optional[str] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._orig_class = RegViT
        self._attach(register_neurons, num_test_time_registers, init, method)


def add_test_time_registers(vit: RegViT, register_neurons: NeuronSpec, num_test_time_registers: int = 1,
                            init: str = "zero", method: Optional[str] = None) -> RegViT:
    """Give an existing (e.g. pretrained) RegViT test-time registers, in place; returns it.

    ``register_neurons``: a released name (``'dinov2_vitl14'``), a JSON from ``find_register_neurons.py``, a
    ``{layer: [neurons]}`` mapping or ``(layer, neuron)`` pairs. ``method``: ``'jiang2025'`` or ``'per_neuron'``
    (None: the one the neuron file names, else ``'jiang2025'``). ``init``: the extra tokens start as zeros (the
    authors' choice) or as the mean patch token.

    As ``torch.nn.utils.parametrize`` does, the module's class is swapped for a subclass that adds the behaviour;
    weights and state-dict keys are untouched, and ``vit.remove_test_time_registers()`` restores the model.
    """
    if isinstance(vit, TestTimeRegisterMixin):
        raise UserError("this model already has test-time registers: call remove_test_time_registers() first")
    if not isinstance(vit, RegViT):
        raise TypeError(f"add_test_time_registers needs a dense_adapters.nn.RegViT, got {type(vit).__name__} "
                        "(for the mmseg backbone pass backbone.vit)")
    orig = type(vit)
    vit.__class__ = TestTimeRegisterViT if orig is RegViT else type(
        f"TestTimeRegister{orig.__name__}", (TestTimeRegisterMixin, orig), {})
    vit._orig_class = orig
    try:
        vit._attach(register_neurons, num_test_time_registers, init, method)
    except Exception:
        vit.__class__ = orig  # a refused spec leaves the model as it was
        del vit._orig_class
        raise
    return vit
