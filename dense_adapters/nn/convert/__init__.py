"""Checkpoint reading and conversion to RegViT: one reader, one converter per source family, one loader.

- :func:`load_file` / :func:`read_checkpoint` (``reader.py``): the safe reader every checkpoint load goes through.
- converters (pure ``state_dict -> state_dict``): ``dinov2.py``, ``dinov3.py``, ``hf.py``, ``timm.py`` (also DeiT-III
  and native), ``openclip.py``, ``mmseg.py``, ``skipat.py`` (SkipAt's released ViTs), ``uformer.py`` (Uformer: the
  authors' release and our own layout, into :class:`~dense_adapters.nn.uformer.Uformer`); registered in ``common.FORMATS`` (``CONVERTERS``: name -> function)
  and auto-detected by :func:`detect_source`.
- :func:`load_pretrained` / :func:`adapt_to_model` / :func:`build_from_checkpoint` (``load.py``): fitting, the
  :class:`LoadReport`, the refusal of silent partial loads, native checkpoint meta.
"""
from .common import (CONVERTERS, DROPPABLE, FORMATS, NEW_IN_MODEL, SourceFormat, StateDict, droppable_reason,
                     register_converter, source_names, unwrap_checkpoint, unwrap_state_dict)
from .integrity import content_digest, record_digest, verify_digest
from .reader import (Checkpoint, cached_path, fetch_checkpoint, load_file, probe_checkpoint, read_checkpoint,
                     register_source, resolve_source)
from .hf import convert_hf, regvit_kwargs_from_hf_config  # noqa: E402  (registration order = detection priority)
from .openclip import convert_openclip
from .mmseg import convert_mmseg
from .dinov3 import convert_dinov3
from .dinov2 import convert_dinov2
from .timm import convert_deit3, convert_native, convert_timm
from .skipat import convert_skipat, regvit_to_skipat
from .uformer import (convert_uformer, convert_uformer_native, uformer_kwargs_from_state_dict,
                      uformer_to_authors)
from .detect import NATIVE_META_KEY, check_source, detect_source
from .load import (NATIVE_FORMAT_VERSION, LoadReport, adapt_to_model, build_from_checkpoint,
                   build_uformer_from_checkpoint, check_native_layout, load_pretrained, make_native_checkpoint,
                   model_family, native_meta, resize_pos_embed)

__all__ = [
    "CONVERTERS", "DROPPABLE", "FORMATS", "NEW_IN_MODEL", "SourceFormat", "StateDict", "droppable_reason",
    "register_converter", "source_names", "unwrap_checkpoint", "unwrap_state_dict", "Checkpoint", "cached_path",
    "fetch_checkpoint", "probe_checkpoint", "register_source", "resolve_source", "content_digest", "record_digest",
    "verify_digest",
    "load_file", "read_checkpoint", "convert_hf", "regvit_kwargs_from_hf_config", "convert_openclip", "convert_mmseg",
    "convert_dinov3", "convert_dinov2", "convert_deit3", "convert_native", "convert_timm", "convert_skipat",
    "regvit_to_skipat", "convert_uformer", "convert_uformer_native", "uformer_kwargs_from_state_dict",
    "uformer_to_authors", "build_uformer_from_checkpoint", "model_family", "NATIVE_META_KEY",
    "check_source", "detect_source", "NATIVE_FORMAT_VERSION", "LoadReport", "adapt_to_model", "build_from_checkpoint",
    "check_native_layout", "load_pretrained", "make_native_checkpoint", "native_meta", "resize_pos_embed",
]
