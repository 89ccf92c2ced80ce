"""Where the trainer's batches come from: in-memory tensors, a ``Dataset`` or a user's ``DataLoader``.

Tensors and Datasets share one seeded plan: the sample order of epoch e is a permutation drawn from a
generator seeded with (seed, e), cut into optimizer steps of ``batch_size x accumulate`` samples and
those into micro-batches of ``batch_size``; under ``torch.distributed`` each rank takes its slice of every
micro-batch. The plan depends on nothing but the step, so a resumed fit fetches exactly the batches the
uninterrupted one did. A user's own ``DataLoader`` is iterated as given (its order is its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset, default_collate

Batch = tuple[torch.Tensor, torch.Tensor]


def _pair(batch, what: str) -> Batch:
    """A batch as (x, y); anything else is refused naming where it came from."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise TypeError(f"{what} must give (x, y) batches, got {type(batch).__name__}"
                        f"{f' of {len(batch)}' if isinstance(batch, (tuple, list)) else ''}")
    return tuple(batch)


def tell_epoch(obj, epoch: int) -> None:
    """Call ``obj.set_epoch(epoch)`` where it exists (DistributedSampler; datasets whose augmentation
    is drawn per epoch)."""
    set_epoch = getattr(obj, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


def unwrap(dataset: Dataset) -> tuple[Dataset, list[int] | None]:
    """The dataset under any ``Subset`` wrappers, and which of its samples they keep (None: all)."""
    keep = None
    while isinstance(dataset, Subset):
        keep = list(dataset.indices) if keep is None else [dataset.indices[i] for i in keep]
        dataset = dataset.dataset
    return dataset, keep


def own_collate(dataset: Dataset) -> Callable | None:
    """A Dataset's own ``collate_fn`` attribute (looked up through ``Subset``), or None."""
    fn = getattr(unwrap(dataset)[0], "collate_fn", None)
    return fn if callable(fn) else None


class EpochPlan:
    """The seeded order of every epoch, cut into optimizer steps and micro-batches (this rank's slice)."""

    def __init__(self, samples: int, batch_size: int, accumulate: int, seed: int, world: int = 1, rank: int = 0):
        self.samples, self.batch_size, self.accumulate = samples, batch_size, accumulate
        self.seed, self.world, self.rank = seed, world, rank
        self.steps = -(-samples // (batch_size * accumulate))
        self._order: tuple[int, torch.Tensor] | None = None  # the last epoch's permutation

    def generator(self, epoch: int) -> torch.Generator:
        """A CPU generator seeded with (seed, epoch)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

    def count(self, i: int) -> int:
        """How many micro-batches optimizer step i of an epoch holds."""
        return -(-min(self.batch_size * self.accumulate, self.samples - i * self.batch_size * self.accumulate)
                 // self.batch_size)

    def micro_batches(self, epoch: int, start: int = 0, stop: int | None = None) -> list[tuple[list[int], int]]:
        """(this rank's indices, the micro-batch's global size) for steps [start, stop) of ``epoch``."""
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, torch.randperm(self.samples, generator=self.generator(epoch)))
        order = self._order[1]
        per_step = self.batch_size * self.accumulate
        stop = self.steps if stop is None else stop
        out = []
        for idx in order[start * per_step:stop * per_step].split(self.batch_size):
            out.append((idx.tensor_split(self.world)[self.rank].tolist(), len(idx)))
        return out


class _Fetch(Dataset):
    """Maps a list of indices to one collated batch: tensors of a ``TensorDataset`` are indexed at once,
    ``__getitems__`` is used where the dataset has it, else one item at a time."""

    def __init__(self, dataset: Dataset, collate: Callable | None):
        self.dataset, self.collate = dataset, collate or default_collate

    def __getitem__(self, idx: list[int]) -> Batch:
        if isinstance(self.dataset, TensorDataset) and self.collate is default_collate:
            return tuple(t[idx] for t in self.dataset.tensors)
        getitems = getattr(self.dataset, "__getitems__", None)
        return self.collate(getitems(idx) if getitems is not None else [self.dataset[i] for i in idx])


class Source:
    """Batches for the trainer: ``steps`` optimizer steps per epoch; ``step(epoch, i)`` -> the
    micro-batches of optimizer step i as (x, y, the micro-batch's global size); ``exact``: whether a
    step's batches can be fetched again after an interrupt."""

    exact = True

    def __init__(self, plan: EpochPlan):
        self.plan = plan

    @property
    def steps(self) -> int:
        return self.plan.steps

    def step(self, epoch: int, i: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        raise NotImplementedError


class TensorSource(Source):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, plan: EpochPlan):
        super().__init__(plan)
        self.x, self.y = x, y

    def step(self, epoch, i):
        out = []
        for idx, size in self.plan.micro_batches(epoch, i, i + 1):
            local = torch.tensor(idx, dtype=torch.long, device=self.x.device)
            out.append((self.x[local], self.y[local.to(self.y.device)], size))
        return out


class DatasetSource(Source):
    """A map-style Dataset read through a DataLoader that follows the plan (workers prefetch ahead);
    the dataset is told the epoch where it has ``set_epoch``; the DataLoader's own seed comes from the
    plan, never from the global RNG."""

    def __init__(self, dataset: Dataset, plan: EpochPlan, collate: Callable | None, num_workers: int,
                 pin_memory: bool):
        super().__init__(plan)
        self.fetch, self.num_workers, self.pin_memory = _Fetch(dataset, collate), num_workers, pin_memory
        self._at: tuple[int, int] | None = None  # (epoch, next step) the open iterator yields
        self._it: Iterator | None = None
        self._sizes: Iterator[int] | None = None

    def _open(self, epoch: int, start: int) -> None:
        tell_epoch(self.fetch.dataset, epoch)  # before the workers copy the dataset
        plan = self.plan.micro_batches(epoch, start)
        loader = DataLoader(self.fetch, sampler=[idx for idx, _ in plan], batch_size=None,
                            num_workers=self.num_workers, pin_memory=self.pin_memory,
                            generator=self.plan.generator(epoch))
        self._it, self._sizes = iter(loader), iter([size for _, size in plan])

    def step(self, epoch, i):
        if self._at != (epoch, i):
            self._open(epoch, i)
        self._at = (epoch, i + 1)
        return [(*_pair(next(self._it), "x (a Dataset of (x, y) items)"), next(self._sizes))
                for _ in range(self.plan.count(i))]


class LoaderSource(Source):
    """A user's DataLoader: ``accumulate`` of its batches per optimizer step, in its own order (its
    sampler and dataset are told the epoch where they have ``set_epoch``); an interrupted epoch cannot
    be fetched again (``exact`` is False)."""

    exact = False

    def __init__(self, loader: DataLoader, accumulate: int):
        self.loader, self.accumulate = loader, accumulate
        self._epoch: int | None = None
        self._it: Iterator | None = None

    @property
    def steps(self) -> int:
        return -(-len(self.loader) // self.accumulate)

    def step(self, epoch, i):
        if self._epoch != epoch:
            tell_epoch(getattr(self.loader.batch_sampler, "sampler", self.loader.sampler), epoch)
            tell_epoch(self.loader.dataset, epoch)
            self._epoch, self._it = epoch, iter(self.loader)
        out = []
        for batch in self._it:
            x, y = _pair(batch, "x (a DataLoader)")
            out.append((x, y, len(y)))
            if len(out) == self.accumulate:
                break
        return out


def as_source(x, y, *, batch_size: int, accumulate: int, seed: int, world: int, rank: int,
              collate: Callable | None, num_workers: int, pin_memory: bool) -> tuple[Source, int]:
    """The Source of tensors ``(x, y)`` (checked by the trainer), a Dataset ``x`` (batched by ``collate``,
    else its own ``collate_fn``, else stacking) or a DataLoader ``x``, and its sample count."""
    if isinstance(x, DataLoader):
        if y is not None:
            raise TypeError("y must be None when x is a DataLoader (its batches hold the labels)")
        try:
            steps = len(x)
        except TypeError:
            raise TypeError("x must be a DataLoader with a length (a map-style dataset or a sized "
                            "iterable); an unsized stream has no epochs to schedule") from None
        if steps == 0:
            raise ValueError("x must yield at least one batch, got an empty DataLoader")
        samples = len(x.dataset) if hasattr(x.dataset, "__len__") else steps
        return LoaderSource(x, accumulate), samples
    if isinstance(x, Dataset) and not isinstance(x, torch.Tensor):
        if y is not None:
            raise TypeError("y must be None when x is a Dataset (its items are (x, y) pairs)")
        if not hasattr(x, "__len__"):
            raise TypeError(f"x must be a map-style Dataset with __len__, got {type(x).__name__}")
        if len(x) == 0:
            raise ValueError("x must hold at least one sample, got an empty Dataset")
        plan = EpochPlan(len(x), batch_size, accumulate, seed, world, rank)
        return DatasetSource(x, plan, collate or own_collate(x), num_workers, pin_memory), len(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (with y), a Dataset or a DataLoader, got {type(x).__name__}")
    plan = EpochPlan(len(x), batch_size, accumulate, seed, world, rank)
    return TensorSource(x, y, plan), len(x)
