"""A training killed with SIGKILL and restarted with --resume ends exactly as an uninterrupted one (weights and
logged losses), and a crash while a checkpoint is written never leaves a truncated latest checkpoint."""
from __future__ import annotations

import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch

from reliability_utils import ROOT, WORKERS, logged_losses, run_tool, tool_env, write_config


def _wait_for(path: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    t0 = time.time()
    while not osp.exists(path):
        assert proc.poll() is None, f"training ended before {path} appeared"
        assert time.time() - t0 < timeout
        time.sleep(0.1)


def _train_until_killed(cfg: str, work: str, marker: str, *extra: str) -> None:
    proc = subprocess.Popen([sys.executable, "tools/train.py", cfg, "--work-dir", work, *extra], env=tool_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        _wait_for(marker, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    os.remove(marker)


def test_sigkill_then_resume_matches_uninterrupted(trained_run, ade_root, tmp_path):
    # the reference run trained 6 iterations with 2 dataloader workers, random resize/crop/flip (NumPy) and
    # photometric distortion (Python's random), dropout and drop-path (torch), checkpoints every 2 iterations.
    # Here the run is SIGKILLed during iteration 3 (after iter_2.pth), resumed, SIGKILLed again during iteration 5
    # (after iter_4.pth; the second pass over the 8 images has begun), and resumed to the end.
    work, marker = str(tmp_path / "work"), str(tmp_path / "marker")
    path = str(tmp_path / "killed.py")
    for at, resume in ((2, ()), (4, ("--resume",))):
        cfg = write_config(path, ade_root, **WORKERS, extra_imports=", 'reliability_hooks'",
                           extra=f"custom_hooks = [dict(type='WaitToBeKilledHook', at={at}, marker={marker!r})]")
        _train_until_killed(cfg, work, marker, *resume)
        assert not osp.exists(osp.join(work, f"iter_{at + 2}.pth"))
    cfg = write_config(path, ade_root, **WORKERS)  # the same config without the test hook
    res = run_tool("train.py", cfg, "--work-dir", work, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "skipped 4 batches by sampler indices" in out and "random states restored" in out
    assert "resume is NOT exact" not in out

    ref, got = logged_losses(trained_run), logged_losses(work)
    assert sorted(got) == list(range(1, 7)) and got == ref  # 1-2 | 3-4 | 5-6, as one run
    a = torch.load(osp.join(trained_run, "iter_6.pth"), weights_only=True)["state_dict"]
    b = torch.load(osp.join(work, "iter_6.pth"), weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


WRITER = """
from mmengine.fileio import get_file_backend
import dense_adapters.engine  # noqa: F401  (registers the atomic backend)
backend = get_file_backend({path!r}, backend_args=dict(backend="dense_adapters_atomic"))  # what the tools select
backend.put(b"x" * (400 << 20), {path!r})  # 400 MB: the kill lands mid-write
"""


def test_kill_during_checkpoint_write_keeps_previous_file(tmp_path):
    from dense_adapters.engine.checkpoint_io import AtomicLocalBackend

    path = str(tmp_path / "iter_4.pth")
    good = b"a complete checkpoint"
    AtomicLocalBackend().put(good, path)
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(path=path)], env=tool_env())
    try:
        t0 = time.time()
        while not [n for n in os.listdir(tmp_path) if n.endswith(".tmp") and os.path.getsize(tmp_path / n) > 0]:
            assert proc.poll() is None and time.time() - t0 < 60
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with open(path, "rb") as f:
        assert f.read() == good  # the old file, whole; the partial data only ever lived in the temporary file
    # the next run on this folder (tools/train.py holds lock_work_dir) removes what the killed write left
    from dense_adapters.fileio import lock_work_dir, stale_temporaries

    left = stale_temporaries(str(tmp_path))
    assert len(left) == 1 and os.path.getsize(left[0]) > 0
    notes = []
    with lock_work_dir(str(tmp_path), log=notes.append):
        assert stale_temporaries(str(tmp_path)) == []
    assert notes and notes[0].startswith("removed 1 temporary file(s) (") and str(tmp_path) in notes[0]
    assert sorted(os.listdir(tmp_path)) == [".dense_adapters.lock", "iter_4.pth"]


def test_resume_skips_truncated_latest_checkpoint(trained_run, tmp_path):
    from dense_adapters.cli.runner import find_resume_checkpoint

    work = tmp_path / "work"
    work.mkdir()
    for n in ("iter_2.pth", "iter_4.pth"):
        with open(osp.join(trained_run, n), "rb") as f:
            (work / n).write_bytes(f.read())
    with open(osp.join(trained_run, "iter_6.pth"), "rb") as f:
        data = f.read()
    (work / "iter_6.pth").write_bytes(data[: len(data) // 2])  # e.g. written by a tool without atomic saves
    (work / "last_checkpoint").write_text(str(work / "iter_6.pth"))
    assert find_resume_checkpoint(str(work)) == str(work / "iter_4.pth")
    (work / "last_checkpoint").write_text("")  # an empty pointer
    assert find_resume_checkpoint(str(work)) == str(work / "iter_4.pth")
    assert find_resume_checkpoint(str(tmp_path / "empty")) is None
