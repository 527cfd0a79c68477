"""Data augmentation as a pure function of (seed, pass, sample index), whatever process runs it.

mmseg's transforms draw from the *global* random generators (``numpy.random``, ``random``, some ``torch``), and a
DataLoader worker seeds those once when it starts: after a resume the workers start afresh, so every later crop,
flip and colour jitter differs from the uninterrupted run. Here the sampler tells the dataset which pass over the
data a sample belongs to, and the dataset seeds the global generators from ``(seed, pass, index)`` around each
sample's pipeline (and restores them after, so the training process's own streams are untouched):

* :class:`SeededInfiniteSampler` / :class:`SeededDefaultSampler`: mmengine's samplers (same order, same
  arguments), yielding the key ``pass * len(dataset) + index`` instead of ``index``;
* :class:`SeededDataset`: a dataset wrapper that reads the key, seeds, and runs the wrapped dataset's
  ``__getitem__(index)``; its ``seed`` defaults to the run's (``randomness.seed``, or the one mmengine drew and
  keeps in the checkpoints), set by ``dense_adapters.SafeLoadRunner`` before any worker starts.

``tools/train.py`` puts both in (:func:`seed_train_data`) for configs using mmengine's two samplers; a resumed run
then gets bit-identical batches with any number of workers (tests/reliability/test_resume.py).
:func:`seeding_problems` lists what remains outside: another sampler with workers, or a transform that holds a
random generator of its own; the resumable loop prints them at resume.
"""
from __future__ import annotations

import copy
import random
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler

from ..registry import DATA_SAMPLERS, DATASETS


@contextmanager
def seeded_rngs(*key: int) -> Iterator[None]:
    """Seed ``random``, ``numpy.random`` and torch from ``key`` inside the block; restore their states after."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    s = np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in key]).generate_state(4, dtype=np.uint32)
    random.seed(int(s[0]) << 32 | int(s[1]))
    np.random.seed(int(s[2]))
    torch.manual_seed(int(s[3]) << 32 | int(s[0]))
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


@DATASETS.register_module()
class SeededDataset:
    """``dict(type='dense_adapters.SeededDataset', dataset=..., seed=0)``: runs ``dataset[index]`` with the global
    random generators seeded from ``(seed, pass, index)``, where the sampler's key is ``pass * len + index``
    (a plain index is pass 0). Everything else (``metainfo``, ``len``, attributes) is the wrapped dataset's."""

    def __init__(self, dataset, seed: Optional[int] = None, lazy_init: bool = False) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.seed = None if seed is None else int(seed)  # None: the run's seed (SafeLoadRunner.build_dataloader)
        if not lazy_init and hasattr(self.dataset, "full_init"):
            self.dataset.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(getattr(self.dataset, "metainfo", {}))

    def full_init(self) -> None:
        if hasattr(self.dataset, "full_init"):
            self.dataset.full_init()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int):
        n = len(self.dataset)
        rnd, index = divmod(int(key), n)
        with seeded_rngs(self.seed or 0, rnd, index):
            return self.dataset[index]

    def __getattr__(self, name: str):
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


@DATA_SAMPLERS.register_module()
class SeededInfiniteSampler(InfiniteSampler):
    """mmengine's ``InfiniteSampler`` (same order) yielding ``pass * len(dataset) + index`` for
    :class:`SeededDataset`."""

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed)
        rnd = 0
        while True:
            order = torch.randperm(self.size, generator=g) if self.shuffle else torch.arange(self.size)
            base = rnd * self.size
            yield from (base + i for i in order.tolist())
            rnd += 1


@DATA_SAMPLERS.register_module()
class SeededDefaultSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` (same order per epoch) yielding ``epoch * len(dataset) + index`` for
    :class:`SeededDataset`."""

    def __iter__(self) -> Iterator[int]:
        base = self.epoch * len(self.dataset)
        return (base + i for i in super().__iter__())


SEEDED_SAMPLERS = {"InfiniteSampler": "dense_adapters.SeededInfiniteSampler",
                   "DefaultSampler": "dense_adapters.SeededDefaultSampler"}


def _short(t) -> str:
    return str(t).rsplit(".", 1)[-1] if isinstance(t, str) else getattr(t, "__name__", "")


def seed_train_data(cfg) -> bool:
    """Wrap ``cfg.train_dataloader`` (in place) for seeded augmentation; False (unchanged) for another sampler."""
    loader = cfg.get("train_dataloader")
    if not isinstance(loader, dict) or not isinstance(loader.get("dataset"), dict):
        return False
    if _short(loader["dataset"].get("type")) == "SeededDataset":
        return True
    sampler = loader.get("sampler") or {}
    kind = _short(sampler.get("type", "DefaultSampler")) if isinstance(sampler, dict) else ""
    if kind not in SEEDED_SAMPLERS:
        return False
    loader["sampler"] = dict(sampler, type=SEEDED_SAMPLERS[kind])
    seed = (cfg.get("randomness") or {}).get("seed")
    loader["dataset"] = dict(type="dense_adapters.SeededDataset", dataset=loader["dataset"], seed=seed)
    return True


_RNG_TYPES = (np.random.Generator, np.random.RandomState, random.Random, torch.Generator)


def _transforms(obj, seen: set) -> Iterator:
    """``obj`` and every transform nested in it through ``.transforms`` (Compose, CheckedLoading, RandomChoice)."""
    if obj is None or id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    sub = getattr(obj, "transforms", None)
    for t in sub if isinstance(sub, (list, tuple)) else [sub]:
        yield from _transforms(t, seen)


def seeding_problems(loader) -> list[str]:
    """Why this dataloader's augmentation after a resume may differ from the uninterrupted run (empty: exact)."""
    problems = []
    dataset = getattr(loader, "dataset", None)
    workers = int(getattr(loader, "num_workers", 0) or 0)
    seeded = isinstance(dataset, SeededDataset)
    if not seeded and workers > 0:
        sampler = type(getattr(getattr(loader, "batch_sampler", None), "sampler", None)).__name__
        problems.append(f"{workers} dataloader workers with the sampler {sampler}: random augmentation restarts in "
                        "fresh workers (use InfiniteSampler or DefaultSampler, or num_workers=0, for an exact resume)")
    inner = dataset.dataset if seeded else dataset
    pipeline = getattr(inner, "pipeline", None)
    own = []
    for t in _transforms(pipeline, set()):
        if any(isinstance(v, _RNG_TYPES) for v in getattr(t, "__dict__", {}).values()):
            own.append(type(t).__name__)
    if own:
        problems.append(f"transform(s) {', '.join(sorted(set(own)))} draw from a random generator of their own, "
                        "which a resume restarts")
    return problems
