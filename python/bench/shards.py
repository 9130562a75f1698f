"""The shard benchmark of issue 30 from Python: tar shards read by
``schedlab.Pipeline(schedlab.shards(paths, reader="tar"))`` -> decode (a C busy loop through
ctypes that releases the GIL, ``bench/twostage.py``'s helper, spinning ``--decode-us`` of the
thread's CPU time) -> ``.batch(32)`` (the default collate), in order, on ``--workers`` workers.

    python python/bench/shards.py [--shards 16] [--samples 2000] [--kb 50] [--decode-us 200]
                                  [--workers 2] [--reps 3]

The shards (16 x 2,000 samples of ~50 KB by default, ``NNNN.jpg`` + ``NNNN.cls`` members) are
written to a temporary folder first. Each repetition runs three pipelines, interleaved one
shard at a time (a new pipeline per shard, the order of the three rotating) so that they see
the same load: the **read alone** (shards -> batch), the **decode alone** (the same decode
fed by an int source -> batch) and the **whole** pipeline. Printed per repetition: the whole
pipeline's items/s as a fraction of

* the **slowest stage's limit**: the lower of the read-alone and decode-alone rates (wall
  clock, same repetition);
* the **CPU limit**: the decode-alone rate x decode / (decode + read), with the read's
  process CPU time per item measured alone: the read (the tar parse in Rust, the dict of
  ``bytes`` made under the GIL) runs on the same cores as the decode.

The summary gives the median and range of each over the repetitions, with the load average.
"""

import argparse
import io
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schedlab  # noqa: E402
from twostage import _spin, spin_library  # noqa: E402


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_shards(folder, shards, samples, kb):
    """``shards`` tar files of ``samples`` samples (a ~``kb`` KB ``.jpg`` and a ``.cls``)."""
    base = os.urandom(kb * 1024 * 5 // 4 + 64)
    paths = []
    for s in range(shards):
        path = os.path.join(folder, f"shard-{s:04}.tar")
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
            for i in range(samples):
                size = kb * 1024 * (75 + (i * 7919 % 51)) // 100  # 75% .. 125% of kb
                body = base[i % 64:i % 64 + size]
                for ext, data in (("jpg", body), ("cls", b"7")):
                    info = tarfile.TarInfo(f"{s:04}{i:06}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        paths.append(path)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--kb", type=int, default=50)
    ap.add_argument("--decode-us", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    for name in ("shards", "samples", "kb", "decode_us", "workers", "reps"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')}: expected an int >= 1, got {getattr(a, name)}")
    spin = _spin(spin_library())
    decode_ns = a.decode_us * 1000

    def decode(sample):
        # The body is looked up (as a decoder would) and the CPU work runs without the GIL.
        body = sample["jpg"]
        spin(decode_ns)
        return sample["__key__"], len(body)

    def decode_alone(i):
        spin(decode_ns)
        return i, 0

    folder = tempfile.mkdtemp(prefix="schedlab-shards-py-")
    try:
        t = time.perf_counter()
        paths = write_shards(folder, a.shards, a.samples, a.kb)
        n = a.shards * a.samples
        print(
            f"wrote {a.shards} shards x {a.samples} samples of ~{a.kb} KB in "
            f"{time.perf_counter() - t:.1f} s; decode {a.decode_us} us (C, GIL released) on "
            f"{a.workers} workers, batch 32, in order; load average {load()}",
            flush=True,
        )
        stage, cpu = [], []
        for rep in range(a.reps):
            read_s = read_cpu = decode_s = whole_s = 0.0
            in_order = True
            for g, path in enumerate(paths):
                for part in range(3):
                    kind = (part + g + rep) % 3
                    if kind == 0:
                        p = schedlab.Pipeline(schedlab.shards([path], reader="tar"),
                                              workers=a.workers).batch(32)
                        t, c = time.perf_counter(), time.process_time()
                        count = sum(len(b["__key__"]) for b in p)
                        read_s += time.perf_counter() - t
                        read_cpu += time.process_time() - c
                    elif kind == 1:
                        p = schedlab.Pipeline(a.samples, workers=a.workers)
                        p.map(decode_alone, name="decode").batch(32)
                        t = time.perf_counter()
                        count = sum(len(b[0]) for b in p)
                        decode_s += time.perf_counter() - t
                    else:
                        p = schedlab.Pipeline(schedlab.shards([path], reader="tar"),
                                              workers=a.workers)
                        p.map(decode, name="decode").batch(32)
                        t = time.perf_counter()
                        keys = [k for b in p for k in b[0]]
                        whole_s += time.perf_counter() - t
                        count = len(keys)
                        in_order &= keys == sorted(keys)
                    p.close()
                    assert count == a.samples, (kind, count)
            rate, read_rate, decode_rate = n / whole_s, n / read_s, n / decode_s
            read_cpu_ns = read_cpu * 1e9 / n
            stage_limit = min(read_rate, decode_rate)
            cpu_limit = decode_rate * decode_ns / (decode_ns + read_cpu_ns)
            stage.append(rate / stage_limit)
            cpu.append(rate / cpu_limit)
            print(
                f"rep {rep}: {rate:.0f} items/s; read alone {read_rate:.0f}/s "
                f"({read_cpu_ns / 1e3:.1f} us CPU/item), decode alone {decode_rate:.0f}/s; "
                f"slowest-stage limit {stage_limit:.0f}/s -> {rate / stage_limit:.3f}; "
                f"CPU limit {cpu_limit:.0f}/s -> {rate / cpu_limit:.3f}; in order: {in_order}; "
                f"load {load()}",
                flush=True,
            )
        for name, v in (("slowest stage's limit", stage), ("CPU limit", cpu)):
            print(
                f"fraction of the {name}: median {statistics.median(v):.3f}, range "
                f"{min(v):.3f}..{max(v):.3f} over {len(v)} reps"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
