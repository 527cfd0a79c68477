"""Restorer with the VideoUformer generator: clips in and out, whole sequences in overlapping temporal windows,
and a short CPU training on the embedded video sample through mmengine's Runner with the DAVIS configs."""
import os

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

import dense_adapters.models  # noqa: F401  (registers)
from dense_adapters.errors import UserError
from dense_adapters.nn.video_uformer import restore_in_windows
from dense_adapters.registry import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(type="dense_adapters.VideoUformer", embed_dim=8, depths=(1, 1, 1), win_size=(2, 4, 4),
            drop_path_rate=0.0, clip_len=3, clip_overlap=1)


@pytest.fixture(autouse=True)
def mmseg_scope():
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmseg"):
        yield


@pytest.fixture(scope="module")
def video_sample(tmp_path_factory) -> str:
    from dense_adapters.datasets.samples.video import make_video_sample

    return make_video_sample(str(tmp_path_factory.mktemp("video")), num_frames=8)  # 128 x 208: DAVIS crops fit


def clip_batch(shapes, seed=0, float_inputs=False):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for T, h, w in shapes:
        gt = torch.randint(0, 256, (T, 3, h, w), generator=g, dtype=torch.uint8)
        inputs.append(gt.float() + torch.randn(gt.shape, generator=g) * 30 if float_inputs else gt.clone())
        s = BaseDataElement(metainfo=dict(img_shape=(h, w), sequence=f"s{len(samples)}"))
        s.gt_img = gt
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_clips_in_and_out():
    model = MODELS.build(dict(type="dense_adapters.Restorer", generator=TINY))
    data = model.data_preprocessor(clip_batch([(3, 21, 30), (3, 25, 17)], float_inputs=True))
    assert data["inputs"].shape == (2, 3, 3, 25, 30)
    out = model(**data, mode="predict")
    assert [tuple(s.pred_img.shape) for s in out] == [(3, 3, 21, 30), (3, 3, 25, 17)]
    assert all(0 <= s.pred_img.min() and s.pred_img.max() <= 1 for s in out)
    data = model.data_preprocessor(clip_batch([(3, 16, 16)] * 2), training=True)
    assert model(**data, mode="loss")["loss"] > 0
    with pytest.raises(UserError, match="batch_size=1"):
        model.data_preprocessor(clip_batch([(3, 16, 16), (5, 16, 16)]))


def test_whole_sequences_run_in_overlapping_windows():
    model = MODELS.build(dict(type="dense_adapters.Restorer", generator={**TINY, "tile": 16, "tile_overlap": 4}))
    model.eval()
    x = torch.rand(1, 5, 3, 18, 20)  # 5 frames > clip_len 3: windows at 0 and 2; 2 x 2 tiles of 16
    gen = model.generator
    with torch.no_grad():
        y = model(x, mode="tensor")
        ref = restore_in_windows(gen.net, x, clip_len=3, overlap=1, tile=16, tile_overlap=4)
        torch.testing.assert_close(y, ref)
        assert not torch.allclose(y, gen.net(x))  # the model sees windows, not the whole sequence at once
    gen.train()
    assert gen(x).shape == x.shape  # training: the clip as it is
    with pytest.raises(UserError, match="overlap"):
        MODELS.build({**TINY, "clip_overlap": 3})
    with pytest.raises(UserError, match="preset"):
        MODELS.build(dict(type="dense_adapters.VideoUformer", preset="XL"))


SAMPLE_CONFIGS = {None: "video-uformer-tiny_1xb4-0.2k_video-sample-sigma30-t3-32x32.py",
                  "identity": "video-uformer-tiny-skipat_1xb4-0.2k_video-sample-sigma30-t3-32x32.py"}


@pytest.mark.parametrize("cfg_name", ["davis_video_denoise_s.py", "davis_video_denoise_s_skipat.py"])
def test_davis_configs_read_the_sample_with_only_the_data_root_changed(video_sample, cfg_name):
    """The sample has DAVIS 2017's layout: the DAVIS configs' own pipelines give 7x128x128 training clips and
    whole validation sequences from it when pointed at it, as with --data-root."""
    from mmengine.config import Config

    from dense_adapters.registry import DATASETS
    from dense_adapters.cli.runner import set_data_root

    cfg = Config.fromfile(os.path.join(ROOT, "configs", cfg_name))
    set_data_root(cfg, video_sample)  # what tools/train.py --data-root does
    train, val = DATASETS.build(cfg.train_dataloader.dataset), DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) == 5 * (8 - 7 + 1) and len(val) == 2  # 5 train sequences of 8 frames; 2 val sequences
    clip = train[0]
    assert clip["inputs"].shape == (7, 3, 128, 128) and clip["inputs"].dtype == torch.float32
    seq = val[1]
    assert seq["inputs"].shape == (8, 3, 128, 208) and seq["data_samples"].sequence == "motorcycle-pan"


def run_short_training(cfg_name, sample, work_dir, iters=60):
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(os.path.join(ROOT, "configs", cfg_name))
    cfg.merge_from_dict({
        "work_dir": str(work_dir),
        "param_scheduler.1.end": iters, "train_cfg.max_iters": iters, "train_cfg.val_interval": iters,
        "default_hooks.checkpoint.interval": 10 * iters, "default_hooks.checkpoint.save_last": False,
        "default_hooks.checkpoint.save_best": None,
    })
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[name].dataset.data_root = sample
    runner = Runner.from_cfg(cfg)
    runner.train()  # validates once, at the last iteration, on the whole held-out sequences
    return {k.split("/")[-1]: v.current() for k, v in runner.message_hub.log_scalars.items() if k.startswith("val/")}


@pytest.mark.parametrize("skip_mode", [None, "identity"])
def test_short_cpu_training_beats_the_noisy_input(video_sample, tmp_path, skip_mode, one_thread):
    """The tiny VideoUformer of the sample configs (plain and SkipAt identity) trained 60 iterations on 3-frame
    32 px clips of the sample's five training sequences with fresh Gaussian noise (sigma 30) raises the PSNR of
    the two held-out sequences (whole, fixed noise, scored per frame and averaged) clearly above the noisy
    input's."""
    from mmengine.config import Config

    from dense_adapters.datasets.video import VideoFramesDataset
    from dense_adapters.evaluation.restoration import psnr, sequence_score

    cfg_name = SAMPLE_CONFIGS[skip_mode]
    cfg = Config.fromfile(os.path.join(ROOT, "configs", cfg_name))
    assert cfg.model.generator.skip_mode == skip_mode
    metrics = run_short_training(cfg_name, video_sample, tmp_path)
    val = VideoFramesDataset(data_root=video_sample, split="val", whole_sequences=True, seed=0, test_mode=True,
                             pipeline=cfg.val_dataloader.dataset.pipeline)
    noisy = np.mean([sequence_score(psnr, val[i]["inputs"] / 255.0, val[i]["data_samples"].gt_img)
                     for i in range(len(val))])
    assert 17.5 < noisy < 20.5  # sigma 30 on the 0..255 scale
    assert metrics["PSNR"] > noisy + 3.0, (metrics, noisy)
