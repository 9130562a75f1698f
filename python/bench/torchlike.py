"""A small, faithful reimplementation of torch's DataLoader worker scheme, for benchmarks on
machines without torch (``process.py``, ``compare.py`` (c)).

What it copies from ``torch.utils.data.dataloader._MultiProcessingDataLoaderIter`` (torch 2.x):

* ``num_workers`` processes started at ``iter()`` (the default ``fork`` start method on Linux;
  not persistent), each with its **own index queue** (a ``multiprocessing.Queue``) and one
  shared result queue;
* the sampler's indices cut into batches; each batch goes whole to one worker, the workers
  taken **round-robin**; ``prefetch_factor`` (2) batches per worker outstanding;
* a worker runs ``collate([dataset[i] for i in batch])`` (here: ``numpy.stack``) and puts
  ``(batch number, data)`` on the result queue (pickled by the queue's feeder thread);
* the user's process yields batches **in order** (an early one is stashed until its turn) or
  as they arrive (``in_order=False``), and after each batch sends the next batch's indices
  to the next worker in the round.

What it leaves out: pinned memory, tensors in shared memory (the results here are small),
the workers' status checks and timeouts, and the iterable-dataset protocol.
"""

import multiprocessing

import numpy as np


def _worker(ds, index_q, result_q):
    while True:
        job = index_q.get()
        if job is None:
            return
        k, idx = job
        result_q.put((k, np.stack([ds[i] for i in idx])))


class RoundRobinLoader:
    """``iter()`` starts the workers; the iterator yields the batches; ``close()`` stops them."""

    def __init__(self, ds, batch_size, num_workers, in_order=True, prefetch_factor=2,
                 context="fork"):
        self.ds, self.bs, self.nw = ds, batch_size, num_workers
        self.in_order, self.prefetch = in_order, prefetch_factor
        self.ctx = multiprocessing.get_context(context)
        self.procs = []

    def __iter__(self):
        n = len(self.ds)
        batches = [list(range(s, min(s + self.bs, n))) for s in range(0, n, self.bs)]
        index_qs = [self.ctx.Queue() for _ in range(self.nw)]
        result_q = self.ctx.Queue()
        self.procs = [self.ctx.Process(target=_worker, args=(self.ds, q, result_q), daemon=True)
                      for q in index_qs]
        for p in self.procs:
            p.start()
        self._qs = index_qs
        sent = 0
        turn = 0

        def put_next():
            nonlocal sent, turn
            if sent < len(batches):
                index_qs[turn].put((sent, batches[sent]))
                turn = (turn + 1) % self.nw
                sent += 1

        for _ in range(self.prefetch * self.nw):
            put_next()
        stash = {}
        want = 0
        while want < len(batches):
            if self.in_order:
                while want not in stash:
                    k, data = result_q.get()
                    stash[k] = data
                data = stash.pop(want)
            else:
                _, data = result_q.get()
            want += 1
            put_next()
            yield data
        self.close()

    def close(self):
        for q in getattr(self, "_qs", []):
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        self.procs = []
        self._qs = []

