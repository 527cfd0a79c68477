"""Artifact analysis: token norms, prefix-token attention maps, layer similarity (CKA), test-time registers.

Plain PyTorch/NumPy; plotting (matplotlib) lives in :mod:`dense_adapters.analysis.plotting` and is imported on use.
"""
from .attention import cls_attention_features, prefix_attention
from .cka import MinibatchCKA, hsic1_matrix, linear_cka
from .norms import LayerNorms, outlier_mask, split_prefix, summarize, token_norms
from .register_neurons import (SEARCH_PRESETS, find_register_neurons, load_register_neurons, read_register_neurons,
                               released_register_neurons)
from .test_time_registers import TestTimeRegisterViT, add_test_time_registers

__all__ = ["prefix_attention", "cls_attention_features", "MinibatchCKA", "hsic1_matrix", "linear_cka",
           "LayerNorms", "outlier_mask", "split_prefix", "summarize", "token_norms", "TestTimeRegisterViT",
           "add_test_time_registers", "find_register_neurons", "load_register_neurons", "read_register_neurons",
           "released_register_neurons", "SEARCH_PRESETS"]
