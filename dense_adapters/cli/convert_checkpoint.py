"""Convert a checkpoint to RegViT's (or Uformer's) names (a plain state dict usable as init_cfg, --checkpoint or
load_from).

    python tools/convert_checkpoint.py dinov3_vits16_pretrain_lvd1689m-08c60483.pth out.pth --preset dinov3_vits16
    python tools/convert_checkpoint.py hf/dinov2-with-registers-small/ out.pth     # config.json: no preset needed
    python tools/convert_checkpoint.py open_clip_pytorch_model.bin out.pth --from openclip --preset openclip_vitb16
    python tools/convert_checkpoint.py dinov2_vits14_reg4_pretrain.pth out.pth --from dinov2
    python tools/convert_checkpoint.py skipat_tiny.t7 out.pth --preset skipat_tiny_patch16_224   # SkipAt's ViT-T
    python tools/convert_checkpoint.py skipat_tiny.t7 cls.pth --preset skipat_tiny_patch16_224 --with-head
    python tools/convert_checkpoint.py Uformer_B.pth out.pth     # Uformer's release: architecture read from shapes

Formats (--from): detected by default; see docs/backbones.md. With --preset (or a Hugging Face folder, or a native
checkpoint, which name their architecture) the result is loaded into that architecture first: the report is printed
and a load that would leave model tensors uninitialised or checkpoint tensors unused is refused unless --partial.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from ..errors import UserError
from .core import run_cli


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from ..nn import PRESETS
    from ..nn.convert import source_names

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="source checkpoint: a .pth/.pt/.bin/.safetensors file, a Hugging Face model folder, "
                               "or an http(s):// / file:// URL")
    p.add_argument("dst", help="output .pth (a plain state dict, loadable with weights_only=True)")
    p.add_argument("--from", dest="source", default="auto", choices=["auto", *source_names()],
                   help="checkpoint format (default: detect from the keys / config.json)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="check (and fit) the result against this architecture")
    p.add_argument("--num-register-tokens", type=int, help="override the preset's register count")
    p.add_argument("--partial", action="store_true",
                   help="with --preset: allow a partial load (the output then holds only what the checkpoint had)")
    p.add_argument("--with-head", action="store_true",
                   help="with --preset: write a checkpoint of dense_adapters.ImageClassifier (backbone + the file's "
                        "classifier head), for tools/test.py with a classification config")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a checkpoint that needs arbitrary code to unpickle (only for trusted files)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    import torch

    from ..nn import PRESETS, RegViT
    from ..nn.convert import (FORMATS, build_from_checkpoint, build_uformer_from_checkpoint, check_source,
                              detect_source, load_pretrained, native_meta, read_checkpoint, unwrap_checkpoint)

    from .. import engine  # noqa: F401  (mmengine's checkpoint prefixes: torchvision://, open-mmlab://, s3://, ...)
    from ..fileio import atomic_open

    ckpt = read_checkpoint(args.src, trust_pickle=args.trust_pickle)
    meta = native_meta(ckpt.obj)
    name = args.source if args.source != "auto" else detect_source(ckpt.obj, ckpt.hf_config, none_ok=True)
    if args.with_head and not args.preset:
        raise UserError("--with-head needs --preset (the backbone the classifier was trained with)")
    if name in FORMATS and FORMATS[name].model_family == "uformer" and not args.preset:
        # a Uformer (the authors' release or ours): the architecture is read from the shapes, the load checked
        model, report = build_uformer_from_checkpoint(ckpt, source=args.source, partial=args.partial)
        print(f"Uformer embed_dim={model.embed_dim} depths={model.depths}: {report}")
        own = model.state_dict()
        sd = {k: own[k] for k in report.loaded}
    elif args.preset or ckpt.hf_config is not None or meta is not None:
        if args.preset:
            kw = dict(PRESETS[args.preset])
            if args.num_register_tokens is not None:
                kw["num_register_tokens"] = args.num_register_tokens
            model = RegViT(**kw)
            report = load_pretrained(model, ckpt, source=args.source, partial=args.partial)
        else:
            model, report = build_from_checkpoint(ckpt, source=args.source, partial=args.partial)
        print(report)
        own = model.state_dict()
        sd = {k: own[k] for k in report.loaded}  # what came from the checkpoint, fitted (resized, folded, masked)
        if args.with_head:
            sd = _classifier_state(ckpt, report.source, sd, args.src)
    else:
        raw, _ = unwrap_checkpoint(ckpt.obj)
        detected = detect_source(raw, none_ok=args.source != "auto")
        source = detected if args.source == "auto" else args.source
        if args.source != "auto":
            check_source(source, detected)
        sd = FORMATS[source].convert(raw)
        print(f"converted {len(sd)} tensors from a {source} checkpoint (no --preset: not checked against an "
              "architecture)")
    with atomic_open(args.dst) as f:  # the old file or the whole new one, with the umask's permissions
        torch.save(sd, f)
    print(f"wrote {args.dst}")


def _classifier_state(ckpt, source: str, backbone: dict, src: str) -> dict:
    """``{'state_dict': backbone.vit.* + head.*}``: the converted backbone and the checkpoint's classifier head."""
    from ..errors import CheckpointMismatch
    from ..nn.convert import FORMATS, unwrap_checkpoint

    raw, _ = unwrap_checkpoint(ckpt.obj, FORMATS[source].containers)
    head = {k: raw[k] for k in ("head.weight", "head.bias") if k in raw}
    if len(head) != 2:
        raise CheckpointMismatch(f"{src} has no classifier head (head.weight, head.bias): leave out --with-head")
    return {"state_dict": {**{f"backbone.vit.{k}": v for k, v in backbone.items()}, **head}}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
