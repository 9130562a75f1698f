"""The GIL statistics read the thread's CPU clock on a sample of the calls (issue 29: the clock
is a system call, two per call): the first 64 calls of a worker, then one in 8 chosen by a hash
of the call's number, each counting 8 times. These tests check the estimate against the CPU
time the stage function measures itself (CPU time, not wall time: a loaded machine does not
move it), on a workload whose busy calls come with the sampling's own period."""

import time

import schedlab

BUSY_S = 0.002


def spin(cpu_s):
    """Use `cpu_s` seconds of this thread's CPU; return what was used."""
    t0 = time.thread_time()
    while time.thread_time() - t0 < cpu_s:
        pass
    return time.thread_time() - t0


def run(n, busy):
    """One cpu worker (its calls numbered 0, 1, ... in order); item i spins when busy(i)."""
    used = []

    def f(i):
        if busy(i):
            used.append(spin(BUSY_S))
        return i

    p = schedlab.Pipeline(n, workers=1).map(f, name="f")
    assert list(p) == list(range(n))  # every item once, in order
    g = p.report()["gil"]["f"]
    p.close()
    return g, sum(used)


def test_cpu_estimate_on_every_eighth_call_is_not_aliased():
    # busy calls every 8 items: a sample of every 8th call would hit all of them (or none)
    # and be off by 8x; the hash keeps the estimate near the truth
    g, used = run(800, lambda i: i % 8 == 0)
    assert g["calls"] == 800
    assert 0.6 * used <= g["python_cpu_s"] <= 1.6 * used, (g, used)


def test_cpu_estimate_when_every_call_works():
    g, used = run(400, lambda i: True)
    assert g["calls"] == 400
    # sampled calls count 8x: an estimate left unscaled would read ~0.27 of the truth
    assert 0.8 * used <= g["python_cpu_s"] <= 1.25 * used, (g, used)


def test_first_calls_are_all_measured():
    # 48 calls (< 64): every call reads the clock, two busy calls are both counted
    g, used = run(48, lambda i: i in (5, 40))
    assert g["calls"] == 48
    assert 0.95 * used <= g["python_cpu_s"] <= 1.25 * used + 1e-3, (g, used)
