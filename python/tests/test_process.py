"""Process stages (issue 32): ``Pipeline.map(kind="process" | "auto")`` and
``DataLoader(worker_type="process" | "auto")``: exactly once, in order, errors at their
positions, dead workers cost one item, pids, shared memory, memory of many workers."""

import ctypes
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import schedlab
from schedlab import _process

from probes import eventually as _eventually


# --- module-level functions: worker processes receive them pickled -------------------------


def pid_of(i):
    return (i, os.getpid())


def square(i):
    return i * i


#: Positions whose item kills its worker, and how: a signal, os._exit, a segfault.
KILLS = {p: ("kill", "exit", "segv", "abort")[k % 4] for k, p in enumerate(range(13, 1000, 50))}


def killer(i):
    how = KILLS.get(i)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "exit":
        os._exit(7)
    elif how == "segv":
        ctypes.string_at(0)  # a real segmentation fault
    elif how == "abort":
        os.abort()
    return i


def fails_at_5(i):
    if i == 5:
        raise KeyError(f"no item {i}")
    return i


def big_array(i):
    return np.full((256, 1024), i, dtype=np.float32)  # 1 MiB


def python_loop(i):
    s = 0
    for k in range(20000):
        s += k * k
    return (i, os.getpid())


def sleeper(i):
    import time

    time.sleep(0.001)
    return (i, os.getpid())


def drain(it):
    """Every item and every error of an iterator: ``([values], {position: exception})``."""
    values, errors, k = [], {}, 0
    while True:
        try:
            values.append(next(it))
        except StopIteration:
            return values, errors
        except Exception as e:  # noqa: BLE001
            errors[k] = e
        k += 1


class Squares:
    """A picklable map-style dataset; ``__getitem__`` says which process ran it."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.array([i, i * i, os.getpid()], dtype=np.int64)


INIT_IDS = []


def record_init(worker_id):
    INIT_IDS.append(worker_id)


class InitSeen(Squares):
    def __getitem__(self, i):
        return np.array([i, INIT_IDS[0] if INIT_IDS else -1, os.getpid()], dtype=np.int64)


class KillsSample7(Squares):
    def __getitem__(self, i):
        if i == 7:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(i)


class BigList:
    """A dataset holding a large list of Python objects (tuples of a str and an int)."""

    def __init__(self, n):
        self.records = [(f"record-{i:09d}", i) for i in range(n)]

    def __len__(self):
        return len(self.records) // 100

    def __getitem__(self, i):
        # 100 records per sample: an epoch reads every record
        return sum(k + len(name) for name, k in self.records[100 * i : 100 * i + 100])


# --- the pipeline -------------------------------------------------------------------------


def test_process_stage_runs_every_item_once_in_order_on_worker_processes():
    p = schedlab.Pipeline(300, workers=2).map(pid_of, kind="process", concurrency=2)
    out = list(p)
    assert [i for i, _ in out] == list(range(300))
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    s = p.report()["processes"][pid_of.__name__]
    assert s["start_method"].split()[0] in ("fork", "forkserver")
    assert pids <= {w["pid"] for w in s["workers"]}
    assert sum(w["items"] for w in s["workers"]) == 300
    assert all(w["rss_bytes"] > 0 for w in s["workers"])
    # a second epoch reuses the same processes
    assert [i for i, _ in p] == list(range(300))
    assert {w["pid"] for w in p.report()["processes"]["pid_of"]["workers"]} == {
        w["pid"] for w in s["workers"]
    }
    text = str(p.report())
    assert "worker processes:" in text and "pid" in text
    p.close()


def test_filter_and_flat_map_on_processes_then_batch():
    p = (schedlab.Pipeline(40, workers=2)
         .filter(square, kind="process")
         .flat_map(pid_of, kind="process")
         .batch(4, collate_fn=None))
    flat = [v for b in p for v in b]
    # filter keeps 1..39 (square(0) is falsy); flat_map yields (i, pid) of each
    assert flat[0::2] == list(range(1, 40))
    assert os.getpid() not in set(flat[1::2])
    p.close()


def test_kill_test_1000_items_20_kill_their_worker():
    p = schedlab.Pipeline(1000, workers=2).map(killer, kind="process", concurrency=2)
    values, errors = drain(iter(p))
    assert len(KILLS) == 20
    assert sorted(values) == [i for i in range(1000) if i not in KILLS]
    assert len(values) == len(set(values)) == 980
    assert sorted(errors) == sorted(KILLS)  # each error at its item's position
    for k, e in errors.items():
        assert isinstance(e, _process.WorkerDied)
        msg = str(e)
        assert "stage 'killer'" in msg and f"item {k} of epoch 0" in msg and "pid" in msg
        cause = e.__cause__
        assert cause.pid not in (None, os.getpid())
        if KILLS[k] == "exit":
            assert cause.exitcode == 7 and "exited with status 7" in msg
        else:
            want = {"kill": signal.SIGKILL, "segv": signal.SIGSEGV, "abort": signal.SIGABRT}
            assert cause.signal == want[KILLS[k]] and f"signal {int(want[KILLS[k]])}" in msg
    s = p.report()["processes"]["killer"]
    assert len(s["deaths"]) == 20 and all(d["item"] for d in s["deaths"])
    assert len(s["workers"]) == 2  # replaced, not multiplied
    p.close()


def test_kill_test_under_skip_and_halt_policies():
    p = schedlab.Pipeline(1000, workers=2, on_failure="skip").map(killer, kind="process")
    out = list(p)
    assert out == [i for i in range(1000) if i not in KILLS]
    assert p.report()["failures"] == 20
    p.close()
    p = schedlab.Pipeline(1000, workers=2, on_failure="halt", max_failures=3).map(
        killer, kind="process")
    it, died = iter(p), 0
    with pytest.raises(RuntimeError, match="halt"):
        while True:
            try:
                next(it)
            except _process.WorkerDied:
                died += 1
    assert died == 3
    p.close()


def test_worker_dead_while_idle_costs_no_item():
    p = schedlab.Pipeline(list(range(10)), workers=2).map(pid_of, kind="process", concurrency=1)
    assert [i for i, _ in p] == list(range(10))
    (w,) = p.report()["processes"]["pid_of"]["workers"]
    os.kill(w["pid"], signal.SIGKILL)
    out = list(p)
    assert [i for i, _ in out] == list(range(10))
    assert {pid for _, pid in out} != {w["pid"]}
    deaths = p.report()["processes"]["pid_of"]["deaths"]
    assert [(d["pid"], d["item"]) for d in deaths] == [(w["pid"], False)]
    p.close()


def test_exception_in_worker_is_raised_at_its_position_with_the_workers_traceback():
    p = schedlab.Pipeline(10, workers=2).map(fails_at_5, kind="process")
    values, errors = drain(iter(p))
    assert values == [0, 1, 2, 3, 4, 6, 7, 8, 9] and list(errors) == [5]
    e = errors[5]
    assert isinstance(e, KeyError) and "fails_at_5" in str(e) and "item 5" in str(e)
    # the original exception, with the worker's traceback as its cause
    assert isinstance(e.__cause__, KeyError)
    assert "in fails_at_5" in str(e.__cause__.__cause__)
    p.close()


def test_large_numpy_results_come_back_through_shared_memory():
    before = set(os.listdir("/dev/shm"))
    a = np.arange(1 << 18, dtype=np.float32)  # 1 MiB
    msg = _process.pack(b"r", a)
    assert len(msg) < 1024  # the socket carries the header, not the data
    kind, b = _process.unpack(msg)
    assert kind == b"r" and np.array_equal(a, b) and b.flags.writeable
    assert len(_process.pack(b"r", a[::2])) > a.nbytes // 2  # not contiguous: in band
    p = schedlab.Pipeline(6, workers=2).map(big_array, kind="process").batch(3)
    batches = list(p)
    assert [b.shape for b in batches] == [(3, 256, 1024)] * 2
    assert [float(b[k, 0, 0]) for b in batches for k in range(3)] == [0, 1, 2, 3, 4, 5]
    p.close()
    assert [f for f in set(os.listdir("/dev/shm")) - before if f.startswith("schedlab-")] == []


def test_large_torch_tensors_come_back_through_shared_memory_as_tensors():
    torch = pytest.importorskip("torch")
    t = torch.arange(1 << 18, dtype=torch.float32).reshape(256, 1024)  # 1 MiB
    msg = _process.pack(b"r", t)
    assert len(msg) < 1024  # as a numpy array: the data in shared memory (torch.save'd
    # bytes through the socket before)
    kind, u = _process.unpack(msg)
    assert kind == b"r" and type(u) is torch.Tensor and torch.equal(t, u) and u.dtype == t.dtype
    u += 1  # writable, as an unpickled tensor is
    # not contiguous, a dict of them, a 0-d one: equal, as tensors
    for x in (t[:, ::2], {"image": t[:4], "label": torch.tensor(3)}):
        _, y = _process.unpack(_process.pack(b"r", x))
        if isinstance(x, dict):
            assert torch.equal(x["image"], y["image"]) and int(y["label"]) == 3
        else:
            assert torch.equal(x, y) and y.is_contiguous()
    # a row of a large tensor (a TensorDataset's sample) is its own elements: torch's
    # pickling writes the whole storage a view shares (here 8 MB for a 4 KB row)
    big = torch.zeros(2048, 1024)
    assert len(_process.pack(b"r", big[5])) < 8192
    assert torch.equal(_process.unpack(_process.pack(b"r", big[5]))[1], big[5])
    # and so in the dataset the workers receive: two slices of it, not two storages
    payload = _process.check_picklable("dataset", (big[:4], big[4:8]))
    assert len(payload) < 64 * 1024
    assert torch.equal(_process.load_shared(payload)[1], big[4:8])
    # what numpy cannot hold, or must not lose, goes as torch pickles it
    for x in (torch.ones(3, dtype=torch.bfloat16), torch.ones(3, requires_grad=True),
              torch.nn.Parameter(torch.ones(2))):
        _, y = _process.unpack(_process.pack(b"r", x))
        assert type(y) is type(x) and y.dtype == x.dtype and torch.equal(x.detach(), y.detach())
        assert y.requires_grad == x.requires_grad


def worker_draws(i):
    import random

    torch = sys.modules.get("torch")
    return (os.getpid(), random.getrandbits(62), int(np.random.randint(1 << 62)),
            None if torch is None else (int(torch.randint(1 << 62, ())), torch.get_num_threads()))


@pytest.mark.parametrize("start_method", [None, "fork"])
def test_each_worker_process_draws_its_own_random_numbers(start_method):
    """The workers are forks of one zygote: unseeded, torch's generator (and numpy's, in
    the versions that do not reseed at a fork) repeat the same numbers in every worker (a
    "random" augmentation the same in each). Seeded per process as torch's workers are, and
    torch on one thread there. ``"fork"``: the zygote is a fork of this process, so torch
    is in the workers whenever it is installed."""
    try:
        import torch  # noqa: F401 - only to be in this process for the fork
    except ImportError:
        pass
    # one item a message: in chunks, two processes can take all 64 cheap items
    p = schedlab.Pipeline(64, workers=2, start_method=start_method).map(
        worker_draws, kind="process", concurrency=4, chunk=1)
    out = list(p)
    p.close()
    assert len({pid for pid, *_ in out}) == 4
    for k in (1, 2):
        draws = [row[k] for row in out]
        assert len(set(draws)) == len(draws), k
    if start_method == "fork" and "torch" in sys.modules:
        draws = [row[3][0] for row in out]
        assert len(set(draws)) == len(draws) and {row[3][1] for row in out} == {1}

def test_ints_and_small_arrays_cross_without_pickle_and_keep_their_types():
    # an int of 64 bits goes as 9 bytes plus its kind; anything else (bool, a larger int)
    # is pickled: each comes back equal and of its own type
    for x in (0, 1, -1, 7, (1 << 63) - 1, -(1 << 63)):
        msg = _process.pack(b"i", x)
        assert len(msg) == 10 and _process.unpack(msg) == (b"i", x)
    for x in (True, False, 1 << 63, -(1 << 63) - 1, 10**40):
        kind, y = _process.unpack(_process.pack(b"r", x))
        assert kind == b"r" and y == x and type(y) is type(x)
    for a in (np.arange(6, dtype=np.int64).reshape(2, 3), np.array(2.5, dtype=np.float32),
              np.array([], dtype=np.uint8), np.arange(4, dtype=">i4")):
        kind, b = _process.unpack(_process.pack(b"r", a))
        assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
        assert b.flags.writeable
    # the headers are cached by (dtype, shape) on the way out and by their text on the way
    # in: the same dtype in other shapes, the same shape in another byte order, and arrays
    # that must be pickled (strided, Fortran order, objects, fields) after cached ones
    seq = [np.arange(4, dtype="<i4"), np.arange(4, dtype=">i4"), np.arange(6, dtype="<i4"),
           np.arange(6, dtype="<i4").reshape(2, 3), np.arange(6, dtype="<i4").reshape(3, 2),
           np.arange(4, dtype="<i4"), np.arange(8, dtype="<i4")[::2],
           np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3)),
           np.array([1, None], dtype=object), np.zeros(2, dtype=[("a", "<i4")]),
           np.zeros((3, 0), dtype=np.int8), np.array(["ab", "c"])]
    for _ in range(2):
        for a in seq:
            msg = _process.pack(b"r", a)
            pickled = a.dtype.hasobject or a.dtype.fields is not None or not a.flags.c_contiguous
            assert (msg[1:2] == _process._ARRAY) is not pickled
            kind, b = _process.unpack(msg)
            assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
            assert b.flags.writeable
    p = schedlab.Pipeline([10**40, -5, True, 1 << 62], workers=2).map(ident, kind="process")
    out = list(p)
    assert out == [10**40, -5, True, 1 << 62] and type(out[2]) is bool
    p.close()
    # small arrays whose dtype has no byte order ("|u1", "|b1") failed to decode before
    p = schedlab.Pipeline(4, workers=2).map(small_u8, kind="process")
    out = list(p)
    assert [a.dtype for a in out] == [np.uint8] * 4
    assert [a.tolist() for a in out] == [[i] * 3 for i in range(4)]
    p.close()


def ident(x):
    return x


def small_u8(i):
    return np.full(3, i, dtype=np.uint8)


def test_resume_mid_epoch_is_exact_with_a_process_stage():
    p = schedlab.Pipeline(50, workers=2).map(square, kind="process", concurrency=2)
    it = iter(p)
    first = [next(it) for _ in range(17)]
    state = p.state_dict()
    p.close()
    q = schedlab.Pipeline(50, workers=2).map(square, kind="process", concurrency=2)
    q.load_state_dict(state)
    rest = list(q)
    assert first + rest == [i * i for i in range(50)]
    q.close()


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="fn"):
        schedlab.Pipeline(3).map(lambda x: x, kind="process")
    with pytest.raises(ValueError, match="kind"):
        schedlab.Pipeline(3).map(square, kind="processes")
    with pytest.raises(ValueError, match="start_method"):
        schedlab.Pipeline(3, start_method="vfork")
    with pytest.raises(TypeError, match="start_method"):
        schedlab.Pipeline(3, start_method=3)
    with pytest.raises(ValueError, match="strategy"):
        schedlab.Pipeline(3).map(square, kind="process", strategy="work-stealing")
    with pytest.raises(ValueError, match="worker_type"):
        schedlab.DataLoader(Squares(3), num_workers=1, worker_type="fiber")
    with pytest.raises(ValueError, match="num_workers"):
        schedlab.DataLoader(Squares(3), worker_type="process")
    with pytest.raises(ValueError, match="multiprocessing_context"):
        schedlab.DataLoader(Squares(3), num_workers=1, multiprocessing_context="thread")
    dl = schedlab.DataLoader(Unpicklable(3), num_workers=1, worker_type="process")
    with pytest.raises(TypeError, match="dataset"):
        iter(dl)
    dl.close()


def test_a_process_count_the_os_cannot_start_is_refused_before_any_process_starts():
    # a mistyped count once forked until the machine ran out: now one ValueError naming the
    # argument, and no zygote or worker was started
    dl = schedlab.DataLoader(Squares(3), num_workers=10**7, worker_type="process")
    with pytest.raises(ValueError, match=r"^num_workers=10000000: .* tasks; this process may start at most"):
        iter(dl)
    assert dl._procs is None or dl._procs.stats()["workers"] == []
    dl.close()
    p = schedlab.Pipeline(3).map(square, kind="process", concurrency=10**7, name="sq")
    with pytest.raises(ValueError, match=r"^stage 'sq': concurrency=10000000: "):
        list(p)
    p.close()
    # the auto stage's move fails the same way, named, when it is judged GIL-bound
    st = _process.ProcessStage(square, "sq")
    with pytest.raises(ValueError, match=r"^x=10000000: "):
        st.start(10**7, "x")
    assert st.stats()["workers"] == []
    st.close()


def test_worker_sockets_past_the_file_descriptor_limit_are_refused_naming_the_count():
    # in a child interpreter with `ulimit -n 64`: 40 workers would hold 80 sockets here
    code = (
        "import resource, schedlab, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "sys.path.insert(0, %r)\n"
        "from test_process import Squares\n"
        "dl = schedlab.DataLoader(Squares(3), num_workers=40, worker_type='process')\n"
        "try:\n"
        "    iter(dl)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
        "dl.close()\n" % os.path.dirname(os.path.abspath(__file__))
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.startswith("num_workers=40: each worker process holds 2 sockets here, "
                                 "80 in all"), (out.stdout, out.stderr[-2000:])
    assert "file descriptors are free (ulimit -n" in out.stdout


class Unpicklable(Squares):
    def __init__(self, n):
        super().__init__(n)
        self.f = lambda: None


@pytest.mark.parametrize("start_method", ["spawn", "fork", "forkserver"])
def test_other_start_methods(start_method):
    p = schedlab.Pipeline(20, workers=2, start_method=start_method).map(pid_of, kind="process")
    out = list(p)
    assert [i for i, _ in out] == list(range(20)) and os.getpid() not in {q for _, q in out}
    assert p.report()["processes"]["pid_of"]["start_method"].split()[0] == start_method
    p.close()



def _ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _forked_zygote(start_method):
    p = schedlab.Pipeline(4, workers=2, start_method=start_method).map(pid_of, kind="process")
    assert [i for i, _ in p] == list(range(4))
    z = p.report()["processes"]["pid_of"]["zygote"]["pid"]
    return p, z


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_zygotes_are_forked_by_one_root_per_start_method_and_a_dead_root_is_replaced(
        start_method):
    """A zygote is not started with the start method each time (~10 ms with forkserver,
    ~150 ms with spawn, for every loader): one root process per start method forks them."""
    p1, z1 = _forked_zygote(start_method)
    p2, z2 = _forked_zygote(start_method)
    root = _ppid(z1)
    assert z1 != z2 and root == _ppid(z2) and root != os.getpid()
    if start_method == "forkserver":  # the root is the fork server's child, not the server
        assert _ppid(root) != os.getpid()
    assert "root" in p1.report()["processes"]["pid_of"]["start_method"]
    p1.close()
    p2.close()
    # the root killed (out of memory, a stray kill): the next stage starts another
    os.kill(root, signal.SIGKILL)
    p3, z3 = _forked_zygote(start_method)
    assert _ppid(z3) not in (root, os.getpid())
    p3.close()


def _running(pid):
    """Not gone, nor a zombie about to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or the read
        return False


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if _ppid(int(d)) == pid and _running(int(d)):
                    out.append(int(d))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return out


def test_the_root_forks_the_next_zygote_ahead_and_lets_it_go_when_an_import_changes_it():
    """A zygote's fork is most of a stage's start where the root imported torch (10-18 ms):
    idle, the root forks the next one ahead (a spare), which the next stage takes; a spare
    forked before the root imports a module a new payload needs would lack it: it is let go
    (it exits) and that stage gets a new zygote."""
    p1, z1 = _forked_zygote("forkserver")
    root = _ppid(z1)
    spare = _eventually(lambda: [c for c in _children(root) if c != z1])
    p2, z2 = _forked_zygote("forkserver")
    assert [z2] == spare
    old = _eventually(lambda: [c for c in _children(root) if c not in (z1, z2)])
    import spare_probe  # noqa: PLC0415 - a module new to the root, on purpose

    p3 = schedlab.Pipeline(4, workers=1, start_method="forkserver").map(
        spare_probe.double, kind="process")
    assert list(p3) == [0, 2, 4, 6]
    z3 = p3.report()["processes"]["double"]["zygote"]["pid"]
    assert z3 not in old and _ppid(z3) == root
    _eventually(lambda: not any(_running(c) for c in old))  # the spare let go has exited
    for p in (p1, p2, p3):
        p.close()
    # the root gone, so is its spare
    spare = _eventually(lambda: [c for c in _children(root) if c not in (z1, z2, z3)])
    os.kill(root, signal.SIGKILL)
    _eventually(lambda: not any(_running(c) for c in spare))


class Big:
    """A stage function whose pickle is larger than a blank worker takes
    (``BLANK_PAYLOAD_MAX``: 1 MiB)."""

    def __init__(self):
        self.blob = bytes(2 << 20)

    def __call__(self, i):
        return (i + len(self.blob), os.getpid())


def test_a_spare_zygote_forks_the_next_stages_workers_ahead_and_lets_them_go_unused():
    """With torch loaded a fork takes 10-20 ms, and a stage's workers fork one after the
    other before its items run: the root's spare zygote forks as many blank workers as the
    last stage planned (2 here) before its payload comes, and the next stage's workers are
    those (each loads the payload itself). A payload too large for them lets them go: that
    zygote forks its workers itself, after loading it once for all of them."""
    p1, z1 = _forked_zygote("forkserver")
    root = _ppid(z1)
    spare = _eventually(lambda: [c for c in _children(root) if c != z1])[0]
    blanks = _eventually(lambda: len(_children(spare)) == 2 and sorted(_children(spare)))
    p2, z2 = _forked_zygote("forkserver")  # every item once, in order (asserted there)
    assert z2 == spare
    assert sorted(w["pid"] for w in p2.report()["processes"]["pid_of"]["workers"]) == blanks
    assert sorted({pid for _, pid in p2}) == blanks
    spare = _eventually(lambda: [c for c in _children(root) if c not in (z1, z2)])[0]
    blanks = _eventually(lambda: len(_children(spare)) == 2 and sorted(_children(spare)))
    p3 = schedlab.Pipeline(4, workers=2, start_method="forkserver").map(
        Big(), kind="process", name="big")
    assert [i for i, _ in p3] == [i + (2 << 20) for i in range(4)]
    s3 = p3.report()["processes"]["big"]
    assert s3["zygote"]["pid"] == spare
    assert not {w["pid"] for w in s3["workers"]} & set(blanks)
    _eventually(lambda: not any(_running(b) for b in blanks))  # let go: they exited
    for p in (p1, p2, p3):
        p.close()


def test_a_stages_start_forks_its_first_worker_and_the_rest_while_that_one_runs(monkeypatch):
    """start(n) forks one worker and returns (a fork of a process that imported torch takes
    8-13 ms: eight in turn held the first item back ~70 ms); the others are forked once a
    thread has taken the first, and a thread that finds only second sockets of the processes
    forked so far forks one itself rather than doubling up (depth 2 here)."""
    import threading

    monkeypatch.setattr(_process, "REST_AFTER_S", 60.0)
    st = _process.ProcessStage(pid_of, "s", depth=2)
    st.start(3)
    assert len(st.stats()["workers"]) == 1  # the rest wait for a thread to take the first
    go = threading.Barrier(3)
    done = threading.Barrier(4)
    out = {}

    def one(k):
        go.wait()
        out[k] = st(k)  # leases a socket for the thread's life
        done.wait()

    ts = [threading.Thread(target=one, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    done.wait()
    # three threads, three processes, whoever forked each
    assert sorted(out) == [0, 1, 2] and len({pid for _, pid in out.values()}) == 3
    for t in ts:
        t.join()
    _eventually(lambda: len(st.stats()["workers"]) == 3)
    assert len(st.stats()["workers"]) == 3  # none more: the planned count reached
    st.close()
    # no thread asks (a loader not iterated yet): the rest are forked after REST_AFTER_S
    monkeypatch.setattr(_process, "REST_AFTER_S", 0.0)
    st = _process.ProcessStage(pid_of, "s", depth=2)
    st.start(3)
    _eventually(lambda: len(st.stats()["workers"]) == 3)
    st.close()


def test_a_closed_stage_leaves_no_process_of_its_own_behind():
    p, z = _forked_zygote("forkserver")
    workers = [w["pid"] for w in p.report()["processes"]["pid_of"]["workers"]]
    assert workers
    p.close()  # returns without waiting for the exits (~10 ms each for a large process)

    _eventually(lambda: not [pid for pid in [z] + workers if _running(pid)], timeout=10)


def test_a_root_from_before_a_fork_is_not_shared_with_the_child():
    """A child forked from this process (its own multiprocessing, say) that starts a process
    stage gets its own root, not the parent's socket to the parent's root. (``spawn``:
    Python's own fork server cannot be used from a forked child, ``ChildProcessError``.)"""
    p, z = _forked_zygote("spawn")
    root = _ppid(z)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            c, zc = _forked_zygote("spawn")
            code = 0 if _ppid(zc) != root else 3
            c.close()
        finally:
            os.write(w, bytes([code]))
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    os.close(r)
    assert got == b"\x00"
    # and the parent's root still answers
    p2, z2 = _forked_zygote("spawn")
    assert _ppid(z2) == root
    p.close()
    p2.close()


@pytest.mark.parametrize("start_method", [None, "spawn"])
def test_a_script_without_a_main_guard_is_stopped_not_run_twice(tmp_path, start_method):
    """A script that starts a process stage at its top level, with no
    ``if __name__ == "__main__":``: the process that serves the workers imports the script
    (as multiprocessing does, to find its functions), reaches the stage, and must refuse it
    (the error names the fix) rather than run the script's work a second time. The default
    start method with a thread alive is forkserver; its child importing the script has one
    thread, so the nested stage took ``fork`` (which multiprocessing does not check) and
    the script returned its results twice, exit code 0."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import threading, time, schedlab\n"
        "if __name__ == '__main__':  # a second thread here only\n"
        "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "def sq(x):\n"
        "    return x * x\n"
        f"p = schedlab.Pipeline(8, workers=2, start_method={start_method!r})\n"
        "p.map(sq, kind='process', concurrency=2)\n"
        "print('RESULT', sorted(p), flush=True)\n"
        "p.close()\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode != 0, out.stdout
    assert "RESULT" not in out.stdout, out.stdout
    assert 'needs its work under `if __name__ == "__main__":`' in out.stderr, out.stderr[-3000:]


def test_a_dataset_defined_under_the_main_guard_gets_an_error_that_says_where_to_define_it(
        tmp_path):
    script = tmp_path / "inguard.py"
    script.write_text(
        "import schedlab\n"
        "if __name__ == '__main__':\n"
        "    class D:\n"
        "        def __len__(self):\n"
        "            return 4\n"
        "        def __getitem__(self, i):\n"
        "            return i\n"
        "    dl = schedlab.DataLoader(D(), num_workers=2, worker_type='process',\n"
        "                             multiprocessing_context='forkserver')\n"
        "    print('RESULT', list(dl), flush=True)\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode != 0 and "RESULT" not in out.stdout, out.stdout
    last = out.stderr.strip().splitlines()
    line = next(x for x in last if x.startswith("RuntimeError: process stage '__getitem__'"))
    assert "Can't get attribute 'D'" in line, line
    assert "define what they need at the script's top level" in line, line


# --- auto ---------------------------------------------------------------------------------


class FakeProcs:
    def __init__(self):
        self.started = 0

    def start(self, prefork=0, field="num_workers"):
        self.started += 1

    def __call__(self, item):
        return ("process", item)


def _rows(wait, cpu, wall, calls):
    return [{"gil_wait_s": wait, "python_cpu_s": cpu, "python_s": wall, "calls": calls}]


@pytest.mark.parametrize(
    "rows, moves",
    [
        (_rows(1.0, 1.0, 1.1, 400), True),  # the verdict's GIL-bound
        (_rows(0.35, 1.0, 1.1, 400), True),  # auto's lower bar: on the CPU, waiting
        (_rows(0.35, 1.0, 4.0, 400), False),  # mostly off the CPU (sleeps, reads)
        # the verdict's GIL-bound, but the calls mostly sleep (a busy machine: the waits for
        # the GIL outweigh the few microseconds of Python): threads
        (_rows(0.05, 0.02, 1.0, 400), False),
        (_rows(0.01, 1.0, 1.0, 400), False),  # not waiting: threads are fine
        (_rows(1.0, 1.0, 1.0, 50), False),  # too few calls to judge (AUTO_MIN_CALLS)
        (_rows(1.0, 1.0, 1.0, 100), True),  # enough for auto, not for the printed verdict
    ],
)
def test_auto_decision(rows, moves):
    procs = FakeProcs()
    st = _process.AutoStage(lambda x: ("thread", x), procs, "stage functions")
    st.probe = lambda: rows
    st._t0 = -1e9  # the first call was long ago: only the calls decide
    out = []
    for i in range(_process.AUTO_CHECK_EVERY * 3):
        out.append(st(i))
        if st._warm is not None:
            st._warm.join()  # the processes start in the background: wait, to be exact
    assert st.on_processes is moves
    # started in the background as soon as it looks GIL-bound (even before the verdict may
    # be given); never for a stage that does not
    looks_bound = rows[0]["gil_wait_s"] >= 0.25 * rows[0]["python_cpu_s"] and (
        rows[0]["python_cpu_s"] >= 0.5 * rows[0]["python_s"])
    assert procs.started == int(looks_bound)
    assert out[-1][0] == ("process" if moves else "thread")
    assert ("moved to worker processes" in (st.decision or "")) is moves
    # the reason given is the rule that moved it: never the verdict's "not GIL-bound"
    assert "not GIL-bound" not in (st.decision or "")
    if moves and not st.verdict.startswith("GIL-bound"):
        assert "waited 0.350 s for the GIL, 35% of the 1.000 s" in st.decision, st.decision


class SlowStartProcs(FakeProcs):
    """Processes whose start waits for ``go``."""

    def __init__(self):
        super().__init__()
        self.go = threading.Event()

    def start(self, prefork=0, field="num_workers"):
        super().start(prefork, field)
        assert self.go.wait(10)


def test_auto_judged_gil_bound_while_the_processes_start_runs_nothing_more_on_threads():
    # The start needs the GIL for each step; GIL-bound threads running on meanwhile made it
    # take 0.4-0.7 s (and ran at half speed). Now, once the verdict is given, the next calls
    # wait for the processes and go there.
    procs = SlowStartProcs()
    on_threads = []
    st = _process.AutoStage(lambda x: on_threads.append(x) or ("thread", x), procs, "f")
    st.probe = lambda: _rows(1.0, 1.0, 1.1, 400)
    st._t0 = -1e9
    n = _process.AUTO_CHECK_EVERY
    out = [st(i) for i in range(n)]  # the n-th call judges: bound, the start begins
    assert procs.started == 1 and st._warm is not None and st._warm.is_alive()
    assert not st.on_processes
    results = []
    caller = threading.Thread(target=lambda: results.append(st(n)))
    caller.start()
    caller.join(0.2)
    assert caller.is_alive(), "the call after the verdict waits for the processes"
    procs.go.set()
    caller.join(10)
    assert results == [("process", n)] and st.on_processes
    assert on_threads == list(range(n))  # nothing ran on threads after the verdict
    assert [st(i) for i in range(n + 1, n + 4)] == [("process", i) for i in range(n + 1, n + 4)]
    assert out[-1] == ("thread", n - 1)


def test_auto_verdict_has_its_own_smaller_minimum():
    from schedlab.dataloader import gil_verdict

    bound = _rows(1.0, 1.0, 1.1, 100)
    # the printed verdict asks 200 calls over 0.25 s; auto judges from 64 calls over 50 ms
    assert gil_verdict(bound, 0.1).startswith("too short")
    assert _process.auto_verdict(bound, 0.1, "f").startswith("GIL-bound")
    assert _process.auto_verdict(_rows(0.01, 1.0, 1.0, 100), 0.1, "f").startswith(
        "not GIL-bound")
    short = _process.auto_verdict(bound, _process.AUTO_MIN_SECONDS / 2, "f")
    assert short.startswith("too short") and "auto judges after 64 calls" in short
    assert _process.auto_verdict(_rows(1.0, 1.0, 1.1, 63), 1.0, "f").startswith("too short")


def test_auto_moves_a_gil_bound_stage_to_processes_and_keeps_a_sleeping_one_on_threads():
    p = schedlab.Pipeline(2000, workers=2).map(python_loop, kind="auto", concurrency=4)
    out = list(p)
    assert [i for i, _ in out] == list(range(2000))
    s = p.report()["processes"]["python_loop"]
    assert s["on_processes"], s["auto"]
    assert "moved to worker processes after" in s["auto"]
    pids = [q for _, q in out]
    # it judged on enough calls (on threads, here) first; in chunks, the items taken by a
    # thread before the move may be later ones than those taken after it
    assert pids.count(os.getpid()) >= _process.AUTO_MIN_CALLS
    assert s["messages"] < s["items"] == len(pids) - pids.count(os.getpid())
    assert os.getpid() not in pids[-100:]  # and the rest ran in processes
    p.close()
    p = schedlab.Pipeline(1500, workers=2).map(sleeper, kind="auto", concurrency=4)
    out = list(p)
    # on threads, each item is its own call to the GIL statistics the verdict reads, though
    # the stage's threads take chunks (a chunk counted as one call needed ~6x the items)
    assert p.report()["gil"]["sleeper"]["calls"] == 1500
    s = p.report()["processes"]["sleeper"]
    assert not s["on_processes"] and s["workers"] == [] and s["zygote"] is None
    assert s["auto"].startswith("on threads: not GIL-bound"), s["auto"]
    assert {q for _, q in out} == {os.getpid()}
    p.close()


# --- the DataLoader -----------------------------------------------------------------------


def test_dataloader_process_workers_match_thread_workers():
    want = [b.tolist() for b in schedlab.DataLoader(Squares(70), batch_size=8, num_workers=2)]
    dl = schedlab.DataLoader(Squares(70), batch_size=8, num_workers=2, worker_type="process",
                             worker_init_fn=record_init)
    got = [b.tolist() for b in dl]
    assert [[r[:2] for r in b] for b in got] == [[r[:2] for r in b] for b in want]
    pids = {r[2] for b in got for r in b}
    assert os.getpid() not in pids and len(pids) <= 2
    r = dl.report()["processes"]["__getitem__"]
    assert {w["pid"] for w in r["workers"]} >= pids and {w["worker"] for w in r["workers"]} == {0, 1}
    assert INIT_IDS == []  # worker_init_fn ran in the worker processes, not here
    dl.close()
    dl = schedlab.DataLoader(InitSeen(8), batch_size=4, num_workers=2, worker_type="process",
                             worker_init_fn=record_init)
    assert {r[1] for b in dl for r in b.tolist()} <= {0, 1}
    dl.close()


def test_dataloader_dead_process_fails_its_batch_only():
    dl = schedlab.DataLoader(KillsSample7(40), batch_size=4, num_workers=2,
                             worker_type="process")
    values, errors = drain(iter(dl))
    assert list(errors) == [1]  # batch 1 holds sample 7
    e = errors[1]
    assert isinstance(e, _process.WorkerDied) and "sample index 7" in str(e)
    assert "signal 9" in str(e)
    assert [int(r[0]) for b in values for r in b] == [i for i in range(40) if i // 4 != 1]
    assert len(dl.report()["processes"]["__getitem__"]["deaths"]) == 1
    dl.close()


def test_dataloader_auto_on_a_gil_bound_dataset():
    dl = schedlab.DataLoader(PythonLoop(2000), batch_size=16, num_workers=4, worker_type="auto")
    rows = [r for b in dl for r in b.tolist()]
    assert [r[0] for r in rows] == list(range(2000))
    s = dl.report()["processes"]["__getitem__"]
    assert s["on_processes"], s["auto"]
    assert os.getpid() not in {r[1] for r in rows[-100:]}
    # on processes, the samples waiting travel in chunks (~1 ms each: up to 10 a message)
    on_processes = sum(r[1] != os.getpid() for r in rows)
    assert s["items"] == on_processes and s["messages"] < on_processes
    dl.close()


class PythonLoop(Squares):
    def __getitem__(self, i):
        return np.array(python_loop(i), dtype=np.int64)


# --- memory -------------------------------------------------------------------------------


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


#: Records of the memory test: ~160 bytes of Python objects each (a tuple, a str, an int and
#: the list's pointer), so over 200 MB in all (measured in the test, not assumed).
BIG_RECORDS = 1_300_000


def test_eight_workers_share_one_copy_of_a_large_dataset():
    """8 worker processes over a dataset holding a list of Python objects of over 200 MB (the
    issue's figure): after an epoch that reads every record in every worker's share, all of
    them together (the zygote and the 8 workers, by PSS: a shared page counted once) use at
    most 1.5x what one worker maps (its RSS). Skipped where the machine has under 3 GiB
    available: the user's process holds the list, and the workers their shared copy."""
    avail = _available_bytes()
    if avail is not None and avail < 3 * 2**30:
        pytest.skip(f"needs 3 GiB of available memory, the machine has {avail / 2**30:.1f} GiB")
    ds = BigList(BIG_RECORDS)
    objects = sys.getsizeof(ds.records) + sum(
        sys.getsizeof(r) + sys.getsizeof(r[0]) + sys.getsizeof(r[1]) for r in ds.records)
    assert objects >= 200e6, objects  # the 200 MB of Python objects, measured
    dl = schedlab.DataLoader(ds, batch_size=64, num_workers=8, worker_type="process")
    total = sum(int(b.sum()) for b in dl)
    assert total == sum(k + len(f"record-{k:09d}") for k in range(BIG_RECORDS))
    s = dl.report()["processes"]["__getitem__"]
    assert len(s["workers"]) == 8
    assert all(w["items"] > 0 for w in s["workers"])  # each worker read its share
    one = max(w["rss_bytes"] for w in s["workers"])
    together = s["zygote"]["pss_bytes"] + sum(w["pss_bytes"] for w in s["workers"])
    assert one > 40 * 2**20  # each worker maps the whole dataset
    assert together <= 1.5 * one, (together / 2**20, one / 2**20)
    dl.close()


def sleep_then_die(x):
    import time

    if x == "die":
        time.sleep(0.3)  # long enough for the other thread's item to wait behind it
        os.kill(os.getpid(), signal.SIGKILL)
    return (x, os.getpid())


def test_the_item_waiting_behind_a_dying_one_is_not_lost():
    """A worker holds two items: one running, one waiting unread in its other socket. When
    the running one kills it, the waiting one goes to the replacement and runs once."""
    import threading
    import time

    st = _process.ProcessStage(sleep_then_die, "s", depth=2)
    st.start(1)
    out = {}

    def run(name, x):
        try:
            out[name] = st(x)
        except Exception as e:  # noqa: BLE001
            out[name] = e

    a = threading.Thread(target=run, args=("a", "die"))
    a.start()
    time.sleep(0.1)
    b = threading.Thread(target=run, args=("b", 5))
    b.start()
    a.join()
    b.join()
    (dead,) = st.deaths
    assert isinstance(out["a"], _process.WorkerDied) and out["a"].pid == dead["pid"]
    assert dead["item"] is True
    assert out["b"][0] == 5 and out["b"][1] != dead["pid"]  # ran once, on the replacement
    assert [w["pid"] for w in st.stats()["workers"]] == [out["b"][1]]
    st.close()


@pytest.mark.parametrize("persistent", [False, True])
def test_a_dataloaders_worker_processes_live_as_long_as_the_loader(persistent):
    # (the docs said a loader without persistent workers started new ones every epoch;
    # torch's does, ours keeps them: its zygote and processes belong to the loader)
    dl = schedlab.DataLoader(Squares(48), batch_size=8, num_workers=2, worker_type="process",
                             persistent_workers=persistent)
    pids = [{int(row[2]) for b in dl for row in b} for _ in range(3)]
    dl.close()
    # the same (at most two) processes in every epoch: new ones each epoch would make up to 6
    assert len(set().union(*pids)) <= 2 and all(pids)


class OpensPerWorker:
    """Its ``worker_init_fn`` opens a "handle" on the dataset copy of each worker process
    through torch's ``get_worker_info().dataset``, as h5py readers do."""

    handle = None

    def __len__(self):
        return 16

    def __getitem__(self, i):
        import torch

        info = torch.utils.data.get_worker_info()
        return (i, self.handle, info.id, info.num_workers, info.seed == torch.initial_seed())


def open_handle(worker_id):
    import torch

    info = torch.utils.data.get_worker_info()
    assert info.id == worker_id
    info.dataset.handle = f"opened by worker {worker_id}"


def test_torchs_get_worker_info_works_in_a_worker_process():
    # before: None there (torch's own workers set it), so a worker_init_fn that reached the
    # dataset through it failed with AttributeError
    pytest.importorskip("torch")
    dl = schedlab.DataLoader(OpensPerWorker(), batch_size=4, num_workers=2,
                             worker_type="process", worker_init_fn=open_handle,
                             multiprocessing_context="fork", collate_fn=list)
    rows = [r for b in dl for r in b]
    dl.close()
    assert [r[0] for r in rows] == list(range(16))
    assert {r[2] for r in rows} <= {0, 1} and {r[3] for r in rows} == {2}
    assert all(r[1] == f"opened by worker {r[2]}" for r in rows) and all(r[4] for r in rows)


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def raises_two_arg(i):
    if i == 2:
        raise TwoArgError(i, "x")
    return i


def test_an_exception_that_cannot_be_rebuilt_arrives_as_runtimeerror_with_its_traceback():
    # before: the user's process failed to unpickle it, and raised that TypeError
    # ("__init__() missing 1 required positional argument") in place of the user's error
    p = schedlab.Pipeline(4, workers=2).map(raises_two_arg, kind="process", concurrency=2)
    it = iter(p)
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(RuntimeError, match="TwoArgError: 2/x") as e:
        next(it)
    assert "raise TwoArgError(i, \"x\")" in str(e.value)
    assert next(it) == 3
    p.close()


def square_unless_13(i):
    if i == 13:
        raise ValueError(f"no square for {i}")
    return i * i


def slow_square(i):
    time.sleep(0.001)
    return i * i


def test_chunks_each_item_once_in_order_in_fewer_messages():
    p = schedlab.Pipeline(400, workers=2).map(slow_square, kind="process", concurrency=2,
                                                chunk=8)
    assert list(p) == [i * i for i in range(400)]
    s = p.report()["processes"]["slow_square"]
    assert s["items"] == sum(w["items"] for w in s["workers"]) == 400
    # the threads took the items waiting, up to 8 a message (1 ms items queue up behind
    # the two processes)
    assert 400 / 8 <= s["messages"] == sum(w["messages"] for w in s["workers"]) < 400
    p.close()


def test_a_failure_in_a_chunk_is_its_items_alone():
    p = schedlab.Pipeline(200, workers=2).map(square_unless_13, kind="process", chunk=16)
    values, errors = drain(iter(p))
    assert sorted(values) == [i * i for i in range(200) if i != 13]
    assert list(errors) == [13] and isinstance(errors[13], ValueError)
    assert "13" in str(errors[13])
    p.close()


@pytest.mark.parametrize("progress", [True, False])
def test_kill_test_in_chunks_each_death_costs_its_item(monkeypatch, progress):
    # without the shared progress words (no memfd_create), a death runs its chunk's items
    # again one by one, and the killer kills once more: its item alone fails
    if not progress:
        monkeypatch.setattr(_process, "_progress_fd", lambda n: None)
    p = schedlab.Pipeline(1000, workers=2, start_method="fork").map(
        killer, kind="process", concurrency=2, chunk=8)
    values, errors = drain(iter(p))
    assert sorted(values) == [i for i in range(1000) if i not in KILLS]
    assert len(values) == len(set(values)) == 980
    assert sorted(errors) == sorted(KILLS)
    assert all(isinstance(e, _process.WorkerDied) for e in errors.values())
    s = p.report()["processes"]["killer"]
    died_on_item = [d for d in s["deaths"] if d["item"]]
    assert len(died_on_item) == 20
    if progress:
        assert len(s["deaths"]) == 20
    # chunks were sent (the items are instant: they queue up behind the two processes)
    assert s["messages"] < s["items"]
    p.close()


def test_chunk_is_a_process_stages_alone():
    with pytest.raises(ValueError, match='chunk: only a kind="process" or "auto" stage'):
        schedlab.Pipeline(10).map(square, chunk=4)
    with pytest.raises(ValueError, match="chunk"):
        schedlab.Pipeline(10).map(square, kind="process", chunk=0)


class SlowSquares(Squares):
    """1 ms a sample: the samples queue up behind the two processes."""

    def __getitem__(self, i):
        time.sleep(0.001)
        return i * i


class Killer(Squares):
    def __getitem__(self, i):
        return killer(i)


def test_a_process_dataloader_sends_the_waiting_samples_in_chunks():
    for chunk in (8, None, 1):
        dl = schedlab.DataLoader(SlowSquares(400), batch_size=8, num_workers=2,
                                 worker_type="process", chunk=chunk)
        for _ in range(2):
            assert [int(x) for b in dl for x in b] == [i * i for i in range(400)]
        s = dl.report()["processes"]["__getitem__"]
        assert s["items"] == sum(w["items"] for w in s["workers"]) == 800
        if chunk == 1:
            assert s["messages"] == 800
        else:
            # the samples waiting, up to 8 (or by default 16, as many as fit in 10 ms of
            # their own time) a message
            assert 800 / (chunk or 16) <= s["messages"] < 800
        dl.close()


def test_the_default_chunk_is_timed_by_the_items_own_time_not_their_calls(monkeypatch):
    # the engine times a chunk by its call, from the send to the answer; a process fed by
    # ITEMS_PER_WORKER threads runs one thread's message while the others' wait, so on a
    # busy stage a call lasts that many times its own work: the rule's seconds scale by the
    # threads per process (an auto stage's threads lease one process each)
    most, secs = _process.DEFAULT_CHUNK, _process.DEFAULT_CHUNK_S
    depth = _process.ITEMS_PER_WORKER
    assert _process.default_chunk(depth) == (most, depth * secs)
    assert _process.default_chunk(1) == _process.default_chunk(0) == (most, secs)
    given = []
    real = schedlab.dataloader._core.LoaderCore
    monkeypatch.setattr(schedlab.dataloader._core, "LoaderCore",
                        lambda *a: given.append(a[-1]) or real(*a))
    for worker_type in ("process", "auto"):
        dl = schedlab.DataLoader(Squares(8), batch_size=4, num_workers=2,
                                 worker_type=worker_type)
        assert len([b for b in dl]) == 2
        dl.close()
    assert given == [(most, depth * secs), (most, secs)]
    for kind, per in (("process", depth), ("auto", 1)):
        p = schedlab.Pipeline(4, workers=2).map(square, kind=kind, concurrency=2)
        stages, procs = p._rust_stages()
        assert stages[0][9] == (most, per * secs)
        for st in procs.values():
            st.close()


def test_a_process_dataloader_in_chunks_kill_test():
    # 1,000 samples, 20 of which kill their process (signal, _exit, segfault, abort); a
    # window of 4 batches of 4 lets chunks of up to 8 form
    dl = schedlab.DataLoader(Killer(1000), batch_size=4, num_workers=2, worker_type="process",
                             multiprocessing_context="fork", prefetch_factor=4, chunk=8)
    values, errors = drain(iter(dl))
    assert sorted(errors) == sorted(i // 4 for i in KILLS)
    assert all(isinstance(e, _process.WorkerDied) for e in errors.values())
    assert all(f"sample index {i}" in str(errors[i // 4]) for i in KILLS)
    got = [int(x) for b in values for x in b]
    assert got == [i for i in range(1000) if i // 4 not in errors]
    s = dl.report()["processes"]["__getitem__"]
    assert len(s["deaths"]) == 20 and s["messages"] < s["items"]
    dl.close()


def test_a_dataloaders_chunk_argument():
    with pytest.raises(ValueError, match='chunk: .*needs worker_type="process" or "auto"'):
        schedlab.DataLoader(Squares(10), num_workers=2, chunk=4)
    with pytest.raises(ValueError, match="chunk"):
        schedlab.DataLoader(Squares(10), num_workers=2, worker_type="process", chunk=0)
    with pytest.raises(ValueError, match="chunk: 4 samples .*strategy='work-stealing'"):
        schedlab.DataLoader(Squares(10), num_workers=2, worker_type="process", chunk=4,
                            strategy="work-stealing")
    # another strategy: one sample a message, under that strategy
    dl = schedlab.DataLoader(Squares(40), batch_size=4, num_workers=2, worker_type="process",
                             strategy="round-robin")
    assert [int(r[0]) for b in dl for r in b] == list(range(40))
    s = dl.report()["processes"]["__getitem__"]
    assert s["messages"] == s["items"] == 40
    dl.close()


def test_a_thread_finding_every_socket_leased_waits_for_one_then_forks(monkeypatch):
    """One process of two sockets, held by two threads: a third thread takes the socket the
    first gives back when it ends, within LEASE_WAIT_S, and forks no process (an epoch's
    threads starting while the last epoch's end); a socket never given back costs a process
    more after LEASE_WAIT_S, as before there was a wait."""
    import threading

    st = _process.ProcessStage(pid_of, "s", depth=2)
    st.start(1)
    release = [threading.Event() for _ in range(3)]
    out = {}

    def hold(k):
        out[k] = st(k)  # leases a socket for the thread's life
        release[k].wait()

    monkeypatch.setattr(_process, "LEASE_WAIT_S", 60.0)
    a, b = (threading.Thread(target=hold, args=(k,)) for k in (0, 1))
    a.start()
    b.start()
    while len(out) < 2:
        time.sleep(0.01)
    c = threading.Thread(target=hold, args=(2,))
    c.start()
    time.sleep(0.2)
    assert 2 not in out  # waiting for a socket
    release[0].set()
    a.join()
    while 2 not in out:
        time.sleep(0.01)
    assert out[2][1] == out[0][1] and len(st.stats()["workers"]) == 1
    # every socket held for good (threads 1 and 2): the next thread forks after the wait
    monkeypatch.setattr(_process, "LEASE_WAIT_S", 0.05)
    d = threading.Thread(target=lambda: out.__setitem__(3, st(3)))
    d.start()
    d.join()
    assert out[3][1] != out[0][1] and len(st.stats()["workers"]) == 2
    for e in release:
        e.set()
    b.join()
    c.join()
    st.close()


def ran_at(x):
    """Sleeps ``x`` seconds if ``x`` is a number; says when it started, in this process."""
    t = time.monotonic()
    if isinstance(x, float):
        time.sleep(x)
    return x, t


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="the sequence words need memfd")
def test_a_worker_takes_the_oldest_of_the_messages_waiting():
    """Three sockets of one process: while it runs a long item from socket 0, socket 2 gets
    a message, then socket 1 another. The worker takes socket 2's next (sent first), where
    it used to take them in socket order (socket 1's first): in order delivery waits for the
    earlier positions, which the earlier message holds."""
    import threading

    st = _process.ProcessStage(ran_at, "s", depth=3)
    st.start(1)
    out, leased = {}, [threading.Event() for _ in range(3)]
    go = [threading.Event() for _ in range(3)]

    def thread(k, item):
        st.init_worker(k)  # leases socket k (the free ones go in order)
        leased[k].set()
        go[k].wait()
        out[k] = st(item)

    ts = []
    for k, item in ((0, 1.0), (1, "sent second"), (2, "sent first")):
        ts.append(threading.Thread(target=thread, args=(k, item)))
        ts[-1].start()
        leased[k].wait()  # thread k holds socket k before the next one leases
    go[0].set()
    time.sleep(0.25)
    go[2].set()
    time.sleep(0.25)  # (while socket 0's item runs: the two wait)
    go[1].set()
    for t in ts:
        t.join()
    assert out[2][1] < out[1][1], out
    st.close()


def test_autotune_keeps_a_process_stages_processes():
    # the tuner sizes blocking stages by Little's law; a process stage's threads each hold a
    # worker process's socket, and raising them forked up to 128 processes here
    p = schedlab.Pipeline(3000, workers=2, autotune=True).map(
        slow_square, kind="process", concurrency=2).batch(32)
    for e in range(2):
        assert [v for b in p.epoch(e) for v in b] == [i * i for i in range(3000)]
    s = p.report()["processes"]["slow_square"]
    assert len(s["workers"]) == 2 and s["items"] == 6000
    p.close()


class ArrayAt:
    def __init__(self, a):
        self.a = a

    def __call__(self, i):
        return int(self.a[i * 1000])


def _my_segments():
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"schedlab-{os.getpid()}-")]


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_a_large_array_reaches_the_zygote_through_shared_memory():
    a = np.arange(1 << 20, dtype=np.int64)  # 8 MB
    segments = []
    data = _process.check_picklable("fn", {"a": a}, segments)
    # the pickle holds the segment's name, not the 8 MB
    assert data[:1] == b"S" and len(data) < 10_000 and len(segments) == 1
    out = _process.load_shared(data)
    assert np.array_equal(out["a"], a) and _my_segments() == []  # mapped, then unlinked
    assert len(_process.check_picklable("fn", {"a": a})) > a.nbytes  # without: in the pickle
    p = schedlab.Pipeline(8, workers=2).map(ArrayAt(a), kind="process", concurrency=2)
    assert list(p) == [i * 1000 for i in range(8)]
    p.close()
    assert _my_segments() == []


def test_the_root_imports_what_a_payload_needs_once_for_every_zygote():
    # a zygote forked by the root has the payload's modules (the dataset's, torch) loaded
    # already, instead of importing them for each loader (torch: seconds)
    a = np.arange(2000, dtype=np.int64)
    payload = _process.check_picklable("fn", (ArrayAt(a), None))
    mods = _process.modules_of(payload)
    assert ArrayAt.__module__ in mods and "__main__" not in mods
    p = schedlab.Pipeline(2, workers=1, start_method="forkserver").map(
        ArrayAt(a), kind="process", concurrency=1)
    assert list(p) == [0, 1000]
    p.close()
    root = _process._Root._roots["forkserver"]
    assert set(mods) <= root.imported
    # and numpy.random, which numpy 2 imports on first use: every worker's seeding, ~10 ms
    # each before its first item when it was not loaded in the root
    assert "numpy.random" in root.imported


def test_a_payloads_modules_are_read_once_and_filtered_by_what_is_loaded_at_each_start(
        monkeypatch):
    # a loader made again over the same dataset pickles the same bytes: its names are read
    # once; which of them are loaded is asked at each start
    import colorsys

    payload = _process.check_picklable("fn", (colorsys.rgb_to_hsv, None))
    reads = []
    real = _process._names_in
    monkeypatch.setattr(_process, "_names_in", lambda data: reads.append(1) or real(data))
    monkeypatch.setattr(_process, "_NAMES", {})
    assert "colorsys" in _process.modules_of(payload)
    monkeypatch.delitem(sys.modules, "colorsys")
    assert "colorsys" not in _process.modules_of(bytes(payload))  # an equal payload
    monkeypatch.setitem(sys.modules, "colorsys", colorsys)
    assert "colorsys" in _process.modules_of(payload)
    assert len(reads) == 1
    # one larger than the cache keeps is read each time, and not kept
    monkeypatch.setattr(_process, "_NAMES_BYTES", 16)
    other = _process.check_picklable("fn", (colorsys.hsv_to_rgb, None))
    assert "colorsys" in _process.modules_of(other) and "colorsys" in _process.modules_of(other)
    assert len(reads) == 3 and len(_process._NAMES) == 1


def test_the_check_at_map_pickles_nothing_it_keeps():
    # map() checks that the function pickles without keeping the pickle (nor copying the
    # arrays bound into it): the stage pickles it for real at its start
    a = np.zeros(1 << 22, dtype=np.uint8)
    assert _process.check_pickles("fn", ArrayAt(a)) is None and _my_segments() == []
    with pytest.raises(TypeError, match="fn: worker processes receive it pickled"):
        _process.check_pickles("fn", {"a": a, "f": lambda x: x})
    with pytest.raises(TypeError, match="fn: worker processes receive it pickled"):
        schedlab.Pipeline(4).map(lambda x: x, kind="process")
