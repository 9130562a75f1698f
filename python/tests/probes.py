"""What the tests watch while the code under test finishes in the background: a condition
polled until it holds, and the threads schedlab started in this process."""

import gc
import os
import time


def eventually(f, timeout=20, why=None):
    """``f()`` once it is truthy (polled; the test fails after ``timeout`` seconds, saying
    ``why()`` when given)."""
    deadline = time.monotonic() + timeout
    while not (got := f()):
        assert time.monotonic() < deadline, why() if why else "not within the time allowed"
        time.sleep(0.01)
    return got


def threads():
    """The threads schedlab started in this process: named ``schedlab-…`` (the engine's,
    the pool's, the drivers', the process stages' helpers) or ``prefetch`` (a source's).
    Others are not ours to count: on a CI machine the process's total moved by one between
    tests with no loader running."""
    n = 0
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/comm") as f:
                name = f.read().strip()
        except OSError:  # ended meanwhile
            continue
        n += name.startswith("schedlab") or name == "prefetch"
    return n


def baseline():
    """:func:`threads` once the loaders that only a reference cycle of an earlier test still
    holds are collected (their threads end with them, whenever the collector runs)."""
    gc.collect()
    return threads()


def back_to(before, timeout=60):
    """Every thread started since ``before`` has ended (a joined thread's task may take a
    moment to leave ``/proc``): polled up to ``timeout`` seconds, the test failing with both
    counts after it."""
    return eventually(lambda: threads() == before, timeout,
                      lambda: f"{threads()} of schedlab's threads, {before} before")
