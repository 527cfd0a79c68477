"""Plain-PyTorch core: no mmengine, mmcv or mmseg imports below this package."""
from .attention import Attention
from .block import Block, BlockOutput
from .convert import (CONVERTERS, FORMATS, LoadReport, adapt_to_model, build_from_checkpoint, load_file, load_pretrained,
                      make_native_checkpoint)
from .rope import RopePositionEmbedding
from .skip_attention import IdentitySkip, SkipAttention
from .uformer import UFORMER_PRESETS, Uformer, create_uformer
from .video_uformer import VIDEO_UFORMER_PRESETS, VideoUformer, create_video_uformer
from .vit import ARCHS, PRESETS, RegViT, create_regvit
from .window_attention import WindowAttention

__all__ = ["Attention", "Block", "BlockOutput", "RopePositionEmbedding", "FORMATS", "build_from_checkpoint",
           "load_file", "make_native_checkpoint", "SkipAttention", "IdentitySkip", "RegViT", "create_regvit", "ARCHS", "PRESETS",
           "CONVERTERS", "LoadReport", "adapt_to_model", "load_pretrained", "Uformer", "create_uformer",
           "UFORMER_PRESETS", "VideoUformer", "create_video_uformer", "VIDEO_UFORMER_PRESETS", "WindowAttention"]
