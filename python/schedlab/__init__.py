"""schedlab: a DataLoader and a Pipeline for PyTorch users, on schedlab's Rust thread pool.

``schedlab.DataLoader`` takes ``torch.utils.data.DataLoader``'s arguments: for a map-style
dataset (``__len__`` and ``__getitem__``) changing the import is the whole migration. Its
workers are Rust threads that take the GIL only to call your ``__getitem__``; code that
releases the GIL (file reads, ``time.sleep``, Pillow decoding, most of numpy) runs on all of
them at once, and nothing is pickled.

``schedlab.Pipeline`` chains stages of Python callables (``kind="cpu"`` on the shared workers,
``kind="blocking"`` on a stage's own threads), with batching, collate and per-stage
statistics.

Python that holds the GIL runs in worker processes: ``Pipeline.map(fn, kind="process")`` and
``DataLoader(worker_type="process")`` (or ``"auto"``: threads until the GIL statistics say
GIL-bound), one item at a time under the engine's scheduling; a worker that dies fails its
item (:class:`WorkerDied`) and is replaced.
"""

from ._collate import default_collate
from ._core import DEFAULT_STRATEGY
from .dataloader import DataLoader, gil_verdict
from ._process import WorkerDied
from .mix import mix
from .pipeline import Pipeline
from .streams import shards

__all__ = [
    "DataLoader", "Pipeline", "WorkerDied", "default_collate", "gil_verdict", "mix", "shards",
    "DEFAULT_STRATEGY",
]
__version__ = "0.1.0"
