"""Pieces of the retrofit: skip parsing and selection, the schedule, the data, the Uformer decoder's retrofit."""
import math

import numpy as np
import pytest
import torch

from dense_adapters.errors import DataError, UserError
from dense_adapters.retrofit import ModelSpec, RetrofitConfig, choose_skips, head_blocks, parse_skip, retrofit
from dense_adapters.retrofit.data import RetrofitImages, list_images, split_heldout
from dense_adapters.retrofit.engine import lr_at

from retrofit_helpers import UFORMER_KW, active_uformer


def test_parse_skip():
    assert parse_skip("3-8", 12) == [3, 4, 5, 6, 7, 8]
    assert parse_skip("2,4, 9-10", 12) == [2, 4, 9, 10]
    for bad, msg in (("0-3", "cannot skip"), ("5-3", "backwards"), ("x", "expected block indices"),
                     ("11-12", "do not exist")):
        with pytest.raises(UserError, match=msg):
            parse_skip(bad, 12)


def test_choose_skips_by_adjacent_cka():
    # adjacent[i-1] = CKA(a_{i-1}, a_i); depth 6: blocks 1..4 may skip
    assert choose_skips([0.1, 0.9, 0.5, 0.95, 0.99], 2) == [2, 4]
    assert choose_skips([float("nan"), 0.3, 0.2, 0.1, 0.0], 1) == [2]
    with pytest.raises(UserError, match="between 1 and 4"):
        choose_skips([0.1] * 5, 5)


def test_head_blocks():
    assert head_blocks(12) == [2, 5, 8, 11]
    assert head_blocks(24) == [5, 11, 17, 23]
    assert head_blocks(4) == [0, 1, 2, 3]


def test_schedule_is_a_function_of_the_iteration():
    n1, n2, lr1, lr2 = 100, 200, 1e-3, 2e-4
    lrs = [lr_at(i, n1, n2, lr1, lr2) for i in range(n1 + n2)]
    assert [s for s, _ in lrs] == [1] * n1 + [2] * n2
    warm = [l for _, l in lrs[:6]]  # 5% warm-up (5 iterations), then the peak
    assert warm == sorted(warm) and warm[0] < 0.25 * lr1 and warm[4] == pytest.approx(lr1)
    assert max(l for s, l in lrs if s == 1) == pytest.approx(lr1)
    assert lrs[n1][1] < 0.25 * lr2 and max(l for s, l in lrs if s == 2) == pytest.approx(lr2)
    assert lrs[n1 - 1][1] == pytest.approx(0.01 * lr1) and lrs[-1][1] == pytest.approx(0.01 * lr2)


def test_samples_depend_on_position_only(photo_dir):
    files = list_images(photo_dir)
    ds = RetrofitImages(files, 32, 100, seed=3)
    a, b, c = ds[17]["inputs"], ds[17]["inputs"], ds[18]["inputs"]
    assert a.shape == (3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, RetrofitImages(files, 32, 100, seed=4)[17]["inputs"])
    for name in ("camera_grey.png", "clock_rgba.png"):  # grey and RGBA files come out RGB
        i = [k for k, f in enumerate(files) if f.endswith(name)][0]
        assert ds[i]["inputs"].shape == (3, 32, 32)


def test_bad_images_are_one_line(tmp_path, photo_dir):
    with pytest.raises(DataError, match="no images"):
        list_images(str(tmp_path))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as e:
        RetrofitImages(list_images(str(tmp_path)), 32, 4)[0]
    assert "broken.jpg" in str(e.value) and "\n" not in str(e.value)
    train, val = split_heldout(list_images(photo_dir))
    assert len(val) == 2 and not set(train) & set(val)
    with pytest.raises(DataError, match="too few"):
        split_heldout(list_images(photo_dir)[:2])


def test_uformer_decoder_retrofit(photo_dir, tmp_path):
    """SkipAt in every decoder block of a plain Uformer: the retrofitted decoder's features and output are closer
    to the teacher's than with Phi untrained."""
    ckpt = tmp_path / "uformer.pth"
    torch.save(active_uformer().state_dict(), ckpt)
    cfg = RetrofitConfig(ModelSpec("uformer", None, dict(UFORMER_KW)), images=photo_dir, out=str(tmp_path / "out"),
                         checkpoint=str(ckpt), skip="auto", size=32, batch_size=4, stage1_iters=30, stage2_iters=30,
                         lr1=3e-3, lr2=1e-3, noise_sigma=0.1, num_workers=0, log_interval=30, eval_batch=4,
                         bench=False)
    report = retrofit(cfg)
    before, after = report["similarity"]["untrained"], report["similarity"]["retrofit"]
    assert report["skip_mode"] == "parametric" and report["skip_layers"] == [0, 1]
    assert after["final_patch_cos"] > before["final_patch_cos"] + 0.05
    assert after["final_rel_mse"] < 0.9 * before["final_rel_mse"]
    assert after["final_psnr_to_teacher"] > before["final_psnr_to_teacher"] + 0.3
    assert report["flops"]["student_gmacs"] < report["flops"]["teacher_gmacs"]
    from dense_adapters.retrofit import build_from_retrofit

    student = build_from_retrofit(str(tmp_path / "out" / "retrofit.pth"))
    assert student.skip_mode == "parametric" and not any(hasattr(b, "attn") for s in student.decoders
                                                          for b in s.blocks)
