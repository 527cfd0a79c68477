"""The benchmark (dense_adapters.benchmark: the harness; benchmarks/: cases and suites; dense_adapters.cli.benchmark:
the tool): the quick suite runs and writes well-formed reports; the peers it compares compute the same function;
FLOPs include fused attention. No timing is asserted."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from dense_adapters import benchmark as B
from dense_adapters.cli import benchmark as tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, "tools", "benchmark.py")
cases = tool.load_benchmarks(osp.join(ROOT, "benchmarks")).cases  # the checkout's cases (not in the package)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    js, md = out / "q.json", out / "q.md"
    report = tool.run(tool.parse_args(["--suite", "quick", "--device", "cpu", "--out-json", str(js), "--out-md",
                                       str(md)]))
    return report, json.loads(js.read_text()), md.read_text()


def test_quick_suite_json(quick_report):
    report, data, _ = quick_report
    assert data["suite"] == "quick" and data["repeats"] == 1 and data["errors"] == []
    for key in ("date", "cpu", "cpu_count", "torch", "timm", "mmseg", "mmengine", "load_avg_end"):
        assert key in data["machine"]
    rows = data["rows"]
    assert len(rows) == len(report["rows"])
    cols = {"group", "label", "model", "size", "batch", "mode", "dtype", "compile", "params_m", "gmacs_per_img",
            "img_per_s", "step_ms", "iqr_ms", "mem_mib", "times_ms"}
    for r in rows:
        assert cols <= set(r), cols - set(r)
        assert r["img_per_s"] > 0 and r["step_ms"] > 0 and len(r["times_ms"]) == 1
        assert r["img_per_s"] == pytest.approx(r["batch"] * 1e3 / r["step_ms"])
    fwd = {r["label"]: r for r in rows if r["group"] == "ViT-tiny-test/16 64 bs2 forward fp32"}
    assert set(fwd) == {"ours", "timm", "mmseg", "skipat"}
    # same architecture and weights: same parameter count and MACs for the three implementations
    assert fwd["ours"]["params_m"] == fwd["timm"]["params_m"] == fwd["mmseg"]["params_m"]
    assert fwd["ours"]["gmacs_per_img"] == fwd["timm"]["gmacs_per_img"] == fwd["mmseg"]["gmacs_per_img"]
    seg = [r for r in rows if r["group"].startswith("ADE20K")]
    assert [r["label"] for r in seg] == ["linear", "upernet", "skipat", "upernet", "m2f"]
    assert all(r["mode"] == "train" for r in seg)
    assert [r["group"] for r in seg][-1].endswith("8 cls/img")  # Mask2Former on labels with 8 classes per image
    assert {r["label"] for r in rows if r["group"].startswith("LOST")} == {"keys", "keys+lost"}
    assert {r["label"] for r in rows if r["group"].startswith("Uformer")} == {"uformer", "skipat"}
    names = {(q["group"].split(" ")[0], q["ratio"]) for q in data["ratios"]}
    for want in (("ViT-tiny-test/16", "ours/timm"), ("ViT-tiny-test/16", "ours/mmseg"),
                 ("ViT-tiny-test/16", "skipat/ours"), ("ADE20K", "skipat/upernet"), ("ADE20K", "m2f/upernet"),
                 ("Uformer-T", "skipat/uformer")):
        assert want in names
    by = {(r["group"], r["label"]): r["img_per_s"] for r in rows}
    for q in data["ratios"]:
        num, den = q["ratio"].split("/")
        assert q["of_medians"] == pytest.approx(by[(q["group"], num)] / by[(q["group"], den)])
        assert q["value"] == pytest.approx(q["of_medians"]) and q["iqr"] == 0  # one repeat: paired = medians


def test_quick_suite_markdown(quick_report):
    _, data, md = quick_report
    lines = md.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| group | case |"))
    cols = [c.strip() for c in lines[header].strip("|").split("|")]
    assert cols[-5:] == ["GMACs/img", "img/s", "step ms", "IQR ms", "mem MiB"]
    table = [line for line in lines[header + 2:] if line.startswith("|")]
    body = table[: len(data["rows"])]
    assert all(len(line.strip("|").split("|")) == len(cols) for line in body)
    assert "## Ratios" in md and md.count("| ours/timm |") >= 1 and "torch " + data["machine"]["torch"] in md


def test_peers_compute_the_same_function():
    torch.manual_seed(0)
    peers = cases.build_peers("tiny-test", 16, 64)
    x = torch.randn(2, 3, 64, 64)
    for m in peers.values():
        m.eval()  # (mmseg's ViT.train returns None: no chaining)
    with torch.no_grad():
        out = {k: cases.features(k, m, x) for k, m in peers.items()}
    torch.testing.assert_close(out["ours"], out["timm"], rtol=0, atol=1e-5)
    ours_map = out["ours"][:, 1:].transpose(1, 2).reshape(out["mmseg"].shape)  # drop cls, NCHW as mmseg
    torch.testing.assert_close(ours_map, out["mmseg"], rtol=0, atol=1e-5)


def test_registers_and_skipat_peers():
    peers = cases.build_peers("tiny-test", 16, 64, registers=4, impls=("ours", "timm"))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(cases.features("ours", peers["ours"].eval(), x),
                                   cases.features("timm", peers["timm"].eval(), x), rtol=0, atol=1e-5)
    skip = cases.build_peers("tiny-test", 16, 64, impls=("ours",), skip=True)["ours"]
    assert skip.skip_layers == cases.skip_layers_for(4) == (1, 2)
    assert cases.skip_layers_for(12) == (3, 4, 5, 6, 7, 8)


def test_gmacs_count_fused_attention():
    """fvcore-style count: linears/conv + q@k and p@v of SDPA (plus 5 per LayerNorm element)."""
    m = cases.build_peers("tiny-test", 16, 64, impls=("ours",))["ours"]
    C, D, p, Np = 64, 4, 16, 16
    N = Np + 1
    analytic = Np * C * 3 * p * p + D * (N * C * 3 * C + N * C * C + 2 * N * C * 4 * C + 2 * N * N * C)
    analytic += 5 * N * C * (2 * D + 1)
    assert B.count_gmacs(m, (torch.randn(1, 3, 64, 64),)) * 1e9 == pytest.approx(analytic)


def test_autocast_optim_wrapper_and_quartiles():
    model = torch.nn.Linear(4, 4)
    w = cases.autocast_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3)),
                                 torch.device("cpu"), "bf16")
    with w.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.bfloat16
    assert model(torch.randn(2, 4)).dtype == torch.float32
    assert B.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)
    assert B.quartiles([7.0]) == (7.0, 7.0, 7.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="no register tokens"):
        cases.build_peers("tiny-test", 16, 64, registers=4)
    with pytest.raises(ValueError, match="SkipAt exists only in our ViT"):
        cases.build_peers("tiny-test", 16, 64, impls=("ours", "timm"), skip=True)
    with pytest.raises(ValueError, match="unknown arch"):
        cases.vit_dims("huge")
    with pytest.raises(ValueError, match="unknown impl"):
        cases.build_peers("tiny-test", 16, 64, impls=("jax",))
    with pytest.raises(ValueError, match="unknown dtype"):
        B.autocast(torch.device("cpu"), "fp8")
    with pytest.raises(FileNotFoundError, match="config not found"):
        cases.seg_case("x", "configs/nope.py", 2)
    with pytest.raises(ValueError, match="needs >= 2 images"):
        cases.seg_case("x", osp.join(ROOT, "configs", "ade20k_regvit_upernet.py"), 1)
    with pytest.raises(ValueError, match="at least one class"):
        cases.seg_case("x", osp.join(ROOT, "configs", "ade20k_regvit_upernet.py"), 2, classes=0)


def test_region_labels_have_the_asked_number_of_classes():
    g = torch.Generator().manual_seed(0)
    for k in (1, 3, 8):
        labels = cases.region_labels(40, k, 150, g)
        assert labels.shape == (1, 40, 40) and labels.dtype == torch.int64
        assert len(labels.unique()) == k and 0 <= labels.min() and labels.max() < 150


@pytest.mark.parametrize("args, message", [
    (["--suite", "gpu", "--device", "cpu"], "--suite gpu needs a CUDA device"),
    (["--suite", "quick", "--device", "cpu", "--out-json", "/nonexistent/dir/x.json"], "output folder does not"),
    (["--suite", "quick", "--repeats", "0"], "--repeats and --warmup must be >= 1"),
])
def test_cli_errors_are_one_line(args, message):
    p = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
