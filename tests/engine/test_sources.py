"""Every remote checkpoint source through the one safe reader, against an HTTP server on 127.0.0.1 started here.

http(s)://, and mmengine's torchvision://, open-mmlab:// and mmcls:// prefixes resolved to it: a pickle that runs code
is refused without ``trust_pickle`` (and runs with it, so the file really is hostile); the cache is keyed by the full
source; a damaged download is removed; unreachable, unknown or unsupported sources are one line.
"""
import functools
import json
import os
import re
import signal
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from mmengine.model import BaseModule
from mmengine.runner import checkpoint as mm_checkpoint
from safetensors.torch import save_file

import dense_adapters.engine  # noqa: F401  (registers the sources, the runner, the safe Pretrained)
from dense_adapters.engine.safe_load import load_checkpoint_file, prepare_pretrained
from dense_adapters.errors import CheckpointError, CheckpointMismatch, UntrustedCheckpoint
from dense_adapters.nn.convert import cached_path


class RunsCode:
    """Unpickling this calls ``os.mkdir(marker)``: the witness that code from the file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """(folder served, base URL): a threaded HTTP server on 127.0.0.1; the whole test is bounded to 60 s."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # a private download cache
    monkeypatch.setenv("MMENGINE_HOME", str(tmp_path / "mmengine_home"))
    root = tmp_path / "served"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()

    def too_long(*_):
        raise TimeoutError("remote checkpoint test ran over 60 s")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(60)
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
    httpd.shutdown()
    httpd.server_close()


def _tables(monkeypatch, tmp_path, names: dict) -> None:
    """Point torchvision://, open-mmlab:// (mmengine's own $MMENGINE_HOME/open_mmlab.json) and mmcls:// at URLs."""
    monkeypatch.setattr(mm_checkpoint, "get_torchvision_models", lambda: dict(names))
    monkeypatch.setattr(mm_checkpoint, "get_mmcls_models", lambda: dict(names))
    home = tmp_path / "mmengine_home"
    home.mkdir(exist_ok=True)
    (home / "open_mmlab.json").write_text(json.dumps(names))


def test_remote_pickles_with_code_are_refused_on_every_prefix(served, tmp_path, monkeypatch):
    root, base = served
    marker = str(tmp_path / "code_ran")
    weights = {"backbone.w": torch.arange(4.0)}
    torch.save({"state_dict": weights, "meta": {"note": RunsCode(marker)}}, root / "evil.pth")
    _tables(monkeypatch, tmp_path, {"evil": f"{base}/evil.pth"})
    for src in (f"{base}/evil.pth", "torchvision://evil", "open-mmlab://evil", "openmmlab://evil", "mmcls://evil"):
        with pytest.raises(UntrustedCheckpoint) as e:
            load_checkpoint_file(src)
        assert str(e.value) == (
            f"{src} needs arbitrary code to unpickle (it holds posix.mkdir), so it was refused: pass --trust-pickle "
            "only if you trust its source, or re-save its state_dict (tools/convert_checkpoint.py)")
        assert not os.path.exists(marker), src
    # the same file with trust: the code runs (so the refusals above were of a real attack); mmcls:// post-processed
    ckpt = load_checkpoint_file("mmcls://evil", trust_pickle=True)
    assert os.path.isdir(marker)
    assert list(ckpt["state_dict"]) == ["w"] and torch.equal(ckpt["state_dict"]["w"], weights["backbone.w"])


def test_mmengines_own_loader_runs_the_code(served, tmp_path):
    # what load_from / init_cfg did before they went through the safe reader (torch.hub, weights_only=False)
    root, base = served
    marker = str(tmp_path / "code_ran")
    torch.save({"state_dict": {}, "meta": {"note": RunsCode(marker)}}, root / "evil.pth")
    mm_checkpoint.CheckpointLoader.load_checkpoint(f"{base}/evil.pth", map_location="cpu")
    assert os.path.isdir(marker)


class Foreign(BaseModule):
    """A module of another library that mmengine initialises from its init_cfg (not one of ours)."""

    def __init__(self, checkpoint: str) -> None:
        super().__init__(init_cfg=dict(type="Pretrained", checkpoint=checkpoint))
        self.fc = torch.nn.Linear(2, 2)


def test_init_cfg_pretrained_of_any_module_goes_through_the_safe_reader(served, tmp_path, monkeypatch):
    root, base = served
    good = {"fc.weight": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "fc.bias": torch.tensor([5.0, 6.0])}
    save_file(good, str(root / "good.safetensors"))
    marker = str(tmp_path / "code_ran")
    torch.save({"state_dict": good, "note": RunsCode(marker)}, root / "evil.pth")
    torch.save({"other.weight": torch.zeros(2, 2)}, root / "other.pth")
    _tables(monkeypatch, tmp_path, {"good": f"{base}/good.safetensors"})

    model = Foreign("open-mmlab://good")
    assert prepare_pretrained(model) == 1
    model.init_weights()
    assert torch.equal(model.fc.weight, good["fc.weight"]) and torch.equal(model.fc.bias, good["fc.bias"])

    model = Foreign(f"{base}/evil.pth")
    prepare_pretrained(model)
    with pytest.raises(UntrustedCheckpoint, match="needs arbitrary code"):
        model.init_weights()
    assert not os.path.exists(marker)

    model = Foreign(f"{base}/other.pth")  # nothing fits: one line, not a random model with a warning
    prepare_pretrained(model)
    with pytest.raises(CheckpointMismatch, match=r"does not fit Foreign \(init_cfg Pretrained\): none of its tensors "
                                                 r"match the module's names \(e\.g\. other\.weight vs fc\.weight"):
        model.init_weights()


def test_remote_cache_is_keyed_by_the_full_source(served, tmp_path, monkeypatch):
    root, base = served
    for sub, value in (("a", 1.0), ("b", 2.0)):  # every Hugging Face file is model.safetensors
        (root / sub).mkdir()
        save_file({"w": torch.full((2,), value)}, str(root / sub / "model.safetensors"))
    _tables(monkeypatch, tmp_path, {"a": f"{base}/a/model.safetensors", "b": f"{base}/b/model.safetensors"})
    assert float(load_checkpoint_file(f"{base}/a/model.safetensors")["w"][0]) == 1.0
    assert float(load_checkpoint_file("open-mmlab://b")["w"][0]) == 2.0
    assert float(load_checkpoint_file("torchvision://a")["w"][0]) == 1.0
    assert cached_path(f"{base}/a/model.safetensors") != cached_path(f"{base}/b/model.safetensors")
    os.remove(root / "b" / "model.safetensors")  # downloaded once: the cache answers
    assert float(load_checkpoint_file(f"{base}/b/model.safetensors")["w"][0]) == 2.0


def test_damaged_download_is_removed_and_fetched_again(served):
    root, base = served
    torch.save({"w": torch.arange(1000.0)}, root / "x.pth")
    data = (root / "x.pth").read_bytes()
    (root / "x.pth").write_bytes(data[: len(data) // 2])  # the server sends a cut file
    url = f"{base}/x.pth"
    with pytest.raises(CheckpointError) as e:
        load_checkpoint_file(url)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{url} ") and "truncated or damaged" in msg
    assert msg.endswith(f"(the damaged cached copy {cached_path(url)} was removed: the next read downloads it again)")
    assert not os.path.exists(cached_path(url))
    (root / "x.pth").write_bytes(data)
    assert torch.equal(load_checkpoint_file(url)["w"], torch.arange(1000.0))


def test_unreachable_unknown_and_unsupported_sources_are_one_line(served, tmp_path, monkeypatch):
    _, base = served
    _tables(monkeypatch, tmp_path, {"resnet18": f"{base}/resnet18.pth"})
    cases = {
        f"{base}/missing.pth": rf"^cannot download checkpoint {base}/missing\.pth: File not found: check the URL",
        "http://127.0.0.1:9/x.pth": r"^cannot download checkpoint http://127\.0\.0\.1:9/x\.pth: .*refused",
        "torchvision://resnet81": r"^cannot read torchvision://resnet81: torchvision has no checkpoint named "
                                  r"'resnet81' \(e\.g\. resnet18\): check the name",
        "pavi://model/1": r"^cannot read pavi://model/1: pavi:// needs the pavi client",
        "nosuch://x.pth": r"^cannot read nosuch://x\.pth: no reader for nosuch://",
        "s3://bucket/x.pth": r"^cannot read s3://bucket/x\.pth: .*petrel",
    }
    for src, message in cases.items():
        with pytest.raises(CheckpointError) as e:
            load_checkpoint_file(src)
        assert "\n" not in str(e.value) and re.search(message, str(e.value)), (src, str(e.value))


def test_modules_that_read_their_own_checkpoint_get_it_through_the_safe_reader(served, tmp_path):
    # mmseg's VisionTransformer reads init_cfg itself with mmengine's loader: it gets a weights-only-readable file
    from mmseg.models.backbones import VisionTransformer

    root, base = served
    tiny = dict(img_size=32, patch_size=16, embed_dims=32, num_layers=1, num_heads=2)
    good = {k: torch.randn_like(v) for k, v in VisionTransformer(**tiny).state_dict().items()}
    save_file(good, str(root / "vit.safetensors"))  # mmengine's own loader cannot read safetensors
    marker = str(tmp_path / "code_ran")
    torch.save({"state_dict": good, "note": RunsCode(marker)}, tmp_path / "evil.pth")
    for src, trust in ((f"{base}/vit.safetensors", False), (str(tmp_path / "evil.pth"), True)):
        vit = VisionTransformer(**tiny, init_cfg=dict(type="Pretrained", checkpoint=src))
        prepare_pretrained(vit, trust_pickle=trust)
        vit.init_weights()
        assert all(torch.equal(vit.state_dict()[k], v) for k, v in good.items()), src
    assert os.path.isdir(marker)  # trusted: its code ran once, in the safe reader
    os.rmdir(marker)
    vit = VisionTransformer(**tiny, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "evil.pth")))
    with pytest.raises(UntrustedCheckpoint, match=r"evil\.pth needs arbitrary code to unpickle \(it holds "
                                                  r"posix\.mkdir\), so it was refused"):
        prepare_pretrained(vit)  # one line before the build goes on (mmengine's loader raised UnpicklingError)
    assert not os.path.exists(marker)


def test_flexible_runner_gets_a_verified_local_copy_of_load_from(served, tmp_path, monkeypatch):
    # FSDP/DeepSpeed strategies read load_from with mmengine's loader: the tool hands them the reader's local copy
    from mmengine.config import Config
    from mmengine.registry import RUNNERS

    from dense_adapters.cli.runner import build_runner

    root, base = served
    torch.save({"state_dict": {"w": torch.arange(3.0)}}, root / "good.pth")
    marker = str(tmp_path / "code_ran")
    torch.save({"state_dict": {}, "meta": {"note": RunsCode(marker)}}, root / "evil.pth")
    seen = []
    monkeypatch.setattr(RUNNERS, "build", lambda cfg: seen.append(cfg.load_from))
    build_runner(Config(dict(runner_type="FlexibleRunner", load_from=f"{base}/good.pth")))
    assert os.path.isfile(seen[0]) and torch.equal(torch.load(seen[0])["state_dict"]["w"], torch.arange(3.0))
    with pytest.raises(UntrustedCheckpoint, match="--trust-pickle"):
        build_runner(Config(dict(runner_type="FlexibleRunner", load_from=f"{base}/evil.pth")))
    assert not os.path.exists(marker) and len(seen) == 1
