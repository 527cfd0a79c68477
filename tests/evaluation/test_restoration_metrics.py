"""PSNR/SSIM equal scikit-image's with the Uformer/SIDD evaluation settings, and the registered metrics."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dense_adapters.datasets.samples import photos
from dense_adapters.errors import UserError
from dense_adapters.evaluation.restoration import PSNR, SSIM, psnr, ssim


def sk_ssim(a, b):  # Wang et al. settings, per channel, as Uformer's calculate_ssim
    return structural_similarity(a, b, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


@pytest.fixture(scope="module")
def pairs():
    """(ground truth, degraded) uint8 pairs of real photos at odd sizes: noise, blur, a colour shift."""
    from skimage.filters import gaussian

    rng = np.random.default_rng(0)
    ims = photos(max_side=131)
    out = []
    for name in ("astronaut", "coffee", "chelsea"):
        gt = ims[name][:97, :123]
        noisy = np.clip(np.round(gt + rng.normal(0, 20, gt.shape)), 0, 255).astype(np.uint8)
        blur = (gaussian(gt, sigma=1.2, channel_axis=-1) * 255).round().astype(np.uint8)
        shift = np.clip(gt.astype(int) + [9, -4, 2], 0, 255).astype(np.uint8)
        out += [(gt, noisy), (gt, blur), (gt, shift)]
    return out


def test_psnr_and_ssim_equal_skimage(pairs):
    for gt, deg in pairs:
        assert abs(psnr(deg, gt) - peak_signal_noise_ratio(gt, deg, data_range=255)) < 1e-3
        assert abs(ssim(deg, gt) - sk_ssim(gt, deg)) < 1e-3


def test_float_predictions_are_rounded_to_uint8_like_uformer(pairs):
    gt, deg = pairs[0]
    pred = torch.from_numpy(deg).permute(2, 0, 1).float() / 255.0 + 0.3 / 255.0  # rounds back to deg
    pred[0, 0, 0] = 1.7  # clamped to 1 -> 255
    deg = deg.copy()
    deg[0, 0, 0] = 255
    assert abs(psnr(pred, gt) - peak_signal_noise_ratio(gt, deg, data_range=255)) < 1e-3
    assert abs(ssim(pred, gt) - sk_ssim(gt, deg)) < 1e-3


def test_identical_images(pairs):
    gt = pairs[0][0]
    assert psnr(gt, gt) == float("inf")
    assert ssim(gt, gt) == pytest.approx(1.0)


def test_registered_metrics_average_over_images(pairs):
    from dense_adapters.registry import METRICS

    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)  # noqa: E731
    samples = [dict(pred_img=to_t(d).float() / 255, gt_img=to_t(g)) for g, d in pairs[:4]]
    p, s = METRICS.build(dict(type="dense_adapters.PSNR")), METRICS.build(dict(type="dense_adapters.SSIM"))
    assert isinstance(p, PSNR) and isinstance(s, SSIM)
    for m in (p, s):
        m.process({}, samples[:2])
        m.process({}, samples[2:])
    want_p = np.mean([peak_signal_noise_ratio(g, d, data_range=255) for g, d in pairs[:4]])
    want_s = np.mean([sk_ssim(g, d) for g, d in pairs[:4]])
    assert abs(p.evaluate(4)["PSNR"] - want_p) < 1e-3
    assert abs(s.evaluate(4)["SSIM"] - want_s) < 1e-3


def test_errors(pairs):
    gt, deg = pairs[0]
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(deg[:-1], gt)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(gt[:8, :8], gt[:8, :8])
    with pytest.raises(UserError, match="pred_img"):
        PSNR().process({}, [dict(gt_img=torch.zeros(3, 4, 4))])
