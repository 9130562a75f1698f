"""The same datasets through torch's DataLoader, SPDL and schedlab (issue 17, item 6).

    python python/bench/compare.py [--only a,b,c,2a,2b,2o] [--reps 3] [--samples 32768]
                                   [--images DIR] [--json FILE] [--epochs 3]
                                   [--two-stage-samples 16384]

Scenarios (batch 32):

* (a) sleep: ``__getitem__`` sleeps a log-normal time (mean 1 ms, sigma 1.5; durations
  precomputed per index with seed 0), 8 workers, 32,768 samples. Reported: samples/s as a
  fraction of the limit ``workers / mean sample time`` and the time to the first batch.
* (b) images: decode + resize to 224x224 + normalise the image example's folder (PNG and JPEG
  files, generated if missing) with Pillow and numpy, 2 workers: images/s.
* (c) pure Python: a loop in ``__getitem__`` that holds the GIL (~1 ms), 2 workers: samples/s
  as a fraction of the limit ``2 / mean sample time`` (measured single-threaded in this process
  after each run), and the *work in the run*: the samples' own CPU time (each measures its
  loop on its thread, where and when it ran, and carries it) over 2 CPUs x the wall time,
  the same fraction with the sample time measured in the run itself (on a machine whose
  speed moves, the single-threaded limit read 0.63 to 1.13 side by side), with schedlab's
  GIL statistics (time waiting for the GIL vs running Python). Also schedlab's process workers and ``auto``, and ``multiprocessing.Pool.imap``;
  (a) runs ``auto`` too (it should stay on threads: printed).
* (2a), (2b) two stages (issue 29; ``bench/twostage.py``): read = ``time.sleep`` log-normal
  mean 2 ms sigma 1 on 32 threads -> decode = a C busy loop through ctypes (GIL released)
  of mean 250 us (2a) or 50 us (2b) on 2 CPUs; batch 32, in order, ``--epochs`` epochs per
  run. Printed: the fraction of the limit ``min(32 / read, 2 / decode)`` (nominal: the
  requested times), the CPU time per item (this process and its reaped worker processes:
  on a CPU-bound workload what a contender spends besides the decode decides how close to
  the limit it can get, and it moves less with the machine's load than the rate does), and
  each contender's rate over the DataLoader's in the same repetition. First, the work
  alone on plain Python threads (no loader): its CPU per item outside the C loop
  (``time.sleep``'s wake-ups, the GIL taken back, ctypes and ``np.full``), which no
  contender goes below: on 2 CPUs it caps (2a) near ``250 / (250 + that)`` of the limit.
  Among the contenders, the same work end to end on plain Python threads (32 reading from a
  shared ``range`` into a ``queue.SimpleQueue``, 2 decoding from it; no order, no batches,
  no engine): the ceiling of any Python-level loader on this machine.
* (2o) the same with a decode of 1 us: what each contender costs per item besides the work
  (its CPU per item), read-bound. Contenders: schedlab.Pipeline (static, and autotuned from one read
  thread), schedlab.DataLoader (32 threads doing both in ``__getitem__``), both again
  loading the next epoch's first items while an epoch ends (``prefetch_next_epoch=True``,
  ``persistent_workers=True``: torch's row does, with its persistent workers), torch's
  DataLoader (32 processes, ``persistent_workers=True``), torchdata.nodes and SPDL (each
  skipped and named when missing).

Every run builds a fresh loader and times one epoch from ``iter()`` to the last batch (so
worker start-up counts, as it does for a training job's first epoch). Contenders alternate
within each repetition; every run (in the order of the repetitions) and the median are
printed with the load average. torch and spdl are optional: a contender whose package is missing is skipped and
named.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

import schedlab

# --- datasets (module level: torch's worker processes need them picklable) ---------------


class SleepDataset:
    """(a): sample i sleeps durations[i] seconds, and records how long it really took (the OS
    oversleeps) in shared memory, which torch's forked worker processes write too."""

    def __init__(self, n, mean_s=0.001, sigma=1.5, seed=0):
        import multiprocessing

        mu = math.log(mean_s) - sigma * sigma / 2
        self.durations = np.random.default_rng(seed).lognormal(mu, sigma, n).tolist()
        self.actual = multiprocessing.RawArray("d", n)

    def __len__(self):
        return len(self.durations)

    def __getitem__(self, i):
        t = time.perf_counter()
        time.sleep(self.durations[i])
        self.actual[i] = time.perf_counter() - t
        return np.full(4, i, dtype=np.int64)

    def measured_mean(self):
        """Mean time inside __getitem__ in the last epoch (then cleared)."""
        a = np.frombuffer(self.actual, dtype=np.float64)
        m = float(a[a > 0].mean()) if (a > 0).any() else float("nan")
        a[:] = 0
        return m


MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class ImageDataset:
    """(b): decode, resize to 224x224, normalise, CHW float32."""

    def __init__(self, folder):
        self.files = sorted(
            os.path.join(folder, f)
            for f in os.listdir(folder)
            if f.lower().endswith((".png", ".jpg", ".jpeg"))
        )

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.files[i]) as im:
            im = im.convert("RGB").resize((224, 224), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
        return ((a - MEAN) / STD).transpose(2, 0, 1)


class PythonDataset:
    """(c): pure-Python arithmetic that holds the GIL. Each sample is ``[i, ns]``, ``ns`` the
    CPU time its loop took on its thread, where and when it ran (the *work in the run*)."""

    def __init__(self, n, loops=20000):
        self.n, self.loops = n, loops

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        t = time.thread_time_ns()
        s = 0
        for k in range(self.loops):
            s += k * k
        return np.array([i, time.thread_time_ns() - t], dtype=np.int64)

    def measured_mean(self, sample=100):
        """The mean sample time measured now, single-threaded in this process (the limit of
        a GIL-bound dataset is workers / this; it moves with the machine's load, so it is
        measured right after each run)."""
        t = time.perf_counter()
        for i in range(sample):
            self[i]
        return (time.perf_counter() - t) / sample


def write_images(folder, n=300, seed=0):
    """The image example's recipe: n images, sides log-uniform in 64..1600, half PNG half JPEG."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = (int(64 * 25 ** rng.random()) for _ in range(2))
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ext = "png" if i % 2 == 0 else "jpg"
        Image.fromarray(a).save(os.path.join(folder, f"img{i:04d}.{ext}"))


# --- contenders ---------------------------------------------------------------------------


def epoch_of(make_iterable, work=False):
    """Time one epoch: (seconds, seconds to the first batch, samples, work seconds); with
    ``work``, the samples' second column summed (:class:`PythonDataset`'s CPU time, ns),
    else 0."""
    t0 = time.perf_counter()
    it = make_iterable()
    first = None
    samples = 0
    ns = 0
    for batch in it:
        if first is None:
            first = time.perf_counter() - t0
        samples += len(batch)
        if work:
            ns += int(np.asarray(batch)[:, 1].sum())
    return time.perf_counter() - t0, first, samples, ns / 1e9


def torch_contender(ds, workers, in_order):
    import torch.utils.data as tud

    kw = dict(batch_size=32, num_workers=workers, persistent_workers=True)
    if in_order is False:
        kw["in_order"] = False  # torch >= 2.6

    def run():
        dl = tud.DataLoader(ds, **kw)
        try:
            return epoch_of(lambda: iter(dl), WORK[0])
        finally:
            del dl

    return run


def schedlab_contender(ds, workers, in_order, report=None, worker_type="thread"):
    def run():
        dl = schedlab.DataLoader(ds, batch_size=32, num_workers=workers, in_order=in_order,
                                 worker_type=worker_type)
        try:
            r = epoch_of(lambda: iter(dl), WORK[0])
            if report is not None:
                report.append(dl.report())
            return r
        finally:
            dl.close()

    return run


def schedlab_pipeline_contender(ds, workers, kind):
    def run():
        p = schedlab.Pipeline(len(ds), workers=workers)
        if kind == "blocking":
            p.map(ds.__getitem__, kind="blocking", concurrency=workers, name="getitem")
        else:
            p.map(ds.__getitem__, name="getitem")
        p.batch(32)
        try:
            return epoch_of(lambda: iter(p), WORK[0])
        finally:
            p.close()

    return run


def pool_contender(ds, workers):
    """multiprocessing.Pool.imap, chunksize 1 (one sample at a time, in order), default start
    method (fork on Linux),
    batches of 32 stacked in the consumer."""
    import multiprocessing

    from pool import imap_batches

    def run():
        pool = multiprocessing.Pool(workers)  # the default start method (fork on Linux)
        try:
            return epoch_of(lambda: imap_batches(pool, ds), WORK[0])
        finally:
            pool.terminate()
            pool.join()

    return run


def torchlike_contender(ds, workers, in_order):
    """torch's per-batch round-robin worker scheme, reimplemented (``torchlike.py``): for
    machines without torch."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torchlike import RoundRobinLoader

    def run():
        dl = RoundRobinLoader(ds, 32, workers, in_order=in_order)
        try:
            return epoch_of(lambda: iter(dl), WORK[0])
        finally:
            dl.close()

    return run


def spdl_contender(ds, workers, order):
    from spdl.pipeline import PipelineBuilder

    from concurrent.futures import ThreadPoolExecutor

    def run():
        executor = ThreadPoolExecutor(max_workers=workers)
        pipeline = (
            PipelineBuilder()
            .add_source(range(len(ds)))
            .pipe(ds.__getitem__, concurrency=workers, output_order=order, executor=executor)
            .aggregate(32)
            .pipe(np.stack)
            .add_sink(3)
            .build(num_threads=workers)
        )

        def it():
            with pipeline.auto_stop():
                yield from pipeline

        try:
            return epoch_of(it, WORK[0])
        finally:
            executor.shutdown()

    return run


def contenders(ds, workers, scenario, gil_reports):
    out = []
    try:
        import torch  # noqa: F401

        out.append(("torch DataLoader (processes, in order)", torch_contender(ds, workers, True)))
        out.append(
            ("torch DataLoader (processes, in_order=False)", torch_contender(ds, workers, False))
        )
    except ImportError:
        print("  (torch is not installed: torch's DataLoader skipped)")
    try:
        import spdl.pipeline  # noqa: F401

        out.append(("SPDL pipeline (threads, in order)", spdl_contender(ds, workers, "input")))
        out.append(
            ("SPDL pipeline (threads, completion order)", spdl_contender(ds, workers, "completion"))
        )
    except ImportError:
        print("  (spdl is not installed: SPDL skipped)")
    out.append(
        ("schedlab.DataLoader (threads, in order)",
         schedlab_contender(ds, workers, True, gil_reports))
    )
    out.append(("schedlab.DataLoader (threads, in_order=False)",
                schedlab_contender(ds, workers, False)))
    if scenario == "c":
        out.append(("schedlab.DataLoader (processes, in order)",
                    schedlab_contender(ds, workers, True, None, "process")))
        out.append(("multiprocessing.Pool.imap (processes, chunksize 1)",
                    pool_contender(ds, workers)))
        out.append(("torch-like round-robin (processes, in order)",
                    torchlike_contender(ds, workers, True)))
    if scenario in ("a", "c"):
        out.append(("schedlab.DataLoader (auto, in order)",
                    schedlab_contender(ds, workers, True, AUTO_REPORTS, "auto")))
    kind = "blocking" if scenario == "a" else "cpu"
    out.append((f"schedlab.Pipeline ({kind} stage)", schedlab_pipeline_contender(ds, workers, kind)))
    return out


FILTER = []
#: Whether the samples carry their own CPU time (scenario (c)): ``epoch_of`` sums it.
WORK = [False]
#: The reports of the auto contender's runs (where it ran, and why).
AUTO_REPORTS = []


# --- the two-stage workload (issue 29) ---------------------------------------------------


def two_stage_contenders(ds, epochs):
    def timed(make_epochs):
        t0 = time.perf_counter()
        n = 0
        for it in make_epochs():
            for b in it:
                n += len(b)
        return time.perf_counter() - t0, None, n

    def pipeline(autotune, prefetch=False):
        def run():
            p = schedlab.Pipeline(len(ds), workers=2, autotune=autotune,
                                  prefetch_next_epoch=prefetch)
            p.map(ds.read, kind="blocking", concurrency=1 if autotune else 32, name="read")
            p.map(ds.decode, name="decode").batch(32)
            try:
                return timed(lambda: (p.epoch(e) for e in range(epochs)))
            finally:
                p.close()
        return run

    def dataloader(persistent=False):
        def run():
            dl = schedlab.DataLoader(ds, batch_size=32, num_workers=32,
                                     persistent_workers=persistent)
            try:
                return timed(lambda: (iter(dl) for _ in range(epochs)))
            finally:
                dl.close()
        return run

    def plain_threads():
        # The ceiling of any Python loader here: 32 plain threads reading from a shared
        # `range` into a queue, 2 decoding from it; no order, no batches, no engine.
        import queue
        import threading

        def one():
            it = iter(range(len(ds)))
            q = queue.SimpleQueue()
            done = []

            def rd():
                for i in it:  # next() on a range iterator is atomic under the GIL
                    q.put(ds.read(i))

            def dc():
                while True:
                    x = q.get()
                    if x is None:
                        return
                    done.append(ds.decode(x))

            rs = [threading.Thread(target=rd) for _ in range(ds.threads)]
            dcs = [threading.Thread(target=dc) for _ in range(ds.cpus)]
            for th in rs + dcs:
                th.start()
            for th in rs:
                th.join()
            for _ in dcs:
                q.put(None)
            for th in dcs:
                th.join()
            return [done]

        return timed(lambda: (one() for _ in range(epochs)))

    out = [
        ("schedlab.Pipeline (read 32 threads -> decode cpu)", pipeline(False)),
        ("schedlab.Pipeline autotune (read from 1 thread)", pipeline(True)),
        ("schedlab.DataLoader (32 threads, read + decode)", dataloader()),
        # as torch's row below: the next epoch's first items load while this one ends
        ("schedlab.Pipeline prefetch_next_epoch=True", pipeline(False, prefetch=True)),
        ("schedlab.DataLoader persistent_workers=True", dataloader(persistent=True)),
        ("plain Python threads (32 read -> 2 decode; no order, no batches)", plain_threads),
    ]
    try:
        import torch.utils.data as tud

        def torch_run():
            dl = tud.DataLoader(ds, batch_size=32, num_workers=32, persistent_workers=True)
            try:
                return timed(lambda: (iter(dl) for _ in range(epochs)))
            finally:
                del dl

        out.append(("torch DataLoader (32 processes, persistent_workers=True)", torch_run))
    except ImportError:
        print("  (torch is not installed: torch's DataLoader skipped)")
    try:
        import torchdata.nodes as tn

        def nodes_run():
            node = tn.IterableWrapper(range(len(ds)))
            node = tn.ParallelMapper(node, ds.read, num_workers=32, method="thread", in_order=True)
            node = tn.ParallelMapper(node, ds.decode, num_workers=2, method="thread",
                                     in_order=True)
            node = tn.Batcher(node, batch_size=32)
            loader = tn.Loader(node)
            return timed(lambda: (iter(loader) for _ in range(epochs)))

        out.append(("torchdata.nodes (32 read threads -> 2 decode threads)", nodes_run))
    except ImportError:
        print("  (torchdata is not installed: torchdata.nodes skipped)")
    try:
        from spdl.pipeline import PipelineBuilder

        def spdl_run():
            def one():
                p = (PipelineBuilder().add_source(range(len(ds)))
                     .pipe(ds.read, concurrency=32).pipe(ds.decode, concurrency=2)
                     .aggregate(32).add_sink(4).build(num_threads=34))
                with p.auto_stop():
                    yield from p
            return timed(lambda: (one() for _ in range(epochs)))

        out.append(("SPDL (32 read -> 2 decode)", spdl_run))
    except ImportError:
        print("  (spdl is not installed: SPDL skipped)")
    return out


def two_stage(name, decode_mean_s, samples, epochs, reps, results):
    from twostage import TwoStage, plain_threads_cpu

    ds = TwoStage(samples, decode_mean_s)
    nominal = ds.nominal_limit()
    print(f"\n## ({name}) two stages: read sleep 2 ms (sigma 1) x 32 threads -> decode "
          f"{decode_mean_s * 1e6:.0f} us CPU in C (GIL released) on 2 CPUs; {samples} items x "
          f"{epochs} epochs, batch 32, in order; nominal limit {nominal:,.0f} items/s; {reps} reps")
    print(f"  before: {loadavg()}")
    # The work's own cost outside the C loop, with no loader (plain Python threads): what no
    # contender can go below; CPU us per item outside the decode = contender's - decode mean.
    read_us, dec_us, c_us = plain_threads_cpu(ds, min(samples, 4096))
    ds.limit()
    print(f"  the work alone on plain threads: read {read_us:.1f} us CPU per item "
          f"({ds.threads} threads), decode {dec_us:.1f} us ({ds.cpus} threads; its C loop "
          f"{c_us:.1f}): {read_us + dec_us - c_us:.1f} us per item outside the C loop; "
          f"{loadavg()}")
    cs = two_stage_contenders(ds, epochs)
    if FILTER:
        cs = [(label, run) for label, run in cs if any(w in label for w in FILTER)]
    runs = {label: [] for label, _ in cs}
    per_rep = []
    for rep in range(reps):
        this = {}
        for label, run in cs:
            ds.limit()  # clear the measured reads
            c0 = cpu_s()
            try:
                t, _, n = run()
            except Exception as e:
                print(f"  {label}: failed: {type(e).__name__}: {e}")
                continue
            cpu_us = (cpu_s() - c0) / n * 1e6
            runs[label].append((n / t, cpu_us))
            this[label] = n / t
            print(f"  rep {rep} {label}: {n / t:,.0f} items/s = {n / t / nominal:.3f} of the "
                  f"nominal limit, {cpu_us:.1f} us CPU per item; {loadavg()}")
        per_rep.append(this)
    print(f"  after:  {loadavg()}")
    print("\n| contender | items/s (every run) | of the nominal limit (every run) "
          "| CPU us per item (every run) |")
    print("|---|---|---|---|")
    rows = {}
    for label, rs in runs.items():
        if rs:
            rates = [r for r, _ in rs]
            cpu = [c for _, c in rs]
            print(f"| {label} | {' / '.join(f'{r:,.0f}' for r in rates)} | "
                  f"{' / '.join(f'{r / nominal:.3f}' for r in rates)} | "
                  f"{' / '.join(f'{c:.1f}' for c in cpu)} |")
            rows[label] = {"rates": rates, "fraction": [r / nominal for r in rates],
                           "cpu_us_per_item": cpu}
    # Each contender against the DataLoader of the same repetition (alternated runs).
    base = next((label for label in runs if label.startswith("schedlab.DataLoader")), None)
    if base is not None:
        print(f"\n  against {base}, same repetition (every rep):")
        for label in runs:
            if label == base:
                continue
            ratios = [r[label] / r[base] for r in per_rep if label in r and base in r]
            if ratios:
                print(f"    {label}: {' / '.join(f'{x:.3f}' for x in ratios)}")
                rows[label]["vs_dataloader"] = ratios
    results[name] = rows


def cpu_s():
    """CPU seconds of this process and of its reaped children (torch's worker processes are
    reaped when its DataLoader goes away, inside the timed run's cleanup)."""
    import resource

    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime


def loadavg():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def every(xs, fmt):
    """Every run in the order they ran, then the median."""
    return " / ".join(fmt(x) for x in xs) + f" (median {fmt(statistics.median(xs))})"


def scenario(name, title, ds, workers, reps, limit=None, results=None):
    print(f"\n## ({name}) {title}: {len(ds)} samples, {workers} workers, batch 32, {reps} reps")
    print(f"  before: {loadavg()}")
    gil_reports = []
    cs = contenders(ds, workers, name, gil_reports)
    if FILTER:
        cs = [(label, run) for label, run in cs if any(w in label for w in FILTER)]
    runs = {label: [] for label, _ in cs}
    measured = {label: [] for label, _ in cs}
    for rep in range(reps):
        for label, run in cs:
            if hasattr(ds, "measured_mean"):
                ds.measured_mean()  # clear
            try:
                runs[label].append(run())
            except Exception as e:  # a contender that fails is reported, not fatal
                print(f"  {label}: failed: {type(e).__name__}: {e}")
                continue
            if hasattr(ds, "measured_mean"):
                measured[label].append(workers / ds.measured_mean())
    print(f"  after:  {loadavg()}")
    head = "| contender | samples/s (every run, median) |"
    sep = "|---|---|"
    if limit:
        head += " of the limit (measured sample time) | of the nominal limit | first batch ms |"
        sep += "---|---|---|"
    if WORK[0]:
        head += " work in the run |"
        sep += "---|"
    print()
    print(head)
    print(sep)
    rows = {}
    for label, rs in runs.items():
        if not rs:
            continue
        rates = [r[2] / r[0] for r in rs]
        line = f"| {label} | {every(rates, lambda x: f'{x:,.0f}')} |"
        row = {"rates": rates, "first_ms": [r[1] * 1e3 for r in rs]}
        if limit:
            fr = [r / m for r, m in zip(rates, measured[label])]
            row["fraction"] = fr
            line += f" {every(fr, lambda x: f'{x:.3f}')} |"
            line += f" {every([r / limit for r in rates], lambda x: f'{x:.3f}')} |"
            line += f" {every(row['first_ms'], lambda x: f'{x:.1f}')} |"
        if WORK[0]:
            row["work"] = [r[3] / (workers * r[0]) for r in rs]
            line += f" {every(row['work'], lambda x: f'{x:.3f}')} |"
        print(line)
        rows[label] = row
    if gil_reports:
        r = gil_reports[-1]
        print("\n  schedlab.DataLoader's GIL statistics (last repetition):")
        for i, w in enumerate(r["gil"]):
            print(
                f"    worker {i}: waited to acquire the GIL {w['gil_wait_s']:.3f} s, "
                f"in Python {w['python_s']:.3f} s ({w['python_cpu_s']:.3f} s on the CPU), "
                f"{w['calls']} calls"
            )
        print("   ", r["gil_verdict"])
        rows["_gil"] = {"gil": r["gil"], "verdict": r["gil_verdict"]}
    if AUTO_REPORTS:
        for r in AUTO_REPORTS:
            print(f"  auto: {r['processes']['__getitem__']['auto']}")
        AUTO_REPORTS.clear()
    if results is not None:
        results[name] = rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="a,b,c")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--samples", type=int, default=32768)
    ap.add_argument("--images", default=os.path.join("/tmp", "schedlab-loader-images"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run in (2a), (2b)")
    ap.add_argument("--two-stage-samples", type=int, default=16384)
    ap.add_argument("--contenders", default="",
                    help="only contenders whose label contains one of these comma-separated words")
    args = ap.parse_args()
    only = set(args.only.split(","))
    FILTER[:] = [w for w in args.contenders.split(",") if w]
    print(f"python {sys.version.split()[0]}, schedlab {schedlab.__version__}, "
          f"{os.cpu_count()} CPUs, {loadavg()}")
    results = {}
    if "a" in only:
        ds = SleepDataset(args.samples)
        mean = statistics.fmean(ds.durations)
        limit = 8 / mean
        print(f"\n(a) mean requested sleep {mean * 1e3:.3f} ms: nominal limit 8 / mean = "
              f"{limit:,.0f} samples/s; the measured limit uses each run's mean time inside "
              "__getitem__ (the OS oversleeps), as the Rust loader's report does")
        scenario("a", "sleep, log-normal mean 1 ms sigma 1.5", ds, 8, args.reps, limit, results)
    if "b" in only:
        if not os.path.isdir(args.images) or not os.listdir(args.images):
            print(f"writing 300 images to {args.images}")
            write_images(args.images)
        scenario("b", f"decode + resize + normalise ({args.images})", ImageDataset(args.images),
                 2, args.reps, None, results)
    if "c" in only:
        ds = PythonDataset(2048)
        limit = 2 / ds.measured_mean()
        print(f"\n(c) nominal limit 2 / mean sample time measured single-threaded now = "
              f"{limit:,.0f} samples/s; the measured limit re-measures it after each run")
        WORK[0] = True
        scenario("c", "pure-Python loop in __getitem__ (holds the GIL)", ds, 2,
                 args.reps, limit, results)
        WORK[0] = False
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if "2a" in only:
        two_stage("2a", 250e-6, args.two_stage_samples, args.epochs, args.reps, results)
    if "2b" in only:
        two_stage("2b", 50e-6, args.two_stage_samples, args.epochs, args.reps, results)
    if "2o" in only:
        two_stage("2o", 1e-6, args.two_stage_samples, args.epochs, args.reps, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
