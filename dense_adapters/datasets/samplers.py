"""Samplers mmengine lacks: DeiT's repeated augmentation."""
from __future__ import annotations

import math
from typing import Iterator, Optional

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from ..errors import UserError
from ..registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class RepeatAugSampler(Sampler):
    """``type='dense_adapters.RepeatAugSampler'``: repeated augmentation (Hoffer et al. 2020) as DeiT's
    ``RASampler``: each epoch, a seeded permutation of the dataset with every index repeated ``num_repeats`` times
    in a row is dealt round-robin to the ranks, so the copies of an image land on different ranks (different
    augmentations) and each rank still takes ``ceil(len(dataset) / world_size)`` samples per epoch.

    DeiT keeps ``floor(len // 256 * 256 / world_size)`` per rank; the ceil (as mmpretrain's sampler) differs by
    fewer than 256 images per epoch and keeps tiny datasets usable. ``set_epoch`` is called by mmengine's
    ``DistSamplerSeedHook``. ``num_replicas``/``rank`` default to the process group's.
    """

    def __init__(self, dataset, shuffle: bool = True, num_repeats: int = 3, seed: Optional[int] = None,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None) -> None:
        if num_repeats < 1:
            raise UserError(f"num_repeats must be >= 1, got {num_repeats}")
        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else int(rank)
        self.world_size = dist_world if num_replicas is None else int(num_replicas)
        self.dataset, self.shuffle, self.num_repeats = dataset, shuffle, int(num_repeats)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        n = len(dataset)
        self.num_samples = math.ceil(n * self.num_repeats / self.world_size)  # per rank, before truncation
        self.total_size = self.num_samples * self.world_size
        self.num_selected = math.ceil(n / self.world_size)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        indices = [i for i in order for _ in range(self.num_repeats)]
        indices += indices[: self.total_size - len(indices)]  # pad so that every rank gets num_samples
        return iter(indices[self.rank : self.total_size : self.world_size][: self.num_selected])

    def __len__(self) -> int:
        return self.num_selected

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
