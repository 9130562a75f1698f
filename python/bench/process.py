"""GIL-bound work on worker processes (issue 32): schedlab's process workers against torch's
DataLoader, ``multiprocessing.Pool.imap`` and schedlab's threads.

    python python/bench/process.py [--only uniform,lognormal,sleep,memory,tensors,start]
                                   [--reps 3]
                                   [--items 3000] [--contenders WORDS]
                                   [--chunks 1,4,8,default] [--item-us 700]

Workloads (2 workers, batch 32, in order; every item is pure Python that holds the GIL):

* uniform: a loop of a fixed count (~700 us, ``--item-us``), as ``compare.py`` (c);
* lognormal: loop counts drawn log-normal, mean ~400 us, sigma 1.5 (seed 0);
* sleep: ``time.sleep`` log-normal mean 1 ms sigma 1.5, 8 workers (``auto`` must stay on
  threads there; printed: where it ran);
* steady (only when asked): uniform items, persistent workers, 4 epochs per loader; epochs
  2 to 4 only (no start-up): torch's DataLoader (``persistent_workers=True``) against
  ``DataLoader(worker_type="process")``, the two alternated, each repetition starting with
  the other;
* parts (only when asked): where this process's CPU per item goes, with items that cost
  next to nothing (``tiny``: a 2-element array), each way alternated: the hand-off alone (one
  thread calling a process stage in a loop, no engine; the worker's CPU per item too), the
  engine alone (a blocking stage of 4 threads running ``tiny`` here), a process stage in a
  Pipeline (2 processes, 4 threads) and ``DataLoader(worker_type="process")``, all batch 32;
* memory (only when asked): 8 workers over a list of 1.3 M records (over 200 MB of Python
  objects), packed and, as the control, not packed;
* tensors (only when asked; needs torch): tiny samples, a 200 MB ``TensorDataset`` of 4 KB
  rows, batch 64: the first batch and the time a batch after it, torch's DataLoader against
  ours (the DataLoader, and Pipeline process stages one item a message and in chunks).

* start (only when asked; needs torch): how soon the first batch comes with 8 workers (5 ms
  sleeps, torch imported, so that each fork costs what it does in a training script): ours,
  ours with every worker forked before the first sample (as before stop 31), ours without
  blank workers (as before stop 32), torch's; each after 0.5 s idle.

``--chunks``: the contenders are only ``Pipeline.map(kind="process", chunk=c)`` at each
size (``default``: the stage's own rule), torch's round-robin scheme and torch's DataLoader.

The limit of a GIL-bound workload is ``2 CPUs / mean item time``, the mean measured
single-threaded in this process on a sample of the items right before and right after each
run, the two averaged (it moves with the machine's load, within a repetition too: runs
read 0.6 to 1.25 "of the limit" side by side). So each run also gives the *work in the
run*: the items' own CPU time, measured by each item on its thread where and when it ran
(``time.thread_time_ns`` around the loop, carried in the item), over ``2 CPUs x the wall
time``: the same fraction with the item time measured in the run itself, for every
contender alike (torch's workers included). Each run builds a fresh loader and times one
epoch from ``iter()`` to the last batch (start-up counts), and the time to the first batch.
Contenders alternate within each repetition, each repetition starting one contender later;
every run is printed with the load average.
torch is optional: skipped and named when it is not installed; `torchlike.py` (torch's
per-batch round-robin scheme, reimplemented) runs either way.
"""

import argparse
import math
import multiprocessing
import os
import resource
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schedlab  # noqa: E402
from pool import imap_batches  # noqa: E402


def spin(n):
    s = 0
    for k in range(n):
        s += k * k
    return s


class LoopDataset:
    """Item i runs a pure-Python loop of ``counts[i]`` steps; returns ``[i, ns]``, ``ns`` the
    CPU time the loop took on its thread (the work, measured where and when it ran)."""

    def __init__(self, counts):
        self.counts = counts

    def __len__(self):
        return len(self.counts)

    def __getitem__(self, i):
        t = time.thread_time_ns()
        spin(self.counts[i])
        return np.array([i, time.thread_time_ns() - t], dtype=np.int64)


class SleepDataset:
    def __init__(self, durations):
        self.durations = durations

    def __len__(self):
        return len(self.durations)

    def __getitem__(self, i):
        time.sleep(self.durations[i])
        return np.array([i, os.getpid()], dtype=np.int64)


def steps_per_us():
    """Loop steps per microsecond on this machine now (median of 5)."""
    rates = []
    for _ in range(5):
        t = time.perf_counter()
        spin(200_000)
        rates.append(200_000 / ((time.perf_counter() - t) * 1e6))
    return statistics.median(rates)


def lognormal(n, mean, sigma, seed=0):
    mu = math.log(mean) - sigma * sigma / 2
    return np.random.default_rng(seed).lognormal(mu, sigma, n)


def mean_item_s(ds, sample=300):
    """Single-threaded mean item time: an evenly spaced sample of the items timed here, and,
    for a dataset of loop counts, scaled by its steps to the mean count of *all* the items
    (a sample of 300 log-normal items, sigma 1.5, has a mean ~10% under the epoch's: the
    limit was that much too high, every contender's fraction that much too low)."""
    idx = np.linspace(0, len(ds) - 1, min(sample, len(ds))).astype(int)
    t = time.perf_counter()
    for i in idx:
        ds[int(i)]
    dt = time.perf_counter() - t
    counts = getattr(ds, "counts", None)
    if counts is not None:
        steps = sum(int(counts[int(i)]) for i in idx)
        return dt / steps * (sum(int(c) for c in counts) / len(counts))
    return dt / len(idx)


# --- contenders ---------------------------------------------------------------------------


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_nvcsw


def epoch(make):
    """``(seconds, first batch seconds, items, first index of each batch, (CPU seconds,
    voluntary context switches) of this process, work seconds)``; this process's CPU (all its
    threads) is what a contender costs besides the work in its workers, and moves less with
    the machine's load than the wall time; the work is the items' own CPU time, as they
    measured it (the second element of a :class:`LoopDataset` item; 0 for others)."""
    c0 = _cpu_s()
    t0 = time.perf_counter()
    first, n, order, work = None, 0, [], 0
    with make() as it:
        for b in it:
            if first is None:
                first = time.perf_counter() - t0
            n += len(b)
            order.append(int(b[0][0]))
            work += int(np.asarray(b)[:, 1].sum())
    c1 = _cpu_s()
    return (time.perf_counter() - t0, first, n, order, (c1[0] - c0[0], c1[1] - c0[1]),
            work / 1e9)


class _Ctx:
    def __init__(self, it, close):
        self.it, self.close = it, close

    def __enter__(self):
        return self.it

    def __exit__(self, *exc):
        self.close()


def schedlab_dl(ds, workers, worker_type, report=None):
    def make():
        dl = schedlab.DataLoader(ds, batch_size=32, num_workers=workers, worker_type=worker_type)

        def close():
            if report is not None:
                report.append(dl.report())
            dl.close()

        return _Ctx(iter(dl), close)

    return make


def schedlab_pipeline(ds, workers, kind, chunk=None):
    def make():
        p = schedlab.Pipeline(len(ds), workers=workers).map(
            ds.__getitem__, kind=kind, concurrency=workers, name="getitem",
            **({"chunk": chunk} if chunk is not None else {})).batch(32)
        return _Ctx(iter(p), p.close)

    return make


def pool_imap(ds, workers):
    def make():
        pool = multiprocessing.Pool(workers)  # the default start method (fork on Linux)

        def close():
            pool.terminate()
            pool.join()

        return _Ctx(imap_batches(pool, ds), close)

    return make


def torch_dl(ds, workers, in_order=True):
    import torch.utils.data as tud

    def make():
        kw = dict(batch_size=32, num_workers=workers, persistent_workers=False)
        if not in_order:
            kw["in_order"] = False
        dl = tud.DataLoader(ds, **kw)
        return _Ctx(iter(dl), lambda: None)

    return make


def torchlike(ds, workers, in_order=True):
    from torchlike import RoundRobinLoader

    def make():
        dl = RoundRobinLoader(ds, 32, workers, in_order=in_order)
        return _Ctx(iter(dl), dl.close)

    return make


def with_depth(make_contender, depth):
    """A contender whose process stage holds ``depth`` items per worker process (one running,
    the rest queued; ``schedlab._process.ITEMS_PER_WORKER``, 2 by default)."""
    from schedlab import _process

    def make():
        keep = _process.ITEMS_PER_WORKER
        _process.ITEMS_PER_WORKER = depth
        try:
            return make_contender()
        finally:
            _process.ITEMS_PER_WORKER = keep

    return make


def contenders(ds, workers, reports, sleep=False):
    out = []
    if CHUNKS:
        for c in CHUNKS:
            label = "default" if c is None else c
            out.append((f"schedlab.Pipeline kind=process, chunk {label}",
                        schedlab_pipeline(ds, workers, "process", c)))
        out.append(("torch-like round-robin (processes, in order)", torchlike(ds, workers)))
        try:
            import torch  # noqa: F401

            out.append(("torch DataLoader (processes, in order)", torch_dl(ds, workers)))
        except ImportError:
            print("  (torch is not installed: torch's DataLoader skipped)")
        return out
    if DEPTHS:
        for d in DEPTHS:
            out.append((f"schedlab.DataLoader process, {d} items per worker",
                        with_depth(schedlab_dl(ds, workers, "process"), d)))
            out.append((f"schedlab.Pipeline kind=process, {d} items per worker",
                        with_depth(schedlab_pipeline(ds, workers, "process"), d)))
        return out
    try:
        import torch  # noqa: F401

        out.append(("torch DataLoader (processes, in order)", torch_dl(ds, workers)))
        if not sleep:
            out.append(("torch DataLoader (processes, in_order=False)",
                        torch_dl(ds, workers, False)))
    except ImportError:
        print("  (torch is not installed: torch's DataLoader skipped)")
    if not sleep:
        out.append(("torch-like round-robin (processes, in order)", torchlike(ds, workers)))
        out.append(("torch-like round-robin (processes, as ready)",
                    torchlike(ds, workers, False)))
        out.append(("multiprocessing.Pool.imap (chunksize 1)", pool_imap(ds, workers)))
        out.append(("schedlab.DataLoader threads", schedlab_dl(ds, workers, "thread")))
        out.append(("schedlab.DataLoader process", schedlab_dl(ds, workers, "process")))
        out.append(("schedlab.Pipeline kind=process", schedlab_pipeline(ds, workers, "process")))
    else:
        out.append(("schedlab.DataLoader threads", schedlab_dl(ds, workers, "thread")))
    out.append(("schedlab.DataLoader auto", schedlab_dl(ds, workers, "auto", reports)))
    return out


def loadavg():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def run(name, title, ds, workers, reps, nominal_mean=None):
    print(f"\n## {name}: {title}; {len(ds)} items, {workers} workers, batch 32, in order, "
          f"{reps} reps")
    print(f"  before: {loadavg()}")
    reports = []
    cs = contenders(ds, workers, reports, sleep=nominal_mean is not None)
    if FILTER:
        cs = [(label, mk) for label, mk in cs if any(w in label for w in FILTER)]
    rows = {label: [] for label, _ in cs}
    per_rep = []  # {label: (items/s, first batch s)} of each repetition
    for rep in range(reps):
        per_rep.append({})
        before = nominal_mean or mean_item_s(ds)
        print(f"  rep {rep}: mean item {before * 1e6:.0f} us single-threaded; {loadavg()}")
        # each repetition starts one contender later: the machine's load moves within a
        # repetition, and no contender should always run first
        for label, mk in cs[rep % len(cs):] + cs[:rep % len(cs)]:
            try:
                t, first, n, order, (cpu, switches), work = epoch(mk)
            except Exception as e:  # noqa: BLE001 - a failing contender is reported
                print(f"    {label}: failed: {type(e).__name__}: {e}")
                continue
            # each run's limit from the mean item measured right before and right after it
            # (the machine's speed moves within a repetition: one figure per repetition
            # put runs at 0.86 and 1.02 "of the limit" side by side)
            after = nominal_mean or mean_item_s(ds)
            mean, before = (before + after) / 2, after
            limit = workers / mean
            assert n == len(ds), label
            assert order == sorted(order) or "in_order=False" in label or "as ready" in label, label
            r = n / t
            # the work measured in the run itself: the items' CPU time over the CPUs' time
            # (what the limit estimates from the single-threaded means, without the drift)
            eff = work / (workers * t) if nominal_mean is None else None
            rows[label].append((r / limit, first, cpu / n, eff))
            per_rep[-1][label] = (r, first, eff)
            ran = "" if eff is None else (
                f", work in the run {eff:.3f} of {workers} CPUs' time (items' own CPU "
                f"{work / n * 1e6:.0f} us each)")
            print(f"    {label}: {r:,.0f} items/s = {r / limit:.3f} of the limit ({limit:,.0f}: "
                  f"mean item {mean * 1e6:.0f} us around the run){ran}, first batch "
                  f"{first * 1e3:.0f} ms, this process's CPU {cpu / n * 1e6:.1f} us/item and "
                  f"{switches / n:.2f} voluntary context switches/item; {loadavg()}")
    print(f"  after: {loadavg()}")
    print("\n| contender | of the limit (every run) | work in the run, of the CPUs' time "
          "(every run) | first batch ms (every run) | this process's CPU us/item (every run) |")
    print("|---|---|---|---|---|")
    for label, rs in rows.items():
        if rs:
            print(f"| {label} | {' / '.join(f'{f:.3f}' for f, _, _, _ in rs)} | "
                  f"{' / '.join('-' if e is None else f'{e:.3f}' for _, _, _, e in rs)} | "
                  f"{' / '.join(f'{b * 1e3:.0f}' for _, b, _, _ in rs)} | "
                  f"{' / '.join(f'{c * 1e6:.1f}' for _, _, c, _ in rs)} |")
    ratios(per_rep)
    for r in reports[-1:]:
        p = r.get("processes", {}).get("__getitem__", {})
        print(f"\n  auto (last run): {p.get('auto')}")


#: (numerator, denominator) contenders compared within each repetition (the machine's load
#: moves between repetitions, so only a ratio within one means much).
RATIOS = [
    ("schedlab.DataLoader process", "torch DataLoader (processes, in order)"),
    ("schedlab.Pipeline kind=process", "torch DataLoader (processes, in order)"),
    ("schedlab.DataLoader process", "torch-like round-robin (processes, in order)"),
    ("schedlab.DataLoader auto", "schedlab.DataLoader process"),
]


def ratios(per_rep):
    """Each pair of :data:`RATIOS` that ran: items/s, the work in the run (where measured) and
    the first batch's time, numerator over denominator, in each repetition."""
    for a, b in RATIOS:
        pairs = [(r[a], r[b]) for r in per_rep if a in r and b in r]
        if pairs:
            work = ""
            if all(x[2] and y[2] for x, y in pairs):
                work = f"; work in the run {' / '.join(f'{x[2] / y[2]:.2f}' for x, y in pairs)}x"
            print(f"  {a} / {b}, per repetition: items/s "
                  f"{' / '.join(f'{x[0] / y[0]:.2f}' for x, y in pairs)}x{work}; first batch "
                  f"{' / '.join(f'{x[1] / y[1]:.2f}' for x, y in pairs)}x")


def steady(ds, reps, epochs=4):
    """Throughput without start-up: one loader per contender and repetition, ``epochs``
    epochs each, the first left out (it starts the workers)."""
    import torch.utils.data as tud

    def make(name):
        if name == "torch":
            return tud.DataLoader(ds, batch_size=32, num_workers=2, persistent_workers=True)
        return schedlab.DataLoader(ds, batch_size=32, num_workers=2, worker_type="process",
                                   persistent_workers=True)

    print(f"\n## steady: uniform items, {len(ds)} a epoch, 2 workers, batch 32, in order, "
          f"persistent workers, epochs 2 to {epochs} of each loader; {loadavg()}")
    ratios_ = []
    for rep in range(reps):
        mean = mean_item_s(ds)
        print(f"  rep {rep}: mean item {mean * 1e6:.0f} us single-threaded; {loadavg()}")
        got = {}
        for name in (["torch", "schedlab"] if rep % 2 == 0 else ["schedlab", "torch"]):
            dl = make(name)
            rates, cpus = [], []
            for e in range(epochs):
                c0 = _cpu_s()[0]
                t0 = time.perf_counter()
                n = sum(len(b) for b in dl)
                t = time.perf_counter() - t0
                if e > 0:
                    rates.append(n / t)
                    cpus.append((_cpu_s()[0] - c0) / n)
            if name == "schedlab":
                dl.close()
            del dl
            got[name] = statistics.median(rates)
            print(f"    {name}: {' / '.join(f'{r:,.0f}' for r in rates)} items/s = "
                  f"{' / '.join(f'{r * mean / 2:.3f}' for r in rates)} of the limit; this "
                  f"process's CPU {' / '.join(f'{c * 1e6:.1f}' for c in cpus)} us/item; "
                  f"{loadavg()}")
        ratios_.append(got["schedlab"] / got["torch"])
    print(f"  schedlab / torch, median epoch of each repetition: "
          f"{' / '.join(f'{r:.2f}' for r in ratios_)}x; after: {loadavg()}")


def start(reps, workers=8, items=256, sleep_s=0.005):
    """How soon the first batch comes with many workers: ``workers`` processes over
    ``items`` samples of ``sleep_s`` sleeps, batch 32, torch imported here (as in a training
    script: every process stage's zygote and workers then have it, and a fork of one takes
    8-13 ms on this machine). Contenders, alternated: ``DataLoader(worker_type="process")``;
    the same with every worker forked before the first sample (``ProcessStage.start`` as it
    was before stop 31); the same without blank workers (the root's spare zygote forks the
    next stage's workers ahead, ``_process._Blank``; here it forks none); torch's
    DataLoader. Each a fresh loader, the first batch and the whole epoch timed from
    ``iter()``, after 0.5 s idle (a spare is forked when the root has been idle 0.1 s; each
    of ours is the second of two loaders of its kind in a row, so that its spare was forked
    as that kind's was)."""
    import torch.utils.data as tud

    from schedlab import _process

    ds = SleepDataset([sleep_s] * items)
    lazy = _process.ProcessStage.start
    ask = _process._Root.zygote.__func__
    plain = classmethod(ask)
    unplanned = classmethod(lambda cls, m, s, mods=(), plan=(0, 0): ask(cls, m, s, mods, (0, 0)))

    def eager(self, prefork=0, field="num_workers"):
        with self._lock:
            _process.check_process_count(field, prefork - len(self._workers), self.depth)
            self._planned = max(self._planned, prefork)
            self._start_locked()
            while len(self._workers) < prefork:
                self._fork_locked(next(self._slots))

    def once(name):
        _process.ProcessStage.start = eager if name == "forked first" else lazy
        _process._Root.zygote = unplanned if name == "no blanks" else plain
        try:
            if name == "torch":
                dl = tud.DataLoader(ds, batch_size=32, num_workers=workers)
            else:
                dl = schedlab.DataLoader(ds, batch_size=32, num_workers=workers,
                                         worker_type="process")
            t0 = time.perf_counter()
            first = None
            for _ in dl:
                if first is None:
                    first = time.perf_counter() - t0
            whole = time.perf_counter() - t0
            if name != "torch":
                dl.close()
            del dl
            return first, whole
        finally:
            _process.ProcessStage.start = lazy
            _process._Root.zygote = plain

    def one(name):
        if name != "torch":
            once(name)
        time.sleep(0.5)
        return once(name)

    names = ["schedlab", "forked first", "no blanks", "torch"]
    print(f"\n## start: {workers} workers, {items} samples of {sleep_s * 1e3:g} ms sleeps, "
          f"batch 32, torch imported; {loadavg()}")
    one("schedlab")  # the root process's own start, once per process: not counted
    got = {n: [] for n in names}
    for rep in range(reps):
        for n in names[rep % len(names):] + names[:rep % len(names)]:
            got[n].append(one(n))
    print("| contender | first batch ms (every run) | epoch ms (every run) |")
    print("|---|---|---|")
    for n, runs in got.items():
        label = {"schedlab": "`DataLoader(worker_type=\"process\")`",
                 "forked first": "the same, every worker forked before the first sample",
                 "no blanks": "the same, no worker forked ahead by the root's spare zygote",
                 "torch": "torch's DataLoader"}[n]
        print(f"| {label} | {' / '.join(f'{f * 1e3:.0f}' for f, _ in runs)} | "
              f"{' / '.join(f'{w * 1e3:.0f}' for _, w in runs)} |")
    print(f"  after: {loadavg()}")


def tiny(i):
    return np.array([i, 1], dtype=np.int64)


class Tiny:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return tiny(i)


def _proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parts(n, reps):
    """This process's CPU per item, by part (see the module's docstring)."""
    from schedlab._process import ProcessStage

    def handoff():
        st = ProcessStage(tiny, "tiny")
        st.start(1)
        st(0)
        pid = st.stats()["workers"][0]["pid"]
        w0 = _proc_cpu_s(pid)
        c0 = _cpu_s()
        for i in range(n):
            st(i)
        c1 = _cpu_s()
        extra = f", the worker's {(_proc_cpu_s(pid) - w0) / n * 1e6:.1f} us/item"
        st.close()
        return c0, c1, extra

    def pipeline(kind, conc):
        def run():
            p = schedlab.Pipeline(n, workers=2).map(tiny, kind=kind, concurrency=conc,
                                                     name="tiny").batch(32)
            c0 = _cpu_s()
            assert sum(len(b) for b in p) == n
            c1 = _cpu_s()
            p.close()
            return c0, c1, ""
        return run

    def dataloader():
        dl = schedlab.DataLoader(Tiny(n), batch_size=32, num_workers=2, worker_type="process")
        c0 = _cpu_s()
        assert sum(len(b) for b in dl) == n
        c1 = _cpu_s()
        dl.close()
        return c0, c1, ""

    ways = [("hand-off alone (1 thread, 1 process, no engine)", handoff),
            ("engine alone (blocking stage, 4 threads, here)", pipeline("blocking", 4)),
            ("Pipeline kind=process (2 processes, 4 threads)", pipeline("process", 2)),
            ("DataLoader process (2 processes, 4 threads)", dataloader)]
    print(f"\n## parts: {n:,} items that cost next to nothing, batch 32; {loadavg()}")
    for rep in range(reps):
        for label, way in ways[rep % len(ways):] + ways[:rep % len(ways)]:
            c0, c1, extra = way()
            print(f"  rep {rep}: {label}: this process's CPU {(c1[0] - c0[0]) / n * 1e6:.1f} "
                  f"us/item, {(c1[1] - c0[1]) / n:.2f} voluntary context switches/item{extra}; "
                  f"{loadavg()}")


class Records:
    """A dataset holding a list of ``n`` Python objects (a tuple of a str and an int each);
    a sample sums 100 of them, so an epoch reads every record."""

    def __init__(self, n):
        self.records = [(f"record-{i:09d}", i) for i in range(n)]

    def __len__(self):
        return len(self.records) // 100

    def __getitem__(self, i):
        return sum(k + len(name) for name, k in self.records[100 * i: 100 * i + 100])


def tensors(reps, batches=200):
    """Tiny samples: a 200 MB ``TensorDataset`` (50,000 rows of 1,024 float32, 4 KB each),
    batch 64, 2 workers, torch's ``default_collate``; per loader the first batch's time and
    the next ``batches`` batches' (torch only: skipped without it)."""
    try:
        import torch
        from torch.utils.data import DataLoader as TorchLoader
        from torch.utils.data import TensorDataset, default_collate
    except ImportError:
        print("\n## tensors: skipped (torch is not installed)")
        return
    ds = TensorDataset(torch.randn(50_000, 1024), torch.arange(50_000))

    def pipeline(chunk):
        return schedlab.Pipeline(len(ds), workers=2).map(
            ds.__getitem__, kind="process", concurrency=2,
            **({"chunk": chunk} if chunk is not None else {})).batch(
                64, collate_fn=default_collate)

    makers = [
        ("torch DataLoader (processes)", lambda: TorchLoader(ds, batch_size=64, num_workers=2)),
        ("schedlab.DataLoader process, chunk 1", lambda: schedlab.DataLoader(
            ds, batch_size=64, num_workers=2, worker_type="process",
            collate_fn=default_collate, chunk=1)),
        ("schedlab.DataLoader process, chunks (default)", lambda: schedlab.DataLoader(
            ds, batch_size=64, num_workers=2, worker_type="process",
            collate_fn=default_collate)),
        ("schedlab.Pipeline kind=process, chunk 1", lambda: pipeline(1)),
        ("schedlab.Pipeline kind=process, chunks (default)", lambda: pipeline(None)),
    ]
    print(f"\n## tensors: a 200 MB TensorDataset, 4 KB rows, batch 64, 2 workers; "
          f"{reps} reps; {loadavg()}")
    for rep in range(reps):
        for label, make in makers[rep % len(makers):] + makers[:rep % len(makers)]:
            loader = make()
            t0 = time.perf_counter()
            it = iter(loader)
            next(it)
            first = time.perf_counter() - t0
            t1 = time.perf_counter()
            n = 0
            for _ in it:
                n += 1
                if n == batches:
                    break
            dt = time.perf_counter() - t1
            print(f"  rep {rep} {label}: first batch {first * 1e3:.0f} ms, next {n} batches "
                  f"{dt / n * 1e3:.2f} ms a batch; {loadavg()}", flush=True)
            if hasattr(loader, "close"):
                loader.close()
            del it, loader


def memory(n):
    """8 worker processes over ``n`` records, packed (the default) and, as the control, not
    packed: the zygote's and the workers' memory together (PSS) against one worker's RSS."""
    from schedlab import _process

    ds = Records(n)
    size = sys.getsizeof(ds.records) + sum(
        sys.getsizeof(r) + sys.getsizeof(r[0]) + sys.getsizeof(r[1]) for r in ds.records)
    print(f"\n## memory: 8 workers, a list of {n:,} records = {size / 1e6:.0f} MB of Python "
          f"objects; {loadavg()}")
    keep = _process.PACK_MIN_LEN
    for packed in (True, False):
        _process.PACK_MIN_LEN = keep if packed else 1 << 62
        dl = schedlab.DataLoader(ds, batch_size=64, num_workers=8, worker_type="process")
        n_samples = sum(len(b) for b in dl)
        s = dl.report()["processes"]["__getitem__"]
        one = max(w["rss_bytes"] for w in s["workers"])
        together = s["zygote"]["pss_bytes"] + sum(w["pss_bytes"] for w in s["workers"])
        print(f"  {'packed' if packed else 'not packed (control)'}: {n_samples} samples; one "
              f"worker's RSS {one / 2**20:.0f} MiB; the zygote and 8 workers together (PSS) "
              f"{together / 2**20:.0f} MiB = {together / one:.2f}x")
        dl.close()
    _process.PACK_MIN_LEN = keep


FILTER = []
#: ``--items-per-worker``: compare these depths of the process stages instead of the contenders.
DEPTHS = []
#: ``--chunks``: only Pipeline process stages at these chunk sizes (``None``: the default),
#: against the round-robin scheme and torch
CHUNKS = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="uniform,lognormal,sleep")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--contenders", default="")
    ap.add_argument("--records", type=int, default=1_300_000, help="of the memory workload")
    ap.add_argument("--items-per-worker", default="",
                    help="e.g. 2,4: only schedlab's process stages, at each of these depths")
    ap.add_argument("--chunks", default="",
                    help="e.g. 1,4,8,default: only Pipeline process stages at each of these "
                         "chunk sizes, with the round-robin scheme and torch")
    ap.add_argument("--item-us", type=float, default=700.0,
                    help="the uniform workload's item time (default 700)")
    args = ap.parse_args()
    CHUNKS[:] = [None if c == "default" else int(c) for c in args.chunks.split(",") if c]
    FILTER[:] = [w for w in args.contenders.split(",") if w]
    DEPTHS[:] = [int(d) for d in args.items_per_worker.split(",") if d]
    only = set(args.only.split(","))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {loadavg()}")
    c = steps_per_us()
    print(f"calibration: {c:.1f} loop steps per us")
    if "uniform" in only:
        ds = LoopDataset([max(1, int(args.item_us * c))] * args.items)
        run("uniform", f"pure-Python loop ~{args.item_us:g} us per item", ds, 2, args.reps)
    if "lognormal" in only:
        us = lognormal(args.items, 400, 1.5)
        ds = LoopDataset([max(1, int(u * c)) for u in us])
        run("lognormal", "pure-Python loop, log-normal mean 400 us sigma 1.5", ds, 2, args.reps)
    if "sleep" in only:
        d = lognormal(args.items * 4, 0.001, 1.5)
        ds = SleepDataset(d.tolist())
        run("sleep", "time.sleep log-normal mean 1 ms sigma 1.5 (auto should stay on threads)",
            ds, 8, args.reps, nominal_mean=float(d.mean()))
    if "steady" in only:
        steady(LoopDataset([int(700 * c)] * args.items), args.reps)
    if "parts" in only:
        parts(args.items * 10, args.reps)
    if "memory" in only:
        memory(args.records)
    if "tensors" in only:
        tensors(args.reps)
    if "start" in only:
        start(args.reps)


if __name__ == "__main__":
    main()
