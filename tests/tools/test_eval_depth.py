"""tools/eval_depth.py: PNG (mm) and .npy (m) inputs give the metric's numbers, colour maps are written, and bad
input fails with one-line errors."""
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def tool():
    from dense_adapters.cli import eval_depth

    return eval_depth


def error_line(capsys, tool, argv) -> str:
    """The tool fails with exit code 2 and exactly one line on stderr, 'error: ...'."""
    assert tool.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """Ground truth from the Middlebury motorcycle (480x640 PNG mm), predictions as PNG (mm) and .npy (m)."""
    from dense_adapters.datasets.samples.nyu import motorcycle_depth

    root = tmp_path_factory.mktemp("depth")
    _, depth_mm = motorcycle_depth()
    rng = np.random.default_rng(0)
    gts, preds = {}, {}
    for i, (top, left) in enumerate(((0, 0), (20, 101))):
        gt = np.round(depth_mm[top:top + 480, left:left + 640]).astype(np.uint16)
        pred_m = gt / 1000.0 * np.exp(rng.normal(0, 0.15, gt.shape)) + 0.3 * i
        gts[f"s{i}"], preds[f"s{i}"] = gt, pred_m
    for sub in ("gt", "pred_png", "pred_npy"):
        os.makedirs(root / sub)
    for k in gts:
        cv2.imwrite(str(root / "gt" / f"{k}.png"), gts[k])
        cv2.imwrite(str(root / "pred_png" / f"{k}.png"), np.round(preds[k] * 1000).astype(np.uint16))
        np.save(root / "pred_npy" / f"{k}.npy", preds[k].astype(np.float32))
    return root, gts, preds


def expected(gts, preds_m):
    """Independent NumPy: Eigen crop, 1e-3 < gt < 10, clipped predictions, per-image mean and pooled RMSE."""
    rmses, sq, n = [], 0.0, 0
    for k in sorted(gts):
        t = gts[k].astype(np.float64) / 1000.0
        p = np.clip(preds_m[k], 1e-3, 10.0)
        sel = np.zeros(t.shape, bool)
        sel[45:471, 41:601] = True
        sel &= (t > 1e-3) & (t < 10.0)
        e = (p[sel] - t[sel]) ** 2
        rmses.append(np.sqrt(e.mean()))
        sq, n = sq + e.sum(), n + e.size
    return np.mean(rmses), np.sqrt(sq / n)


def test_png_and_npy_predictions_give_the_protocol_numbers(tool, maps, tmp_path):
    root, gts, preds = maps
    rmse, rmse_pooled = expected(gts, preds)
    vis = tmp_path / "vis"
    out = tmp_path / "m.json"
    assert tool.main([str(root / "pred_npy"), str(root / "gt"), "--out-dir", str(vis), "--json", str(out)]) == 0
    m = json.load(open(out))["metrics"]
    assert m["rmse"] == pytest.approx(rmse, rel=1e-5)  # float32 .npy
    assert m["rmse_pooled"] == pytest.approx(rmse_pooled, rel=1e-5)
    assert m["n_images"] == 2
    png_preds = {k: np.round(v * 1000) / 1000 for k, v in preds.items()}  # what the mm PNGs hold
    metrics, _ = tool.evaluate(tool.parse_args([str(root / "pred_png"), str(root / "gt")]))
    assert metrics["rmse"] == pytest.approx(expected(gts, png_preds)[0], rel=1e-9)
    for k in gts:
        for kind in ("pred", "gt", "err"):
            im = cv2.imread(str(vis / f"{k}_{kind}.png"))
            assert im.shape == (480, 640, 3)
        err = cv2.imread(str(vis / f"{k}_err.png"))
        assert (err[:45] == 0).all() and err[100:400, 100:500].any()  # outside the Eigen crop: black


def test_resize_pred_and_size_mismatch_error(tool, maps, tmp_path, capsys):
    root, gts, preds = maps
    small = tmp_path / "small"
    os.makedirs(small)
    for k, v in preds.items():
        np.save(small / f"{k}.npy", cv2.resize(v, (320, 240), interpolation=cv2.INTER_LINEAR))
    line = error_line(capsys, tool, [str(small), str(root / "gt")])
    assert re.search(r"s0: prediction 240x320 and ground truth 480x640 differ in size", line)
    metrics, _ = tool.evaluate(tool.parse_args([str(small), str(root / "gt"), "--resize-pred"]))
    assert np.isfinite(metrics["rmse"])


def test_error_paths_are_one_line(tool, maps, tmp_path, capsys):
    root, _, _ = maps
    partial = tmp_path / "partial"
    os.makedirs(partial)
    np.save(partial / "s0.npy", np.ones((480, 640), np.float32))
    empty = tmp_path / "empty"
    os.makedirs(empty)
    rgb = tmp_path / "rgb"
    os.makedirs(rgb)
    cv2.imwrite(str(rgb / "s0.png"), np.zeros((480, 640, 3), np.uint8))
    cv2.imwrite(str(rgb / "s1.png"), np.zeros((480, 640, 3), np.uint8))
    cases = [
        ([str(tmp_path / "nope"), str(root / "gt")], "prediction folder .* does not exist"),
        ([str(root / "pred_npy"), str(tmp_path / "nope")], "ground-truth folder .* does not exist"),
        ([str(root / "pred_npy"), str(empty)], "has no .png or .npy depth maps"),
        ([str(partial), str(root / "gt")], "1 of 2 ground-truth maps have no prediction .*first: 's1'"),
        ([str(rgb), str(root / "gt")], "3 channels: depth PNGs must be single-channel"),
        ([str(root / "pred_npy"), str(root / "gt"), "--min-depth", "5", "--max-depth", "1"], "--min-depth"),
    ]
    for argv, pattern in cases:
        assert re.search(pattern, error_line(capsys, tool, argv)), pattern


def test_cli_runs_as_a_script(maps):
    root, _, _ = maps
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "eval_depth.py"), str(root / "pred_png"),
                        str(root / "gt"), "--crop", "eigen_scaled"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "per-image" in r.stdout and "pooled" in r.stdout and "rmse" in r.stdout
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "eval_depth.py"), "/no/such/dir", str(root / "gt")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "error: prediction folder '/no/such/dir' does not exist"
