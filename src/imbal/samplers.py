"""Batch samplers for the study's strategies, seeded, ``set_epoch``-aware and DDP-aware.

Every sampler yields lists of indices. ``batch_size`` is the *global* batch (the study's 50);
under DDP each rank takes a disjoint share ``batch[rank::num_replicas]`` of every global batch,
so all ranks run the same number of steps and the union of their batches is the one-process batch.
The order depends only on ``(seed, epoch)``, so a resumed run replays the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

SEED_STRIDE = 1_000_003  # a prime larger than any stream offset: distinct (seed, offset) give distinct seeds


def stream_seed(seed: int, epoch: int, rank: int | None = None) -> int:
    """The generator seed of one random stream of a run: batches (all ranks alike) or a rank's augmentation.

    A function of ``(seed, epoch[, rank])`` only, so a resumed run replays its draws exactly. The
    batch order is the same on every rank (``rank=None``: each takes its share of one global
    order); the augmentation stream differs per rank (``epoch * 101 + rank``, for up to 101 ranks).

    Example:
        >>> from imbal.samplers import stream_seed
        >>> stream_seed(3, epoch=1), stream_seed(3, epoch=1, rank=2)
        (3000010, 3000112)
    """
    return seed * SEED_STRIDE + (epoch if rank is None else epoch * 101 + rank)


class BatchSampler:
    """Base of the samplers: the labels' class index and the ``(seed, epoch)`` generator.

    Subclasses define :meth:`global_batches`; iterating yields this rank's share of each global
    batch as a list of indices, ``len()`` is the number of steps per epoch.

    Args:
        labels: ``(N,)`` integer class labels, N > 0 (moved to the CPU).
        batch_size: the global batch, >= ``num_replicas``.
        seed: the run's seed; with the epoch it fixes the order (see :func:`stream_seed`).
        num_replicas: DDP world size.
        rank: this process's rank in ``[0, num_replicas)``.

    Raises ``ValueError`` for an empty or non-1-D ``labels`` and the bounds above.
    """

    def __init__(
        self, labels: torch.Tensor, batch_size: int, *, seed: int = 0, num_replicas: int = 1, rank: int = 0
    ) -> None:
        labels = torch.as_tensor(labels, dtype=torch.long).cpu()
        if labels.ndim != 1 or len(labels) == 0:
            raise ValueError(f"labels must have shape (N,) with N > 0, got shape={tuple(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must lie in [0, {num_replicas}), got {rank}")
        if batch_size < num_replicas:
            raise ValueError(f"batch_size={batch_size} is smaller than num_replicas={num_replicas}")
        self.labels, self.batch_size, self.seed = labels, batch_size, seed
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        self.num_classes = int(labels.max()) + 1
        self.by_class = [torch.nonzero(labels == k).flatten() for k in range(self.num_classes)]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields (call it before every epoch)."""
        self.epoch = epoch

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(stream_seed(self.seed, self.epoch))

    def global_batches(self) -> list[torch.Tensor]:
        """The epoch's global batches (``len(self)`` index tensors of ``batch_size``), alike on all ranks."""
        raise NotImplementedError

    def epoch_batches(self) -> torch.Tensor:
        """This rank's batches of the current epoch as one ``(steps, batch)`` index tensor.

        Every batch of an epoch has the same size, so a training loop can move the whole epoch's
        indices to the device once instead of copying a small index list before every step.
        """
        return torch.stack([b[self.rank :: self.num_replicas] for b in self.global_batches()])

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches().tolist()

    def __len__(self) -> int:
        return max(1, len(self.labels) // self.batch_size)


class UniformSampler(BatchSampler):
    """Shuffle, then cut into ``N // batch_size`` batches that follow the data's class mix.

    Each epoch visits every sample at most once (the ``N mod batch_size`` rest is left out).

    Example:
        >>> import torch
        >>> from imbal.samplers import UniformSampler
        >>> labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
        >>> sampler = UniformSampler(labels, batch_size=4, seed=0)
        >>> len(sampler), sorted(i for batch in sampler for i in batch)
        (2, [0, 1, 2, 3, 4, 5, 6, 7])
    """

    def global_batches(self) -> list[torch.Tensor]:
        """One permutation of the samples, cut into ``len(self)`` batches."""
        perm = torch.randperm(len(self.labels), generator=self._generator())
        b = min(self.batch_size, len(perm))
        return [perm[i * b : (i + 1) * b] for i in range(len(self))]


class OversampleSampler(BatchSampler):
    """Stratified oversampling: every batch holds equal portions of each class (within one sample).

    Classes are drawn with replacement; ``N // batch_size`` batches per epoch, as for uniform.
    A class without samples is left out of the split.

    Example:
        >>> import torch
        >>> from imbal.samplers import OversampleSampler
        >>> labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
        >>> sampler = OversampleSampler(labels, batch_size=4, seed=0)
        >>> [labels[batch].bincount().tolist() for batch in sampler]  # per batch: count of class 0, 1
        [[2, 2], [2, 2]]
    """

    def global_batches(self) -> list[torch.Tensor]:
        """``len(self)`` batches, each with equal class shares drawn with replacement, shuffled."""
        g = self._generator()
        present = [c for c in self.by_class if len(c)]
        k = len(present)
        out = []
        for _ in range(len(self)):
            share = torch.full((k,), self.batch_size // k, dtype=torch.long)
            share[torch.randperm(k, generator=g)[: self.batch_size % k]] += 1
            parts = [idx[torch.randint(len(idx), (int(s),), generator=g)] for idx, s in zip(present, share)]
            batch = torch.cat(parts)
            out.append(batch[torch.randperm(len(batch), generator=g)])
        return out


class UndersampleSampler(BatchSampler):
    """Each epoch draws the minority count from every class without replacement, then shuffles.

    An epoch is ``(C * minority count) // batch_size`` steps, fewer than the other samplers'.

    Example:
        >>> import torch
        >>> from imbal.samplers import UndersampleSampler
        >>> labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
        >>> sampler = UndersampleSampler(labels, batch_size=4, seed=0)
        >>> len(sampler), [labels[batch].bincount().tolist() for batch in sampler]
        (1, [[2, 2]])
    """

    def _epoch_pool(self, g: torch.Generator) -> torch.Tensor:
        present = [c for c in self.by_class if len(c)]
        m = min(len(c) for c in present)
        pool = torch.cat([c[torch.randperm(len(c), generator=g)[:m]] for c in present])
        return pool[torch.randperm(len(pool), generator=g)]

    def __len__(self) -> int:
        m = min(len(c) for c in self.by_class if len(c))
        n = m * sum(1 for c in self.by_class if len(c))
        return max(1, n // self.batch_size)

    def global_batches(self) -> list[torch.Tensor]:
        """The epoch's balanced pool, cut into ``len(self)`` batches."""
        pool = self._epoch_pool(self._generator())
        b = min(self.batch_size, len(pool))
        return [pool[i * b : (i + 1) * b] for i in range(len(self))]


@dataclass(frozen=True)
class SamplerSpec:
    """One batch-sampling strategy: its batch order and whether the loss weights classes."""

    name: str
    batches: type[BatchSampler]
    class_weights: bool  # inverse-frequency class weights go to the loss (docs/method.md)
    help: str


# the one home of sampler names; the order is the row order of every report table
SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in [
        SamplerSpec("uniform", UniformSampler, False, "shuffled batches that follow the data's class mix"),
        SamplerSpec(
            "weights",
            UniformSampler,
            True,
            "uniform batches; the loss weights samples by inverse class frequency",
        ),
        SamplerSpec(
            "oversample", OversampleSampler, False, "equal class portions in every batch (with replacement)"
        ),
        SamplerSpec(
            "undersample",
            UndersampleSampler,
            False,
            "each epoch draws the minority count from every class",
        ),
    ]
}


def build_sampler(
    name: str, labels: torch.Tensor, batch_size: int, *, seed: int = 0, num_replicas: int = 1, rank: int = 0
) -> BatchSampler:
    """The batch sampler of a strategy in :data:`SAMPLERS` (``weights`` uses the uniform order).

    Arguments as in :class:`BatchSampler`; an unknown ``name`` raises ``ValueError``.

    Example:
        >>> import torch
        >>> from imbal.samplers import build_sampler
        >>> labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
        >>> sampler = build_sampler("oversample", labels, batch_size=4, seed=0, num_replicas=2, rank=1)
        >>> sampler.set_epoch(3)
        >>> len(sampler), sampler.epoch_batches().shape  # rank 1 takes 2 of each global batch of 4
        (2, torch.Size([2, 2]))
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name].batches(labels, batch_size, seed=seed, num_replicas=num_replicas, rank=rank)
