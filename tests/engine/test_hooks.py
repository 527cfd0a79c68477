"""The engine's hooks, loop, backend and runner against a small in-process mmengine Runner (no subprocess):
NaN guard, checkpoint fit, exact resume, atomic checkpoints, weights_only-safe message hubs, safe loading."""
import os
import os.path as osp
import uuid

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

import dense_adapters.engine  # noqa: F401  (registers hooks, loop, runner, backend)
from dense_adapters.engine.checkpoint_fit import check_fits
from dense_adapters.engine.nan_guard import NonFiniteLoss
from dense_adapters.engine.safe_load import SafeLoadRunner
from dense_adapters.errors import CheckpointMismatch, UntrustedCheckpoint


class TinyNet(BaseModel):
    """A 2-layer MLP with dropout on 8-d inputs (random streams matter for exact resume); ``nan_at`` makes the
    loss of that (0-based) iteration NaN."""

    def __init__(self, nan_at: int = -1, width: int = 16, nan_grad_at: int = -1) -> None:
        super().__init__()
        self.fc1, self.drop, self.fc2 = torch.nn.Linear(8, width), torch.nn.Dropout(0.5), torch.nn.Linear(width, 1)
        self.nan_at, self.nan_grad_at, self.calls = nan_at, nan_grad_at, 0

    def forward(self, inputs, data_samples=None, mode="tensor"):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        y = self.fc2(self.drop(F.relu(self.fc1(x)))).squeeze(1)
        if mode != "loss":
            return y
        loss = F.mse_loss(y, torch.as_tensor(data_samples, dtype=y.dtype))
        if self.calls == self.nan_grad_at:  # the loss stays finite, its gradient (hence the update) is NaN
            w = self.fc1.weight.sum()
            loss = loss + 0.0 * torch.sqrt(w - w.detach())
        self.calls += 1
        return {"loss": loss * float("nan") if self.calls - 1 == self.nan_at else loss}


def _data(n: int = 12) -> list:
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(n, 8, generator=g)
    return [{"inputs": x, "data_samples": float(x.sum())} for x in xs]


def _runner(work: str, model=None, max_iters: int = 4, hooks=(), **kw) -> SafeLoadRunner:
    cfg = dict(
        model=model or TinyNet(), work_dir=work, experiment_name=f"hooks_{uuid.uuid4().hex[:8]}",
        train_dataloader=dict(dataset=_data(), sampler=dict(type="InfiniteSampler", shuffle=True, seed=1),
                              batch_size=3, collate_fn=dict(type="pseudo_collate"), num_workers=0),
        train_cfg=dict(type="dense_adapters.ResumableIterBasedTrainLoop", max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.05, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type="dense_adapters.AtomicCheckpointHook", interval=2, by_epoch=False,
                                           max_keep_ckpts=-1), logger=dict(type="LoggerHook", interval=1)),
        custom_hooks=[dict(type="dense_adapters.WeightsOnlyStateHook"), dict(type="dense_adapters.ContentHashHook"),
                      dict(type="dense_adapters.NanGuardHook"),
                      dict(type="dense_adapters.ExactResumeHook"),
                      dict(type="dense_adapters.CheckpointFitHook", mode="strict"), *hooks],
        randomness=dict(seed=0), default_scope="mmseg")
    cfg.update(kw)
    return SafeLoadRunner(**cfg)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 4-iteration run (checkpoints at 2 and 4) and its final weights."""
    work = str(tmp_path_factory.mktemp("ref"))
    runner = _runner(work)
    runner.train()
    return work, {k: v.clone() for k, v in runner.model.state_dict().items()}, runner.message_hub


def test_atomic_checkpoints_and_pointer(reference):
    work, _, _ = reference
    assert sorted(n for n in os.listdir(work) if n.endswith(".pth")) == ["iter_2.pth", "iter_4.pth"]
    assert not [n for n in os.listdir(work) if n.endswith(".tmp")]
    with open(osp.join(work, "last_checkpoint")) as f:
        assert f.read() == osp.join(work, "iter_4.pth")


def test_checkpoints_load_with_weights_only_and_no_allow_list(reference):
    work, weights, hub = reference
    ckpt = torch.load(osp.join(work, "iter_4.pth"), weights_only=True)  # no HistoryBuffer, no NumPy objects
    for k, v in weights.items():
        assert torch.equal(ckpt["state_dict"][k], v)
    saved = ckpt["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(saved["log"], torch.Tensor) and saved["log"].numel() == 4  # one loss per iteration
    assert ckpt["rng_state"]["world_size"] == 1  # ExactResumeHook's random states


def test_resume_is_exact_and_restores_the_message_hub(reference, tmp_path):
    ref_work, ref_weights, ref_hub = reference
    work = str(tmp_path / "w")
    os.makedirs(work)
    runner = _runner(work, load_from=osp.join(ref_work, "iter_2.pth"), resume=True)
    runner.train()
    for k, v in ref_weights.items():
        assert torch.equal(runner.model.state_dict()[k], v), k  # dropout, sampler order and momentum resumed
    losses = runner.message_hub.get_scalar("train/loss").data[0]
    assert list(losses) == list(ref_hub.get_scalar("train/loss").data[0])  # iterations 1-2 restored, 3-4 new


def _ckpts(work: str) -> list:
    return sorted(n for n in os.listdir(work) if ".pth" in n)


def _pointer(work: str):
    path = osp.join(work, "last_checkpoint")
    return open(path).read() if osp.exists(path) else None


def test_nan_guard_stops_before_the_bad_checkpoint(tmp_path):
    work = str(tmp_path / "w")
    runner = _runner(work, model=TinyNet(nan_at=3))  # iteration 4 (1-based) has a NaN loss; iteration 3 was fine
    with pytest.raises(NonFiniteLoss) as e:
        runner.train()
    good = osp.join(work, "iter_2.pth")
    assert str(e.value).startswith(f"non-finite loss at iteration 4 (loss=nan); training stopped, the last good "
                                   f"checkpoint is {good}: lower the learning rate")
    assert _ckpts(work) == ["iter_2.pth"] and _pointer(work) == good


def test_nan_guard_refuses_to_save_weights_of_a_diverged_update(tmp_path):
    # iteration 2's loss is finite but its update makes the weights NaN: the checkpoint after it would be the
    # "last good" one of a guard that looks at losses only, and resuming from it gives NaN at once
    work = str(tmp_path / "w")
    runner = _runner(work, model=TinyNet(nan_grad_at=1))
    with pytest.raises(NonFiniteLoss) as e:
        runner.train()
    assert str(e.value).startswith(
        "non-finite weights after iteration 2 (fc1.weight) although the loss was finite; the checkpoint of that "
        "step was not written; training stopped, there is no good checkpoint (none was written before): lower")
    assert _ckpts(work) == []


def test_nan_guard_sets_aside_a_checkpoint_that_diverges_at_once(tmp_path):
    # iter_2 is followed by a finite loss (good), iter_4 by a NaN one: iter_4 is not good, whatever its weights
    work = str(tmp_path / "w")
    runner = _runner(work, model=TinyNet(nan_at=4), max_iters=6)
    with pytest.raises(NonFiniteLoss) as e:
        runner.train()
    good, bad = osp.join(work, "iter_2.pth"), osp.join(work, "iter_4.pth")
    assert str(e.value).startswith(
        f"non-finite loss at iteration 5 (loss=nan); training stopped, {bad} was written just before and training "
        f"from it diverged at once: renamed to {bad}.diverged; the last good checkpoint is {good}: lower")
    assert _ckpts(work) == ["iter_2.pth", "iter_4.pth.diverged"] and _pointer(work) == good
    from dense_adapters.engine.checkpoint_io import find_resume_checkpoint

    assert find_resume_checkpoint(work) == good


def test_nan_guard_names_no_checkpoint_when_each_one_diverged(tmp_path):
    work = str(tmp_path / "w")
    runner = _runner(work, model=TinyNet(nan_at=2))  # iter_2 written, iteration 3 NaN
    with pytest.raises(NonFiniteLoss, match=r"renamed to .*iter_2.pth.diverged; there is no good checkpoint \(the "
                                            r"loss diverged right after each one\): .* then start again$"):
        runner.train()
    assert _ckpts(work) == ["iter_2.pth.diverged"] and _pointer(work) is None


def test_checkpoint_fit_refuses_another_model(reference, tmp_path):
    ref_work, _, _ = reference
    ckpt = osp.join(ref_work, "iter_4.pth")
    runner = _runner(str(tmp_path / "w"), model=TinyNet(width=24), load_from=ckpt)
    with pytest.raises(CheckpointMismatch, match=rf"^{ckpt} does not fit this model \(3 shape mismatches\): "
                                                 r"fc1.weight: checkpoint \(16, 8\) vs model \(24, 8\)"):
        runner.train()


def test_check_fits_modes():
    own = {"backbone.vit.reg_token": torch.zeros(1, 4, 8), "backbone.w": torch.zeros(3),
           "decode_head.conv.weight": torch.zeros(150, 8)}
    same = {k: v.clone() for k, v in own.items()}
    assert check_fits(same, own) == []
    other_head = dict(same, **{"decode_head.conv.weight": torch.zeros(21, 8)})
    with pytest.raises(CheckpointMismatch, match="1 shape mismatches"):
        check_fits(other_head, own, mode="strict")
    assert check_fits(other_head, own, mode="finetune") == ["decode_head.conv.weight"]  # heads may differ
    with pytest.raises(CheckpointMismatch, match=r"has 2 register tokens \(backbone.vit.reg_token\) but the model "
                                                 r"has 4: set model.backbone.num_register_tokens=2"):
        check_fits(dict(same, **{"backbone.vit.reg_token": torch.zeros(1, 2, 8)}), own)
    with pytest.raises(CheckpointMismatch, match=r"lacks 1 of the model's tensors \(backbone.w\)"):
        check_fits({k: v for k, v in same.items() if k != "backbone.w"}, own)
    with pytest.raises(CheckpointMismatch, match="no tensor of the checkpoint matches"):
        check_fits({"a.w": torch.zeros(1)}, {"b.w": torch.zeros(1)}, mode="finetune")


class Opaque:
    """Pickling an instance makes a checkpoint that weights_only loading refuses."""


def test_safe_load_runner_refuses_pickled_code_unless_trusted(reference, tmp_path):
    ref_work, ref_weights, _ = reference
    ckpt = torch.load(osp.join(ref_work, "iter_4.pth"), weights_only=True)
    ckpt["meta"]["note"] = Opaque()
    ckpt["meta"].pop("content_sha256", None)  # changed on purpose
    path = str(tmp_path / "pickled.pth")
    torch.save(ckpt, path)
    runner = _runner(str(tmp_path / "w"), load_from=path)
    with pytest.raises(UntrustedCheckpoint, match=rf"^{path} needs arbitrary code to unpickle \(it holds "
                                                  rf"{__name__}.Opaque\), so it was refused: pass --trust-pickle"):
        runner.load_checkpoint(path)
    runner.trust_pickle = True
    runner.load_checkpoint(path)
    for k, v in ref_weights.items():
        assert torch.equal(runner.model.state_dict()[k], v)


SCHEDULE = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2),
            dict(type="PolyLR", eta_min=1e-4, power=1.0, by_epoch=False, begin=2, end=4)]


def _lrs(runner) -> list:
    return [float(v) for v in runner.message_hub.get_scalar("train/lr").data[0]]


def test_resume_applies_the_configs_lr_through_the_schedule(tmp_path, capsys):
    # "lower the lr and --resume": the checkpoint's optimizer and scheduler state used to win silently. The resumed
    # run now has, at every later iteration, the lr of an uninterrupted run started with the new lr
    def optim(lr, wd=0.0):
        return dict(optimizer=dict(type="SGD", lr=lr, momentum=0.9, weight_decay=wd))

    ref = _runner(str(tmp_path / "ref"), optim_wrapper=optim(0.01), param_scheduler=SCHEDULE)
    ref.train()
    first = _runner(str(tmp_path / "a"), max_iters=2, optim_wrapper=optim(0.05), param_scheduler=SCHEDULE)
    first.train()
    resumed = _runner(str(tmp_path / "b"), optim_wrapper=optim(0.01, wd=1e-4), param_scheduler=SCHEDULE,
                      load_from=str(tmp_path / "a" / "iter_2.pth"), resume=True)
    resumed.train()
    assert _lrs(first)[:2] == pytest.approx([0.005, 0.05])  # the warm-up at lr 0.05
    assert _lrs(resumed)[2:] == pytest.approx(_lrs(ref)[2:], rel=1e-12)  # iterations 3-4 at the new lr's values
    group = resumed.optim_wrapper.optimizer.param_groups[0]
    assert group["initial_lr"] == 0.01 and group["weight_decay"] == 1e-4
    out = capsys.readouterr().out
    assert "resume: optimizer lr: the config's start value 0.01 replaces the checkpoint's 0.05; the schedule " \
           "continues at step 2" in out
    assert "resume: optimizer weight_decay: the config's 0.0001 replaces the checkpoint's 0" in out


def damage_inside(src: str, dst: str) -> None:
    """Copy ``src`` (a torch zip) to ``dst`` with bytes of its largest tensor record overwritten in place: the zip
    directory and every header stay intact, so torch.load reads it without complaint."""
    import struct
    import zipfile

    data = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the local header (its own padding), then the data
    data[start: start + 16] = b"\x7f" * 16  # 0x7f7f7f7f: a float32 of 3.4e38
    open(dst, "wb").write(bytes(data))


def test_checkpoint_damaged_inside_is_refused(reference, tmp_path):
    from dense_adapters.engine.safe_load import load_checkpoint_file
    from dense_adapters.errors import CheckpointError

    ref_work, _, _ = reference
    src, bad = osp.join(ref_work, "iter_2.pth"), str(tmp_path / "iter_2.pth")
    damage_inside(src, bad)
    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from tensors(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                yield from tensors(v)

    ckpt = torch.load(bad, weights_only=True)  # what every loader accepted: plausible-looking, wrong numbers
    good = torch.load(src, weights_only=True)
    assert any(not torch.equal(a, b) for a, b in zip(tensors(ckpt), tensors(good)))
    with pytest.raises(CheckpointError, match=rf"^{bad} is damaged: its content does not match the checksum recorded "
                                              r"when it was saved \(sha256 "):
        load_checkpoint_file(bad)
    runner = _runner(str(tmp_path / "w"), load_from=bad, resume=True)
    with pytest.raises(CheckpointError, match="is damaged"):
        runner.train()
    assert load_checkpoint_file(src)["meta"]["content_sha256"]  # the intact file reads, with its checksum
