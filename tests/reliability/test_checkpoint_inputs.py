"""Bad checkpoints given to every tool that reads one end in one 'error: ...' line (exit 2), before a long setup:
zero-byte, truncated, unreachable URL, missing - to test.py, train.py --resume, load_from, init_cfg and
convert_checkpoint.py; a checkpoint damaged inside, a remote pickle that runs code; config and launcher mistakes."""
from __future__ import annotations

import functools
import os
import os.path as osp
import re
import shutil
import struct
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from reliability_utils import call_tool, error_line, write_config

FAST = dict(deterministic=False, iters=1, batch=8)
DEAD_URL = "http://127.0.0.1:9/ckpt.pth"  # the discard port: nothing listens, the connection is refused at once


@pytest.fixture(scope="module")
def bad_files(trained_run, tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("bad_ckpts")
    good = osp.join(trained_run, "iter_6.pth")
    data = open(good, "rb").read()
    (d / "empty.pth").write_bytes(b"")
    (d / "trunc.pth").write_bytes(data[: len(data) // 2])
    return {"empty": str(d / "empty.pth"), "truncated": str(d / "trunc.pth"), "url": DEAD_URL,
            "missing": str(d / "nowhere.pth")}


MESSAGES = {
    "empty": r"{src} is empty \(0 bytes\): the save or download was interrupted; re-create it",
    "truncated": r"{src} cannot be read as a torch checkpoint \(\w+\): the file is truncated or damaged "
                 r"\(re-download or re-save it\)",
    "url": r"cannot download checkpoint {src}: .*: check the URL and the network, or download it yourself",
    "missing": r"checkpoint not found: {src}: give an existing file",
}


def _argv(tool: str, cfg: str, work: str, src: str) -> tuple[str, list]:
    if tool == "test":
        return "test.py", [cfg, src, "--work-dir", work]
    if tool == "resume":
        return "train.py", [cfg, "--work-dir", work, "--resume", src]
    if tool == "load_from":
        return "train.py", [cfg, "--work-dir", work, "--cfg-options", f"load_from={src}"]
    if tool == "init_cfg":
        return "train.py", [cfg, "--work-dir", work, "--cfg-options", "+model.backbone.init_cfg.type=Pretrained",
                            f"+model.backbone.init_cfg.checkpoint={src}"]
    return "convert_checkpoint.py", [src, osp.join(work, "out.pth")]


@pytest.mark.parametrize("tool", ["test", "resume", "load_from", "init_cfg", "convert"])
def test_bad_checkpoint_is_one_line_in_every_tool(capsys, bad_files, ade_root, tmp_path, tool):
    cfg = write_config(str(tmp_path / "c.py"), ade_root, **FAST)
    for kind, src in bad_files.items():
        work = str(tmp_path / f"w_{kind}")
        name, argv = _argv(tool, cfg, work, src)
        code, err = call_tool(name, *argv, capsys=capsys)
        assert code == 2, (kind, err[-3000:])
        line = error_line(err)
        assert re.fullmatch("error: " + MESSAGES[kind].format(src=re.escape(src)) + ".*", line), (kind, line)
        assert not osp.exists(osp.join(work, "out.pth"))


def test_resume_from_a_plain_state_dict_is_one_line(capsys, trained_run, ade_root, tmp_path):
    from safetensors.torch import save_file

    sd = torch.load(osp.join(trained_run, "iter_6.pth"), weights_only=True)["state_dict"]
    torch.save(sd, tmp_path / "plain.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "plain.safetensors"))
    cfg = write_config(str(tmp_path / "c.py"), ade_root, **FAST)
    for path in (str(tmp_path / "plain.pth"), str(tmp_path / "plain.safetensors")):
        code, err = call_tool("train.py", cfg, "--work-dir", str(tmp_path / "w"), "--resume", path, capsys=capsys)
        assert code == 2
        assert error_line(err) == (
            f"error: cannot resume from {path}: it is not a training checkpoint (no meta, state_dict, optimizer; e.g. a "
            "plain state dict): resume from a checkpoint written by tools/train.py, or start from its weights with "
            f"--cfg-options load_from={path}")


def _damage_inside(src: str, dst: str) -> None:
    """``src`` with bytes of its largest tensor overwritten; the zip directory and headers stay intact."""
    data = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start: start + 64] = b"\x7f" * 64
    open(dst, "wb").write(bytes(data))


def test_checkpoint_damaged_inside_is_one_line(capsys, trained_run, ade_root, tmp_path):
    bad = str(tmp_path / "iter_6.pth")
    _damage_inside(osp.join(trained_run, "iter_6.pth"), bad)
    torch.load(bad, weights_only=True)  # torch reads it without complaint
    cfg = write_config(str(tmp_path / "c.py"), ade_root, **FAST)
    for name, argv in (("test.py", [cfg, bad, "--work-dir", str(tmp_path / "w")]),
                       ("train.py", [cfg, "--work-dir", str(tmp_path / "w2"), "--resume", bad])):
        code, err = call_tool(name, *argv, capsys=capsys)
        assert code == 2
        assert error_line(err).startswith(f"error: {bad} is damaged: its content does not match the checksum "
                                          "recorded when it was saved (sha256 ")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_remote_pickle_in_load_from_is_refused(capsys, trained_run, ade_root, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    served = tmp_path / "served"
    served.mkdir()
    marker = str(tmp_path / "code_ran")
    ckpt = torch.load(osp.join(trained_run, "iter_6.pth"), weights_only=True)
    ckpt["meta"] = {"note": RunsCode(marker)}
    torch.save(ckpt, served / "evil.pth")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/evil.pth"
        cfg = write_config(str(tmp_path / "c.py"), ade_root, **FAST)
        code, err = call_tool("train.py", cfg, "--work-dir", str(tmp_path / "w"), "--cfg-options",
                              f"load_from={url}", capsys=capsys)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 2
    assert error_line(err) == (f"error: {url} needs arbitrary code to unpickle (it holds posix.mkdir), so it was "
                               "refused: pass --trust-pickle only if you trust its source, or re-save its state_dict "
                               "(tools/convert_checkpoint.py)")
    assert not osp.exists(marker)


def test_config_and_launcher_mistakes_are_one_line(capsys, ade_root, tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST"):
        monkeypatch.delenv(var, raising=False)
    cfg = write_config(str(tmp_path / "c.py"), ade_root, **FAST)
    broken = str(tmp_path / "broken.py")
    shutil.copy(cfg, broken)
    with open(broken, "a") as f:
        f.write("model = dict(backbone=dict(depth=2)\n")
    work = str(tmp_path / "w")
    cases = [
        ((broken,), rf"error: config {re.escape(broken)} has a syntax error \({re.escape(broken)}, line \d+: .*\): "
                    r"fix the file"),
        ((cfg, "--cfg-options", "model.backbone.num_register_tokens=-1"),
         r"error: num_register_tokens must be >= 0, got -1"),
        ((cfg, "--launcher", "pytorch"), r"error: --launcher pytorch needs .*torchrun \(tools/dist_train\.sh\).*"),
        ((cfg, "--launcher", "slurm"), r"error: --launcher slurm needs .*srun \(tools/slurm_train\.sh\).*"),
    ]
    for argv, message in cases:
        code, err = call_tool("train.py", *argv, "--work-dir", work, capsys=capsys)
        assert code == 2, (argv, err[-3000:])
        assert re.fullmatch(message, error_line(err)), (argv, error_line(err))
