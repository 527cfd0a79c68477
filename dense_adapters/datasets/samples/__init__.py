"""Tiny sample datasets made from real photos that ship with scikit-image (no download at any time).

Each submodule registers a maker with :func:`register_sample`; ``tools/make_sample_data.py NAME OUT`` runs it.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

import numpy as np

SAMPLES: dict[str, Callable[[str], str]] = {}


def register_sample(name: str) -> Callable:
    """Decorator: register ``fn(out_dir) -> data_root`` under ``name``."""

    def deco(fn: Callable[[str], str]) -> Callable[[str], str]:
        SAMPLES[name] = fn
        return fn

    return deco


def load_all() -> dict[str, Callable[[str], str]]:
    """Import every sample module of this package and return the registry."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return SAMPLES


def photos(max_side: int = 512) -> dict[str, np.ndarray]:
    """Real RGB photos from ``skimage.data`` (bundled files only), uint8 [H, W, 3], long side <= max_side."""
    import skimage.data as d
    from skimage.color import gray2rgb
    from skimage.transform import rescale

    left, right, _ = d.stereo_motorcycle()
    raw = {
        "astronaut": d.astronaut(), "coffee": d.coffee(), "chelsea": d.chelsea(), "rocket": d.rocket(),
        "immunohistochemistry": d.immunohistochemistry(), "hubble": d.hubble_deep_field(), "retina": d.retina(),
        "motorcycle_left": left, "motorcycle_right": right, "camera": gray2rgb(d.camera()),
        "coins": gray2rgb(d.coins()), "clock": gray2rgb(d.clock()),
    }
    out = {}
    for name, im in raw.items():
        scale = max_side / max(im.shape[:2])
        if scale < 1:
            im = (rescale(im, scale, channel_axis=-1, anti_aliasing=True) * 255).round().astype(np.uint8)
        out[name] = np.ascontiguousarray(im[..., :3])
    return out
