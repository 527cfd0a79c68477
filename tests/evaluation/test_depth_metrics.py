"""DepthEvalMetric against an independent NumPy computation (invalid depth, Eigen crop, clipping, per-image and
pixel-pooled averaging) and against mmseg's DepthMetric where the two protocols agree."""
import numpy as np
import pytest
import torch

from dense_adapters.errors import DataError, UserError
from dense_adapters.registry import METRICS

from dense_adapters.utils import register_all_modules

register_all_modules()

from dense_adapters.evaluation.depth import crop_box, image_sums  # noqa: E402

NAMES = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")


def make_pair(seed: int, shape=(480, 640)):
    """Ground truth with holes (0), out-of-range depth and a NaN; a prediction with values outside the range."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, 9.0, shape)
    gt[rng.random(shape) < 0.1] = 0.0  # missing
    gt[:20, :] = 12.0  # beyond 10 m (and outside the Eigen crop rows)
    gt[100:110, 300:320] = 11.0  # beyond 10 m inside the crop
    gt[200, 200] = np.nan
    pred = gt * np.exp(rng.normal(0, 0.2 + 0.1 * seed, shape)) + rng.normal(0, 0.05, shape)
    pred = np.nan_to_num(pred, nan=3.0)
    pred[300:305, 100:110] = -1.0  # negative: clipped to min depth
    pred[310:315, 100:110] = 50.0  # too far: clipped to max depth
    return pred.astype(np.float32), gt.astype(np.float32)


def reference(pred, gt, min_d=1e-3, max_d=10.0, box=(45, 471, 41, 601), clip=True):
    """Plain NumPy, written independently of the module: returns (per-image metric dict, valid pred, valid gt)."""
    pred, gt = pred.astype(np.float64), gt.astype(np.float64)
    if clip:
        pred = np.clip(pred, min_d, max_d)
    sel = np.zeros(gt.shape, bool)
    sel[box[0]:box[1], box[2]:box[3]] = True
    with np.errstate(invalid="ignore"):
        sel &= (gt > min_d) & (gt < max_d)
    p, t = pred[sel], gt[sel]
    return p, t


def metrics_np(p, t):
    thr = np.maximum(p / t, t / p)
    err = np.log(p) - np.log(t)
    return dict(
        d1=np.mean(thr < 1.25), d2=np.mean(thr < 1.25 ** 2), d3=np.mean(thr < 1.25 ** 3),
        abs_rel=np.mean(np.abs(p - t) / t), sq_rel=np.mean((p - t) ** 2 / t), rmse=np.sqrt(np.mean((p - t) ** 2)),
        rmse_log=np.sqrt(np.mean(err ** 2)), log10=np.mean(np.abs(np.log10(p) - np.log10(t))),
        silog=100 * np.sqrt(np.mean(err ** 2) - np.mean(err) ** 2))


def run_metric(pairs, **kw):
    metric = METRICS.build(dict(type="dense_adapters.DepthEvalMetric", **kw))
    samples = [dict(pred_depth_map=dict(data=torch.from_numpy(p)[None]),
                    gt_depth_map=dict(data=torch.from_numpy(g)[None]), img_path=f"img_{i}.jpg")
               for i, (p, g) in enumerate(pairs)]
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_eigen_crop_rows_and_cols():
    assert crop_box((480, 640), "eigen") == (45, 471, 41, 601)  # rows 45..470, cols 41..600 inclusive
    assert crop_box((240, 320), "eigen_scaled") == (22, 235, 20, 300)
    assert crop_box((480, 640), None) == (0, 480, 0, 640)
    with pytest.raises(ValueError, match="480x640"):
        crop_box((240, 320), "eigen")
    with pytest.raises(ValueError, match="does not fit"):
        crop_box((100, 100), (0, 120, 0, 50))


def test_per_image_and_pooled_match_numpy():
    pairs = [make_pair(s) for s in range(3)]
    pairs[1][1][:, 320:] = 0.0  # image 1 has half the valid pixels: pooled and per-image averages differ
    out = run_metric(pairs)
    refs = [reference(p, g) for p, g in pairs]
    per = [metrics_np(p, t) for p, t in refs]
    pooled = metrics_np(np.concatenate([p for p, _ in refs]), np.concatenate([t for _, t in refs]))
    for k in NAMES:
        assert out[k] == pytest.approx(np.mean([m[k] for m in per]), rel=1e-9, abs=1e-12), k
        assert out[k + "_pooled"] == pytest.approx(pooled[k], rel=1e-9, abs=1e-12), k
    assert out["rmse"] != pytest.approx(out["rmse_pooled"], rel=1e-4)  # the two protocols really differ
    assert out["n_images"] == 3 and out["n_empty"] == 0


def test_crop_none_no_clip_and_single_averaging():
    pred, gt = make_pair(4)
    pred = np.abs(pred) + 0.01  # positive: no clipping needed
    out = run_metric([(pred, gt)], crop=None, clip_pred=False, averaging="pixel", max_depth=80.0)
    ref = metrics_np(*reference(pred, gt, max_d=80.0, box=(0, 480, 0, 640), clip=False))
    for k in NAMES:
        assert out[k + "_pooled"] == pytest.approx(ref[k], rel=1e-9), k
    assert "rmse" not in out


def test_images_without_valid_pixels_are_left_out():
    good = make_pair(5)
    empty = (good[0], np.zeros_like(good[1]))
    out = run_metric([good, empty])
    ref = metrics_np(*reference(*good))
    assert out["rmse"] == pytest.approx(ref["rmse"], rel=1e-9)
    assert out["n_empty"] == 1
    with pytest.raises(ValueError, match="none of the 1 images has a valid ground-truth pixel"):
        run_metric([empty])


def test_agrees_with_mmseg_depthmetric_except_silog_definition():
    from mmseg.evaluation.metrics import DepthMetric

    pairs = []
    for s in range(2):
        pred, gt = make_pair(s)
        pairs.append((np.clip(pred, 1e-3, 10.0), np.nan_to_num(gt)))  # mmseg neither clips nor skips NaN
    ours = run_metric(pairs)
    mm = DepthMetric(min_depth_eval=1e-3, max_depth_eval=10.0, crop_type="nyu_crop")
    mm.process({}, [dict(pred_depth_map=dict(data=torch.from_numpy(p.astype(np.float64))[None]),
                         gt_depth_map=dict(data=torch.from_numpy(g.astype(np.float64))[None])) for p, g in pairs])
    ref = mm.compute_metrics(mm.results)
    for k in ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10"):
        assert ours[k] == pytest.approx(ref[k], rel=1e-6), k
    # mmseg: sqrt(mean(g^2) - 0.5 mean(g)^2); ours (BTS / AdaBins / Toolbox): 100 * sqrt(mean(g^2) - mean(g)^2)
    per = [reference(p, g) for p, g in pairs]
    mm_silog = np.mean([np.sqrt(np.mean((np.log(p) - np.log(t)) ** 2) - 0.5 * np.mean(np.log(p) - np.log(t)) ** 2)
                        for p, t in per])
    assert ref["silog"] == pytest.approx(mm_silog, rel=1e-6)


def test_bad_inputs_fail_with_clear_errors():
    pred, gt = make_pair(0)
    # the data's faults are DataErrors (the image's name in front keeps the class), the options' UserErrors
    with pytest.raises(DataError, match="img_0.jpg: prediction .* differ in size"):
        run_metric([(pred[:, :600], gt)])
    with pytest.raises(DataError, match="img_0.jpg: the Eigen crop"):
        run_metric([(pred[:240, :320], gt[:240, :320])])
    with pytest.raises(UserError, match="averaging"):
        run_metric([(pred, gt)], averaging=("image", "median"))
    with pytest.raises(UserError, match="unknown crop"):
        run_metric([(pred, gt)], crop="garg")
    with pytest.raises(DataError, match="must be > 0"):
        image_sums(pred, gt, clip_pred=False)
