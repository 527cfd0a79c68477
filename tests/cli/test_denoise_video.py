"""tools/denoise.py on videos (dense_adapters.cli.denoise): frames, strip, scores, errors, the command line."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

import dense_adapters.models  # noqa: F401  (registers)
from dense_adapters.errors import DataError, UserError
from dense_adapters.cli.denoise import (denoise_video, denoise_video_folder, is_video_restorer,
                                                       video_strip)
from dense_adapters.nn.video_uformer import restore_in_windows
from dense_adapters.registry import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(type="dense_adapters.VideoUformer", embed_dim=8, depths=(1, 1, 1), win_size=(2, 4, 4),
            drop_path_rate=0.0, clip_len=3, clip_overlap=1)


@pytest.fixture(scope="module")
def model():
    from mmengine.registry import DefaultScope

    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("mmseg"):
        return MODELS.build(dict(type="dense_adapters.Restorer", generator=TINY)).eval()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two short clips of real photos (the video sample's cameras) as frame folders, and their clean copies."""
    from dense_adapters.datasets.samples.video import CAMERAS, film, load_photo

    root = tmp_path_factory.mktemp("clips")
    for name in ("chelsea-zoom", "coffee-pan"):
        photo, centre, scale = CAMERAS[name]
        for sub in ("in", "gt"):
            os.makedirs(root / sub / name)
        for i, f in enumerate(film(load_photo(photo), centre, scale, num_frames=5, size=(24, 40))):
            Image.fromarray(f).save(root / "in" / name / f"{i:05d}.png")
            Image.fromarray(f).save(root / "gt" / name / f"{i:05d}.png")
    return root


def test_denoise_video_is_the_generator_in_windows(model):
    frames = np.random.default_rng(0).uniform(0, 255, (5, 20, 24, 3)).astype(np.float32)
    out = denoise_video(model, frames, tile=16, tile_overlap=4)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)[None] / 255.0
    ref = restore_in_windows(model.generator.net, x, clip_len=3, overlap=1, tile=16, tile_overlap=4)[0]
    ref = (ref.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    assert out.dtype == np.uint8 and np.array_equal(out, ref)
    assert model.generator.tile == 0  # the model's own tiling is restored
    assert is_video_restorer(model) and not is_video_restorer(torch.nn.Linear(2, 2))


def test_folder_of_frame_folders_with_added_noise(model, clips, tmp_path):
    out = tmp_path / "out"
    res = denoise_video_folder(model, str(clips / "in"), str(out), add_noise=30, seed=1, strip_frames=3,
                               log=lambda s: None)
    assert [r["sequence"] for r in res] == ["chelsea-zoom", "coffee-pan"] and all(r["frames"] == 5 for r in res)
    assert all(16 < r["psnr_in"] < 21 for r in res)  # sigma 30 on 0..255
    for name in ("chelsea-zoom", "coffee-pan"):
        assert sorted(os.listdir(out / name)) == [f"{i:05d}.png" for i in range(5)] + ["strip.png"]
        strip = np.array(Image.open(out / name / "strip.png"))
        assert strip.shape == (3 * 24, 3 * 40, 3)  # rows noisy | denoised | clean; frames 0, 2, 4
        clean = np.array(Image.open(clips / "gt" / name / "00004.png"))
        assert np.array_equal(strip[48:, 80:], clean)
        assert np.array_equal(strip[24:48, 80:], np.array(Image.open(out / name / "00004.png")))
    again = denoise_video_folder(model, str(clips / "in"), str(tmp_path / "again"), add_noise=30, seed=1,
                                 log=lambda s: None)
    assert again == res  # the seed fixes the noise


def test_one_folder_with_ground_truth(model, clips, tmp_path):
    lines = []
    res = denoise_video_folder(model, str(clips / "in" / "coffee-pan"), str(tmp_path), gt=str(clips / "gt" /
                               "coffee-pan"), compare=False, log=lines.append)
    assert res[0]["psnr_in"] == float("inf") and sorted(os.listdir(tmp_path))[0] == "00000.png"
    assert "strip.png" not in os.listdir(tmp_path) and lines[-1].startswith("wrote 5 frame(s) of 1 sequence(s)")


def test_errors(model, clips, tmp_path):
    with pytest.raises(UserError, match="folder of frames"):
        denoise_video_folder(model, str(clips / "in" / "coffee-pan" / "00000.png"), str(tmp_path))
    with pytest.raises(UserError, match="exclude"):
        denoise_video_folder(model, str(clips / "in"), str(tmp_path), gt=str(clips / "gt"), add_noise=30)
    os.makedirs(tmp_path / "gt")
    with pytest.raises(DataError, match="no ground truth for frames"):
        denoise_video_folder(model, str(clips / "in" / "coffee-pan"), str(tmp_path / "o"), gt=str(tmp_path / "gt"),
                             log=lambda s: None)
    with pytest.raises(UserError, match="video generator"):
        denoise_video(torch.nn.Linear(2, 2), np.zeros((1, 4, 4, 3)))


def test_strip_of_float_frames():
    a = np.full((4, 2, 3, 3), 300.0)
    b = np.zeros((4, 2, 3, 3), np.uint8)
    s = video_strip([a, b], n=2)
    assert s.shape == (4, 6, 3) and s.dtype == np.uint8 and (s[:2] == 255).all() and (s[2:] == 0).all()


def test_command_line(model, clips, tmp_path, capsys):
    """dense-adapters-denoise with a video config and checkpoint: one folder of frames, then one error line."""
    from dense_adapters.cli.denoise import main

    cfg = os.path.join(ROOT, "configs", "video-uformer-tiny_1xb4-0.2k_video-sample-sigma30-t3-32x32.py")
    ckpt = str(tmp_path / "tiny.pth")
    torch.manual_seed(1)
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmseg"):
        net = MODELS.build(Config.fromfile(cfg).model)
    torch.save({"state_dict": net.state_dict()}, ckpt)
    out = tmp_path / "out"
    args = ["--config", cfg, "--checkpoint", ckpt, "--device", "cpu"]
    assert main([str(clips / "in" / "chelsea-zoom"), str(out), *args, "--add-noise", "30", "--strip-frames", "2"]) == 0
    assert "chelsea-zoom (5 frames): PSNR" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == [f"{i:05d}.png" for i in range(5)] + ["strip.png"]
    assert np.array(Image.open(out / "strip.png")).shape == (3 * 24, 2 * 40, 3)
    assert main([str(clips / "in" / "chelsea-zoom" / "00000.png"), str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: a video model denoises a folder of frames")
