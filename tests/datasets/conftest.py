"""Fixtures of the dataset tests: the denoising sample (real photos + synthetic noise), made once."""
import pytest


@pytest.fixture(scope="session")
def denoise_sample(tmp_path_factory) -> str:
    """Data root of the denoising sample: {train,val}/{noisy,gt}/*.png (photos up to 96 px)."""
    from dense_adapters.datasets.samples.denoise import make_denoise_sample

    return make_denoise_sample(str(tmp_path_factory.mktemp("denoise")), max_side=96)
