"""Sequence PSNR/SSIM: the mean over frames of scikit-image's per-frame values, then the mean over sequences."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dense_adapters.datasets.samples.video import CAMERAS, film, load_photo
from dense_adapters.evaluation.restoration import PSNR, SSIM, psnr, sequence_score, ssim


def sk_ssim(a, b):
    return structural_similarity(a, b, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


@pytest.fixture(scope="module")
def sequences():
    """Two clips of real photos (the video sample's cameras) with noise that grows over the frames."""
    rng = np.random.default_rng(0)
    out = {}
    for name in ("chelsea-zoom", "coffee-pan"):
        photo, centre, scale = CAMERAS[name]
        gt = film(load_photo(photo), centre, scale, num_frames=4, size=(40, 56))
        sig = np.arange(1, 5)[:, None, None, None] * 6.0
        noisy = np.clip(np.round(gt + rng.normal(0, 1, gt.shape) * sig), 0, 255).astype(np.uint8)
        out[name] = (gt, noisy)
    return out


def to_t(a):  # [T, H, W, 3] -> [T, 3, H, W]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def test_sequence_score_is_the_mean_of_per_frame_skimage_values(sequences):
    gt, noisy = sequences["chelsea-zoom"]
    want_p = np.mean([peak_signal_noise_ratio(g, n, data_range=255) for g, n in zip(gt, noisy)])
    want_s = np.mean([sk_ssim(g, n) for g, n in zip(gt, noisy)])
    assert abs(sequence_score(psnr, to_t(noisy), to_t(gt)) - want_p) < 1e-6
    assert abs(sequence_score(ssim, to_t(noisy), to_t(gt)) - want_s) < 1e-6
    assert abs(sequence_score(psnr, noisy, gt) - want_p) < 1e-6  # [T, H, W, 3] arrays too
    # not the PSNR of the pooled MSE: the frames' noise differs, so the two disagree
    pooled = peak_signal_noise_ratio(gt, noisy, data_range=255)
    assert abs(pooled - want_p) > 0.1


def test_metrics_average_sequences_and_report_each(sequences):
    p, s = PSNR(per_sequence=True), SSIM()
    samples = [dict(pred_img=to_t(n).float() / 255, gt_img=to_t(g), sequence=k) for k, (g, n) in sequences.items()]
    for m in (p, s):
        m.process({}, samples[:1])
        m.process({}, samples[1:])
    per = {k: np.mean([peak_signal_noise_ratio(a, b, data_range=255) for a, b in zip(g, n)])
           for k, (g, n) in sequences.items()}
    res = p.evaluate(2)
    assert abs(res["PSNR"] - np.mean(list(per.values()))) < 1e-6
    for k, v in per.items():
        assert abs(res[f"PSNR_{k}"] - v) < 1e-6
    want_s = np.mean([np.mean([sk_ssim(a, b) for a, b in zip(g, n)]) for g, n in sequences.values()])
    res_s = s.evaluate(2)
    assert set(res_s) == {"SSIM"} and abs(res_s["SSIM"] - want_s) < 1e-6  # per-sequence keys only when asked


def test_frame_count_mismatch_is_an_error(sequences):
    gt, noisy = sequences["coffee-pan"]
    with pytest.raises(ValueError, match="frames"):
        sequence_score(ssim, to_t(noisy[:3]), to_t(gt))
