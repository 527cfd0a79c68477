"""Convert a DINOv2 / timm / DeiT-III checkpoint to RegViT's names (a state dict usable as init_cfg or load_from).

    python tools/convert_checkpoint.py dinov2_vits14_reg4_pretrain.pth checkpoints/regvit_s14_reg4.pth --from dinov2
    python tools/convert_checkpoint.py model.safetensors out.pth --from timm --preset dinov2_vits14_reg4

With --preset (or --arch ...) the result is also loaded into that architecture and the key report is printed.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import Optional, Sequence

from ..errors import UserError
from .core import run_cli


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from ..nn import PRESETS
    from ..nn.convert import CONVERTERS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="source checkpoint (.pth/.pt/.bin or .safetensors; local path or URL)")
    p.add_argument("dst", help="output .pth (a plain state dict, loadable with weights_only=True)")
    p.add_argument("--from", dest="source", default="auto", choices=["auto", *sorted(CONVERTERS)],
                   help="checkpoint family (default: detect from the keys)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="check the result against this architecture")
    p.add_argument("--num-register-tokens", type=int, help="override the preset's register count")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a checkpoint that needs arbitrary code to unpickle (only for trusted files)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    import torch

    from ..nn import PRESETS, RegViT
    from ..nn.convert import CONVERTERS, adapt_to_model, detect_source, load_file, unwrap_state_dict

    raw = unwrap_state_dict(load_file(args.src, trust_pickle=args.trust_pickle))
    source = detect_source(raw) if args.source == "auto" else args.source
    sd = CONVERTERS[source](raw)
    print(f"converted {len(sd)} tensors from a {source} checkpoint")
    if args.preset:
        kw = dict(PRESETS[args.preset])
        if args.num_register_tokens is not None:
            kw["num_register_tokens"] = args.num_register_tokens
        try:
            sd, report = adapt_to_model(sd, RegViT(**kw), source)
        except ValueError as e:
            raise UserError(str(e)) from None
        print(report)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(sd, args.dst)
    print(f"wrote {args.dst}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
