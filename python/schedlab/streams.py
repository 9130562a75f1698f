"""Streams (issue 30): iterables, callables and shards read lazily by ``schedlab.Pipeline``.

A stream source is pulled as the pipeline has room (at most its window ahead of the
consumer, never the epoch in memory: an endless generator works), and its position is part
of ``state_dict()``, so that ``load_state_dict()`` resumes it exactly.
"""

import os
import sys

from ._pipeline_loader import _PipelineLoader
from .dataloader import _MAX_SEED, _int_arg

_READERS = ("tar", "jsonl", "file")


class Shards:
    """Shard files split over ranks; made by :func:`shards`, given to ``schedlab.Pipeline``."""

    def __init__(self, paths, rank, world_size, shuffle, seed, balanced, reader):
        self.paths, self.rank, self.world_size = paths, rank, world_size
        self.shuffle, self.seed, self.balanced, self.reader = shuffle, seed, balanced, reader

    def __repr__(self):
        reader = self.reader if isinstance(self.reader, str) else getattr(
            self.reader, "__qualname__", "callable")
        return (
            f"schedlab.shards({len(self.paths)} files, rank={self.rank}, "
            f"world_size={self.world_size}, shuffle={self.shuffle}, seed={self.seed}, "
            f"balanced={self.balanced}, reader={reader!r})"
        )

    def _spec(self, shuffle_buffer):
        reader, fn = (self.reader, None) if isinstance(self.reader, str) else ("fn", self.reader)
        return (
            "shards", list(self.paths), self.rank, self.world_size,
            self.seed if self.shuffle else None, self.balanced, reader, fn, shuffle_buffer,
        )


def shards(paths, *, rank=0, world_size=1, shuffle=False, seed=0, reader="tar", balanced=False):
    """Every sample of every shard in ``paths``, exactly once across ``world_size`` ranks.

    Each epoch orders the shards (as given, or reshuffled per epoch from ``seed`` with
    ``shuffle=True``: the same order on every rank) and rank ``r`` reads the shards at
    positions ``r, r + world_size, ...`` of that order, each shard on one rank only. When the
    shard count does not divide, per-rank counts differ by at most one shard's samples
    (shards of one size). ``balanced=True`` deals out the whole rounds of shards and splits
    the samples of the shards left over among all ranks (each rank reads those shards and
    keeps every ``world_size``-th sample), so counts differ by at most 1.

    ``reader``: ``"tar"`` (WebDataset: members ``key.ext`` grouped into one dict per key, with
    ``"__key__"``, ``"__url__"`` and one ``bytes`` value per extension), ``"jsonl"`` (one
    parsed JSON value per non-blank line), ``"file"`` (one file = one sample, its ``bytes``)
    or a callable ``path -> iterable`` of samples.
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError("paths: expected a list of shard paths, got a single path")
    try:
        paths = [os.fspath(p) for p in paths]
    except TypeError as e:
        raise TypeError(f"paths: expected a list of str or os.PathLike: {e}") from None
    if any(isinstance(p, bytes) for p in paths):
        raise TypeError("paths: expected str paths, got bytes")
    first = {}
    for j, p in enumerate(paths):
        i = first.setdefault(p, j)
        if i != j:
            raise ValueError(f"paths[{j}]: {p} is paths[{i}] again; each shard is read once "
                             "(to weigh a source up, mix it)")
    _int_arg("world_size", world_size, 1)
    _int_arg("rank", rank, 0)
    if rank >= world_size:
        raise ValueError(f"rank: must be in 0..{world_size} (world_size), got {rank}")
    _int_arg("seed", seed, 0, _MAX_SEED)
    if not (callable(reader) or reader in _READERS):
        raise ValueError(
            f'reader: expected "tar", "jsonl", "file" or a callable path -> iterable, got {reader!r}'
        )
    return Shards(paths, rank, world_size, bool(shuffle), seed, bool(balanced), reader)


def is_stream(source):
    """A source read as a stream: shards, a callable, or an iterable that is not a sequence."""
    if isinstance(source, Shards) or callable(source) or hasattr(source, "_spec_of_stream"):
        return True
    if isinstance(source, (int, str, bytes)):
        return False
    return hasattr(source, "__iter__") and not (
        hasattr(source, "__len__") and hasattr(source, "__getitem__")
    )


def stream_spec(source, shuffle_buffer):
    """The tuple ``_core.PipelineCore`` reads (see python/src/streams.rs)."""
    if isinstance(source, Shards):
        return source._spec(shuffle_buffer)
    if hasattr(source, "_spec_of_stream"):  # schedlab.mix(...)
        return source._spec_of_stream(shuffle_buffer)
    return ("iter", source, callable(source), shuffle_buffer)


def check_shuffle(buffer_size, seed):
    """Check ``Pipeline.shuffle``'s arguments."""
    _int_arg("buffer_size", buffer_size, 1)
    _int_arg("seed", seed, 0, _MAX_SEED)
    return (buffer_size, seed)


def is_iterable_dataset(dataset):
    """torch's ``IterableDataset`` protocol: ``__iter__`` and no ``__getitem__``; or an
    instance of torch's ``IterableDataset`` itself, which has the ``__getitem__`` of torch's
    ``Dataset`` (it raises ``NotImplementedError``). torch is never imported here: an
    instance of its class can exist only once it was."""
    tud = sys.modules.get("torch.utils.data")
    cls = getattr(tud, "IterableDataset", None)
    if isinstance(cls, type) and isinstance(dataset, cls):
        return True
    return hasattr(dataset, "__iter__") and not hasattr(dataset, "__getitem__")


class IterableLoader(_PipelineLoader):
    """``schedlab.DataLoader`` over an iterable-style dataset (``__iter__``, no
    ``__getitem__``): one reader iterates the dataset (``iter(dataset)`` per epoch) in the
    pipeline's feeder, so every item arrives exactly once whatever ``num_workers`` is; the
    ``num_workers`` threads run the collate. There are no worker processes:
    ``torch.utils.data.get_worker_info()`` returns ``None`` inside ``__iter__``, so a dataset
    that splits itself by worker info reads everything, once. ``state_dict()`` /
    ``load_state_dict()`` resume mid-epoch exactly (the dataset is iterated again up to the
    position: it must give the same items in the same order)."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=None, ordered=True, batch_timeout=None, worker_type="thread",
                 chunk=None):
        from ._collate import default_collate
        from .dataloader import _chunk_arg, _order_and_timeout
        from .pipeline import Pipeline

        for name, value in (("shuffle", shuffle), ("sampler", sampler),
                            ("batch_sampler", batch_sampler)):
            if value:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified {name} option, "
                    f"but got {name}={value!r}"
                )
        if worker_init_fn is not None:
            raise ValueError(
                "worker_init_fn: not supported with an iterable dataset (one reader, no "
                "worker processes)"
            )
        if worker_type != "thread":
            raise ValueError(
                f"worker_type={worker_type!r}: an iterable dataset is read by one reader in "
                "this process (its __iter__ is not split across workers); for transforms on "
                "worker processes, use a map-style dataset or schedlab.Pipeline(dataset)"
                ".map(fn, kind=\"process\")"
            )
        _int_arg("num_workers", num_workers, 0)
        _chunk_arg(chunk, worker_type)
        ordered, batch_timeout, timeout_s = _order_and_timeout(in_order, ordered, timeout,
                                                               batch_timeout)
        self.timeout = self.batch_timeout = batch_timeout
        self.dataset, self.num_workers, self.drop_last = dataset, num_workers, bool(drop_last)
        self.batch_size = None if batch_size is None else _int_arg("batch_size", batch_size, 1)
        p = Pipeline(lambda epoch: iter(dataset), workers=max(1, num_workers),
                     ordered=bool(ordered))
        p._timeout_s = timeout_s
        if self.batch_size is not None:
            p.batch(self.batch_size, drop_last=self.drop_last,
                    collate_fn=collate_fn or default_collate)
        elif collate_fn is not None:
            p.map(collate_fn, name="collate")
        self._pipeline = p
        self._epoch_target = dataset

    def __len__(self):
        """torch's rule: the dataset's ``len()`` in batches (rounded up, or down with
        ``drop_last``); ``TypeError`` when the dataset has no ``len()``."""
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
