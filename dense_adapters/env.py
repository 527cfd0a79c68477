"""Print what a bug report needs: versions, compiled mmcv ops, CUDA and bf16 support.

    python -m dense_adapters.env      (or: dense-adapters-env)
"""
from __future__ import annotations

import importlib
import platform
import sys


def collect() -> dict[str, str]:
    """Versions and capabilities as name -> text."""
    from . import __version__, _mmcv_lite

    _mmcv_lite.install()  # what importing the toolkit's registries does, so that mmseg imports under mmcv-lite
    info = {"dense_adapters": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "torchvision", "timm", "mmengine", "mmcv", "mmseg", "numpy", "cv2", "skimage"):
        try:
            info[name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception as e:  # noqa: BLE001 - report whatever breaks the import
            info[name] = f"not importable ({type(e).__name__}: {e})"
    compiled = _mmcv_lite.has_compiled_mmcv()
    info["mmcv compiled ops"] = "yes (full mmcv)" if compiled else "no (mmcv-lite; stand-in active)"
    import torch

    info["cuda"] = (f"yes: {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"
                    if torch.cuda.is_available() else f"no (torch built with CUDA {torch.version.cuda})")
    info["bf16"] = ("cuda" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "cpu autocast only")
    info["threads"] = str(torch.get_num_threads())
    return info


def main(argv=None) -> int:
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    info = collect()
    width = max(map(len, info))
    for k, v in info.items():
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
