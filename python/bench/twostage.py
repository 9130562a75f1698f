"""The two-stage workload of issue 29: read (waits) -> decode (computes in C, GIL released).

* read: ``time.sleep`` of a log-normal time (mean 2 ms, sigma 1; precomputed per index from
  seed 0), 32 threads; the time each read really took (the OS oversleeps) is recorded in
  shared memory, which torch's worker processes write too.
* decode: a C busy loop called through ctypes (which releases the GIL for the call) that
  spins for a log-normal amount of *this thread's CPU time* (mean 250 us (a) or 50 us (b),
  sigma 1, seed 1), so its cost is the same however the OS schedules it.

The limit, items/s, is ``min(32 / mean read time, 2 / mean decode time)``: 32 read threads
and 2 CPUs. The C file is compiled with ``cc`` at run time into a temporary folder.
"""

import ctypes
import math
import multiprocessing
import os
import subprocess
import tempfile
import time

import numpy as np

_C = r"""
#include <time.h>
static long long cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
/* Spin until this thread has used `ns` nanoseconds of CPU; returns the iterations. */
long long spin_cpu_ns(long long ns) {
    long long start = cpu_ns(), n = 0;
    while (cpu_ns() - start < ns) n++;
    return n;
}
"""

_LIB = {}


def spin_library():
    """Path of the compiled busy loop (compiled once per process tree, cached by pid 0)."""
    path = os.environ.get("SCHEDLAB_SPIN_SO")
    if path and os.path.exists(path):
        return path
    folder = tempfile.mkdtemp(prefix="schedlab-spin-")
    src = os.path.join(folder, "spin.c")
    out = os.path.join(folder, "spin.so")
    with open(src, "w") as f:
        f.write(_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", out, src], check=True)
    os.environ["SCHEDLAB_SPIN_SO"] = out
    return out


def _spin(path):
    f = _LIB.get(path)
    if f is None:
        lib = ctypes.CDLL(path)  # CDLL: the call releases the GIL
        f = lib.spin_cpu_ns
        f.argtypes = [ctypes.c_longlong]
        f.restype = ctypes.c_longlong
        _LIB[path] = f
    return f


def _lognormal(n, mean_s, sigma, seed):
    mu = math.log(mean_s) - sigma * sigma / 2
    return np.random.default_rng(seed).lognormal(mu, sigma, n)


class TwoStage:
    """The workload: ``read(i)``, ``decode(x)`` and ``getitem(i)`` (both, for loaders).

    Picklable (torch's worker processes get a copy; the ctypes function is loaded lazily in
    each process)."""

    def __init__(self, n, decode_mean_s, read_mean_s=0.002, sigma=1.0, threads=32, cpus=2):
        self.n = n
        self.read_s = _lognormal(n, read_mean_s, sigma, 0).tolist()
        self.decode_ns = (_lognormal(n, decode_mean_s, sigma, 1) * 1e9).astype(np.int64).tolist()
        self.actual = multiprocessing.RawArray("d", n)
        self.so = spin_library()
        self.threads, self.cpus = threads, cpus

    def __getstate__(self):
        return self.__dict__

    def __len__(self):
        return self.n

    def read(self, i):
        t = time.perf_counter()
        time.sleep(self.read_s[i])
        self.actual[i] = time.perf_counter() - t
        return i

    def decode(self, i):
        _spin(self.so)(self.decode_ns[i])
        return np.full(4, i, dtype=np.int64)

    def __getitem__(self, i):
        return self.decode(self.read(i))

    def limit(self):
        """Items/s: 32 threads over the reads' measured mean (the last epoch's, then
        cleared), 2 CPUs over the decodes' mean."""
        a = np.frombuffer(self.actual, dtype=np.float64)
        read = float(a[a > 0].mean()) if (a > 0).any() else float(np.mean(self.read_s))
        a[:] = 0
        decode = float(np.mean(self.decode_ns)) / 1e9
        return min(self.threads / read, self.cpus / decode)

    def nominal_limit(self):
        return min(self.threads / float(np.mean(self.read_s)),
                   self.cpus / (float(np.mean(self.decode_ns)) / 1e9))


def plain_threads_cpu(ds, n=4096):
    """The work's own CPU per item with no loader: ``read`` on ``ds.threads`` plain Python
    threads, then ``decode`` on ``ds.cpus`` plain Python threads, each stage alone over items
    ``0..n``. Returns ``(read_us, decode_us, decode_c_us)``: CPU microseconds per item of this
    process for each stage, and the C loop's own mean over those items (what ``decode`` spins).
    The rest of ``decode_us`` is Python's ctypes call and ``np.full``; ``read_us`` is
    ``time.sleep``'s wake-up and the GIL taken back after it: a loader cannot go below these."""
    import itertools
    import threading

    def cpu():
        return time.process_time()

    def stage(f, threads):
        it = iter(range(n))  # next() on a range iterator is atomic under the GIL
        lock = threading.Lock()

        def work():
            while True:
                with lock:
                    i = next(it, None)
                if i is None:
                    return
                f(i)

        ts = [threading.Thread(target=work) for _ in range(threads)]
        c0 = cpu()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return (cpu() - c0) / n * 1e6

    read_us = stage(ds.read, ds.threads)
    decode_us = stage(ds.decode, ds.cpus)
    decode_c_us = float(np.mean(list(itertools.islice(ds.decode_ns, n)))) / 1e3
    return read_us, decode_us, decode_c_us
