"""Two processes on the CPU (torchrun, gloo, DDP) train like one process with the same global batch."""
from __future__ import annotations

import json
import os.path as osp
import subprocess

import torch

from reliability_utils import FIXED_PIPELINE, ROOT, run_tool, tool_env, write_config


def _losses(path: str) -> list[float]:
    with open(path) as f:
        return [json.loads(line)["loss"] for line in f]


def test_two_gloo_processes_match_one_process(ade_root, tmp_path):
    # deterministic pipeline, no dropout, GroupNorm (per-sample, unlike BN's per-process batch statistics):
    # with 1 image per process x 2 processes = 2 images in one process, DDP's averaged gradients equal the
    # single-process gradients, so losses and weights agree up to float rounding. lr 3e-2: the base config's
    # DINOv2 "lin." head (logits at the patch grid) needs it to drop the loss by 0.5 in 6 iterations
    common = dict(train_pipeline=FIXED_PIPELINE, drop_path=0.0, dropout=0.0, lr=3e-2, ckpt_interval=6,
                  norm_cfg="dict(type='GN', num_groups=4)", extra_imports=", 'reliability_hooks'",
                  extra="custom_hooks = [dict(type='RecordLossHook')]")
    one = write_config(str(tmp_path / "one.py"), ade_root, batch=2, **common)
    two = write_config(str(tmp_path / "two.py"), ade_root, batch=1, **common)
    w1, w2 = str(tmp_path / "w1"), str(tmp_path / "w2")
    res = run_tool("train.py", one, "--work-dir", w1)
    assert res.returncode == 0, res.stderr[-3000:]
    env = dict(tool_env(), PORT="29631")
    res = subprocess.run(["bash", osp.join(ROOT, "tools", "dist_train.sh"), two, "2", "--work-dir", w2],
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Distributed training: True" in res.stdout + res.stderr

    single = _losses(osp.join(w1, "losses_rank0.jsonl"))
    r0, r1 = _losses(osp.join(w2, "losses_rank0.jsonl")), _losses(osp.join(w2, "losses_rank1.jsonl"))
    assert len(single) == len(r0) == len(r1) == 6
    mean = [(a + b) / 2 for a, b in zip(r0, r1)]  # equal pixels per image: the global loss is the ranks' mean
    assert max(abs(a - b) for a, b in zip(single, mean)) < 1e-3, (single, mean)
    assert single[-1] < single[0] - 0.5  # it trains
    a = torch.load(osp.join(w1, "iter_6.pth"), weights_only=True)["state_dict"]
    b = torch.load(osp.join(w2, "iter_6.pth"), weights_only=True)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-3, msg=k)
