"""Fixtures: a tiny teacher with random but fixed weights, and a folder of real photos (scikit-image's, no download)."""
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # retrofit_helpers (name unique in tests/)
from retrofit_helpers import active_vit  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread_here(one_thread):
    """Every module of this folder runs its tiny models on one thread (tests/conftest.py's ``one_thread``)."""
    yield


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> str:
    """Ten real photos, long side 96 px, one of them grey (saved as mode L) and one RGBA PNG."""
    import numpy as np
    from PIL import Image

    from dense_adapters.datasets.samples import photos

    root = tmp_path_factory.mktemp("photos")
    ims = photos(max_side=96)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble", "retina",
                 "motorcycle_left", "motorcycle_right", "coins"):
        Image.fromarray(ims[name]).save(root / f"{name}.jpg", quality=92)
    Image.fromarray(ims["camera"][..., 0]).save(root / "camera_grey.png")  # mode L
    rgba = np.concatenate([ims["clock"], np.full(ims["clock"].shape[:2] + (1,), 255, np.uint8)], -1)
    Image.fromarray(rgba).save(root / "clock_rgba.png")
    return str(root)


@pytest.fixture(scope="session")
def vit_teacher(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("teacher") / "vit.pth"
    torch.save(active_vit().state_dict(), path)
    return str(path)
