"""Fixtures of the analysis tests: a tiny ViT with a planted register neuron, on real photos."""
from types import SimpleNamespace

import pytest
import torch

from dense_adapters.analysis.images import load_images, preprocess
from dense_adapters.analysis.synthetic import plant_register_neuron
from dense_adapters.nn import RegViT

# a 4 x 6 patch grid (non-square on purpose), planted outliers at two cells from block 1 on
TINY = dict(arch="tiny", embed_dim=32, depth=3, num_heads=2, img_size=(56, 84), patch_size=14)
PLANT = dict(block=1, neuron=5, positions=[(1, 2), (3, 4)], strength=400.0)


def tiny_vit(**kw) -> RegViT:
    torch.manual_seed(0)
    return RegViT(**{**TINY, **kw}).eval()


def planted_vit(**kw) -> RegViT:
    vit = tiny_vit(**kw)
    plant_register_neuron(vit, **PLANT)
    return vit


@pytest.fixture(scope="session")
def ana() -> SimpleNamespace:
    """The tiny-model helpers (tests run in importlib mode: they cannot import this conftest)."""
    return SimpleNamespace(TINY=TINY, PLANT=PLANT, tiny_vit=tiny_vit, planted_vit=planted_vit)


@pytest.fixture(scope="session")
def photos_batch() -> torch.Tensor:
    """Three real photos at 56 x 84: [3, 3, 56, 84]."""
    imgs = load_images(["chelsea", "coffee", "rocket"])
    return torch.cat([preprocess(im, (56, 84), 14)[0] for _, im in imgs])


@pytest.fixture(scope="session")
def planted_ckpt(tmp_path_factory) -> list:
    """Tool arguments naming the planted model saved as a native checkpoint."""
    path = tmp_path_factory.mktemp("ckpt") / "planted.pth"
    torch.save(planted_vit().state_dict(), path)
    return ["--arch", "vit_tiny_patch16_224", "--set", "embed_dim=32", "depth=3", "num_heads=2",
            "img_size=(56,84)", "patch_size=14", "--checkpoint", str(path), "--source", "native"]
