"""schedlab.DataLoader: order, exactly-once, batching, errors, resume, threads, interrupts.

No test asserts on wall-clock time: sleeps only make overlaps likely, the assertions are on
counts, orders, types and thread counts. A sample that must still be in service when a timeout
or an interrupt fires blocks on a ``threading.Event`` set only after the assertion, so the test
holds however loaded the machine is.
"""

import gc
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import schedlab
from schedlab import _core

from probes import back_to, baseline, threads

# Bounds a test's own waits: reached only when the code under test is broken.
SAFETY_S = 60


class Indices:
    """Sample i is i; counts the calls and records the thread of each."""

    def __init__(self, n, sleep=0.0):
        self.n, self.sleep = n, sleep
        self.lock = threading.Lock()
        self.calls = 0
        self.idents = set()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.lock:
            self.calls += 1
            self.idents.add(threading.get_ident())
        if self.sleep:
            time.sleep(self.sleep)
        return i


def flat(loader):
    return [int(i) for batch in loader for i in batch]


@pytest.mark.parametrize("strategy", ["central", "work-stealing", "round-robin", "guided"])
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_exactly_once_in_order_over_shuffled_epochs(strategy, workers):
    n, bs = 203, 8
    ds = Indices(n)
    dl = schedlab.DataLoader(ds, batch_size=bs, shuffle=True, seed=11, num_workers=workers,
                             strategy=strategy)
    orders = []
    for epoch in range(3):
        got = flat(dl)
        assert got == _core.epoch_order(11, epoch, n)  # in the sampler's order
        assert sorted(got) == list(range(n))  # every index exactly once
        orders.append(got)
    assert orders[0] != orders[1] != orders[2]  # a new shuffle each epoch
    dl.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_as_ready_is_exactly_once(workers):
    ds = Indices(150)
    dl = schedlab.DataLoader(ds, batch_size=7, shuffle=True, seed=3, num_workers=workers,
                             in_order=False)
    got = flat(dl)
    assert sorted(got) == list(range(150))
    dl.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_partial_and_dropped_last_batch(workers):
    ds = Indices(10)
    dl = schedlab.DataLoader(ds, batch_size=4, num_workers=workers)
    assert len(dl) == 3
    assert [b.tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dl = schedlab.DataLoader(ds, batch_size=4, num_workers=workers, drop_last=True)
    assert len(dl) == 2
    assert [b.tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    dl.close()


def test_batch_size_none_yields_samples():
    dl = schedlab.DataLoader(Indices(5), batch_size=None, num_workers=2)
    assert list(dl) == [0, 1, 2, 3, 4]
    dl.close()


def test_workers_zero_loads_in_the_calling_thread_and_threads_elsewhere():
    ds = Indices(40)
    assert flat(schedlab.DataLoader(ds, batch_size=4, num_workers=0)) == list(range(40))
    assert ds.idents == {threading.get_ident()}
    ds = Indices(40, sleep=0.001)
    dl = schedlab.DataLoader(ds, batch_size=4, num_workers=3)
    assert flat(dl) == list(range(40))
    assert threading.get_ident() not in ds.idents
    assert 1 <= len(ds.idents) <= 3
    dl.close()


def test_set_epoch_and_custom_sampler():
    ds = Indices(50)
    dl = schedlab.DataLoader(ds, batch_size=5, shuffle=True, seed=9, num_workers=2)
    dl.set_epoch(5)
    assert flat(dl) == _core.epoch_order(9, 5, 50)
    assert flat(dl) == _core.epoch_order(9, 6, 50)
    dl.close()
    order = [7, 3, 3, 49, 0, 12]
    dl = schedlab.DataLoader(ds, batch_size=4, sampler=order, num_workers=2)
    assert len(dl) == 2
    assert flat(dl) == order
    assert flat(dl) == order
    dl.close()


class Point:
    pass


def test_default_collate_shapes_and_dtypes():
    import collections

    P = collections.namedtuple("P", "x y")
    c = schedlab.default_collate
    assert c([1, 2, 3]).dtype == np.int64 and c([1, 2, 3]).shape == (3,)
    assert c([1.0, 2.5]).dtype == np.float64
    assert c([True, False]).dtype == np.bool_
    assert c([np.float32(1), np.float32(2)]).dtype == np.float32
    a = c([np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32)])
    assert a.shape == (2, 3, 2) and a.dtype == np.float32
    assert c(["a", "b"]) == ["a", "b"]
    assert c([b"a", b"b"]) == [b"a", b"b"]
    d = c([{"img": np.zeros(4, np.uint8), "label": 1}, {"img": np.ones(4, np.uint8), "label": 2}])
    assert d["img"].shape == (2, 4) and d["img"].dtype == np.uint8
    assert d["label"].tolist() == [1, 2]
    t = c([(1, 2.0, "s"), (3, 4.0, "t")])
    assert isinstance(t, list) and t[0].tolist() == [1, 3] and t[1].dtype == np.float64
    assert t[2] == ["s", "t"]
    p = c([P(1, np.zeros(2)), P(2, np.ones(2))])
    assert isinstance(p, P) and p.x.tolist() == [1, 2] and p.y.shape == (2, 2)
    with pytest.raises(RuntimeError, match="equal size"):
        c([[1, 2], [1]])
    with pytest.raises(TypeError, match="Point"):
        c([Point(), Point()])


class Dicts:
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"x": np.full((2, 3), i, np.float32), "y": i, "name": f"s{i}"}


def test_default_collate_through_the_loader():
    dl = schedlab.DataLoader(Dicts(), batch_size=4, num_workers=2)
    batches = list(dl)
    assert [b["x"].shape for b in batches] == [(4, 2, 3), (4, 2, 3), (2, 2, 3)]
    assert batches[0]["x"].dtype == np.float32 and batches[0]["y"].dtype == np.int64
    assert batches[2]["name"] == ["s8", "s9"]
    dl.close()


def test_torch_is_never_imported_for_numpy_samples():
    import subprocess
    import sys

    code = (
        "import sys, schedlab, numpy as np\n"
        "class D:\n"
        "    def __len__(self): return 8\n"
        "    def __getitem__(self, i): return np.zeros(2)\n"
        "dl = schedlab.DataLoader(D(), batch_size=4, num_workers=2)\n"
        "assert [b.shape for b in dl] == [(4, 2), (4, 2)]\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


class BadSample(Exception):
    pass


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


class Faulty(Indices):
    def __init__(self, n, bad, exc=BadSample):
        super().__init__(n)
        self.bad, self.exc = bad, exc

    def __getitem__(self, i):
        if i in self.bad:
            if self.exc is TwoArgError:
                raise TwoArgError("x", i)
            raise self.exc(f"cannot load sample {i}")
        return super().__getitem__(i)


@pytest.mark.parametrize("workers", [0, 2, 4])
def test_exception_at_its_position_with_type_index_worker_and_traceback(workers):
    ds = Faulty(40, bad={13})
    dl = schedlab.DataLoader(ds, batch_size=4, num_workers=workers)
    it = iter(dl)
    got, errors = [], []
    for k in range(len(dl)):
        try:
            got.append(next(it).tolist())
        except BadSample as e:
            errors.append((k, e))
    with pytest.raises(StopIteration):
        next(it)
    assert [k for k, _ in errors] == [3]  # batch 3 holds sample 13
    assert len(got) == 9 and got[3] == [16, 17, 18, 19]  # and the epoch went on
    e = errors[0][1]
    if workers:
        assert "sample index 13" in str(e) and "worker" in str(e)
        assert "cannot load sample 13" in str(e) and "Traceback" in str(e)
        assert "__getitem__" in str(e)  # the original traceback names the function
        assert isinstance(e.__cause__, BadSample) and e.index == 13
        assert 0 <= e.worker < workers
    # the loader works for the next epoch
    assert len([b for b in _skip_errors(dl)]) == 9
    dl.close()


def _skip_errors(dl):
    it = iter(dl)
    while True:
        try:
            yield next(it)
        except StopIteration:
            return
        except Exception:
            continue


def test_exception_whose_type_cannot_take_a_message_becomes_runtime_error():
    dl = schedlab.DataLoader(Faulty(8, bad={2}, exc=TwoArgError), batch_size=4, num_workers=2)
    with pytest.raises(RuntimeError, match="TwoArgError") as info:
        next(iter(dl))
    assert isinstance(info.value.__cause__, TwoArgError)
    dl.close()


def test_key_error_keeps_its_type():
    dl = schedlab.DataLoader(Faulty(8, bad={5}, exc=KeyError), batch_size=4, num_workers=2)
    it = iter(dl)
    assert next(it).tolist() == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="sample index 5"):
        next(it)
    dl.close()


def test_collate_error_at_its_position():
    def collate(batch):
        if 6 in batch:
            raise ValueError("collate refuses 6")
        return batch

    dl = schedlab.DataLoader(Indices(12), batch_size=4, num_workers=2, collate_fn=collate)
    it = iter(dl)
    assert next(it) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="collate refuses 6") as info:
        next(it)
    assert "collate_fn" in str(info.value) and "first sample index 4" in str(info.value)
    assert next(it) == [8, 9, 10, 11]
    dl.close()


def test_worker_init_fn_failure_is_raised_once_and_ends_the_epoch():
    before = baseline()
    lock = threading.Lock()
    started = []

    def init(worker):
        with lock:
            started.append(worker)
            first = started.count(worker) == 1
        if worker == 1 and first:  # worker 1's first start fails, later ones work
            raise OSError("no device for worker 1")

    dl = schedlab.DataLoader(Indices(64), batch_size=4, num_workers=2, worker_init_fn=init,
                             strategy="round-robin")
    it = iter(dl)
    got, errors = [], []
    for _ in range(len(dl) + 1):
        try:
            got.append(next(it).tolist())
        except StopIteration:
            break
        except OSError as e:
            errors.append(e)
    assert len(errors) == 1  # raised once, not once per batch worker 1 touches
    e = errors[0]
    assert "worker_init_fn" in str(e) and "worker 1" in str(e)
    assert "no device for worker 1" in str(e) and "Traceback" in str(e)
    assert isinstance(e.__cause__, OSError) and e.worker == 1
    assert len(got) < len(dl)  # and the epoch ended there
    assert [i for b in got for i in b] == list(range(4 * len(got)))
    with pytest.raises(StopIteration):
        next(it)
    # the next iter() starts new threads, which run worker_init_fn again (it works now)
    assert flat(dl) == list(range(64))
    assert sorted(started) == [0, 0, 1, 1]
    del it
    dl.close()
    assert back_to(before)


# (num_workers=0 is always in order)
@pytest.mark.parametrize("workers, in_order", [(0, True), (2, True), (2, False)])
def test_state_dict_resumes_mid_epoch_exactly(workers, in_order):
    n, bs = 100, 6
    kw = dict(batch_size=bs, shuffle=True, seed=21, num_workers=workers, in_order=in_order)
    dl = schedlab.DataLoader(Indices(n), **kw)
    flat(dl)  # epoch 0
    it = iter(dl)  # epoch 1
    first = [int(i) for _ in range(5) for i in next(it)]
    state = dl.state_dict()
    assert state["epoch"] == 1 and state["batches_done"] == 5
    del it
    dl.close()

    dl2 = schedlab.DataLoader(Indices(n), **kw)
    dl2.load_state_dict(state)
    rest = flat(dl2)
    if in_order:
        assert first + rest == _core.epoch_order(21, 1, n)
    assert sorted(first + rest) == list(range(n))  # exactly the remaining samples
    assert dl2.state_dict()["epoch"] == 2
    nxt = flat(dl2)
    assert sorted(nxt) == list(range(n))
    if in_order:
        assert nxt == _core.epoch_order(21, 2, n)
    dl2.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_state_dict_after_break_is_where_the_loop_stopped(workers):
    # The common checkpoint pattern: `for batch in loader: ... break`, then state_dict().
    # The loop's iterator is dropped at the break; the state must still be the epoch it was
    # in and the batches it handed out, not the next epoch (which would skip the rest).
    n, bs = 60, 4
    kw = dict(batch_size=bs, shuffle=True, seed=5, num_workers=workers)
    dl = schedlab.DataLoader(Indices(n), **kw)
    first = []
    for k, batch in enumerate(dl):
        first += [int(i) for i in batch]
        if k == 3:
            break
    gc.collect()
    state = dl.state_dict()
    assert state["epoch"] == 0 and state["batches_done"] == 4
    dl.close()
    dl2 = schedlab.DataLoader(Indices(n), **kw)
    dl2.load_state_dict(state)
    rest = flat(dl2)
    assert first + rest == _core.epoch_order(5, 0, n)
    dl2.close()
    # a new iter() after the break starts the next epoch, and state_dict() follows it
    dl3 = schedlab.DataLoader(Indices(n), **kw)
    for _ in dl3:
        break
    it = iter(dl3)
    next(it)
    assert dl3.state_dict()["epoch"] == 1 and dl3.state_dict()["batches_done"] == 1
    del it
    dl3.close()


def test_state_dict_takes_the_saved_seed():
    dl = schedlab.DataLoader(Indices(30), batch_size=5, shuffle=True, seed=1, num_workers=2)
    it = iter(dl)
    head = [int(i) for i in next(it)]
    state = dl.state_dict()
    dl.close()
    other = schedlab.DataLoader(Indices(30), batch_size=5, shuffle=True, seed=2, num_workers=2)
    other.load_state_dict(state)
    assert head + flat(other) == _core.epoch_order(1, 0, 30)
    other.close()


def test_no_thread_left_after_100_loaders_dropped_mid_epoch():
    before = baseline()
    for k in range(100):
        dl = schedlab.DataLoader(Indices(64, sleep=0.0005), batch_size=4, num_workers=2,
                                 shuffle=True, seed=k)
        it = iter(dl)
        next(it)
        next(it)
        if k % 2:
            del it  # the iterator first, then the loader
        del dl
    gc.collect()
    assert back_to(before)


def test_dropping_the_iterator_cancels_and_the_loader_goes_on():
    before = baseline()
    dl = schedlab.DataLoader(Indices(200, sleep=0.0005), batch_size=4, num_workers=3)
    it = iter(dl)
    next(it)
    del it
    assert flat(dl) == list(range(200))  # a fresh epoch, complete
    dl.close()
    assert back_to(before)


def test_keyboard_interrupt_raised_in_getitem_stops_cleanly():
    before = baseline()
    dl = schedlab.DataLoader(Faulty(40, bad={9}, exc=KeyboardInterrupt), batch_size=4,
                             num_workers=2)
    it = iter(dl)
    seen = 0
    with pytest.raises(KeyboardInterrupt):
        for _ in range(10):
            next(it)
            seen += 1
    assert seen == 2  # batches 0 and 1; batch 2 holds sample 9
    del it
    dl.close()
    assert back_to(before)


def test_sigint_while_waiting_raises_keyboard_interrupt_and_joins_the_threads():
    before = baseline()
    ds = BlockedOnce(400, slow=200)  # the epoch cannot end before the signal
    dl = schedlab.DataLoader(ds, batch_size=8, num_workers=1)
    it = iter(dl)
    next(it)
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    got = 1
    with pytest.raises(KeyboardInterrupt):
        for _ in range(len(dl)):
            next(it)
            got += 1
    timer.join()
    assert got <= 200 // 8  # it stopped early, at the latest while sample 200 was blocked
    assert not ds.slow_returned
    ds.release.set()
    # the interrupt stopped the loader at once; its threads finish the samples in service in
    # the background (no new one starts), and close() joins every one
    del it
    dl.close()
    assert back_to(before)
    assert ds.calls < 400  # loading stopped with the interrupt
    # and the loader can be iterated again
    dl2 = schedlab.DataLoader(Indices(16), batch_size=8, num_workers=1)
    assert flat(dl2) == list(range(16))
    dl2.close()


class BlockedOnce(Indices):
    """Sample ``slow`` blocks until ``release`` is set the first time it is loaded (later
    loads are quick); ``slow_returned`` says whether that first load has returned."""

    def __init__(self, n, slow):
        super().__init__(n)
        self.slow, self.blocked, self.slow_returned = slow, False, False
        self.release = threading.Event()

    def __getitem__(self, i):
        if i == self.slow:
            with self.lock:
                first, self.blocked = not self.blocked, True
            if first:
                self.release.wait(SAFETY_S)
                self.slow_returned = True
        return super().__getitem__(i)


def test_ctrl_c_returns_at_once_while_a_sample_is_slow_and_the_loader_goes_on():
    import _thread

    before = baseline()
    ds = BlockedOnce(64, slow=10)
    dl = schedlab.DataLoader(ds, batch_size=4, num_workers=2)
    it = iter(dl)
    assert next(it).tolist() == [0, 1, 2, 3]
    assert next(it).tolist() == [4, 5, 6, 7]
    timer = threading.Timer(0.2, _thread.interrupt_main)  # Ctrl-C, 0.2 s from now
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        next(it)  # batch 2 holds sample 10, blocked until after this assertion
    timer.join()
    # control came back without waiting for the blocked sample
    assert not ds.slow_returned
    ds.release.set()
    with pytest.raises(RuntimeError, match="stopped"):
        next(it)  # the interrupted iterator is finished
    # the loader goes on: a fresh epoch (new threads), complete and in order
    assert flat(dl) == list(range(64))
    del it, dl
    gc.collect()
    assert back_to(before)  # every thread joined, the interrupted ones included


def test_ctrl_c_in_a_pipeline_returns_at_once_and_the_pipeline_goes_on():
    import _thread

    before = baseline()
    ds = BlockedOnce(8, slow=1)
    p = schedlab.Pipeline(8, workers=1).map(ds.__getitem__, kind="blocking", concurrency=2)
    it = iter(p)
    assert next(it) == 0
    timer = threading.Timer(0.2, _thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        list(it)  # item 1 is blocked until after this assertion
    timer.join()
    assert not ds.slow_returned  # control came back without waiting for it
    ds.release.set()
    assert list(p) == list(range(8))  # the next epoch, complete
    del it, p
    gc.collect()
    assert back_to(before)


def test_memory_bound_with_a_slow_consumer():
    bs, workers, factor = 4, 3, 2
    ds = Indices(120, sleep=0.0002)
    dl = schedlab.DataLoader(ds, batch_size=bs, num_workers=workers, prefetch_factor=factor)
    cap = bs * workers * factor
    worst = 0
    for epoch in range(2):
        handed = 0
        for batch in dl:
            handed += len(batch)
            time.sleep(0.002)  # a slow consumer: the workers run ahead to the bound
            ahead = ds.calls - (epoch * 120 + handed)
            worst = max(worst, ahead)
            assert ahead <= cap
    assert worst > 0  # the workers did run ahead
    dl.close()


def test_autotune_is_exact_keeps_its_cap_and_reports_its_readings():
    bs, cap = 4, 40
    ds = Indices(400, sleep=0.0003)
    dl = schedlab.DataLoader(ds, batch_size=bs, num_workers=4, prefetch_factor=1,
                             autotune=True, max_items=cap)
    got, handed = [], 0
    for batch in dl:
        got.extend(batch.tolist())
        handed += len(batch)
        time.sleep(0.001)
        assert ds.calls - handed <= cap
    assert got == list(range(400))
    assert ds.calls == 400
    r = dl.report()
    tuning = r["tuning"]
    assert tuning["stages"] == ["get"]
    assert tuning["trajectory"], "readings every 20 ms over a 0.4 s epoch"
    assert all(c["knob"] == "prefetch" and c["to"] * bs <= cap for c in tuning["changes"])
    assert r["prefetch"] * bs <= cap
    dl.close()


def test_timeout_raises_runtime_error():
    # the first batch holds the blocked sample: no earlier wait can time out by accident
    ds = BlockedOnce(8, slow=2)
    dl = schedlab.DataLoader(ds, batch_size=4, num_workers=1, timeout=0.2)
    it = iter(dl)
    with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
        next(it)  # sample 2 is blocked until after this assertion: the timeout must fire
    assert not ds.slow_returned
    ds.release.set()
    with pytest.raises(RuntimeError, match="stopped"):
        next(it)  # the timed-out iterator is finished
    dl.close()


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size="4"), TypeError, "batch_size"),
        (dict(num_workers=-1), ValueError, "num_workers"),
        (dict(shuffle=True, sampler=[0, 1]), ValueError, "sampler"),
        (dict(num_workers=2, strategy="no-such-strategy"), ValueError, "strategy"),
        (dict(num_workers=2, strategy="central(chunk=0)"), ValueError, "strategy"),
        (dict(collate_fn=3), TypeError, "collate_fn"),
        (dict(worker_init_fn="f"), TypeError, "worker_init_fn"),
        (dict(timeout=-1), ValueError, "timeout"),
        (dict(num_workers=2, prefetch_factor=0), ValueError, "prefetch_factor"),
        (dict(prefetch_factor=2), ValueError, "prefetch_factor"),
        (dict(persistent_workers=True), ValueError, "persistent_workers"),
        (dict(batch_sampler=[[0]], batch_size=4), ValueError, "batch_sampler option is mutually"),
        (dict(batch_sampler=[[0]], shuffle=True), ValueError, "batch_sampler option is mutually"),
        (dict(batch_sampler=[[0]], worker_init_fn=print), ValueError, "worker_init_fn"),
        (dict(batch_sampler=3), TypeError, "batch_sampler"),
        (dict(autotune=True), ValueError, "autotune"),
        (dict(num_workers=2, max_items=8), ValueError, "max_items"),
        (dict(num_workers=2, batch_size=4, autotune=True, max_items=3), ValueError, "max_items"),
    ],
)
def test_bad_arguments_raise_before_any_thread_starts(kwargs, exc, word):
    before = baseline()
    with pytest.raises(exc, match=word):
        schedlab.DataLoader(Indices(10), **kwargs)
    assert back_to(before)


def test_bad_dataset_and_accepted_no_ops():
    with pytest.raises(TypeError, match="dataset"):
        schedlab.DataLoader(42)  # neither map-style nor iterable (issue 30 takes iterables)
    dl = schedlab.DataLoader(Indices(6), batch_size=3, num_workers=2, pin_memory=True,
                             persistent_workers=True, multiprocessing_context="spawn")
    assert flat(dl) == list(range(6))
    dl.close()


def test_report_counts_and_gil_statistics():
    dl = schedlab.DataLoader(Indices(64), batch_size=8, num_workers=2)
    flat(dl)
    r = dl.report()
    assert r["samples"] == 64 and r["batches"] == 8 and r["workers"] == 2
    assert len(r["gil"]) == 2
    # every __getitem__ of the epoch, plus those of the next epoch loaded ahead (at most the
    # window of prefetch_factor * num_workers batches)
    assert 64 <= sum(w["calls"] for w in r["gil"]) <= 64 + 2 * 2 * 8
    assert all(w["gil_wait_s"] >= 0 and w["python_cpu_s"] >= 0 for w in r["gil"])
    # time in Rust between calls: counted from a worker's second call on
    assert all(w["rust_s"] > 0 for w in r["gil"] if w["calls"] >= 2)
    # CPU time inside a call never exceeds its wall time (up to the clocks' granularity)
    assert all(w["python_cpu_s"] <= w["python_s"] * 1.01 + 1e-3 for w in r["gil"])
    # 64 calls: too few to judge (VERDICT_MIN_CALLS)
    assert r["gil_verdict"].startswith("too short to judge"), r["gil_verdict"]
    text = str(r)
    assert "GIL per worker" in text and "worker 1" in text
    dl.close()


class KeepsTheGil:
    """Sample 0 keeps the GIL (pure Python, the switch interval set long by the test) until
    the loader's GIL statistics show the workers' waits grown by 50 ms since it began (no
    wait can *end* meanwhile: only one going on can count), or 60 s. The other samples are
    trivial: the other worker runs through them and then waits for the GIL to start one."""

    def __init__(self):
        self.dl = None
        self.seen = None

    def __len__(self):
        return 100_000

    def __getitem__(self, i):
        if i == 0:
            core = self.dl._core
            t0 = time.monotonic()
            w0 = sum(r[0] for r in core.gil_stats())
            while time.monotonic() - t0 < 60:
                if sum(r[0] for r in core.gil_stats()) - w0 >= 0.05:
                    self.seen = time.monotonic() - t0
                    break
        return i


def test_a_wait_for_the_gil_is_counted_while_it_goes_on():
    # CPython hands the GIL on after its switch interval only if nobody let go of it since;
    # a worker that gives it back after each call and takes it again for the next restarts
    # that clock, and kept the other waiting 96 ms. Counted only once it ended, the wait was
    # unseen meanwhile (an `auto` stage's verdict came late): the statistics count it going on.
    ds = KeepsTheGil()
    # a window of the whole dataset: the other worker never waits for room, only for the GIL
    dl = ds.dl = schedlab.DataLoader(ds, batch_size=1, num_workers=2, prefetch_factor=50_000)
    old = sys.getswitchinterval()
    sys.setswitchinterval(60)  # sample 0's thread keeps the GIL until it sees the wait
    try:
        assert next(iter(dl)) == [0]
    finally:
        sys.setswitchinterval(old)
    assert ds.seen is not None, "the other worker's wait was not seen while it went on"
    dl.close()


class Spins:
    """Pure Python, ~0.5-1 ms a sample: holds the GIL throughout."""

    def __len__(self):
        return 400

    def __getitem__(self, i):
        x = 0
        for _ in range(20_000):
            x += 1
        return i


def test_the_workers_of_a_gil_bound_loader_take_the_gil_in_turns():
    # Each worker gives the GIL back after a call and takes it again for the next, which
    # restarts CPython's switch interval: one worker ran 555 calls of 600 and the other
    # waited up to 96 ms for one, holding back its in-order batch. Our threads now let one of
    # ours that waits go first after a 5 ms run (python/src/turns.rs).
    # (a window of 128 samples: the worker that keeps the GIL runs that far ahead; measured,
    # the other ran 10-24% of an epoch's calls before, 31-50% now; three epochs)
    dl = schedlab.DataLoader(Spins(), batch_size=32, num_workers=2)
    for _ in range(3):
        assert flat(dl) == list(range(400))
        calls = [w["calls"] for w in dl.report()["gil"]]  # this epoch's
        assert min(calls) >= 0.2 * sum(calls), calls
    dl.close()


def test_gil_verdict_rule():
    def w(wait, wall, cpu):
        return {"gil_wait_s": wait, "python_s": wall, "python_cpu_s": cpu, "calls": 1000}

    # waiting to acquire longer than running
    assert schedlab.gil_verdict([w(2.0, 1.0, 1.0)]).startswith("GIL-bound")
    # the pure-Python benchmark's shape: two threads taking turns, each waits as the other runs
    turns = schedlab.gil_verdict([w(0.74, 0.75, 0.75), w(0.76, 0.74, 0.73)], 1.46)
    assert turns.startswith("GIL-bound") and "worker processes" in turns
    # sleeping calls: long off the CPU, no queueing for the GIL
    assert schedlab.gil_verdict([w(0.0, 2.0, 0.01), w(0.0, 2.0, 0.01)], 2.0).startswith("not")
    # Pillow decoding on a busy machine: off the CPU a lot, hardly any wait to acquire
    assert schedlab.gil_verdict([w(0.002, 2.29, 1.04), w(0.002, 2.30, 0.98)], 1.9).startswith(
        "not"
    )


class Huge:
    """A dataset whose length no epoch order (one index per sample) can hold."""

    def __len__(self):
        return 2**62

    def __getitem__(self, i):
        return i


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_dataset_too_long_for_its_order_is_a_value_error_not_a_panic(workers, shuffle):
    # It was pyo3's PanicException ("capacity overflow"), or at 2**36 samples an abort.
    dl = schedlab.DataLoader(Huge(), batch_size=4, shuffle=shuffle, num_workers=workers)
    with pytest.raises(ValueError, match=r"^dataset: 4611686018427387904 samples: an epoch's order"):
        next(iter(dl))
    dl.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_sampler_index_must_be_an_integer(workers):
    # int() made 2.7 sample 2 and "3" sample 3, silently.
    for bad in (2.7, "3"):
        dl = schedlab.DataLoader(list(range(5)), sampler=[0, bad], num_workers=workers)
        with pytest.raises(TypeError, match=r"^sampler: item 1 is .* expected an integer index"):
            list(dl)
        dl.close()
    dl = schedlab.DataLoader(list(range(5)), sampler=np.arange(3)[::-1], num_workers=workers)
    assert [int(b[0]) for b in dl] == [2, 1, 0]
    dl.close()


def test_load_state_dict_refuses_a_damaged_state_naming_the_field():
    dl = schedlab.DataLoader(list(range(10)), batch_size=2, num_workers=2)
    it = iter(dl)
    next(it)
    good = dl.state_dict()
    dl.close()
    for key, value, msg in [
        ("epoch", "1", r"state_dict: epoch: expected an int in 0\.\.2\*\*64, got '1'"),
        ("epoch", -1, r"state_dict: epoch: expected an int"),
        ("batches_done", 2.0, r"state_dict: batches_done: expected an int"),
        ("seed", "abc", r"state_dict: seed: expected None or an int"),
    ]:
        fresh = schedlab.DataLoader(list(range(10)), batch_size=2, num_workers=2)
        with pytest.raises(ValueError, match=msg):
            fresh.load_state_dict({**good, key: value})
        # refused before anything changed: the loader starts at epoch 0 from the beginning
        assert [b.tolist() for b in fresh][:1] == [[0, 1]]
        fresh.close()
    resumed = schedlab.DataLoader(list(range(10)), batch_size=2, num_workers=2)
    resumed.load_state_dict(good)
    assert [b.tolist() for b in resumed] == [[2, 3], [4, 5], [6, 7], [8, 9]]
    resumed.close()


class Buckets:
    """A bucketing batch sampler: batches of 1, 2, 3, ... indices (the last shorter), in a
    new order of the batches at each iteration (seeded, so that a second loader built the
    same way gives the same batches)."""

    def __init__(self, n, seed=0):
        self.n, self.seed, self.iterations = n, seed, 0
        self.batches = []
        start, size = 0, 1
        while start < n:
            self.batches.append(list(range(start, min(n, start + size))))
            start, size = start + size, size + 1

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        import random

        order = list(self.batches)
        random.Random(self.seed * 1000 + self.iterations).shuffle(order)
        self.iterations += 1
        return iter(order)


class Recorded:
    """Sample i is ``(i, the thread and process that loaded it)`` (picklable: no lock)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return (i, threading.get_ident(), os.getpid())


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_batch_sampler_chooses_the_batches_and_one_worker_loads_each(worker_type):
    # before: "batch_sampler: not supported" (a bucketing sampler is how variable-length
    # sequences are batched)
    sampler = Buckets(40, seed=3)
    dl = schedlab.DataLoader(Recorded(40), batch_sampler=sampler, num_workers=3,
                             worker_type=worker_type, collate_fn=list)
    assert len(dl) == len(sampler) == 9
    ref = Buckets(40, seed=3)  # iterated as often as the loader's: the same batches
    for epoch in range(2):
        want = list(ref)
        got = list(dl)
        assert [[i for i, _, _ in b] for b in got] == want
        # every sample of a batch loaded by one thread (one process)
        assert all(len({(t, p) for _, t, p in b}) == 1 for b in got)
    assert sorted(i for b in want for i in b) == list(range(40))
    dl.close()
    if worker_type == "process":
        with pytest.raises(TypeError, match="dataset or collate_fn: worker processes receive"):
            schedlab.DataLoader(Indices(4), batch_sampler=[[0, 1]], num_workers=1,
                                worker_type="process")


def test_a_batch_sampler_given_positionally_collates_and_resumes_mid_epoch():
    sampler = Buckets(30)
    dl = schedlab.DataLoader(Indices(30), 1, None, None, sampler, 2)
    it = iter(dl)
    first = [next(it).tolist(), next(it).tolist()]
    state = dl.state_dict()
    rest = [b.tolist() for b in it]
    dl.close()
    again = schedlab.DataLoader(Indices(30), batch_sampler=Buckets(30), num_workers=2)
    again.load_state_dict(state)
    assert [b.tolist() for b in again] == rest
    assert sorted(x for b in first + rest for x in b) == list(range(30))
    again.close()


def test_a_batch_sampler_gives_torchs_batches():
    torch = pytest.importorskip("torch")
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler

    def batches(loader_cls, **kw):
        g = torch.Generator().manual_seed(7)
        bs = BatchSampler(RandomSampler(range(50), generator=g), 6, drop_last=False)
        dl = loader_cls(Indices(50), batch_sampler=bs, **kw)
        out = [[b.tolist() for b in dl] for _ in range(2)]
        getattr(dl, "close", lambda: None)()
        return out

    assert batches(DataLoader) == batches(schedlab.DataLoader, num_workers=2,
                                          collate_fn=torch.utils.data.default_collate)


class EpochedBuckets(Buckets):
    def set_epoch(self, epoch):
        self.seed = epoch


class EpochedStream:
    def __init__(self):
        self.epoch = None

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(range(3))


def test_the_loaders_over_a_pipeline_forward_set_epoch_and_close_as_context_managers():
    sampler, stream = EpochedBuckets(10), EpochedStream()
    with schedlab.DataLoader(Indices(10), batch_sampler=sampler, num_workers=2) as dl:
        dl.set_epoch(5)
        assert sampler.seed == 5
        assert sorted(int(i) for b in dl for i in b) == list(range(10))
        assert dl.state_dict()["epoch"] == 6  # epoch 5 done: the next one
    with schedlab.DataLoader(stream, batch_size=2, collate_fn=list) as dl:
        dl.set_epoch(4)
        assert stream.epoch == 4 and list(dl) == [[0, 1], [2]]
