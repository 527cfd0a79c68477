"""The retrofit through its Python API on a tiny register ViT with random fixed weights and real photos."""
import json
import os

import pytest
import torch

from dense_adapters.errors import CheckpointMismatch
from dense_adapters.nn import RegViT, load_pretrained
from dense_adapters.retrofit import (ModelSpec, RetrofitConfig, ViTAdapter, build_from_retrofit, load_retrofit,
                                     read_retrofit, retrofit)

from retrofit_helpers import SIZE, VIT_KW, active_vit

SKIP = [1, 2]


def tiny_config(photo_dir, teacher, out, **kw) -> RetrofitConfig:
    base = dict(spec=ModelSpec("regvit", None, dict(VIT_KW)), images=photo_dir, out=str(out), checkpoint=teacher,
                skip=SKIP, size=SIZE, batch_size=4, stage1_iters=40, stage2_iters=40, lr1=3e-3, lr2=1e-3,
                num_workers=0, log_interval=20, ckpt_interval=1000, eval_batch=4, bench=False)
    return RetrofitConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(photo_dir, vit_teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("retrofit")
    return retrofit(tiny_config(photo_dir, vit_teacher, out)), str(out)


def test_student_closer_to_teacher_than_both_baselines(run):
    report, _ = run
    sims = report["similarity"]
    after, untrained, identity = sims["retrofit"], sims["untrained"], sims["identity"]
    print({k: (round(v["final_patch_cos"], 4), round(v["final_rel_mse"], 4)) for k, v in sims.items()})
    best_cos = max(untrained["final_patch_cos"], identity["final_patch_cos"])
    best_err = min(untrained["final_rel_mse"], identity["final_rel_mse"])
    # measurably closer than the better baseline (seeded, so the margins are not noise): +0.01 cosine, -5% error
    assert after["final_patch_cos"] > best_cos + 0.01
    assert after["final_rel_mse"] < 0.95 * best_err
    assert after["final_cls_cos"] > min(untrained["final_cls_cos"], identity["final_cls_cos"])
    # blocks before the first skip are the teacher's own, bit for bit
    assert after["patch_cos"][0] == pytest.approx(1.0, abs=1e-5)
    assert sims["stage1"]["final_patch_cos"] > untrained["final_patch_cos"]


def test_report_and_plot(run):
    report, out = run
    with open(os.path.join(out, "report.json")) as f:
        on_disk = json.load(f)
    assert on_disk["skip_layers"] == SKIP and on_disk["skip_mode"] == "parametric"
    assert on_disk["heldout"]["images"] >= 2 and on_disk["train"]["images"] + on_disk["heldout"]["images"] == 12
    assert set(on_disk["similarity"]) == {"untrained", "identity", "stage1", "retrofit"}
    assert len(on_disk["similarity"]["retrofit"]["patch_cos"]) == VIT_KW["depth"]
    assert on_disk["throughput"] is None  # bench=False (the CLI test measures it)
    with open(os.path.join(out, "retrofit.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_student_has_fewer_flops(run):
    from dense_adapters.benchmark import count_gmacs

    report, out = run
    assert report["flops"]["student_gmacs"] < report["flops"]["teacher_gmacs"]
    x = torch.randn(1, 3, SIZE, SIZE)
    student = build_from_retrofit(os.path.join(out, "retrofit.pth"))
    assert count_gmacs(student, (x,)) == pytest.approx(report["flops"]["student_gmacs"])
    assert count_gmacs(active_vit(), (x,)) == pytest.approx(report["flops"]["teacher_gmacs"])


def test_checkpoint_round_trip(run):
    _, out = run
    path = os.path.join(out, "retrofit.pth")
    sd, meta = read_retrofit(path)
    assert meta == {"format_version": 1, "preset": None, "arch_kwargs": VIT_KW, "skip_layers": SKIP,
                    "skip_mode": "parametric"}
    student = build_from_retrofit(path)
    assert student.skip_layers == tuple(SKIP) and all(student.blocks[i].is_skipped for i in SKIP)
    assert all(torch.equal(v, sd[k]) for k, v in student.state_dict().items())
    # the same weights through the core's loader into a model built with those skips
    twin = RegViT(**VIT_KW, skip_layers=SKIP).eval()
    load_pretrained(twin, path, source="native")
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(twin(x), student(x))
        assert not torch.allclose(student(x), active_vit()(x), atol=1e-3)  # Phi is not the attention


@pytest.mark.parametrize("loader", [load_retrofit, load_pretrained], ids=["load_retrofit", "load_pretrained"])
@pytest.mark.parametrize("kw, msg", [
    (dict(), "skip_layers=[1, 2], skip_mode='parametric' but the model has skip_layers=[]"),
    (dict(skip_layers=[2, 3]), "but the model has skip_layers=[2, 3]"),
    (dict(skip_layers=SKIP, skip_mode="identity"), "model has skip_layers=[1, 2], skip_mode='identity'"),
])
def test_wrong_model_refused_in_one_line(run, kw, msg, loader):
    """Both the retrofit's loader and the core's (``load_pretrained``, source auto-detected: the native meta) refuse
    before touching a weight: a model without the skips would otherwise get the teacher's blocks with Phi dropped."""
    _, out = run
    model = RegViT(**VIT_KW, **kw)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatch) as e:
        loader(model, os.path.join(out, "retrofit.pth"))
    assert msg in str(e.value) and "\n" not in str(e.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_wrong_preset_refused(run):
    _, out = run
    path = os.path.join(out, "retrofit.pth")
    with pytest.raises(CheckpointMismatch, match="retrofitted on preset None, not 'dinov2_vits14'"):
        build_from_retrofit(path, preset="dinov2_vits14")
    other = RegViT(**{**VIT_KW, "embed_dim": 48}, skip_layers=SKIP)  # right skips, wrong architecture
    with pytest.raises(CheckpointMismatch, match="does not fit"):
        load_retrofit(other, path)


def test_stage1_is_teacher_forced_per_block():
    """Stage 1's loss equals a hand computation: Phi_i of the teacher's a_{i-1} vs the teacher's a_i, patches only,
    after block i's LayerScale (attention outputs recomputed block by block, not through forward_blocks)."""
    from dense_adapters.retrofit import build_student, rel_mse

    teacher = active_vit()
    student = build_student(teacher, ModelSpec("regvit", None, dict(VIT_KW)), SKIP, "parametric")
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        tokens, hw = teacher.prepare_tokens(x)
        attn = []
        for blk in teacher.blocks:
            a = blk.attn(blk.norm1(tokens))
            attn.append(a)
            tokens = tokens + blk.ls1(a)
            tokens = tokens + blk.ls2(blk.mlp(blk.norm2(tokens)))
        p = teacher.num_prefix_tokens
        want = torch.stack([rel_mse(teacher.blocks[i].ls1(student.blocks[i].skip_fn(attn[i - 1][:, p:], hw)),
                                    teacher.blocks[i].ls1(attn[i][:, p:])) for i in SKIP]).mean()
        got = ViTAdapter(SKIP, VIT_KW["depth"]).stage1(teacher, student, x)["loss"]
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


# the DINOv3 preset (RoPE, 4 registers, mask token, train-time RoPE rescaling) at test width; LayerScale 0.5 instead
# of 1e-5 so that the random blocks matter
ROPE_OVER = dict(embed_dim=32, depth=4, num_heads=2, patch_size=8, img_size=SIZE, init_values=0.5)


def test_retrofit_of_a_rope_dinov3_preset(photo_dir, tmp_path):
    from dense_adapters.nn import PRESETS
    from dense_adapters.retrofit import build_student

    teacher = active_vit(**{**PRESETS["dinov3_vits16"], **ROPE_OVER})
    assert teacher.rope_embed is not None and teacher.pos_embed is None and teacher.num_prefix_tokens == 5
    torch.save(teacher.state_dict(), tmp_path / "teacher.pth")
    spec = ModelSpec("regvit", "dinov3_vits16", dict(ROPE_OVER))
    x = torch.randn(2, 3, SIZE, SIZE)
    # the student trains in train mode: DINOv3's RoPE rescaling must be off there, or its patch positions would
    # not be the (eval-mode) teacher's; blocks before the first skip then give the teacher's tokens exactly
    fresh = build_student(teacher, spec, SKIP, "parametric").train()
    with torch.no_grad():
        assert torch.equal(fresh.forward_blocks(x, [0])["out"][0], teacher.forward_blocks(x, [0])["out"][0])

    report = retrofit(tiny_config(photo_dir, str(tmp_path / "teacher.pth"), tmp_path / "out", spec=spec,
                                  stage1_iters=20, stage2_iters=20))
    sims = report["similarity"]
    print({k: round(v["final_patch_cos"], 4) for k, v in sims.items()})
    assert sims["retrofit"]["final_patch_cos"] > max(sims["untrained"]["final_patch_cos"],
                                                     sims["identity"]["final_patch_cos"])
    path = str(tmp_path / "out" / "retrofit.pth")
    assert read_retrofit(path)[1]["preset"] == "dinov3_vits16"
    student = build_from_retrofit(path)  # the preset's own settings again (RoPE rescaling on for fine-tuning)
    assert student.skip_layers == tuple(SKIP) and student.rope_embed.rescale_coords == 2.0
    # every tensor outside Phi is the teacher's (Phi only is trained): registers, the un-skipped blocks whole, the
    # skipped blocks' MLP half, the RoPE periods (a buffer outside the state dict); the skipped blocks' attention
    # is gone
    t_sd, s_sd = teacher.state_dict(), student.state_dict()
    assert torch.equal(student.rope_embed.periods, teacher.rope_embed.periods)
    assert not any(k.startswith(f"blocks.{i}.attn.") for i in SKIP for k in s_sd)
    shared = [k for k in s_sd if ".skip_fn." not in k]
    assert len(shared) == len(s_sd) - sum(".skip_fn." in k for k in s_sd) and all(
        torch.equal(s_sd[k], t_sd[k]) for k in shared)
    assert {k.split(".")[1] for k in shared if k.startswith("blocks.") and ".attn." in k} == {"0", "3"}
    with torch.no_grad():
        s_out, t_out = student.forward_blocks(x, [0, 3]), teacher.forward_blocks(x, [0, 3])
        assert torch.equal(s_out["out"][0], t_out["out"][0])  # block 0, before the skips: the teacher's own
        assert not torch.allclose(s_out["out"][1], t_out["out"][1], atol=1e-3)
