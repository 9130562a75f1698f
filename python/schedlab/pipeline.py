"""``schedlab.Pipeline``: stages of Python callables on schedlab's Rust pipeline."""

import json
import re
import sys
import threading
import warnings
import weakref

from . import _core
from . import streams as _streams
from .mix import Mix
from ._collate import default_collate
from ._process import (
    AutoStage,
    ProcessStage,
    check_pickles,
    default_chunk,
    remote_fn,
    start_method_arg,
)
from .dataloader import (
    _MAX_SEED,
    _claim,
    _int_arg,
    _live,
    _rewrapped,
    gil_verdict,
    Report,
)

_KINDS = ("cpu", "blocking", "process", "auto")
_ON_FAILURE = ("raise", "skip", "halt")


class Pipeline:
    """A source, then stages of Python callables, then the consumer.

    ``source``: an ``int`` ``n`` (the items ``0 .. n-1``, shuffled per epoch with
    ``shuffle=True``), a sequence, or a stream (``docs/streams.md``): any iterable, a
    callable ``epoch -> iterable``, or ``schedlab.shards(...)``, pulled lazily (at most the
    window ahead of the consumer; an endless generator works) and shuffled with
    ``.shuffle(buffer_size, seed=...)``.

    Stages (each returns the pipeline, so calls chain):

    * ``map(fn, kind="cpu", concurrency=None, name=None, queue=None)``: one item to one;
    * ``filter(fn, ...)``: keep the items for which ``fn`` is true;
    * ``flat_map(fn, ...)``: one item to the items of the iterable ``fn`` returns;
    * ``batch(size, drop_last=False, collate_fn=default_collate)``: lists of ``size`` items,
      collated (``collate_fn=None`` keeps the lists).

    ``kind="cpu"`` stages run on the pipeline's ``workers`` shared threads (at most
    ``concurrency`` items of the stage at once); ``kind="blocking"`` stages run on
    ``concurrency`` threads of their own, for work that waits (reads, network, sleeps).
    ``kind="process"`` stages run on ``concurrency`` (default ``workers``) worker processes,
    for Python that holds the GIL: the stage's threads (two per process: one item running in
    it, the next waiting) hand them one item at a time (the function reaches the processes
    pickled, once; large numpy results come back through shared memory), and a process that
    dies costs its item only (a
    ``schedlab.WorkerDied`` error at its position; the process is replaced).
    ``kind="auto"`` starts on threads and moves to processes when the GIL statistics say the
    stage is GIL-bound (``report()["processes"]`` says when and why). ``start_method``: how
    a stage's zygote (the process that forks its workers) starts: ``"forkserver"``,
    ``"spawn"`` or ``"fork"``; by default ``"fork"`` while this process is single-threaded,
    else ``"forkserver"``.
    Items come out in source order (``ordered=True``) or as they are ready. An exception in
    a stage is raised at its item's position, as the original type, naming the stage.

    ``autotune=True`` sizes the blocking stages' threads, the queues and the windows while
    the pipeline runs, from measured service times (the ``concurrency`` given is the starting
    guess); ``max_items`` caps the items held at once. ``report()["tuning"]`` lists every
    change with its reason.

    ``window``: items each segment admits at once (the reorder window and the memory bound;
    default: the loader's rule). ``on_failure``: ``"raise"`` (an exception is raised at its
    item's position, the default), ``"skip"`` (the item is left out and counted in
    ``report()["failures"]``) or ``"halt"`` with ``max_failures`` (an int: a count; a float in
    [0, 1): a fraction of the epoch's items): the exceptions are raised as with ``"raise"``
    until there are more than that, then ``RuntimeError`` ends the epoch. A stage's
    ``strategy=`` (``kind="cpu"`` only) is any schedlab strategy spec for its items on the
    workers.

    ``prefetch_next_epoch=True`` (an int or a sequence source): once this epoch's source has
    been read, the next epoch's first items start while this epoch ends, within what the
    windows leave free (both together hold no more than one epoch's windows), so a loop over
    epochs does not stall at each boundary; ``epoch(e + 1)`` (or ``iter()``) takes them over,
    any other call drops them (a sequence source is read for the next epoch when this one
    starts). Off by default: a single epoch would pay for items it never reads.

    ``state_dict()`` / ``load_state_dict()`` resume mid-epoch exactly, as the DataLoader's do.

    One iterator at a time: ``iter()`` while another is live raises ``RuntimeError``; several
    threads may share that one iterator, each item going to exactly one of them.

    ``report()`` is the last epoch's report as a dict (per stage: service times, busy share,
    the bottleneck, and the GIL: time waiting for it and running Python); ``print(
    pipeline.report())`` prints it.
    """

    def __init__(
        self, source, *, workers=2, ordered=True, shuffle=False, seed=0, autotune=False,
        max_items=None, window=None, on_failure="raise", max_failures=None, start_method=None,
        prefetch_next_epoch=False,
    ):
        _int_arg("workers", workers, 1)
        self._start_method = start_method_arg("start_method", start_method)
        if window is not None:
            _int_arg("window", window, 1)
        if on_failure not in _ON_FAILURE:
            raise ValueError(
                f'on_failure: expected "raise", "skip" or "halt", got {on_failure!r}'
            )
        if (on_failure == "halt") != (max_failures is not None):
            raise ValueError(
                'max_failures: give it with on_failure="halt" (and only then): an int >= 1 '
                f"(a count) or a float in [0, 1) (a fraction), got {max_failures!r}"
            )
        if max_failures is not None:
            if isinstance(max_failures, bool) or not isinstance(max_failures, (int, float)):
                raise TypeError(
                    f"max_failures: expected an int or a float, got {type(max_failures).__name__}"
                )
            ok = (
                1 <= max_failures <= 2**63 if isinstance(max_failures, int)
                else 0.0 <= max_failures < 1.0
            )
            if not ok:
                raise ValueError(
                    "max_failures: expected an int >= 1 (a count) or a float in [0, 1) (a "
                    f"fraction of the epoch's items), got {max_failures!r}"
                )
        if max_items is not None:
            _int_arg("max_items", max_items, 1)
        _int_arg("seed", seed, 0, _MAX_SEED)
        if max_items is not None and not autotune:
            raise ValueError("max_items is the autotuner's memory cap: pass autotune=True with it")
        if not (isinstance(source, int) or hasattr(source, "__len__")
                or _streams.is_stream(source)):
            raise TypeError(
                "source: expected an int, a sequence, an iterable, a callable epoch -> "
                f"iterable or schedlab.shards(...), got {type(source).__name__}"
            )
        if isinstance(source, bool) or (isinstance(source, int) and not 0 <= source <= sys.maxsize):
            raise ValueError(f"source: expected an int in 0..={sys.maxsize}, got {source!r}")
        self._stream = _streams.is_stream(source)
        if prefetch_next_epoch and (self._stream or callable(source)):
            raise ValueError(
                "prefetch_next_epoch: only for an int or a sequence source, whose next epoch "
                "is known ahead; a stream or a callable source is read as its epoch runs"
            )
        self._prefetch = bool(prefetch_next_epoch)
        self._source, self._workers, self._ordered = source, workers, bool(ordered)
        self._shuffle, self._seed = bool(shuffle), seed
        self._autotune, self._max_items = bool(autotune), max_items
        self._window, self._on_failure, self._max_failures = window, on_failure, max_failures
        self._stages = []
        self._stream_shuffle = None
        self._core = None
        # the wait for one item, in seconds (None: no limit); set by the DataLoader over an
        # iterable dataset, whose `timeout` it is
        self._timeout_s = None
        self._procs = {}  # the process and auto stages' pools, by stage name (this core's)
        self._retired_procs = []  # those of cores stopped by an interrupt
        self._retired = []  # stopped by an interrupt; joined by close()
        self._restore = None
        # where an iterator stopped before its epoch's end left it (a `for` loop's `break`):
        # state_dict() gives it until the next iter() or load_state_dict()
        self._left = None
        self._epoch = 0
        self._iter = None
        self._iter_lock = threading.Lock()
        self._ahead = {}  # prefetch_next_epoch: the next epoch's items, made with this one's
        self._gil0 = []
        _live.add(self)

    def shuffle(self, buffer_size, *, seed=0):
        """Shuffle a stream source through a buffer of ``buffer_size`` items, from ``seed``
        (and the epoch): deterministic for a seed, source and buffer size, whatever the
        workers or threads; resumed exactly by ``load_state_dict`` (the state holds
        positions, not items)."""
        if self._core is not None:
            raise RuntimeError("shuffle cannot be added after the pipeline has started")
        if not self._stream:
            raise ValueError(
                "shuffle: a buffer shuffles a stream source (an iterable, a callable or "
                "schedlab.shards); a sequence or an int is shuffled with shuffle=True"
            )
        self._stream_shuffle = _streams.check_shuffle(buffer_size, seed)
        return self

    def _add(self, op, fn, kind, concurrency, name, queue, size=None, drop_last=False,
             strategy=None, chunk=None):
        if self._core is not None:
            raise RuntimeError("stages cannot be added after the pipeline has started")
        if fn is not None and not callable(fn):
            raise TypeError(f"{op}: expected a callable, got {type(fn).__name__}")
        if kind not in _KINDS:
            raise ValueError(
                f'kind: expected "cpu", "blocking", "process" or "auto", got {kind!r}'
            )
        if kind == "process":
            check_pickles(getattr(fn, "_schedlab_argument", "fn"), fn)
        for arg, v in (("concurrency", concurrency), ("queue", queue)):
            if v is not None:
                _int_arg(arg, v, 1)
        if strategy is not None:
            if not isinstance(strategy, str):
                raise TypeError(f"strategy: expected a str, got {type(strategy).__name__}")
            if kind != "cpu":
                raise ValueError(
                    'strategy: only a kind="cpu" stage has a strategy (a blocking, process or '
                    f"auto stage's threads take items in order), got strategy={strategy!r}"
                )
            _core.check_strategy(strategy, self._workers)
        name = name or (getattr(fn, "__name__", op) if fn is not None else op)
        if any(s[1] == name for s in self._stages):
            name = f"{name}#{len(self._stages)}"
        if chunk is not None:
            _int_arg("chunk", chunk, 1)
            if kind not in ("process", "auto"):
                raise ValueError(
                    'chunk: only a kind="process" or "auto" stage sends items in chunks, '
                    f"got kind={kind!r}"
                )
        self._stages.append(
            (op, name, kind, concurrency, queue, fn, size, drop_last, strategy, chunk)
        )
        return self

    def map(self, fn, *, kind="cpu", concurrency=None, name=None, queue=None, strategy=None,
            chunk=None):
        """Add a one-to-one stage ``fn(item) -> item``. ``chunk`` (``kind="process"``, or
        ``"auto"`` once it has moved to processes): a thread hands its worker process up to
        this many of the items waiting for the stage in one message (each item still its
        own result, failure and place; see the README's process stages); by default up to
        16, as many as fit in 10 ms of the items' own time at the stage's mean so far
        (``schedlab._process.DEFAULT_CHUNK``, ``DEFAULT_CHUNK_S``); ``chunk=1``: one item per
        message."""
        return self._add("map", fn, kind, concurrency, name, queue, strategy=strategy,
                         chunk=chunk)

    def filter(self, fn, *, kind="cpu", concurrency=None, name=None, queue=None,
               strategy=None):
        """Add a stage that keeps the items for which ``fn(item)`` is true."""
        return self._add("filter", fn, kind, concurrency, name, queue, strategy=strategy)

    def flat_map(self, fn, *, kind="cpu", concurrency=None, name=None, queue=None,
                 strategy=None):
        """Add a stage that replaces each item by the items of the iterable ``fn(item)``."""
        return self._add("flat_map", fn, kind, concurrency, name, queue, strategy=strategy)

    def batch(self, size, *, drop_last=False, collate_fn=default_collate, name="collate"):
        """Group items into lists of ``size`` and collate each (on a cpu worker)."""
        _int_arg("batch_size", size, 1)
        return self._add("batch", collate_fn, "cpu", None, name, None, size, bool(drop_last))

    def _items(self, epoch):
        s = self._source
        if self._stream:
            return []  # pulled by the core as it has room
        if isinstance(s, int):
            # the core makes the indices as it reads them (no list of s ints)
            return (s, self._seed if self._shuffle else None)
        if callable(s):
            return list(s(epoch))
        if self._shuffle:
            return [s[i] for i in _core.epoch_order(self._seed, epoch, len(s), "source")]
        return list(s)

    def _start(self):
        if self._core is not None and self._core.closed():
            self._retired.append(self._core)
            self._core = None
        self._retired = [c for c in self._retired if not c.reap()]
        if self._core is None:
            stages, procs = self._rust_stages()
            try:
                for st in procs.values():
                    if isinstance(st, ProcessStage):
                        # here: an unpicklable function raises in the caller
                        st.start(self._concurrency_of(st.name),
                                 f"stage '{st.name}': concurrency")
                self._core = _core.PipelineCore(
                    stages, self._workers, self._ordered, self._autotune, self._max_items,
                    self._window, self._on_failure,
                    None if self._max_failures is None else float(self._max_failures),
                    **({"stream": _streams.stream_spec(self._source, self._stream_shuffle)}
                       if self._stream else {}),
                    prefetch_next_epoch=self._prefetch,
                )
            except BaseException:
                for st in procs.values():
                    st.close()
                raise
            # an interrupted core's threads may still use its processes: closed by close()
            self._retired_procs.extend(self._procs.values())
            self._procs = procs
            me = weakref.ref(self)
            for name, st in procs.items():
                if isinstance(st, AutoStage):
                    st.probe = _stage_probe(me, name)
        return self._core

    def _concurrency_of(self, name):
        st = next(s for s in self._stages if s[1] == name)
        return st[3] or self._workers

    def _rust_stages(self):
        """The stages as the Rust core takes them: a process or auto stage is a blocking
        stage (``concurrency`` threads, default ``workers``) whose function hands each item to
        the calling thread's worker process."""
        out, procs = [], {}
        for st in self._stages:
            op, name, kind, concurrency, queue, fn = st[:6]
            chunk, fixed = None, False
            if kind in ("process", "auto"):
                concurrency = concurrency or self._workers
                # (what an unpicklable function is called in the error: `fn`, unless the
                # function was made from the user's arguments, which it then names)
                remote = ProcessStage(remote_fn(op, fn), name, self._start_method,
                                      argument=getattr(fn, "_schedlab_argument", "fn"))
                procs[name] = remote if kind == "process" else AutoStage(
                    fn, remote, "stage functions", prefork=concurrency,
                    field=f"stage '{name}': concurrency",
                )
                # process: ITEMS_PER_WORKER threads per process (one item running, the next
                # waiting in it); auto: its threads, which lease one process each once moved
                threads = concurrency * remote.depth if kind == "process" else concurrency
                if op == "map":
                    # the stage's own chunk as given; by default, sized by the item time
                    chunk = (st[9], None) if st[9] is not None else default_chunk(
                        threads // concurrency)
                st = (op, name, "blocking", threads, queue, procs[name]) + tuple(st[6:9])
                # autotune keeps its threads: each leases a worker process's socket, and
                # more threads would fork more processes onto the same CPUs
                fixed = True
            out.append(tuple(st[:9]) + (chunk, fixed))
        return out, procs

    def epoch(self, epoch):
        """Iterate epoch ``epoch``'s items. Where the pipeline stands inside this epoch
        (after ``load_state_dict`` of a state inside it, or after an iterator of this epoch
        was stopped part-way, a ``break``) it goes on from there: the items not handed out
        yet; ``iter(pipeline)`` after a ``break`` starts the next epoch. ``RuntimeError``
        while another iterator of this pipeline is live."""
        epoch = _int_arg("epoch", epoch, 0, _MAX_SEED)
        with self._iter_lock:
            _claim(self, "this Pipeline")
            old = self._iter() if self._iter is not None else None
            if old is not None:
                old._stop()
            self._left = None
            restore, self._restore = self._restore, None
            if restore is not None and restore["epoch"] != epoch:
                restore = None
            core = self._start()
            it = _PipelineIter(self, core, epoch, restore)
            self._iter = weakref.ref(it)
            self._gil0 = it._gil0
            self._epoch = epoch + 1
            return it

    def __iter__(self):
        return self.epoch(self._epoch)

    # --- checkpoints ----------------------------------------------------------------------

    def _stage_names(self):
        return [s[1] for s in self._stages]

    def state_dict(self):
        """Where the pipeline stands: the epoch in progress and the source positions handed
        out. Store it with a checkpoint; ``load_state_dict`` on a pipeline built the same way
        (same source, stages and shuffle seed) resumes exactly there."""
        it = self._iter() if self._iter is not None else None
        if it is not None and not it._done and not it._dead and not it._core.closed():
            return json.loads(it._core.state())
        if self._restore is not None:
            return dict(self._restore)
        if self._left is not None:
            # the last iterator was stopped (or dropped, as `break` does) mid-epoch
            return dict(self._left)
        # no live iterator: the next iter(pipeline) starts this epoch afresh
        return {
            "epoch": self._epoch,
            "positions_done": 0,
            "done": [],
            "partial": [],
            "stages": self._stage_names(),
        }

    def load_state_dict(self, state):
        """Resume from ``state_dict()``: the next ``iter(pipeline)`` yields the rest of that
        epoch (in order when ordered)."""
        keys = ("epoch", "positions_done", "done", "partial", "stages")
        if not isinstance(state, dict) or any(k not in state for k in keys):
            raise ValueError("state_dict: expected a dict from Pipeline.state_dict()")
        if list(state["stages"]) != self._stage_names():
            raise ValueError(
                f"state_dict: stages {list(state['stages'])} do not match this pipeline's "
                f"{self._stage_names()}"
            )
        self._epoch = state["epoch"]
        self._restore = dict(state)
        self._left = None

    def report(self):
        """The last (or current) epoch's report as a dict, with ``gil`` per stage; it prints as
        the stage table, the bottleneck and the GIL lines (Rust: ``Pipeline::report``)."""
        if self._core is None or self._core.closed():
            return None
        r = self._core.report()
        if r is None:
            return None
        data = json.loads(r[0])
        g0 = self._gil0
        gil = {}
        for (name, rows), (_, rows0) in zip(self._core.gil_stats(), g0):
            col = lambda k, rs: sum(r[k] for r in rs)  # noqa: E731
            gil[name] = {
                "gil_wait_s": col(0, rows) - col(0, rows0),
                "python_s": col(1, rows) - col(1, rows0),
                "python_cpu_s": col(2, rows) - col(2, rows0),
                "calls": col(3, rows) - col(3, rows0),
            }
        data["gil"] = gil
        data["gil_verdict"] = gil_verdict(
            list(gil.values()), data.get("elapsed_s"), what="stage functions"
        )
        if self._procs:
            data["processes"] = {name: st.stats() for name, st in self._procs.items()}
        text = _hold_bottleneck(data, r[1])
        if isinstance(self._source, Mix):
            mixed = self._source.stats()
            if mixed is not None:
                # each source of the mix: taken, realised and target share, read rate, and the
                # one that holds the mix back
                data["mix"] = mixed
                text = text.rstrip() + "\nsource (mix):\n" + self._source.report().rstrip() + "\n"
        return Report(data, text)

    def stats(self):
        """Deprecated name of :meth:`report` (one vocabulary with Rust); removed in the next
        release."""
        warnings.warn(
            "Pipeline.stats() is deprecated; use Pipeline.report() (the same dict)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.report()

    def close(self):
        """Stop and join every thread."""
        core, self._core = self._core, None
        it = self._iter() if self._iter is not None else None
        if it is not None:
            it._dead = True
        retired, self._retired = self._retired, []
        procs = self._retired_procs + list(self._procs.values())
        self._procs, self._retired_procs = {}, []
        try:
            for c in retired + ([core] if core is not None else []):
                c.close()
        finally:
            # after the threads: none is waiting on a worker now
            for st in procs:
                st.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _stage_probe(pipeline_ref, name):
    """``() -> rows``: an auto stage's GIL statistics (as ``gil_verdict`` takes them)."""

    def probe():
        p = pipeline_ref()
        core = p._core if p is not None else None
        rows = dict(core.gil_stats()).get(name, []) if core is not None else []
        return [
            {"gil_wait_s": r[0], "python_s": r[1], "python_cpu_s": r[2], "calls": r[3]}
            for r in rows
        ]

    return probe


_ONE_MORE = re.compile(r"; one more (thread|CPU worker) there: ~[0-9.,]+ items/s")


def _hold_bottleneck(data, text):
    """Make the bottleneck's "one more thread there" agree with the GIL verdict: dropped
    while the epoch is too short to judge, and said not to help while GIL-bound."""
    verdict = data.get("gil_verdict", "")
    b = data.get("bottleneck")
    if verdict.startswith("too short"):
        note = "; one more thread there: too short to judge"
    elif verdict.startswith("GIL-bound"):
        note = "; one more thread or CPU worker there will not help: GIL-bound"
    else:
        return text
    if isinstance(b, dict):
        b["one_more_per_s"] = None
    return _ONE_MORE.sub(note, text)


class _PipelineIter:
    def __init__(self, p, core, epoch, restore=None):
        self._p, self._core, self._epoch = p, core, epoch
        self._done = self._dead = False
        self._gil0 = core.gil_stats()
        if restore is not None:
            core.restore(json.dumps(restore))
        # prefetching, the engine opens the next epoch while this one ends: its items go to
        # the core now (and are kept, so that epoch's start does not make them again)
        items = p._ahead.pop(epoch, None)
        if items is None:
            items = p._items(epoch)
        ahead = None
        if p._prefetch and epoch < _MAX_SEED:
            ahead = p._items(epoch + 1)
        p._ahead = {} if ahead is None else {epoch + 1: ahead}
        core.start_epoch(epoch, items, ahead)

    def __iter__(self):
        return self

    def _live(self):
        return not self._done and not self._dead

    def __next__(self):
        if self._dead:
            raise RuntimeError("this pipeline iterator was stopped")
        if self._done:
            raise StopIteration
        try:
            r = self._core.next_item(self._p._timeout_s)
        except BaseException:
            self._dead = True
            raise
        if r is None:
            self._done = True
            raise StopIteration
        if r[0] == "ok":
            return r[1]
        if r[0] == "halted":
            self._done = True
            raise RuntimeError(f"{r[1]} (on_failure=\"halt\", max_failures="
                               f"{self._p._max_failures!r})")
        _, exc, tb, stage, k = r
        msg = (
            f"Caught {type(exc).__name__} in pipeline stage '{stage}' (item {k} of epoch "
            f"{self._epoch}).\nOriginal {tb}"
        )
        raise _rewrapped(exc, msg) from exc

    def _stop(self):
        if not self._done and not self._dead and not self._core.closed():
            # keep where the epoch stood, for state_dict() after a `break`
            left = json.loads(self._core.state())
            self._core.end_epoch()
            self._p._left = left
        self._dead = True

    def __del__(self):
        try:
            self._stop()
        except Exception:
            pass
