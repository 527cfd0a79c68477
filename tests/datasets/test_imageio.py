"""dense_adapters.imageio: what a file holds is checked before anything casts it (16-bit labels above 255, colour-
coded labels, 8-bit depth PNGs), and photos of any PNG mode become the right 8-bit RGB (16-bit grey not white)."""
import re

import numpy as np
import pytest
from PIL import Image

from dense_adapters.errors import DataError
from dense_adapters.imageio import depth_file_problem, image_size, label_file_problem, read_rgb


@pytest.fixture(scope="module")
def grey() -> np.ndarray:
    from skimage.data import camera

    return camera()[::8, ::8].copy()  # 64x64 uint8, a real photo


def _save(path, arr, mode=None):
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return str(path)


@pytest.mark.parametrize("kind", ["I;16", "I", "F"])
def test_deep_grey_photos_are_scaled_not_clipped(tmp_path, grey, kind):
    if kind == "I;16":  # a 16-bit PNG: the photo in the top byte, as cameras and converters write it
        path = _save(tmp_path / "g16.png", grey.astype(np.uint16) * 257)
    elif kind == "I":  # 32-bit integer TIFF with 16-bit values
        path = _save(tmp_path / "g32.tif", (grey.astype(np.int32) * 257), mode="I")
    else:  # float TIFF in [0, 1]
        path = _save(tmp_path / "gf.tif", grey.astype(np.float32) / 255, mode="F")
    rgb = read_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    assert np.abs(rgb[..., 0].astype(int) - grey).max() <= 1 and (rgb[..., 0] == rgb[..., 2]).all()
    with Image.open(path) as im:  # what PIL's convert does with it: everything white (I;16) or clipped
        assert kind == "F" or (np.asarray(im.convert("RGB"))[..., 0] == 255).mean() > 0.9


@pytest.mark.parametrize("content, message", [
    (None, "image not found: "), (b"", "is empty (0 bytes)"), (b"\x89PNG\r\n\x1a\n garbage", "cannot read image "),
])
def test_bad_image_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)):
        read_rgb(str(path))
    with pytest.raises(DataError):
        image_size(str(path))


def test_label_maps_are_checked_before_the_uint8_cast(tmp_path, grey):
    lab = (grey // 2).astype(np.uint16)
    assert label_file_problem(_save(tmp_path / "l8.png", lab.astype(np.uint8))) is None
    pal = Image.fromarray(lab.astype(np.uint8))
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])  # a palette (P) label map, as ADE/VOC
    pal.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P" and label_file_problem(str(tmp_path / "p.png")) is None
    assert label_file_problem(_save(tmp_path / "l16_ok.png", lab)) is None  # 16-bit container, values <= 255
    lab[0, :3] = 300  # 300 % 256 = 44: a valid class after mmseg's astype(np.uint8)
    assert label_file_problem(_save(tmp_path / "l16.png", lab)) == (
        "a 16-bit label map with values up to 300 (3 pixels above 255): labels are read as 8 bits, so 300 would "
        "become class 44; save the map as 8-bit class indices (or remap ids)")
    Image.fromarray(lab.astype(np.int32), mode="I").save(tmp_path / "l32.tif")  # a 32-bit integer map
    assert Image.open(tmp_path / "l32.tif").mode == "I"
    assert label_file_problem(str(tmp_path / "l32.tif")).startswith("a 32-bit label map with values up to 300 (3 pix")
    rgb = np.stack([grey // 50] * 3, -1).astype(np.uint8)
    assert label_file_problem(_save(tmp_path / "rgb.png", rgb)).startswith(
        "a 3-channel RGB image, not a single-channel label map: labels must be class indices")


def test_depth_pngs_must_hold_16_bits(tmp_path, grey):
    assert depth_file_problem(_save(tmp_path / "d16.png", grey.astype(np.uint16) * 20)) is None
    assert depth_file_problem(_save(tmp_path / "d8.png", grey)).startswith("an 8-bit PNG (L): depth PNGs hold 16-bit")
