"""The ``multiprocessing.Pool.imap`` contender of ``compare.py`` and ``process.py``: one
sample per task (``chunksize=1``), in order, batches of 32 stacked in the consumer."""

import numpy as np


def imap_batches(pool, ds, size=32):
    """``ds``'s samples through ``pool.imap`` (in order), stacked ``size`` at a time."""
    buf = []
    for x in pool.imap(ds.__getitem__, range(len(ds)), chunksize=1):
        buf.append(x)
        if len(buf) == size:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)
