"""Fixtures of tests/reliability: the sample's data root and one uninterrupted reference training."""
from __future__ import annotations

import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # reliability_utils, reliability_hooks (names unique)
from reliability_utils import WORKERS, run_tool, write_config  # noqa: E402


@pytest.fixture(scope="session")
def ade_root(ade_sample) -> str:
    return ade_sample


@pytest.fixture(scope="session")
def trained_run(ade_root, tmp_path_factory) -> str:
    """Work dir of an uninterrupted 6-iteration run (checkpoints at 2, 4, 6): the reference for resume tests and
    the 'good checkpoint' that failing runs must leave alone."""
    d = tmp_path_factory.mktemp("reference")
    cfg = write_config(str(d / "reference.py"), ade_root, **WORKERS)
    work = str(d / "work")
    proc = run_tool("train.py", cfg, "--work-dir", work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work
