"""``schedlab.DataLoader``: torch's ``DataLoader`` arguments, on Rust worker threads."""

import atexit
import gc
import json
import math
import operator
import random
import sys
import threading
import weakref

from . import _core
from ._collate import default_collate
from ._process import (AutoStage, ProcessStage, default_chunk,
                       start_method_arg)

_live = weakref.WeakSet()

_WORKER_TYPES = ("thread", "process", "auto")


@atexit.register
def _close_all():
    # Join the worker threads before the interpreter goes away under them.
    for obj in list(_live):
        try:
            obj.close()
        except Exception:
            pass


def _int_arg(name, value, minimum, maximum=sys.maxsize):
    """``value`` if it is an int in ``minimum ..= maximum`` (default: what fits a size);
    else ``TypeError`` / ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be an integer, but got {name}={value!r}")
    if value < minimum:
        if minimum == 1:
            raise ValueError(f"{name} should be a positive integer value, but got {name}={value}")
        raise ValueError(f"{name} option should be non-negative, but got {name}={value}")
    if value > maximum:
        raise ValueError(f"{name} should be at most {maximum}, but got {name}={value}")
    return value


#: The largest seed (seeds are 64-bit).
_MAX_SEED = 2**64 - 1


def _chunk_arg(chunk, worker_type):
    """``chunk`` (samples per message to a worker process): ``None`` or an int >= 1, and only
    with ``worker_type="process"`` or ``"auto"``."""
    if chunk is None:
        return None
    _int_arg("chunk", chunk, 1)
    if worker_type not in ("process", "auto"):
        raise ValueError(f'chunk: samples per message to a worker process; needs '
                         f'worker_type="process" or "auto", got worker_type={worker_type!r}')
    return chunk


def _worker_args(num_workers, worker_type, prefetch_factor, persistent_workers, zero):
    """``(num_workers, prefetch_factor)`` checked as torch checks them (``prefetch_factor``
    and ``persistent_workers`` need workers; ``prefetch_factor`` None: 2), with
    ``worker_type`` one of thread, process, auto and not process or auto without workers
    (``zero`` says what ``num_workers=0`` does instead)."""
    num_workers = _int_arg("num_workers", num_workers, 0)
    if worker_type not in _WORKER_TYPES:
        raise ValueError(f'worker_type: expected "thread", "process" or "auto", got '
                         f"{worker_type!r}")
    if worker_type != "thread" and num_workers == 0:
        raise ValueError(f"worker_type={worker_type!r} needs num_workers > 0 (0: {zero})")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError(
            "prefetch_factor option could only be specified in multiprocessing."
            "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
        )
    if prefetch_factor is None:
        prefetch_factor = 2
    _int_arg("prefetch_factor", prefetch_factor, 1)
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
    return num_workers, prefetch_factor


def _order_and_timeout(in_order, ordered, timeout, batch_timeout):
    """torch's names and the pipeline vocabulary's, one setting each: ``(ordered,
    batch_timeout, timeout_s)`` from ``in_order`` / ``ordered`` and ``timeout`` /
    ``batch_timeout`` (``ValueError`` when both of a pair are given and disagree)."""
    if in_order is not None:
        if ordered is not True and bool(ordered) != bool(in_order):
            raise ValueError(f"in_order={in_order!r} and ordered={ordered!r} disagree; "
                             "give one of them")
        ordered = in_order
    timeout_given = isinstance(timeout, bool) or not (
        isinstance(timeout, (int, float)) and timeout == 0)
    if batch_timeout is None:
        batch_timeout = timeout
    elif timeout_given:
        raise ValueError("timeout and batch_timeout are the same setting (the wait for a "
                         "batch); give one of them")
    return ordered, batch_timeout, _timeout_arg(batch_timeout)


def _timeout_arg(timeout):
    """The wait for one batch in seconds, or ``None`` for no limit: ``0`` and ``inf`` mean
    none (as torch's 0 does), and so does a finite value too large to be a wait (over 2**64
    seconds, longer than any run). NaN and negative values are ``ValueError``, non-numbers
    ``TypeError``."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout should be a number of seconds, but got timeout={timeout!r}")
    if isinstance(timeout, float) and math.isnan(timeout):
        raise ValueError("timeout should be a number of seconds >= 0 (0 or inf: no timeout), "
                         "but got timeout=nan")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative (0 or inf: no timeout), but got "
                         f"timeout={timeout}")
    if timeout == 0 or timeout >= 2**64:
        return None
    return float(timeout)


_LIVE_MESSAGE = (
    "{what} is already being iterated: one iterator at a time (exhaust it, delete it or call "
    "close() before starting another; several threads may share that one iterator)"
)


def _claim(obj, what):
    """Refuse a second live iterator of ``obj`` (its ``_iter`` weak reference)."""
    old = obj._iter() if obj._iter is not None else None
    if old is not None and old._live():
        gc.collect()  # an unreachable iterator in a reference cycle is not live
        old = obj._iter() if obj._iter is not None else None
    if old is not None and old._live():
        raise RuntimeError(_LIVE_MESSAGE.format(what=what))


def _user_stop(exc, msg):
    """The exception to raise for ``exc`` from user code: ``StopIteration`` (which would end
    the caller's loop silently) becomes ``RuntimeError``, as PEP 479 does in generators."""
    if isinstance(exc, (StopIteration, StopAsyncIteration)):
        return RuntimeError(f"{msg}\n{type(exc).__name__} raised by user code is an error here "
                            "(it would end the iteration silently)")
    return None


def _rewrapped(exc, msg):
    """``exc``'s message replaced by ``msg``, as the same type where its constructor takes one
    message, else as the nearest base class below ``Exception`` that does
    (``json.JSONDecodeError`` needs three arguments: it becomes a ``ValueError``, so ``except
    ValueError`` still catches it), else ``RuntimeError`` (torch's fallback for all of them).
    A ``KeyError``'s message prints on several lines, and a ``StopIteration`` from user code
    is a ``RuntimeError`` (see ``_user_stop``)."""
    if isinstance(exc, KeyError):
        msg = KeyErrorMessage(msg)
    new = _user_stop(exc, msg)
    if new is not None:
        return new
    for k, cls in enumerate(type(exc).__mro__):
        if k > 0 and cls in (Exception, BaseException):
            break
        try:
            return cls(msg)
        except Exception:
            continue
    return RuntimeError(msg)


def _index(k, i):
    """The sampler's `k`-th index as an int: ints, numpy and torch integers (``__index__``);
    a float or a string is refused (``int()`` made 2.7 sample 2 and "3" sample 3)."""
    try:
        return operator.index(i)
    except TypeError:
        raise TypeError(
            f"sampler: item {k} is {i!r} ({type(i).__name__}); expected an integer index"
        ) from None


def _callable_arg(name, value):
    if value is not None and not callable(value):
        raise TypeError(f"{name} should be callable, but got {type(value).__name__}")
    return value


#: The GIL verdict and the recommendations need at least this many Python calls ...
VERDICT_MIN_CALLS = 200
#: ... over an epoch of at least this many seconds: below either, start-up (threads taking
#: the GIL for the first time, the first batches' queues filling) is most of what was
#: measured, and the verdict of a 5 ms epoch flips from run to run.
VERDICT_MIN_SECONDS = 0.25


def _too_short(workers, elapsed_s):
    """``None`` when the statistics are enough to judge, else the reason they are not."""
    calls = sum(w.get("calls", VERDICT_MIN_CALLS) for w in workers)
    short_calls = calls < VERDICT_MIN_CALLS
    short_time = elapsed_s is not None and elapsed_s < VERDICT_MIN_SECONDS
    if not (short_calls or short_time):
        return None
    over = f" over {elapsed_s * 1e3:.1f} ms" if elapsed_s is not None else ""
    return (
        f"too short to judge: {calls} Python calls{over}; the GIL verdict and the "
        f"recommendations need {VERDICT_MIN_CALLS} calls over {VERDICT_MIN_SECONDS} s at least"
    )


def gil_verdict(workers, elapsed_s=None, what="__getitem__"):
    """One line about the GIL from per-worker (or per-stage) statistics.

    Each entry has ``gil_wait_s`` (waiting to acquire the GIL before a call), ``python_s``
    (wall time inside the Python call), ``python_cpu_s`` (the thread's CPU time inside it,
    estimated from one call in 8 after a worker's first 64) and ``calls``. With fewer than
    ``VERDICT_MIN_CALLS`` calls in all, or an epoch (``elapsed_s``) shorter than
    ``VERDICT_MIN_SECONDS``, the line says "too short to judge". Otherwise it is
    "GIL-bound" when the workers waited to acquire the GIL at least half as long as Python
    ran on the CPU: a third or more of their Python time is spent
    queueing for the GIL. (Two threads that take turns at a saturated GIL each wait about as
    long as the other runs, so the literal "waited longer than ran" sits right at the border
    there.) Time off the CPU inside calls is shown but not judged: it mixes sleeps, reads,
    waits to get the GIL back after the switch interval, and the OS running other processes.

    More threads do not help a GIL-bound loader; what would: code in ``what`` (the
    DataLoader's ``__getitem__``, or ``"stage functions"`` for a pipeline) that releases the
    GIL (numpy, Pillow, file reads), fewer threads, or worker processes.
    """
    short = _too_short(workers, elapsed_s)
    if short is not None:
        return short
    wait = sum(w["gil_wait_s"] for w in workers)
    wall = sum(w["python_s"] for w in workers)
    cpu = sum(w.get("python_cpu_s", w["python_s"]) for w in workers)
    cores = f" ({cpu / elapsed_s:.2f} of a core over {elapsed_s:.3f} s)" if elapsed_s else ""
    facts = (
        f"waited {wait:.3f} s to acquire the GIL; Python ran {cpu:.3f} s on the CPU{cores} "
        f"and {max(wall - cpu, 0.0):.3f} s off it inside calls"
    )
    if wait > 0 and wait >= 0.5 * cpu:
        processes = (
            "worker processes (torch's DataLoader)" if what == "__getitem__"
            else "running that work in worker processes"
        )
        return (
            f"GIL-bound: {facts}. More threads will not help; what would: code that releases "
            f"the GIL in {what} (numpy, Pillow, file reads), fewer threads, or {processes}."
        )
    return f"not GIL-bound: {facts}"


def _hold_advice(data, text):
    """Make the recommendations agree with the GIL verdict (``data["gil_verdict"]``): none
    while the epoch is too short to judge, and never more workers than now while GIL-bound.
    Returns the report's text with its ``recommended:`` line rewritten to match."""
    verdict = data.get("gil_verdict", "")
    if "recommended_workers" not in data:
        return text
    lines = text.split("\n")
    at = next((i for i, l in enumerate(lines) if l.strip().startswith("recommended:")), None)
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())] if at is not None else "  "
    if verdict.startswith("too short"):
        data["recommended_workers"] = data["recommended_prefetch"] = None
        line = f"{indent}recommended: none yet ({verdict})"
    elif verdict.startswith("GIL-bound") and data["recommended_workers"] > data["workers"]:
        data["recommended_workers"] = data["workers"]
        line = (
            f"{indent}recommended: {data['workers']} workers (GIL-bound: more threads will not "
            f"help), prefetch {data['recommended_prefetch']}"
        )
    else:
        return text
    if at is None:
        lines.append(line)
    else:
        lines[at] = line
    return "\n".join(lines)


class Report(dict):
    """A loader's report: a dict (the Rust ``LoaderReport`` fields plus ``gil`` and
    ``gil_verdict``) that prints as text."""

    def __init__(self, data, text):
        super().__init__(data)
        self._text = text

    def __str__(self):
        gil = self.get("gil", [])
        rows = gil.items() if isinstance(gil, dict) else ((f"worker {i}", w) for i, w in enumerate(gil))
        per = "stage" if isinstance(gil, dict) else "worker"
        lines = [
            self._text.rstrip(),
            f"GIL per {per} (wait to acquire / inside Python (on the CPU) / calls"
            + (" / in Rust between calls):" if per == "worker" else "):"),
        ]
        for name, w in rows:
            lines.append(
                f"  {name}: {w['gil_wait_s']:.3f} s / {w['python_s']:.3f} s "
                f"({w['python_cpu_s']:.3f} s CPU) / {w['calls']}"
                + (f" / {w['rust_s']:.3f} s" if per == "worker" else "")
            )
        lines.append(self.get("gil_verdict", ""))
        procs = self.get("processes")
        if procs:
            from ._process import process_lines

            lines.append("worker processes:")
            for name, p in procs.items():
                lines.extend(process_lines(name, p))
        return "\n".join(lines)


def _gil_rows(now, before):
    rows = []
    for i, (wait, run, cpu, calls, rust) in enumerate(now):
        b = before[i] if i < len(before) else (0.0, 0.0, 0.0, 0, 0.0)
        rows.append(
            {
                "gil_wait_s": wait - b[0],
                "python_s": run - b[1],
                "python_cpu_s": cpu - b[2],
                "calls": calls - b[3],
                "rust_s": rust - b[4],
            }
        )
    return rows


def _reraise(number, index, worker, exc, tb, what):
    """Raise a worker's exception in the consumer, as torch's ``ExceptionWrapper`` does:
    the original type, a message naming the worker, the sample and the original traceback,
    and the original exception as ``__cause__``."""
    where = "sample index" if what != "collate_fn" else "first sample index"
    msg = (
        f"Caught {type(exc).__name__} in DataLoader worker {worker} ({what}, {where} {index}, "
        f"batch {number}).\nOriginal {tb}"
    )
    new = _rewrapped(exc, msg)
    try:
        new.index, new.worker, new.batch = index, worker, number
    except Exception:
        pass
    raise new from exc


class KeyErrorMessage(str):
    """A string whose repr is itself, so a ``KeyError`` message prints on several lines."""

    def __repr__(self):
        return self


class DataLoader:
    """Batches of a map-style dataset, loaded by Rust worker threads.

    The arguments and their meanings are ``torch.utils.data.DataLoader``'s:

    * ``dataset``: has ``__len__`` and ``__getitem__(index)``; an iterable-style dataset
      (``__iter__``, no ``__getitem__``) gets a ``schedlab.streams.IterableLoader``: one
      reader, every item exactly once whatever ``num_workers`` is (docs/streams.md).
    * ``batch_size`` (default 1; ``None`` yields single samples, not collated),
      ``drop_last``, ``shuffle`` (a new permutation per epoch, from ``seed`` or
      ``generator``), ``sampler`` (any iterable of indices with ``__len__``; exclusive with
      ``shuffle``), ``collate_fn`` (default :func:`schedlab.default_collate`: numpy arrays,
      torch tensors when the samples are tensors).
    * ``num_workers``: worker *threads* (0: load in the calling thread, as torch does).
      ``prefetch_factor`` (default 2): batches in flight per worker, the memory bound.
    * ``timeout`` (torch's name, kept) or ``batch_timeout`` (the pipeline vocabulary's name
      for the same wait): seconds to wait for a batch before ``RuntimeError`` (0 or ``inf``:
      forever; NaN or negative: ``ValueError``). After a timeout no new sample starts. (In
      Rust, ``Stage::timeout`` and ``LoaderBuilder::timeout`` are per sample.)
    * ``worker_init_fn(worker_id)``: runs once on each worker thread when it starts; a failure
      is raised once, at that worker's first batch, and ends the iteration (as in torch).
      Thread workers live as long as the loader; with ``worker_type="auto"`` (whose threads
      take chunks, and start with each epoch) it runs on each epoch's threads, as for torch's
      workers without ``persistent_workers``, until the move, then once per process; with
      ``"process"``, once per process.
    * ``in_order`` (torch's name, kept: the DataLoader is a drop-in for torch's) or
      ``ordered`` (the name of ``schedlab.Pipeline`` and Rust): batches in order (default) or
      as soon as they are ready.
    * ``pin_memory``, ``pin_memory_device``: accepted, no-ops (CPU threads; nothing to pin).
    * ``multiprocessing_context``: how the zygote that forks the worker processes starts
      (``"forkserver"``, ``"spawn"`` or ``"fork"``, or a context; by default ``"fork"`` while
      this process is single-threaded, else ``"forkserver"``); unused with thread workers.
    * ``persistent_workers``: the threads (and worker processes) always live as long as the
      loader; with ``persistent_workers=True`` they also load the next epoch's first
      batches while this one ends (torch's persistent workers keep their processes but
      start the next epoch at the next ``iter()``); the last epoch's look-ahead is CPU spent
      on items never read.

    Added: ``worker_type``: ``"thread"`` (the default: Rust threads that take the GIL only to
    call ``__getitem__``), ``"process"`` (``num_workers`` worker processes, each fed by two
    threads, so that it holds one message running and the next waiting; a message carries
    the sample indices waiting in order when a thread is free, up to ``chunk`` of them: by
    default up to 16, as many as fit in 10 ms of the samples' own time so far, so cheap
    samples travel many to a message and slow ones alone, and a slow sample holds its
    message's process, not a batch; ``chunk=1``: one index a message; with a ``strategy``
    other than ``"central"``, one a message under that strategy;
    ``__getitem__`` and ``worker_init_fn`` run in the processes, the dataset reaches
    them pickled once; large numpy samples and CPU torch tensors come back through shared
    memory; each process seeds ``random``, numpy and torch with a seed of its own and runs
    torch on one thread, as torch's workers do; a process that dies fails its sample only, as
    ``schedlab.WorkerDied``, and is replaced) or ``"auto"`` (threads, until the GIL
    statistics say ``__getitem__`` is GIL-bound: then processes; ``report()["processes"]``
    says when and why). ``strategy`` (a schedlab strategy spec such as ``"work-stealing"``; default
    ``"central"``), ``seed`` (the shuffle seed, instead of a ``generator``), ``autotune=True``
    (tune the prefetch online from the measured sample times; ``prefetch_factor`` is then the
    starting guess and ``max_items`` caps the samples in flight; ``report()["tuning"]`` lists
    every change).

    Also: ``len(loader)``, ``set_epoch(e)``, ``state_dict()`` / ``load_state_dict()`` (resume
    mid-epoch exactly), ``report()`` (the last epoch's rate against the limit, stalls and GIL
    statistics), ``close()`` (join the threads; also on ``del`` and at exit).
    """

    def __new__(cls, dataset=None, *args, **kwargs):
        # An iterable-style dataset (torch's IterableDataset protocol): one reader (issue 30).
        from . import streams

        if streams.is_iterable_dataset(dataset):
            return streams.IterableLoader(dataset, *args, **kwargs)
        # A batch sampler chooses the batches: each is loaded whole by one worker, as torch
        # loads them (`batch_sampler` is torch's fifth argument)
        if kwargs.get("batch_sampler", args[3] if len(args) > 3 else None) is not None:
            from ._batch_sampler import BatchSamplerLoader

            return BatchSamplerLoader(dataset, *args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        dataset,
        batch_size=1,
        shuffle=None,
        sampler=None,
        batch_sampler=None,
        num_workers=0,
        collate_fn=None,
        pin_memory=False,
        drop_last=False,
        timeout=0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor=None,
        persistent_workers=False,
        pin_memory_device="",
        in_order=None,
        ordered=True,
        batch_timeout=None,
        strategy=None,
        seed=None,
        autotune=False,
        max_items=None,
        worker_type="thread",
        chunk=None,
    ):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                "dataset: expected a map-style dataset (with __len__ and __getitem__), got "
                f"{type(dataset).__name__}"
            )
        self.batch_size = None if batch_size is None else _int_arg("batch_size", batch_size, 1)
        self.num_workers, prefetch_factor = _worker_args(
            num_workers, worker_type, prefetch_factor, persistent_workers,
            "samples load in the calling thread")
        self.worker_type = worker_type
        self.chunk = _chunk_arg(chunk, worker_type)
        self.multiprocessing_context = multiprocessing_context
        self._start_method = start_method_arg("multiprocessing_context", multiprocessing_context)
        self._procs = None  # the worker processes (worker_type "process" or "auto")
        ordered, batch_timeout, timeout_s = _order_and_timeout(in_order, ordered, timeout,
                                                               batch_timeout)
        if shuffle and sampler is not None:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is not None and not hasattr(sampler, "__iter__"):
            raise TypeError(f"sampler should be an iterable of indices, got {type(sampler).__name__}")
        in_flight = prefetch_factor * max(self.num_workers, 1) * (self.batch_size or 1)
        if in_flight > sys.maxsize:
            raise ValueError(
                "prefetch_factor * num_workers * batch_size (the samples in flight) should be "
                f"at most {sys.maxsize}, but got prefetch_factor={prefetch_factor}, "
                f"num_workers={self.num_workers}, batch_size={self.batch_size}"
            )
        if autotune and self.num_workers == 0:
            raise ValueError("autotune option needs num_workers > 0")
        if max_items is not None:
            if not autotune:
                raise ValueError("max_items: a memory cap for autotune; pass autotune=True")
            _int_arg("max_items", max_items, 1)
            if batch_size is not None and max_items < batch_size:
                raise ValueError(
                    f"max_items: {max_items} samples cannot hold one batch of {batch_size}"
                )
        self.collate_fn = _callable_arg("collate_fn", collate_fn)
        self.worker_init_fn = _callable_arg("worker_init_fn", worker_init_fn)
        if strategy is None:
            strategy = _core.DEFAULT_STRATEGY
        if not isinstance(strategy, str):
            raise TypeError(f"strategy should be a spec string, got {type(strategy).__name__}")
        self.strategy = _core.check_strategy(strategy, max(self.num_workers, 1))
        # chunks are taken from the one queue of waiting samples of the central strategy
        self._central = self.strategy == _core.check_strategy(_core.DEFAULT_STRATEGY, 1)
        if self.chunk is not None and self.chunk > 1 and not self._central:
            raise ValueError(
                f"chunk: {self.chunk} samples per message are taken from one queue of waiting "
                f"samples (the {_core.DEFAULT_STRATEGY} strategy), got strategy={strategy!r}; "
                "allowed with another strategy: chunk=1"
            )
        if seed is not None:
            _int_arg("seed", seed, 0, _MAX_SEED)
        elif generator is not None:
            if not hasattr(generator, "initial_seed"):
                raise TypeError("generator should be a torch.Generator (with initial_seed())")
            seed = _int_arg("generator.initial_seed()", int(generator.initial_seed()), 0,
                            _MAX_SEED)
        elif shuffle:
            seed = random.SystemRandom().getrandbits(63)
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.seed = seed if self.shuffle else None
        self.drop_last = bool(drop_last)
        self.batch_timeout = batch_timeout
        self.timeout = self.batch_timeout  # torch's name for the same setting
        self._timeout_s = timeout_s
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.pin_memory = pin_memory
        # torch's attributes, read by code that inspects a loader (as given; unused here)
        self.pin_memory_device, self.generator = pin_memory_device, generator
        self.batch_sampler = None  # see schedlab._batch_sampler for a batch sampler
        self.ordered = bool(ordered)
        self.autotune = bool(autotune)
        self.max_items = max_items
        self._epoch = 0
        self._restore = None
        # where an iterator stopped before its epoch's end left it (a `for` loop's `break`):
        # state_dict() gives it until the next iter() or load_state_dict()
        self._left = None
        self._core = None
        # cores stopped by an interrupt or a timeout whose threads may still be finishing
        # the samples in service: joined by close(), dropped once they have ended
        self._retired = []
        self._iter = None
        # one iterator at a time: claimed and registered under this lock
        self._iter_lock = threading.Lock()
        self._last_report = None
        self._gil0 = []
        _live.add(self)

    # --- sizes ----------------------------------------------------------------------------

    def _n(self):
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def _bs(self):
        return 1 if self.batch_size is None else self.batch_size

    def __len__(self):
        n, b = self._n(), self._bs()
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch):
        """The epoch the next ``iter(loader)`` loads (its shuffle); forwarded to the sampler."""
        self._epoch = _int_arg("epoch", epoch, 0)
        self._restore = None
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    # --- the Rust loader ------------------------------------------------------------------

    def _core_loader(self):
        if self._core is not None and self._core.closed():
            self._retired.append(self._core)
            self._core = None
        self._retired = [c for c in self._retired if not c.reap()]
        if self._core is None:
            getitem, init_fn = self.dataset.__getitem__, self.worker_init_fn
            if self.worker_type != "thread":
                self._procs = self._process_stage()
                if self.worker_type == "process":
                    # each worker thread leases its process (running worker_init_fn there)
                    getitem, init_fn = self._procs, self._procs.init_worker
                else:
                    getitem = self._procs
            threads, chunk = self.num_workers, None
            if self.worker_type == "process":
                threads *= self._procs.depth  # each process: one sample running, one waiting
            if self.worker_type != "thread":
                chunk = self._chunk()
            self._core = _core.LoaderCore(
                getitem,
                len(self.dataset),
                self._bs(),
                self.drop_last,
                self.seed,
                self.sampler is not None,
                threads,
                self.strategy,
                self.prefetch_factor * self.num_workers,
                self.ordered,
                init_fn,
                # torch's workers live for one epoch unless persistent: only persistent ones
                # start on the next epoch's first batches while this one ends
                self.persistent_workers,
                self.autotune,
                self.max_items,
                chunk,
            )
        return self._core

    def _chunk(self):
        """A process or auto loader's chunk, as ``LoaderCore`` takes it: ``(most, seconds or
        None)`` or ``None`` (one sample a call). The one given; by default, under the central
        strategy (whose single queue the chunks are taken from), up to ``DEFAULT_CHUNK``
        samples, as many as fit in ``DEFAULT_CHUNK_S`` at the mean sample time
        (:func:`default_chunk`: a process's threads, ``depth``; an ``auto`` loader's threads
        lease one process each)."""
        if self.chunk is not None:
            return (self.chunk, None)
        if self._central:
            return default_chunk(self._procs.depth if self.worker_type == "process" else 1)
        return None

    def _process_stage(self):
        """The worker processes for ``__getitem__``: started here (the dataset pickled once;
        ``TypeError`` naming ``dataset`` when it cannot be)."""
        if self._procs is not None:
            return self._procs
        fn = self.dataset.__getitem__
        procs = ProcessStage(fn, "__getitem__", self._start_method, init=self.worker_init_fn,
                             argument="dataset")
        if self.worker_type == "process":
            procs.start(self.num_workers)
            return procs
        auto = AutoStage(fn, procs, "__getitem__", prefork=self.num_workers)
        me = weakref.ref(self)

        def probe():
            dl = me()
            core = dl._core if dl is not None else None
            return _gil_rows(core.gil_stats(), dl._gil0) if core is not None else []

        auto.probe = probe
        return auto

    def close(self):
        """Stop loading and join every worker thread. The loader can be iterated again
        (new threads start)."""
        it = self._current()
        self._iter = None
        if it is not None:
            it._dead = True
        core, self._core = self._core, None
        retired, self._retired = self._retired, []
        procs, self._procs = self._procs, None
        try:
            for c in retired + ([core] if core is not None else []):
                c.close()
        finally:
            if procs is not None:
                procs.close()  # after the threads: none is waiting on a worker now

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- iteration ------------------------------------------------------------------------

    def _order(self, epoch):
        if self.sampler is not None:
            return [_index(k, i) for k, i in enumerate(self.sampler)]
        return _core.epoch_order(self.seed, epoch, len(self.dataset))

    def _collate(self, samples):
        if self.batch_size is None:
            return samples[0]
        return (self.collate_fn or default_collate)(samples)

    def _current(self):
        return self._iter() if self._iter is not None else None

    def __iter__(self):
        """One epoch's iterator. One at a time: ``RuntimeError`` while another is live (not
        exhausted, deleted, stopped or closed); several threads may share it, each batch
        going to exactly one of them."""
        with self._iter_lock:
            _claim(self, "this DataLoader")
            old = self._current()
            self._iter = None
            if old is not None:
                old._stop()
            self._left = None
            epoch, restore = self._epoch, self._restore
            self._restore = None
            self._epoch = epoch + 1
            if self.num_workers == 0:
                it = _SerialIter(self, epoch, restore)
            else:
                it = _ThreadIter(self, epoch, restore)
            self._iter = weakref.ref(it)
            return it

    # --- checkpoints ----------------------------------------------------------------------

    def state_dict(self):
        """Where the loader stands: the epoch in progress and the batches handed out. Store it
        with a checkpoint; ``load_state_dict`` on a loader built with the same arguments
        resumes exactly there."""
        it = self._current()
        if it is not None and not it._done and not it._dead:
            return it._state()
        if self._restore is not None:
            return dict(self._restore)
        if self._left is not None:
            # the last iterator was stopped (or dropped, as `break` does) mid-epoch
            return dict(self._left)
        # no live iterator: the next iter(loader) starts this epoch afresh
        return self._state_at(self._epoch, 0)

    def _state_at(self, epoch, batches_done):
        return {
            "epoch": epoch,
            "batches_done": batches_done,
            "positions_done": min(batches_done * self._bs(), self._n()),
            "consumed": [],
            "len": self._n() if self.sampler is None else len(self.dataset),
            "batch_size": self._bs(),
            "remainder": "drop" if self.drop_last else "partial",
            "seed": self.seed,
            "shard": None,
        }

    @property
    def in_order(self):
        """Deprecated name of ``ordered``."""
        return self.ordered

    def load_state_dict(self, state):
        """Resume from ``state_dict()``: the next ``iter(loader)`` continues that epoch."""
        if not isinstance(state, dict) or "epoch" not in state or "batches_done" not in state:
            raise ValueError("state_dict: expected a dict from DataLoader.state_dict()")
        for key in ("epoch", "batches_done"):
            v = state[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
                raise ValueError(f"state_dict: {key}: expected an int in 0..2**64, got {v!r}")
        seed = state.get("seed")
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _MAX_SEED
        ):
            raise ValueError(f"state_dict: seed: expected None or an int in 0..={_MAX_SEED}, "
                             f"got {seed!r}")
        if state.get("batch_size") != self._bs():
            raise ValueError(
                f"state_dict: batch_size {state.get('batch_size')} does not match this loader's {self._bs()}"
            )
        if state.get("seed") != self.seed:
            # take the saved shuffle: the same permutation as the interrupted run
            self.seed = state.get("seed")
            self.close()
        self._epoch = state["epoch"]
        self._restore = dict(state)
        self._left = None

    # --- reports --------------------------------------------------------------------------

    def report(self):
        """The last (or current) epoch's report as a dict that prints as text, with the GIL
        statistics per worker; ``None`` before any threaded epoch."""
        return self._report(True)

    def _report(self, memory):
        if self._core is None or self._core.closed():
            return self._last_report
        r = self._core.report()
        if r is None:
            return None
        data = json.loads(r[0])
        before = self._gil0
        data["gil"] = _gil_rows(self._core.gil_stats(), before)
        data["gil_verdict"] = gil_verdict(data["gil"], data.get("elapsed_s"))
        if self._procs is not None:
            data["processes"] = {"__getitem__": self._procs.stats(memory)}
        return Report(data, _hold_advice(data, r[1]))


class _ThreadIter:
    """One epoch of a threaded loader."""

    def __init__(self, dl, epoch, restore):
        self._dl, self._epoch = dl, epoch
        self._done = self._dead = False
        core = dl._core_loader()
        if restore is not None:
            core.restore(json.dumps(restore))
        if dl.sampler is not None:
            core.set_order(epoch, dl._order(epoch))
        self._gil0 = dl._gil0 = core.gil_stats()
        core.start_epoch(epoch)
        self._core = core

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._dl)

    def _live(self):
        return not self._done and not self._dead

    def __next__(self):
        if self._dead:
            raise RuntimeError("this DataLoader iterator was stopped (close(), an interrupt or "
                               "a timeout)")
        if self._done:
            raise StopIteration
        try:
            b = self._core.next_batch(self._dl._timeout_s)
        except BaseException:
            # interrupt or timeout: the core stopped at once; its threads finish the samples
            # in service in the background, the next iter() starts new ones, and close()
            # (or del) joins them
            self._dead = True
            raise
        if b is None:
            if not self._done:
                self._done = True
                try:
                    # kept for report() after close(); the workers' RSS only (their PSS and
                    # USS walk each process's pages: ~20 ms at every epoch's end, in the loop)
                    self._dl._last_report = self._dl._report(False)
                except RuntimeError:
                    pass  # another thread sharing this iterator stopped the loader
            raise StopIteration
        if b[0] == "error":
            if b[6] == "worker_init_fn":
                # as in torch: a worker whose worker_init_fn failed is raised once, at the first
                # batch it would have produced, and the iteration ends. Its threads stop (in the
                # background; close() joins them): the next iter() starts new ones, which run
                # worker_init_fn again, as torch's new worker processes would.
                self._done = True
                self._core.stop()
            _reraise(*b[1:])
        _, number, indices, samples = b
        try:
            return self._dl._collate(samples)
        except Exception as e:
            import traceback

            _reraise(number, indices[0], "consumer", e, traceback.format_exc(), "collate_fn")

    def _state(self):
        return json.loads(self._core.state())

    def _stop(self):
        if not self._done and not self._dead and not self._core.closed():
            # keep where the epoch stood, for state_dict() after a `break`
            left = self._state()
            self._core.end_epoch()
            self._dl._left = left
        self._dead = True

    def __del__(self):
        try:
            self._stop()
        except Exception:
            pass


class _SerialIter:
    """One epoch loaded in the calling thread (``num_workers=0``)."""

    def __init__(self, dl, epoch, restore):
        self._dl, self._epoch = dl, epoch
        self._done = self._dead = False
        order = dl._order(epoch)
        b = dl._bs()
        n = len(order) - len(order) % b if dl.drop_last else len(order)
        self._batches = [order[i : min(i + b, n)] for i in range(0, n, b)]
        self._k = restore["batches_done"] if restore is not None else 0
        if self._k > len(self._batches):
            raise ValueError(
                f"state_dict: batches_done {self._k} but epoch {epoch} has {len(self._batches)} batches"
            )
        # threads sharing this iterator take batches one at a time
        self._lock = threading.Lock()
        if dl.worker_init_fn is not None:
            try:
                dl.worker_init_fn(0)
            except (StopIteration, StopAsyncIteration) as e:
                raise _user_stop(e, "worker_init_fn(0) failed") from e

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._batches)

    def _live(self):
        return not self._done and not self._dead

    def __next__(self):
        with self._lock:
            if self._dead:
                raise RuntimeError("this DataLoader iterator was stopped by close()")
            if self._k >= len(self._batches):
                self._done = True
                raise StopIteration
            k = self._k
            self._k += 1
            samples = []
            for i in self._batches[k]:
                try:
                    samples.append(self._dl.dataset[i])
                except (StopIteration, StopAsyncIteration) as e:
                    raise _user_stop(e, f"__getitem__ failed at sample index {i}, batch {k}") from e
            try:
                return self._dl._collate(samples)
            except (StopIteration, StopAsyncIteration) as e:
                raise _user_stop(
                    e, f"collate_fn failed at batch {k} (first sample index {self._batches[k][0]})"
                ) from e

    def _state(self):
        return self._dl._state_at(self._epoch, self._k)

    def _stop(self):
        if not self._done and not self._dead:
            self._dl._left = self._state()  # for state_dict() after a `break`
        self._dead = True

    def __del__(self):
        try:
            self._stop()
        except Exception:
            pass
