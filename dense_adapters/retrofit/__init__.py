"""SkipAt retrofit: make a pretrained ViT (or Uformer) faster by distilling SkipAt's Phi from its own attention.

    from dense_adapters.retrofit import RetrofitConfig, retrofit, spec_from_arch, build_from_retrofit
    report = retrofit(RetrofitConfig(spec_from_arch("dinov2_vits14_reg4"), images="imgs/", out="out/",
                                     checkpoint="dinov2_vits14_reg4_pretrain.pth", skip="3-8"))
    student = build_from_retrofit("out/retrofit.pth")      # RegViT with skip_layers (3..8), Phi trained

Guide: docs/skipat_retrofit.md.
"""
from .adapters import UformerAdapter, ViTAdapter, head_blocks
from .api import RetrofitConfig, retrofit
from .checkpoint import build_from_retrofit, load_retrofit, read_retrofit, save_retrofit
from .losses import cosine_distance, feature_loss, rel_mse
from .select import adjacent_attn_cka, choose_skips
from .spec import ModelSpec, build_student, parse_skip, spec_from_arch, spec_from_config

__all__ = ["RetrofitConfig", "retrofit", "ModelSpec", "spec_from_arch", "spec_from_config", "parse_skip",
           "build_student", "ViTAdapter", "UformerAdapter", "head_blocks", "save_retrofit", "load_retrofit",
           "read_retrofit", "build_from_retrofit", "adjacent_attn_cka", "choose_skips", "rel_mse", "cosine_distance",
           "feature_loss"]
