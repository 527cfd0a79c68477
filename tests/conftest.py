"""Shared fixtures: tiny sample data made once per session, deterministic CPU settings."""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for the requesting module (restored after it). Tiny models run many small ops: a second
    thread only synchronises, and where other processes hold the cores OpenMP's spin-waiting made short trainings
    10-15x slower (measured: a Uformer retrofit 9.5 s with 1 thread, 150 s with 2, on 2 loaded cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ade_sample(tmp_path_factory) -> str:
    """Data root of the ADE20K-format sample (12 real photos with pseudo-labels)."""
    from dense_adapters.datasets.samples.ade import make_ade_sample

    return make_ade_sample(str(tmp_path_factory.mktemp("ade")))


@pytest.fixture(scope="session")
def class_sample(tmp_path_factory) -> str:
    """Data root of the classification sample: {train,val}/<class>/*.JPEG, 10 classes of real photos."""
    from dense_adapters.datasets.samples.classes import make_class_sample

    return make_class_sample(str(tmp_path_factory.mktemp("classes")))
