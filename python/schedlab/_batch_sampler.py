"""``schedlab.DataLoader(dataset, batch_sampler=...)``: batches whose indices a batch sampler
chooses (batches of similar lengths, a bucketing sampler), each loaded whole by one worker.

torch's DataLoader loads each batch on one worker too; the map-style DataLoader, which cuts
one order into batches of ``batch_size``, hands out single samples instead. Here the batch
sampler decides the batches, so the unit of work is the batch: a ``schedlab.Pipeline`` whose
source is the epoch's list of batches (the sampler iterated once per epoch) and whose one
stage loads a batch (``collate_fn([dataset[i] for i in batch])``) on the workers, threads or
processes, in order.
"""

import functools

from ._collate import default_collate
from .dataloader import _callable_arg, _chunk_arg, _order_and_timeout, _worker_args
from ._pipeline_loader import _PipelineLoader

_KIND = {"thread": "blocking", "process": "process", "auto": "auto"}


def _load_batch(dataset, collate_fn, indices):
    """One batch: its samples collated (module level, so that worker processes get it)."""
    return collate_fn([dataset[i] for i in indices])


class BatchSamplerLoader(_PipelineLoader):
    """``schedlab.DataLoader`` with a ``batch_sampler``: each epoch iterates the batch sampler
    once (``iter(batch_sampler)``, so a sampler that reshuffles per iteration gives new batches
    each epoch) and loads each batch on one of ``num_workers`` workers (threads, or processes
    with ``worker_type="process"``), delivered in order (``in_order=False``: as ready).
    ``prefetch_factor * num_workers`` batches are in flight at most. ``state_dict()`` /
    ``load_state_dict()`` resume at the batch where the state was taken: the batch sampler
    must give the same batches when iterated again for that epoch (a seeded one that does not
    reshuffle per iteration), as for an iterable dataset."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=None, ordered=True, batch_timeout=None, worker_type="thread",
                 chunk=None):
        from .pipeline import Pipeline

        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                "dataset: expected a map-style dataset (with __len__ and __getitem__), got "
                f"{type(dataset).__name__}"
            )
        if batch_size != 1 or shuffle or sampler is not None or drop_last:
            # torch's words
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                             "shuffle, sampler, and drop_last")
        if not hasattr(batch_sampler, "__iter__"):
            raise TypeError("batch_sampler should be an iterable of lists of indices, got "
                            f"{type(batch_sampler).__name__}")
        if worker_init_fn is not None:
            raise ValueError("worker_init_fn: not supported with a batch_sampler (each batch "
                             "is loaded by one stage of a schedlab.Pipeline, which has no "
                             "per-worker init)")
        self.num_workers, prefetch_factor = _worker_args(
            num_workers, worker_type, prefetch_factor, persistent_workers,
            "batches load in one thread")
        ordered, batch_timeout, timeout_s = _order_and_timeout(in_order, ordered, timeout,
                                                               batch_timeout)
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.batch_size, self.sampler, self.drop_last = None, None, False  # as torch's
        self.collate_fn = _callable_arg("collate_fn", collate_fn) or default_collate
        self.timeout = self.batch_timeout = batch_timeout
        self.worker_type, self.pin_memory = worker_type, pin_memory
        workers = max(1, self.num_workers)
        p = Pipeline(lambda epoch: [list(b) for b in batch_sampler], workers=workers,
                     ordered=bool(ordered), window=prefetch_factor * workers,
                     start_method=multiprocessing_context)
        load = functools.partial(_load_batch, dataset, self.collate_fn)
        load._schedlab_argument = "dataset or collate_fn"  # named if it cannot be pickled
        # worker processes: batches per message (by default as many as fit in 10 ms)
        p.map(load, kind=_KIND[worker_type], concurrency=workers, name="batch",
              chunk=_chunk_arg(chunk, worker_type))
        p._timeout_s = timeout_s
        self._pipeline = p
        self._epoch_target = batch_sampler

    def __len__(self):
        return len(self.batch_sampler)
