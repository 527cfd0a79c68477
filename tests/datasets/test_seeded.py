"""SeededDataset: a sample's augmentation is a function of (seed, pass, index), not of the process's random state;
seeding_problems names what a resume cannot reproduce (it is printed loudly at resume)."""
import random

import numpy as np
import torch
from mmengine.dataset import Compose
from torch.utils.data import DataLoader

from dense_adapters.datasets.seeded import (SeededDataset, SeededDefaultSampler, SeededInfiniteSampler,
                                            seeding_problems)


class Draws:
    """A 'pipeline' that draws from the three global generators mmseg's transforms use."""

    def __init__(self, n: int = 5) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return (i, random.random(), float(np.random.rand()), float(torch.rand(())))


def test_each_sample_is_a_function_of_seed_pass_and_index():
    ds = SeededDataset(Draws(), seed=3)
    first = ds[7]  # pass 1, index 2
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # whatever state the (worker) process has
    state = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    assert ds[7] == first and first[0] == 2
    assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1]) and \
        torch.equal(torch.get_rng_state(), state[2])  # the process's own streams are untouched
    assert ds[2][1:] != first[1:] and SeededDataset(Draws(), seed=4)[7][1:] != first[1:]  # other pass, other seed
    # the same batches through 2 worker processes as in this process
    loader = DataLoader(ds, batch_size=2, num_workers=2, sampler=SeededDefaultSampler(ds, shuffle=True, seed=0),
                        collate_fn=lambda b: b)
    assert [s for b in loader for s in b] == [ds[k] for k in SeededDefaultSampler(ds, shuffle=True, seed=0)]


def test_seeded_samplers_keep_mmengines_order():
    from mmengine.dataset import DefaultSampler, InfiniteSampler

    ds = Draws(6)
    inf, ours = iter(InfiniteSampler(ds, shuffle=True, seed=1)), iter(SeededInfiniteSampler(ds, shuffle=True, seed=1))
    assert [next(ours) for _ in range(18)] == [k + 6 * (j // 6) for j, k in enumerate(next(inf) for _ in range(18))]
    default, seeded = DefaultSampler(ds, shuffle=True, seed=1), SeededDefaultSampler(ds, shuffle=True, seed=1)
    default.set_epoch(2), seeded.set_epoch(2)
    assert list(seeded) == [12 + k for k in default]


class OwnGenerator:
    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def __call__(self, results):
        return results


def test_seeding_problems_name_what_a_resume_cannot_reproduce():
    seeded = SeededDataset(Draws(), seed=0)
    assert seeding_problems(DataLoader(seeded, num_workers=2)) == []
    plain = seeding_problems(DataLoader(Draws(), num_workers=2))
    assert len(plain) == 1 and plain[0].startswith("2 dataloader workers with the sampler SequentialSampler: random "
                                                   "augmentation restarts in fresh workers")
    assert seeding_problems(DataLoader(Draws(), num_workers=0)) == []  # one process: the saved states cover it
    own = Draws()
    own.pipeline = Compose([OwnGenerator()])
    assert seeding_problems(DataLoader(SeededDataset(own, seed=0))) == [
        "transform(s) OwnGenerator draw from a random generator of their own, which a resume restarts"]
