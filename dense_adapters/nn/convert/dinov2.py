"""Meta's DINOv2 checkpoints (facebookresearch/dinov2 ``.pth``, with or without registers)."""
from __future__ import annotations

import math
import re
from typing import Mapping

from torch import Tensor

from .common import StateDict, any_key, fold_prefix_pos, register_converter, require


def convert_dinov2(sd: StateDict) -> StateDict:
    """DINOv2 -> RegViT: ``register_tokens`` -> ``reg_token``; the cls entry of ``pos_embed`` (1 + 37x37) is folded into
    ``cls_token``; chunked ``blocks.<chunk>.<i>`` are flattened; SwiGLU ``mlp.w12``/``mlp.w3`` -> ``fc1``/``fc2``.
    ``mask_token`` keeps its name (loaded where the model has one, droppable otherwise)."""
    require(sd, ("pos_embed", "cls_token"), "DINOv2")
    out: StateDict = {}
    for k, v in sd.items():
        k = re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", k)
        k = k.replace("register_tokens", "reg_token").replace("mlp.w12.", "mlp.fc1.").replace("mlp.w3.", "mlp.fc2.")
        out[k] = v
    return fold_prefix_pos(out, 1)


def looks_like_dinov2(keys: Mapping[str, Tensor]) -> bool:
    if "storage_tokens" in keys or "pos_embed" not in keys:
        return False
    n = keys["pos_embed"].shape[1] - 1 if hasattr(keys, "__getitem__") else 0
    if n <= 0 or math.isqrt(n) ** 2 != n:  # DINOv2 stores the cls entry: 1 + h*w (a native RegViT does not)
        return False
    return ("register_tokens" in keys or any_key(keys, r"^blocks\.\d+\.\d+\.") or any_key(keys, r"\.mlp\.w12\.")
            or ("mask_token" in keys and any_key(keys, r"^blocks\.\d+\.ls1\.gamma$")))


register_converter("dinov2", convert_dinov2, looks_like_dinov2, "Meta DINOv2 .pth (register_tokens, mask_token)",
                   priority=50)
