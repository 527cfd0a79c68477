"""DINOv2's NYU training transforms that mmseg lacks, against the Monocular-Depth-Estimation-Toolbox's
``NYUCrop`` and ``ColorAug`` (depth/datasets/pipelines/transforms.py) transcribed, with the same random draws."""
import numpy as np
import pytest

from dense_adapters.datasets.depth_transforms import FixedCrop, GammaBrightnessColorAug
from dense_adapters.errors import DataError


def _results(h=480, w=640, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 9.5, (h, w)).astype(np.float32)
    return dict(img=img, gt_depth_map=depth, seg_fields=["gt_depth_map"], img_shape=(h, w), img_path="x.jpg")


def test_fixed_crop_is_the_toolbox_nyu_crop():
    r = _results()
    img, depth = r["img"].copy(), r["gt_depth_map"].copy()
    out = FixedCrop()(r)
    np.testing.assert_array_equal(out["img"], img[45:472, 43:608, :])
    np.testing.assert_array_equal(out["gt_depth_map"], depth[45:472, 43:608])
    assert out["img_shape"] == (427, 565)
    with pytest.raises(DataError, match="FixedCrop.*needs images of at least 472 x 608"):
        FixedCrop()(_results(300, 400))
    with pytest.raises(ValueError, match="top < bottom"):
        FixedCrop(top=10, bottom=5)


def _toolbox_color_aug(image, prob, gamma_range, brightness_range, color_range):
    aug = True if np.random.rand() < prob else False
    if not aug:
        return image
    gamma = np.random.uniform(min(*gamma_range), max(*gamma_range))
    image_aug = image ** gamma
    brightness = np.random.uniform(min(*brightness_range), max(*brightness_range))
    image_aug = image_aug * brightness
    colors = np.random.uniform(min(*color_range), max(*color_range), size=3)
    white = np.ones((image.shape[0], image.shape[1]))
    color_image = np.stack([white * colors[i] for i in range(3)], axis=2)
    image_aug *= color_image
    return np.clip(image_aug, 0, 255)


@pytest.mark.parametrize("seed", range(6))  # some draws skip the augmentation (prob 0.5), some apply it
def test_gamma_brightness_color_aug_is_the_toolbox_coloraug(seed):
    kw = dict(prob=0.5, gamma_range=(0.9, 1.1), brightness_range=(0.75, 1.25), color_range=(0.9, 1.1))
    img = _results(24, 32, seed)["img"]
    np.random.seed(seed)
    ref = _toolbox_color_aug(img, **kw)
    np.random.seed(seed)
    out = GammaBrightnessColorAug(**kw)(dict(img=img.copy()))["img"]
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    with pytest.raises(ValueError, match="gamma_range"):
        GammaBrightnessColorAug(gamma_range=(0.0, 1.0))
