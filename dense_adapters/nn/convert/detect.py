"""Which source format a checkpoint is in, from its keys (and its Hugging Face config or native meta, if any).

Each format has a signature of keys no other format writes (``storage_tokens`` for DINOv3, ``layers.i.ln1`` for
mmseg, ``class_embedding`` for OpenCLIP, ...), tried from the most to the least specific. A file that matches none
is refused with its first keys rather than guessed; a ``--from`` that contradicts a clear signature is refused too.
"""
from __future__ import annotations

from typing import Any, Optional

from ...errors import CheckpointError, CheckpointMismatch, UserError
from .common import FORMATS, source_names, unwrap_checkpoint
from .hf import HF_MODEL_TYPES

NATIVE_META_KEY = "dense_adapters"


def detect_source(obj: Any, hf_config: Optional[dict] = None, *, none_ok: bool = False) -> Optional[str]:
    """The name of the format of a checkpoint object or state dict (a key of ``FORMATS``).

    Raises :class:`CheckpointError` when no format's signature fits (or returns None with ``none_ok``).
    """
    if isinstance(obj, dict) and isinstance(obj.get(NATIVE_META_KEY), dict):
        return "uformer-native" if obj[NATIVE_META_KEY].get("family") == "uformer" else "native"
    if isinstance(hf_config, dict) and hf_config.get("model_type") in HF_MODEL_TYPES:
        return "hf"
    sd = unwrap_checkpoint(obj)[0]
    keys = sorted(sd)
    for fmt in sorted(FORMATS.values(), key=lambda f: f.priority):
        if fmt.detect is not None and fmt.detect(sd):
            return fmt.name
    if none_ok:
        return None
    first = ", ".join(keys[:5])
    raise CheckpointError(f"cannot tell the format of this checkpoint (first keys: {first}): it matches none of "
                          f"{', '.join(source_names())}; pass --from / source= if you know it")


def check_source(given: str, detected: Optional[str]) -> None:
    """Refuse a ``--from`` that is unknown or contradicts what the keys clearly say."""
    if given not in FORMATS:
        raise UserError(f"unknown checkpoint source {given!r}: use one of {', '.join(source_names())} or 'auto'")
    if detected is not None and FORMATS[detected].family != FORMATS[given].family:
        raise CheckpointMismatch(f"the checkpoint is in the {detected!r} format ({FORMATS[detected].description}), "
                                 f"not {given!r}: drop --from / source= to convert it as {detected}, or pass "
                                 f"--from {detected}")

