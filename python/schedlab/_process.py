"""Worker processes for Python that holds the GIL: ``Pipeline.map(fn, kind="process")`` and
``DataLoader(worker_type="process")``.

How it fits the engine: a process stage *is* a blocking stage. Each of its threads leases
one socket of a worker process (:class:`ProcessStage`, one per stage; ``ITEMS_PER_WORKER``
sockets per process) and hands it one item at a time, waiting for the answer in Rust
(``_core.exchange``), without the GIL. So the engine's windows, order, back-pressure,
failure policy, checkpoints and statistics apply unchanged, and a slow item holds one
process (and the one item waiting behind it), never a batch.

Processes::

    the user's process (engine threads)
        |  "zygote": a new zygote's control socket (its fd passed back)
        v
    the root (one per start method, started with it at the first stage; single-threaded)
        |  os.fork()
        v
    the zygote (one per stage)
        |  control socket: the pickled function once, then "fork", "reap"
        |  os.fork(); the worker's sockets (their fds passed back over the control socket)
        v
    worker processes (run ``fn(item)``, one item at a time, from their sockets in turn)

Who closes what: a socket a thread leases is closed only by that thread (after it moved to
a dead worker's replacement) or once no thread holds it; the fd behind ``exchange`` is never
closed under a reader, so its number cannot be reused while it reads.

A root's zygote forked ahead (its *spare*, for the next stage) forks that stage's first
workers ahead too, before the payload comes: *blank* workers (:class:`_Blank`), each of which
loads the payload itself when it comes (a small one) and starts at the stage's first ``fork``.

The zygote is forked by the root, which is started with ``start_method`` once (a start costs
~10 ms with ``forkserver``, ~150 ms with ``spawn``, where a fork of the idle root costs ~2 ms,
and every loader starts a zygote); with ``"fork"`` the zygote is a fork of the user's process
itself (no root). By default: ``"fork"`` while the user's process is single-threaded
(``/proc/self/task`` has one entry: no other thread can hold a lock across the fork, and the
zygote starts in milliseconds), else ``"forkserver"``: forking the user's
process while the engine's Rust threads (or any others) run is unsafe (a lock another thread
held at the fork stays locked forever in the child: the allocator's, Python's, the
engine's), and ``"spawn"`` starts a fresh interpreter (slow). ``"forkserver"``, ``"spawn"``
and ``"fork"`` can be asked for (``"fork"`` then forks even with threads running: use it
knowingly). The zygote is single-threaded, so *it* forks safely: workers start (and dead ones
are replaced) in a few milliseconds, and share the zygote's pages (the interpreter, the
imported modules, the unpickled function and dataset) copy-on-write.

Messages: one byte of kind, then a pickle (protocol 5), or, without pickle, an int of 64 bits
(``N`` and 8 bytes: a sample's index) or a small numpy array (``A``, its dtype and shape, its
bytes). A thread waits for its answer with ``poll`` (see ``src/process.rs``: a blocking read
would also wake when the worker takes the next item). Contiguous buffers of
``SHM_MIN_BYTES`` or more (numpy arrays, ``bytes``) travel out of band in POSIX shared memory:
the sender copies each into a fresh segment once, the receiver maps it (zero copies) and
unlinks the name at once, so the array it gets is a view of the mapping, freed with it. Only
the pickle's header (dtype, shape, the segment's name) goes through the socket.

A worker that dies (a signal, ``os._exit``, a segfault) while running an item makes that
item a :class:`WorkerDied` error naming the pid and the signal or exit status; the zygote
reaps it and forks a replacement, and the next item goes there.
"""

from __future__ import annotations

import copyreg
import gc
import io
import itertools
import operator
import mmap
import os
import importlib
import pickle
import pickletools
import random
import secrets
import select
import signal
import socket
import sys
import threading
import time
import traceback
import types
import weakref
from array import array
from collections import deque
from collections.abc import Sequence
from multiprocessing import current_process, get_context
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle

from ._core import task_limit

try:
    from ._core import exchange
except ImportError:  # pragma: no cover - not POSIX: process stages are refused at start
    exchange = None  # type: ignore[assignment]
from typing import Any, Callable, NoReturn, Optional, cast

try:  # POSIX shared memory, as multiprocessing.shared_memory uses it (without its tracker)
    import _posixshmem  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - not POSIX
    _posixshmem = None

#: Buffers at least this large go through shared memory rather than the socket.
SHM_MIN_BYTES = 64 * 1024

#: The start methods a process stage accepts; the first is the default.
START_METHODS = ("forkserver", "spawn", "fork")

_SEG = itertools.count()

#: Replacements of a worker that dies before it takes an item, before the item fails.
_RESENDS = 3


class WorkerDied(RuntimeError):
    """A worker process died while it ran this item (killed by a signal, ``os._exit``, a
    crash). ``pid``, ``signal`` (the signal's number, or ``None``) and ``exitcode`` say how;
    the process was replaced and the other items were not affected."""

    pid: Optional[int] = None
    signal: Optional[int] = None
    exitcode: Optional[int] = None


class _RemoteTraceback(Exception):
    """The worker process's traceback, chained as the cause of the exception it raised."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def start_method_arg(name: str, value: Any) -> Optional[str]:
    """``value`` as a start method name (a str or a multiprocessing context; ``None``: the
    default, see :func:`zygote_start_method`), else ``ValueError`` / ``TypeError`` naming
    ``name``."""
    if value is None:
        return None
    if hasattr(value, "get_start_method") and not isinstance(value, str):
        value = value.get_start_method()
    if not isinstance(value, str):
        raise TypeError(
            f"{name}: expected a start method name or a multiprocessing context, got "
            f"{type(value).__name__}"
        )
    if value not in START_METHODS:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, START_METHODS))}, got "
                         f"{value!r}")
    return value


def _single_threaded() -> bool:
    """True when this process has one thread (Linux: ``/proc/self/task``), so that nothing
    can hold a lock across a fork; False when unknown."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def zygote_start_method(asked: Optional[str]) -> tuple[str, str]:
    """``(start method, why)`` for a zygote: the one asked for; by default ``"fork"`` while
    this process is single-threaded (nothing can hold a lock across the fork, and the zygote
    starts in milliseconds, without re-importing ``__main__``), else ``"forkserver"``."""
    if asked is not None:
        return asked, "as asked"
    if _single_threaded():
        return "fork", "the default: this process was single-threaded"
    return "forkserver", "the default: threads were running here"


# --- what the workers share: large lists of plain data, packed -----------------------------

#: Lists at least this long whose elements are plain data reach the workers as a PackedList.
PACK_MIN_LEN = 4096

_PLAIN = frozenset((str, bytes, int, float, bool, type(None)))


def _plain(x: Any, depth: int = 0) -> bool:
    """Plain data: str, bytes, numbers, None, and tuples, lists and dicts of them (3 deep)."""
    t = type(x)
    if t in _PLAIN:
        return True
    if depth >= 3:
        return False
    if t is tuple or t is list:
        return all(_plain(y, depth + 1) for y in x)
    if t is dict:
        return all(type(k) in _PLAIN and _plain(v, depth + 1) for k, v in x.items())
    return False


def _packed(blob: bytes, n: int) -> "PackedList":
    return PackedList._of(blob, n)


class PackedList(Sequence):  # type: ignore[type-arg]
    """A read-only list kept as one ``bytes`` object: the offsets of its elements, then each
    element pickled. Reading an element unpickles a fresh copy of it.

    Why: a worker process forked from the zygote shares the zygote's pages until it writes
    to them, and CPython writes to an object whenever it reads it (its reference count).
    Over an epoch every worker reads elements on every page of a list of Python objects, so
    each worker ends up with its own copy of the list (torch's "copy-on-read"). A list
    packed into one ``bytes`` object is read without writing to it (only its header's count
    changes: one page), so all the workers share one copy. Large lists of plain data
    (``PACK_MIN_LEN`` elements or more, each str / bytes / numbers / None or tuples, lists
    and dicts of them) in a process stage's function or a DataLoader's dataset reach the
    workers packed; the user's process keeps its list as it is.
    """

    __slots__ = ("_blob", "_n", "_offsets", "_data")

    def __init__(self, items: Any = ()) -> None:
        pieces = [pickle.dumps(x, protocol=5) for x in items]
        offsets = array("q", [0] * (len(pieces) + 1))
        at = 0
        for k, p in enumerate(pieces):
            at += len(p)
            offsets[k + 1] = at
        self._set(offsets.tobytes() + b"".join(pieces), len(pieces))

    @classmethod
    def _of(cls, blob: bytes, n: int) -> "PackedList":
        self = cls.__new__(cls)
        self._set(blob, n)
        return self

    def _set(self, blob: bytes, n: int) -> None:
        self._blob, self._n = blob, n
        view = memoryview(blob)
        self._offsets = view[: 8 * (n + 1)].cast("q")
        self._data = view[8 * (n + 1) :]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        k = operator.index(i)
        if k < 0:
            k += self._n
        if not 0 <= k < self._n:
            raise IndexError("list index out of range")
        return pickle.loads(self._data[self._offsets[k] : self._offsets[k + 1]])

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, (list, PackedList)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedList({len(self)} elements, {len(self._blob)} bytes)"

    def __reduce__(self) -> Any:
        return (_packed, (self._blob, self._n))


class _SharingPickler(pickle.Pickler):
    """Pickles large lists of plain data as :class:`PackedList` (a persistent id: the C
    pickler consults ``reducer_override`` for no exact ``list``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._packed: dict[int, tuple[Any, ...]] = {}

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is not list or len(obj) < PACK_MIN_LEN:
            return None
        key = id(obj)
        if key not in self._packed:
            if not all(_plain(x) for x in obj):
                return None
            p = PackedList(obj)
            self._packed[key] = ("schedlab.PackedList", p._blob, p._n, obj)
        return self._packed[key][:3]


class _SharingUnpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 3 and pid[0] == "schedlab.PackedList":
            return PackedList._of(pid[1], pid[2])
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


#: The first byte of a payload whose large buffers are in shared memory (a pickle's is
#: ``\x80``): the segments' list follows (its length in 4 bytes, then pickled), then the pickle.
_SHM_PAYLOAD = b"S"


def _payload_parts(data: bytes) -> tuple[list[tuple[str, int]], bytes]:
    """A payload of :func:`check_picklable` split: its shared-memory segments (none for a
    plain pickle) and its pickle."""
    if data[:1] != _SHM_PAYLOAD:
        return [], data
    n = int.from_bytes(data[1:5], "little")
    return pickle.loads(data[5:5 + n]), data[5 + n:]


def load_shared(data: bytes) -> Any:
    """The inverse of :func:`check_picklable`: the buffers it put in shared memory are
    mapped (not copied) and their names unlinked."""
    segments, data = _payload_parts(data)
    if not segments:
        return _SharingUnpickler(io.BytesIO(data)).load()
    buffers = [_from_shm(name, size) for name, size in segments]
    return _SharingUnpickler(io.BytesIO(data), buffers=buffers).load()


#: Opcodes of a payload read for its modules at most (a payload whose data went to shared
#: memory is small; one that holds its data in the pickle is not read to its end).
_MODULE_SCAN_OPS = 50_000


#: The names a payload's pickle mentions, by payload (:func:`modules_of`): a loader made
#: again over the same dataset (a fresh one per epoch) pickles the same bytes, and reading
#: them op by op took 3-4 ms of each start (a 3,000-int list). At most ``_NAMES_MAX``
#: payloads of at most ``_NAMES_BYTES`` each are kept (a larger one is read again: at most
#: ``_MODULE_SCAN_OPS`` ops).
_NAMES: dict[bytes, list[str]] = {}
_NAMES_MAX = 8
_NAMES_BYTES = 1 << 20


def _names_in(data: bytes) -> list[str]:
    """The strings of a pickle that may name a module (GLOBAL's module, STACK_GLOBAL's
    strings), in order, each once."""
    names: list[str] = []
    try:
        for k, (op, arg, _) in enumerate(pickletools.genops(data)):
            if k >= _MODULE_SCAN_OPS:
                break
            if not isinstance(arg, str):
                continue
            # GLOBAL (protocols 0-3) names "module qualname"; STACK_GLOBAL's module is a string
            name = arg.split(" ", 1)[0] if op.name == "GLOBAL" else arg
            if name not in names:
                names.append(name)
    except Exception:  # noqa: BLE001 - a pickle genops cannot read: nothing to preload
        pass
    return names


def modules_of(payload: bytes) -> list[str]:
    """The modules loaded here whose names a payload's pickle mentions (its classes' and
    functions' modules: ``torch.utils.data.dataset``, the dataset's own), ``__main__`` left
    out: what a zygote would import to unpickle it, for the root to import once."""
    _, data = _payload_parts(payload)
    small = len(data) <= _NAMES_BYTES
    names = _NAMES.get(data) if small else None
    if names is None:
        names = _names_in(data)
        if small:
            if len(_NAMES) >= _NAMES_MAX:
                _NAMES.clear()
            _NAMES[data] = names
    return [n for n in names
            if n in sys.modules and n not in ("__main__", "__mp_main__", "builtins")]


class _Discard(io.RawIOBase):
    """A sink that keeps nothing (:func:`check_pickles`)."""

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return len(memoryview(b))


def check_pickles(name: str, obj: Any) -> None:
    """``TypeError`` naming ``name`` where ``obj`` cannot be pickled for the worker
    processes, as :func:`check_picklable` says, without keeping the pickle: its buffers
    (numpy arrays, tensors) are handed out of band and dropped, the rest written nowhere
    (``Pipeline.map(kind="process")`` checks the function at ``map()``; the stage pickles it
    for the zygote at its start: a dataset bound into it is not copied twice)."""
    _pickle_for_workers(name, obj, _Discard(), lambda pb: False)


def _pickle_for_workers(name: str, obj: Any, out: Any,
                        buffer_callback: Optional[Callable[[Any], bool]]) -> None:
    try:
        p = _SharingPickler(out, protocol=5, buffer_callback=buffer_callback)
        table = _tensor_dispatch()
        if table is not None:
            # tensors as numpy arrays, as in the messages: half the time of torch's pickling
            # for a 200 MB TensorDataset, and a view is its own elements, not its storage
            p.dispatch_table = table
        p.dump(obj)
    except Exception as e:
        raise TypeError(
            f"{name}: worker processes receive it pickled, and pickling it failed "
            f"({type(e).__name__}: {e}); use a module-level function or a picklable object"
        ) from e


def check_picklable(name: str, obj: Any,
                    segments: Optional[list[tuple[str, int]]] = None) -> bytes:
    """``obj`` pickled for the worker processes (large lists of plain data packed, see
    :class:`PackedList`), or ``TypeError`` naming ``name`` (a process stage's function and
    the DataLoader's dataset reach the worker processes pickled). With ``segments`` (a
    list), buffers of :data:`SHM_MIN_BYTES` or more (numpy arrays, tensors) go to shared
    memory instead, their segments listed there for the caller to unlink once the
    receiver has mapped them: a 200 MB ``TensorDataset`` then reaches the zygote without
    crossing its pipe (the zygote maps it, and its workers share the mapping)."""

    buf = io.BytesIO()
    try:
        _pickle_for_workers(name, obj, buf,
                            None if segments is None else _out_of_band(segments))
    except BaseException:
        if segments:
            _unlink([n for n, _ in segments])
        raise
    if not segments:
        return buf.getvalue()
    head = pickle.dumps(segments, protocol=5)
    return _SHM_PAYLOAD + len(head).to_bytes(4, "little") + head + buf.getvalue()


# --- messages -----------------------------------------------------------------------------


def _to_shm(m: memoryview) -> tuple[str, int]:
    name = f"/schedlab-{os.getpid()}-{next(_SEG)}-{secrets.token_hex(4)}"
    fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        try:
            os.ftruncate(fd, m.nbytes)
            done = 0
            while done < m.nbytes:
                done += os.write(fd, m[done:])
        except BaseException:
            _posixshmem.shm_unlink(name)
            raise
    finally:
        os.close(fd)
    return name, m.nbytes


_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def _out_of_band(segments: list[tuple[str, int]]) -> Callable[[pickle.PickleBuffer], bool]:
    """A pickler's ``buffer_callback`` that puts each contiguous buffer of
    :data:`SHM_MIN_BYTES` or more in a shared-memory segment of its own, listed in
    ``segments`` (out of band: ``False``); a smaller one, or one that cannot go there
    (/dev/shm full or missing), stays in the pickle (``True``)."""

    def out_of_band(pb: pickle.PickleBuffer) -> bool:
        try:
            m = pb.raw()
        except BufferError:
            return True
        if m.nbytes < SHM_MIN_BYTES or _posixshmem is None:
            return True
        try:
            segments.append(_to_shm(m))
        except OSError:
            return True
        return False

    return out_of_band


def _from_shm(name: str, size: int) -> mmap.mmap:
    fd = _posixshmem.shm_open(name, os.O_RDWR, mode=0o600)
    try:
        # mapped with its pages at once (one call, not a fault per page on first touch)
        return mmap.mmap(fd, size, flags=_MAP_FLAGS)
    finally:
        os.close(fd)
        try:
            _posixshmem.shm_unlink(name)
        except OSError:
            pass


def pack(kind: bytes, obj: Any, sent: Optional[list[str]] = None) -> bytes:
    """One message: ``kind`` (one lowercase byte), then ``obj`` pickled; large contiguous
    buffers go to shared memory (``kind`` upper-cased, the segments listed first). ``sent``
    collects the segments' names (the sender unlinks them if the receiver never does)."""
    if type(obj) is int and _INT_MIN <= obj <= _INT_MAX:
        return kind + _INT + obj.to_bytes(8, "little", signed=True)
    if type(obj) is _ndarray and obj.nbytes < SHM_MIN_BYTES:
        raw = _pack_array(kind, obj)
        if raw is not None:
            return raw
    segs: list[tuple[str, int]] = []
    out_of_band = _out_of_band(segs)
    table = _tensor_dispatch()
    if table is None:
        data = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
    else:
        f = io.BytesIO()
        p = pickle.Pickler(f, protocol=5, buffer_callback=out_of_band)
        p.dispatch_table = table
        p.dump(obj)
        data = f.getvalue()
    if not segs:
        return kind + data
    if sent is not None:
        sent.extend(n for n, _ in segs)
    head = pickle.dumps(segs, protocol=5)
    return kind.upper() + len(head).to_bytes(4, "little") + head + data


#: ``copyreg``'s dispatch table plus :func:`_reduce_tensor` for ``torch.Tensor``, made
#: once torch has been imported (by the user's code: never here); see :func:`_tensor_dispatch`.
_TENSOR_TABLE: Optional[dict[Any, Any]] = None


def _tensor_dispatch() -> Optional[dict[Any, Any]]:
    """The dispatch table that sends torch tensors as numpy arrays, or ``None`` while torch
    is not loaded in this process.

    Why: a tensor pickles its storage through ``torch.save`` into bytes, through the socket,
    and the *whole* storage of a view (a ``TensorDataset`` row of a 200 MB tensor crossed as
    200 MB); as numpy arrays, large ones go out of band through shared memory and a view is
    its own elements (600 KB tensors through two workers: 1,354-1,732 items/s through torch's
    pickling, 1,978-2,230 this way). Tensors that shared a storage arrive as separate ones.
    Scoped to this module's messages and payloads (a pickler's own table): the user's code
    that pickles tensors (``torch.save``) is untouched."""
    global _TENSOR_TABLE
    if _TENSOR_TABLE is None:
        torch = sys.modules.get("torch")
        if torch is None or not hasattr(torch, "Tensor"):
            return None
        table = dict(copyreg.dispatch_table)
        table[torch.Tensor] = _reduce_tensor
        _TENSOR_TABLE = table
    return _TENSOR_TABLE


def _tensor_from_numpy(a: Any) -> Any:
    """The parent's side of :func:`_reduce_tensor`: a tensor over the array's memory (the
    shared-memory mapping, for a large one: no copy)."""
    import torch

    return torch.from_numpy(a)


def _reduce_tensor(t: Any) -> Any:
    """A plain CPU tensor (strided, no autograd, a dtype numpy has) as the numpy array of its
    elements (contiguous, copied only if it was not); anything else as torch pickles it."""
    torch = sys.modules["torch"]
    if (not t.requires_grad and t.layout == torch.strided and t.device.type == "cpu"
            and not t.is_conj() and not t.is_neg()):
        try:
            a = t.detach().contiguous().numpy()
        except (RuntimeError, TypeError):  # bfloat16 and others numpy lacks
            pass
        else:
            return _tensor_from_numpy, (a,)
    return t.__reduce_ex__(5)


try:
    import numpy as _np

    _ndarray: Any = _np.ndarray
except ImportError:  # pragma: no cover - numpy is optional
    _np = None  # type: ignore[assignment]
    _ndarray = None

#: The second byte of a message that is one small numpy array (a pickle starts ``\x80``).
_ARRAY = b"A"
#: The second byte of a message that is one int of 64 bits (a sample's index), 8 bytes
#: little-endian after it: no pickle.
_INT = b"N"
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
#: Array headers seen (``dtype|shape`` -> dtype, shape): the answers of a stage mostly share
#: one, so parsing it is a dict look-up. Cleared when it holds ``_HEADS_MAX``.
_HEADS: dict[bytes, tuple[Any, tuple[int, ...]]] = {}
_HEADS_MAX = 256


#: The other way: ``(dtype, shape)`` -> ``A``, ``dtype|shape`` and the NUL (a worker's answers
#: mostly share one, so building it is a dict look-up: ~1.4 -> ~0.4 us an answer). Only plain
#: dtypes enter it. Cleared when it holds ``_HEADS_MAX``.
_PACK_HEADS: dict[tuple[Any, tuple[int, ...]], bytes] = {}


def _pack_array(kind: bytes, a: Any) -> Optional[bytes]:
    """A small C-contiguous array of plain numbers without pickle (whose numpy reduction
    costs about 10 us a way): ``kind``, ``A``, ``dtype|shape`` in ASCII, a NUL, the bytes."""
    if not a.flags.c_contiguous:
        return None
    key = (a.dtype, a.shape)
    head = _PACK_HEADS.get(key)
    if head is None:
        dt = a.dtype
        if dt.hasobject or dt.fields is not None:
            return None
        head = _ARRAY + f"{dt.str}|{','.join(map(str, a.shape))}".encode() + b"\0"
        if len(_PACK_HEADS) >= _HEADS_MAX:
            _PACK_HEADS.clear()
        _PACK_HEADS[key] = head
    return kind + head + a.tobytes()


def _unpack_array(msg: bytes) -> Any:
    end = msg.index(b"\0", 2)
    key = msg[2:end]
    head = _HEADS.get(key)
    if head is None:
        dt, _, shape = key.decode().rpartition("|")  # "|u1": the dtype may hold one
        head = (_np.dtype(dt), tuple(int(d) for d in shape.split(",")) if shape else ())
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        _HEADS[key] = head
    # a copy (writable, as an unpickled array is), of a small array; the ndarray constructor
    # over the message, positionally, costs half of frombuffer(...).reshape(...)
    return _ndarray(head[1], head[0], msg, end + 1).copy()


def unpack(msg: bytes) -> tuple[bytes, Any]:
    """``(kind, obj)`` of a :func:`pack` message (the shared-memory segments mapped, not
    copied, and unlinked)."""
    kind = msg[:1]
    tag = msg[1:2]
    if tag == _INT:
        return kind, int.from_bytes(msg[2:10], "little", signed=True)
    if tag == _ARRAY:
        return kind, _unpack_array(msg)
    view = memoryview(msg)
    if kind.islower():
        return kind, pickle.loads(view[1:])
    n = int.from_bytes(msg[1:5], "little")
    segs = pickle.loads(view[5 : 5 + n])
    buffers = [_from_shm(name, size) for name, size in segs]
    return kind.lower(), pickle.loads(view[5 + n :], buffers=buffers)


def pack_many(kind: bytes, msgs: Sequence[bytes]) -> bytes:
    """Several :func:`pack` messages in one (a chunk's items, or their answers): ``kind``
    (``c`` or ``m``), their count (4 bytes, little-endian), then each framed by its length;
    each keeps its fast path (an index, a small array) and its shared-memory segments."""
    parts = [kind, len(msgs).to_bytes(4, "little")]
    for m in msgs:
        parts.append(len(m).to_bytes(4, "little"))
        parts.append(m)
    return b"".join(parts)


def unpack_many(msg: bytes) -> list[bytes]:
    """The messages of a :func:`pack_many` message, not yet unpacked."""
    n = int.from_bytes(msg[1:5], "little")
    out, at = [], 5
    for _ in range(n):
        size = int.from_bytes(msg[at:at + 4], "little")
        out.append(msg[at + 4:at + 4 + size])
        at += 4 + size
    return out


def send(sock: socket.socket, msg: bytes) -> None:
    """One message: its length (4 bytes, little-endian), then the message."""
    sock.sendall(len(msg).to_bytes(4, "little") + msg)


def recv(sock: socket.socket) -> bytes:
    """The next message (``EOFError`` when the peer has closed). One ``recv`` for a small
    message; the peers take turns, so nothing past this message is waiting."""
    buf = sock.recv(_READ)
    while len(buf) < 4:
        if not buf:
            raise EOFError
        more = sock.recv(_READ)
        if not more:
            raise EOFError
        buf += more
    n = int.from_bytes(buf[:4], "little") + 4
    if len(buf) == n:
        return buf[4:]
    parts, have = [buf], len(buf)
    while have < n:
        more = sock.recv(min(n - have, 1 << 20))
        if not more:
            raise EOFError
        parts.append(more)
        have += len(more)
    return b"".join(parts)[4:]


_READ = 1 << 16


def _unlink(names: list[str]) -> None:
    for n in names:
        try:
            _posixshmem.shm_unlink(n)
        except OSError:
            pass
    names.clear()


# --- the worker and the zygote (in the child processes) -----------------------------------


def _seed_worker(who: tuple[int, int, int, Any]) -> bool:
    """What a worker process sets up before its first item, as torch's DataLoader workers
    do; ``who`` is ``(slot, count, seed, dataset)``. ``random``, numpy's global generator and
    torch's seeded with ``seed`` (each process its own: the workers are forks of one zygote,
    and without this every one draws the same random numbers, so a random augmentation
    repeats across the workers); torch's part in :func:`_setup_torch`. Modules not imported
    yet are left alone (never imported here). Returns whether torch was set up (if not,
    :func:`_worker_main` does it once the user's code has imported torch: from the next item
    on)."""
    seed = who[2]
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None and hasattr(np, "random"):
        # torch's recipe: a SeedSequence's words, as the legacy generator's key
        np.random.seed(np.random.SeedSequence(seed).generate_state(4))
    return _setup_torch(who)


def _setup_torch(who: tuple[int, int, int, Any]) -> bool:
    """torch in a worker process, as in one of torch's (``False`` while torch is not loaded):
    seeded with the worker's seed; one intra-op thread (each process would otherwise start
    one thread per CPU for every torch operation: with two workers on 2 CPUs, a 600 KB
    ``torch.full`` took ~5 ms instead of ~40 us); and ``get_worker_info()`` saying ``id``
    (the process's number), ``num_workers``, ``seed`` and ``dataset`` (so that a
    ``worker_init_fn`` that opens a file per worker, ``get_worker_info().dataset.open()``,
    works). torch's own workers set the same module attribute; a torch whose ``WorkerInfo``
    takes other fields is left alone."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "manual_seed"):
        return False
    slot, count, seed, dataset = who
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    w = sys.modules.get("torch.utils.data._utils.worker")
    cls = getattr(w, "WorkerInfo", None)
    if cls is not None:
        try:
            w._worker_info = cls(id=slot, num_workers=count, seed=seed,  # type: ignore[union-attr]
                                 dataset=dataset)
        except TypeError:
            pass
    return True


def _answer(msg: bytes, fn: Callable[[Any], Any], init: Optional[Callable[[int], Any]],
            sent: list[str]) -> bytes:
    """The answer message to one request ``msg``: ``r`` and ``fn(arg)`` (``init(arg)`` for
    ``w``), or ``e`` and the exception with the worker's traceback."""
    try:
        kind, arg = unpack(msg)
        out = init(arg) if kind == b"w" and init is not None else fn(arg) if kind == b"i" else None
        return pack(b"r", out, sent)
    except BaseException as e:  # noqa: BLE001 - every failure goes back as the item's
        tb = traceback.format_exc()
        try:
            # an exception whose class cannot be made again from its args (its own
            # `__init__(a, b)`) pickles, and fails only when the user's process loads it,
            # in place of the user's error: try it here (failures only)
            pickle.loads(pickle.dumps(e, protocol=5))
            return pack(b"e", (e, tb))
        except Exception:
            return pack(b"e", (RuntimeError(f"{type(e).__name__}: {e}"), tb))


def _worker_main(
    conns: list[socket.socket], fn: Callable[[Any], Any],
    init: Optional[Callable[[int], Any]], seed: int, slot: int, count: int,
    progress: Optional[Any] = None,
) -> None:
    """A worker process: answer each item with ``fn(item)`` until its sockets close. Each
    socket is one thread of the user's process, with at most one item outstanding; the
    worker takes one message at a time, from the sockets that have one in turn, so an item
    waits here while another runs (and a message not yet taken is still unread when the
    worker dies: its sender sees the connection reset and sends it elsewhere)."""
    live = {c.fileno(): c for c in conns}
    # per socket, which item of a chunk runs now (1-based; 0 between chunks), in memory the
    # user's process maps too: it reads it when this process dies (ProcessStage.many)
    index = {c.fileno(): i for i, c in enumerate(conns)}
    # per socket, the segments of its last answer: the thread there has mapped (and
    # unlinked) them once it sends again, or closes
    sent: dict[int, list[str]] = {fd: [] for fd in live}
    poller = select.poll()
    for fd in live:
        poller.register(fd, select.POLLIN)
    ready: deque[int] = deque()
    # what torch's `get_worker_info()` says in this process: the worker's number, the count,
    # its seed and the dataset (the object whose `__getitem__` this stage runs, if it is one)
    who = (slot, count, seed, fn.__self__ if isinstance(fn, types.MethodType) else None)
    torch_set = _seed_worker(who)
    while live:
        # poll even for one socket: a read blocked on a Unix socket is also woken when the
        # peer takes this process's answer (the socket turns writable), poll(POLLIN) is not
        while not ready:
            ready.extend(fd for fd, _ in poller.poll() if fd in live)
        if progress is not None and len(ready) > 1:
            # the oldest message first: the threads send in the order they took their
            # items, so in order delivery waits least (in socket order, a chunk sent later
            # could run before an earlier one, and the batch of the earlier wait for both)
            fd = _oldest(list(ready), progress, index, len(conns))
            ready.remove(fd)
        else:
            fd = ready.popleft()
        if fd not in live:
            continue
        conn = live[fd]
        try:
            msg = recv(conn)
        except (EOFError, OSError):
            del live[fd]
            poller.unregister(fd)
            _unlink(sent[fd])
            continue
        _unlink(sent[fd])
        if not torch_set and "torch" in sys.modules:
            # imported by the user's code since
            try:
                torch_set = _setup_torch(who)
            except Exception:  # noqa: BLE001 - torch's own setup: the items go on without
                torch_set = True
        if msg[:1] == b"c":
            # a chunk: each item answered in turn, all the answers in one message
            answers = []
            for j, m in enumerate(unpack_many(msg)):
                if progress is not None:
                    progress[index[fd]] = j + 1
                answers.append(_answer(m, fn, init, sent[fd]))
            if progress is not None:
                progress[index[fd]] = 0
            reply = pack_many(b"m", answers)
        else:
            reply = _answer(msg, fn, init, sent[fd])
        try:
            send(conn, reply)
        except OSError:
            del live[fd]
            poller.unregister(fd)
            _unlink(sent[fd])


def _progress_fd(n: int) -> Optional[int]:
    """A file of ``2 n`` 32-bit words in memory (Linux's ``memfd_create``) shared by a worker
    and the user's process: per socket, the worker's progress through its chunk (words
    ``0..n``), and the number of the message the user's process sent there last (words
    ``n..2n``: the worker takes the oldest of the messages waiting); ``None`` where there is
    none (a death in a chunk then runs its items again one by one: ``ProcessStage.many``;
    the worker takes the messages waiting in socket order)."""
    if not hasattr(os, "memfd_create"):
        return None
    try:
        fd = os.memfd_create("schedlab-progress", getattr(os, "MFD_CLOEXEC", 0))
        os.ftruncate(fd, 8 * n)
        return fd
    except OSError:
        return None


def _progress_words(fd: int, n: int) -> Any:
    """The ``2 n`` words of :func:`_progress_fd`'s file, mapped shared: a memoryview of
    unsigned ints."""
    m = mmap.mmap(fd, 8 * n)
    return memoryview(m).cast("I")


def _oldest(ready: list[int], seq: Any, index: dict[int, int], n: int) -> int:
    """Of the sockets ``ready`` (each with a message waiting), the one whose message was sent
    first: the lowest number in its sequence word (``seq[n + index[fd]]``, 32 bits, compared
    across a wrap)."""
    s0 = seq[n + index[ready[0]]]

    def age(fd: int) -> int:
        d = (seq[n + index[fd]] - s0) & 0xFFFFFFFF
        return d - (1 << 32) if d >= 1 << 31 else d

    return min(ready, key=age)


def _load_numpy_random() -> None:
    """numpy 2 imports numpy.random on its first use, which each worker's seeding is
    (:func:`_seed_worker`): ~10-15 ms of imports in every worker before its first item, on
    the CPUs the others start on. Loaded in the zygote (a no-op where its root or, with
    ``"fork"``, the user's process had loaded it: see :meth:`ProcessStage._start_zygote`),
    it is shared by every fork instead. Nothing when numpy is not loaded."""
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random  # noqa: B018 - the lazy import
        except Exception:  # noqa: BLE001 - a numpy without it: the workers skip it too
            pass


#: Most blank workers a spare zygote forks ahead (see :class:`_Blank`).
BLANKS_MAX = 8
#: Payloads up to this size (and without shared-memory segments) go to a zygote's blank
#: workers, each of which loads its own copy; a larger one is loaded by the zygote alone and
#: shared with its workers copy-on-write (the blanks are let go).
BLANK_PAYLOAD_MAX = 1 << 20


class _Blank:
    """(In a spare zygote.) A worker process forked *before* its stage's payload came: its
    sockets and progress words are made, and it waits on a pipe for the payload, then for
    its seed and slot. A fork of a root that imported torch takes 10-20 ms, each worker's
    fork one after the other, before the first item ran; forked ahead, in the root's idle
    time, a stage's first workers start at once. Each loads the payload itself (only small
    ones: :data:`BLANK_PAYLOAD_MAX`), where a worker forked after the zygote loaded it
    shares the zygote's copy."""

    def __init__(self, depth: int, others: list["_Blank"], ctrl: Connection) -> None:
        self.depth = depth
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.prog: Optional[int] = None
        fds: list[int] = []
        try:
            for _ in range(depth):
                self.pairs.append(socket.socketpair())
            self.prog = _progress_fd(depth)
            r, w = os.pipe()
            fds = [r, w]
            self.pid = os.fork()
        except OSError:  # no file or process more now: the workers fork as they would
            for fd in fds + ([] if self.prog is None else [self.prog]):
                os.close(fd)
            for pair in self.pairs:
                for c in pair:
                    c.close()
            raise
        if self.pid == 0:  # the blank
            code = 0
            try:
                ctrl.close()
                for b in others:
                    b.close_fds()
                os.close(w)
                for mine, _ in self.pairs:
                    mine.close()
                _blank_main(Connection(r, writable=False), [t for _, t in self.pairs],
                            self.prog, depth)
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        os.close(r)
        for _, theirs in self.pairs:
            theirs.close()
        self.conn = Connection(w, readable=False)

    def close_fds(self) -> None:
        """Close this one's fds: in a process forked after it (a later blank, a worker),
        which inherited them, or in the zygote once it is let go."""
        self.conn.close()
        for mine, _ in self.pairs:
            mine.close()
        if self.prog is not None:
            os.close(self.prog)

    def give(self, payload: bytes) -> bool:
        """Send it the payload (``False`` if it is gone)."""
        try:
            self.conn.send_bytes(payload)
            return True
        except OSError:
            return False

    def let_go(self) -> None:
        """Never used: its pipe's end of file ends it; reaped here."""
        self.close_fds()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _blank_main(conn: Connection, socks: list[socket.socket], prog: Optional[int],
                depth: int) -> None:
    """A blank worker (:class:`_Blank`): load the payload, then, once a stage takes this
    process, run :func:`_worker_main` with its seed, slot and count. Returns quietly when
    the pipe closes first (the zygote let it go, or exited)."""
    try:
        data = conn.recv_bytes()
        fn, init = load_shared(data)
        _warm_seeding()
        gc.freeze()  # as a worker forked from a zygote has it (see _zygote_main)
        who = conn.recv()
    except (EOFError, OSError):
        return
    conn.close()
    words = None if prog is None else _progress_words(prog, depth)
    _worker_main(socks, fn, init, *who, progress=words)


def _warm_seeding() -> None:
    """Seed here, once, what each worker seeds (:func:`_seed_worker`), before it is one: in
    a fresh fork of a process that imported torch, the first ``torch.manual_seed`` took
    ~3 ms and numpy's ~1 ms, the next ~0.3 and ~0.1 (eight workers seeding at once on 2 CPUs
    held the first batch back). Done by a blank worker while it waits (:func:`_blank_main`)
    and by the root after it imports (whose forks then pay ~1.5 ms and ~1 ms, the pages it
    touched being copied): not by a zygote, whose workers wait for it. This process's own
    random state is never used (every worker seeds its own). Modules not loaded are left
    alone."""
    random.seed(0)
    if "numpy.random" in sys.modules:
        np = sys.modules["numpy"]
        np.random.seed(np.random.SeedSequence(0).generate_state(4))
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        try:
            torch.manual_seed(0)
        except Exception:  # noqa: BLE001 - the worker's own seeding says so, if it fails
            pass


def _zygote_main(ctrl: Connection, forked: bool = False,
                 blanks: tuple[int, int] = (0, 0)) -> None:
    """The zygote: load the stage's function once, then fork workers on request. ``forked``:
    it is a fork of the user's process, whose other file descriptors (other stages' sockets)
    it closes, so that their peers still see them close when the user's process closes them
    or dies. ``blanks``: ``(count, depth)`` of the blank workers to fork before the payload
    comes (a root's spare, :class:`_Blank`), handed out by the first ``fork`` requests of
    that depth."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the user's process's to handle
    if forked:
        keep = ctrl.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, _max_fd())
    ready: list[_Blank] = []
    children: set[int] = set()
    try:
        for _ in range(blanks[0]):
            try:
                ready.append(_Blank(blanks[1], ready, ctrl))
            except OSError:
                break  # the OS would start no more (a limit): fewer blanks, or none
            children.add(ready[-1].pid)
        _zygote_serve(ctrl, ready, children)
    finally:
        for b in ready:
            b.let_go()
            children.discard(b.pid)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _zygote_serve(ctrl: Connection, ready: list[_Blank], children: set[int]) -> None:
    """:func:`_zygote_main`'s work: load the payload (and give it to the blanks ``ready``),
    then answer requests; ``children``: the processes forked (reaped or killed at the end)."""
    try:
        data = ctrl.recv_bytes()
    except (EOFError, OSError):
        return  # a root's spare that no stage took: the root let it go, or exited
    big = len(data) > BLANK_PAYLOAD_MAX or data[:1] == _SHM_PAYLOAD
    for b in list(ready):
        if big or not b.give(data):  # too large for them, or this one is gone
            ready.remove(b)
            b.let_go()
            children.discard(b.pid)
    try:
        fn, init = load_shared(data)
    except BaseException as e:  # noqa: BLE001
        ctrl.send(("error", f"{type(e).__name__}: {e}", traceback.format_exc()))
        return
    _load_numpy_random()
    # what was loaded (and, forked, all the user's process had) goes to the collector's
    # permanent generation, which it never walks: the workers do not copy it by collecting
    # (a collection first would walk, and so copy, the user's whole heap)
    gc.freeze()
    ctrl.send(("ready", os.getpid()))
    while True:
        try:
            req = ctrl.recv()
        except (EOFError, OSError):
            break
        if req[0] == "fork":
            blank = next((b for b in ready if b.depth == req[1]), None)
            if blank is not None:
                ready.remove(blank)
                try:
                    blank.conn.send(req[2])
                except OSError:
                    pass  # it died: the stage sees its sockets closed, and replaces it
                blank.conn.close()
                pid, pairs, prog = blank.pid, blank.pairs, blank.prog
            else:
                pairs = [socket.socketpair() for _ in range(req[1])]
                prog = _progress_fd(req[1])
                pid = os.fork()
                if pid == 0:  # the worker
                    try:
                        ctrl.close()
                        for b in ready:
                            b.close_fds()
                        for mine, _ in pairs:
                            mine.close()
                        words = None if prog is None else _progress_words(prog, req[1])
                        _worker_main([theirs for _, theirs in pairs], fn, init, *req[2],
                                     progress=words)
                    finally:
                        os._exit(0)
                for _, theirs in pairs:
                    theirs.close()
            children.add(pid)
            ctrl.send(("forked", pid, prog is not None))
            for mine, _ in pairs:
                send_handle(ctrl, mine.fileno(), 0)
                mine.close()
            if prog is not None:
                send_handle(ctrl, prog, 0)
                os.close(prog)
        elif req[0] == "reap":
            pid = req[1]
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = None
            children.discard(pid)
            ctrl.send(("reaped", pid, status))
        elif req[0] == "stop":
            break


#: How long the root waits idle after it handed out a zygote (or started) before it forks
#: the next one ahead, its *spare*, so that the next stage's start does not wait for the
#: fork (a fork of a root that imported torch takes 10-18 ms, most of a stage's start).
#: Not at once: a loader's start forks its workers then, on the same CPUs.
SPARE_AFTER_S = 0.1


def _fork_zygote(blanks: tuple[int, int] = (0, 0)) -> tuple[int, Connection]:
    """(In a root.) A new zygote, waiting for its stage's payload (with ``blanks``, see
    :func:`_zygote_main`): its pid and the root's end of its control connection."""
    from multiprocessing.connection import Pipe

    mine, theirs = Pipe(duplex=True)
    pid = os.fork()
    if pid == 0:  # the zygote
        code = 0
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            mine.close()
            # closes every other fd (the root's too)
            _zygote_main(theirs, forked=True, blanks=blanks)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    return pid, mine


def _root_main(ctrl: Connection) -> None:
    """The root: a single-threaded process started once per start method (and per user's
    process), which forks a stage's zygote on request: a fork of a small idle process costs
    a few milliseconds where starting a process with the start method costs ~10 ms
    (``forkserver``: the fork server's child re-imports ``__main__``) to ~150 ms (``spawn``),
    and every loader (every stage of a pipeline) starts a zygote. Each
    request: ``("zygote", (count, depth))``, the stage's planned workers and their sockets;
    the answer ``("zygote", pid)`` and the zygote's end of a new socket pair. Idle for
    ``SPARE_AFTER_S``, it forks the next zygote ahead (a *spare*, handed out by the next
    request; let go, and so ended, when an import changes what a zygote would have), with
    as many blank workers as the last request planned (at most ``BLANKS_MAX``;
    :class:`_Blank`). It exits when the user's process closes its end (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the user's process's to handle
    # the zygotes are its children: reaped by the kernel as they exit (no zombies), each
    # setting its own SIGCHLD back before it forks workers it waits for
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)

    gc.freeze()
    spare: Optional[tuple[int, Connection]] = None
    blanks = (0, 0)  # of the next spare: as the last request planned
    while True:
        try:
            if spare is None and not ctrl.poll(SPARE_AFTER_S):
                spare = _fork_zygote(blanks)
                continue
            req = ctrl.recv()
        except (EOFError, OSError):
            return
        if req[0] == "import":
            # what the stages' payloads need (torch, the dataset's module), imported once
            # here so that each zygote forks with them loaded instead of importing them
            loaded = len(sys.modules)
            for name in req[1]:
                try:
                    importlib.import_module(name)
                except BaseException:  # noqa: BLE001 - the zygote imports it, or says why
                    pass
            _warm_seeding()  # for the modules just imported (once each: cheap after)
            if spare is not None and len(sys.modules) != loaded:
                # forked before the import: it would lack the modules; its end of file
                # ends it
                spare[1].close()
                spare = None
            try:
                ctrl.send(("imported",))
            except OSError:
                return
            continue
        if req[0] != "zygote":
            continue
        pid, mine = spare if spare is not None else _fork_zygote()
        spare = None
        count, depth = req[1]
        blanks = (max(0, min(count, BLANKS_MAX)), depth)
        try:
            ctrl.send(("zygote", pid))
            send_handle(ctrl, mine.fileno(), 0)
        except OSError:
            return
        finally:
            mine.close()


# --- the user's side ----------------------------------------------------------------------


def _close(c: socket.socket) -> None:
    try:
        c.close()
    except OSError:
        pass


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


def _how(status: Optional[int]) -> tuple[Optional[int], Optional[int], str]:
    """``(signal, exitcode, words)`` of a wait status."""
    if status is None:
        return None, None, "exit status unknown"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return sig, None, f"killed by signal {sig} ({name})"
    code = os.WEXITSTATUS(status)
    return None, code, f"exited with status {code}"


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int, full: bool = True) -> dict[str, Optional[int]]:
    """``{"rss_bytes", "pss_bytes", "uss_bytes"}`` of process ``pid`` (Linux ``/proc``;
    ``None`` where unreadable). PSS divides each shared page among the processes that map it,
    so the PSS of all processes adds up to the memory they use together. ``full=False``: the
    RSS alone (``/proc/PID/statm``, a counter), PSS and USS ``None``: ``smaps_rollup`` walks
    the process's page tables, ~7 ms for a process that imported torch."""
    out: dict[str, Optional[int]] = {"rss_bytes": None, "pss_bytes": None, "uss_bytes": None}
    if not full:
        try:
            with open(f"/proc/{pid}/statm") as f:
                out["rss_bytes"] = int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            pass
        return out
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            uss = 0
            for line in f:
                key, _, rest = line.partition(":")
                kb = rest.split()
                if not kb or not kb[0].isdigit():
                    continue
                v = int(kb[0]) * 1024
                if key == "Rss":
                    out["rss_bytes"] = v
                elif key == "Pss":
                    out["pss_bytes"] = v
                elif key in ("Private_Clean", "Private_Dirty"):
                    uss += v
            out["uss_bytes"] = uss
    except OSError:
        pass
    return out


def _preload_schedlab() -> None:
    """Have the fork server (if it has not started yet) import schedlab and numpy, besides
    what it imports already (``__main__``): each zygote then forks with them loaded instead
    of importing them (~150 ms a stage)."""
    from multiprocessing import forkserver

    fs = getattr(forkserver, "_forkserver", None)
    if fs is None or getattr(fs, "_forkserver_pid", 1) is not None:
        return
    mods = list(getattr(fs, "_preload_modules", ["__main__"]))
    for m in ("numpy", "schedlab"):
        if m not in mods:
            mods.append(m)
    fs.set_forkserver_preload(mods)


class _Zygote:
    """A zygote forked by a root (:func:`_root_main`): its pid, and a ``join`` for the error
    path of :meth:`ProcessStage.start`. It is not this process's child; it has exited when
    its control socket reads end of file."""

    def __init__(self, pid: int, ctrl: Connection) -> None:
        self.pid, self._ctrl = pid, ctrl

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the zygote to exit (its socket to close)."""
        end = time.monotonic() + timeout
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0 or not self._ctrl.poll(left):
                    return
                self._ctrl.recv_bytes()
        except (EOFError, OSError):
            return


class _Root:
    """This process's root for one start method (:func:`_root_main`); :meth:`zygote` forks a
    zygote there. One per start method, started at the first zygote; a root that died is
    started again; a forked child of this process starts its own."""

    _lock = threading.Lock()
    _roots: dict[str, "_Root"] = {}

    def __init__(self, method: str) -> None:
        ctx: Any = get_context(method)
        if method == "forkserver":
            _preload_schedlab()
        mine, theirs = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_root_main, args=(theirs,), daemon=True,
                                   name=f"schedlab-root-{method}")
        self.process.start()
        theirs.close()
        self.ctrl: Connection = mine
        self.owner = os.getpid()
        #: the modules this root was asked to import (``modules_of``)
        self.imported: set[str] = set()

    @classmethod
    def zygote(cls, method: str, stage: str, modules: Sequence[str] = (),
               plan: tuple[int, int] = (0, 0)) -> tuple[int, Connection]:
        """A new zygote's pid and control connection, forked by ``method``'s root
        (``RuntimeError`` naming ``stage`` when a new root exits at start); the root imports
        ``modules`` first (once), so that the zygote has them. ``plan``: the stage's
        ``(workers, sockets per worker)``, as many blank workers as the root's next spare
        forks ahead."""
        with cls._lock:
            while True:
                root = cls._roots.get(method)
                fresh = root is None or root.owner != os.getpid()
                if fresh:
                    root = cls._roots[method] = _Root(method)
                assert root is not None
                try:
                    new = [m for m in modules if m not in root.imported]
                    if new:
                        root.ctrl.send(("import", new))
                        root.ctrl.recv()
                        root.imported.update(new)
                    root.ctrl.send(("zygote", plan))
                    _, pid = root.ctrl.recv()
                    fd = recv_handle(root.ctrl)
                    return pid, Connection(fd)
                except (EOFError, OSError):
                    del cls._roots[method]
                    _close_quietly(root.ctrl)
                    if fresh:
                        raise RuntimeError(
                            f"process stage '{stage}': the {method} process that forks the "
                            "zygotes exited at start (its error is printed above; a script "
                            "needs its work under `if __name__ == \"__main__\":`)"
                        ) from None
                    # it had worked and died since (killed, out of memory): start another


    @classmethod
    def _after_fork_in_child(cls) -> None:
        """A child forked from this process (its own multiprocessing, a torch worker) gets
        a fresh lock (a thread of the parent may have held it at the fork) and no roots: it
        starts its own at its first stage, and closes its copies of the parent's sockets, so
        that a root still sees its end of file when the parent closes them or exits."""
        cls._lock = threading.Lock()
        roots, cls._roots = cls._roots, {}
        for r in roots.values():
            _close_quietly(r.ctrl)


def _close_quietly(c: Any) -> None:
    try:
        c.close()
    except OSError:
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Root._after_fork_in_child)


class _Worker:
    """A worker process as its user sees it: ``depth`` sockets (one per leasing thread)."""

    __slots__ = ("pid", "socks", "fds", "slot", "items", "messages", "replaced_by", "death",
                 "init_lock", "init_done", "init_error", "progress")

    def __init__(self, pid: int, socks: list[socket.socket], slot: int) -> None:
        self.pid, self.socks, self.slot = pid, socks, slot
        self.fds = [c.fileno() for c in socks]
        #: items answered, and the messages they came in (fewer: chunks)
        self.items = self.messages = 0
        #: the worker forked in its place once it died, and its death's record
        self.replaced_by: Optional[_Worker] = None
        self.death: Optional[dict[str, Any]] = None
        #: ``init(slot)`` runs once per process, before its first item
        self.init_lock = threading.Lock()
        self.init_done = False
        self.init_error: Optional[BaseException] = None
        #: per socket, the item of a chunk the process runs (1-based, 0: none), shared with it
        self.progress: Optional[Any] = None

    def live(self) -> "_Worker":
        w = self
        while w.replaced_by is not None:
            w = w.replaced_by
        return w


class _Lease:
    """A thread's hold on one socket of a worker; given back when the thread ends."""

    def __init__(self, stage: "ProcessStage", worker: _Worker, idx: int) -> None:
        self.stage = weakref.ref(stage)
        self.worker, self.idx = worker, idx

    def __del__(self) -> None:
        s = self.stage()
        if s is not None:
            s._give_back(self.worker, self.idx)


#: Most waiting items a process stage's thread sends its worker process in one message (a
#: chunk), unless the stage says (``Pipeline.map(..., chunk=)``) ...
DEFAULT_CHUNK = 16
#: ... and only as many as fit in this many seconds at the stage's mean time per item so
#: far (one at a time until an item has finished): a message costs ~40-50 us of the two
#: processes' CPU here, so items of 60 us go 16 to a message, of 700 us 14, of 10 ms and
#: more one (a slow item then holds no other behind it). Measured (``process.py --chunks``):
#: 700 us items 0.80-0.87 of the CPUs' time one at a time, 0.88-0.91 by 4, 0.90-0.93 by 8.
DEFAULT_CHUNK_S = 0.01


def default_chunk(threads_per_process: int) -> tuple[int, float]:
    """A process stage's chunk rule as the engine takes it, ``(most items, seconds)``: up to
    ``DEFAULT_CHUNK`` items, as many as fit in ``DEFAULT_CHUNK_S`` of the items' own time.

    The engine times a chunk by its call, from the thread's send to the answer; a process
    fed by ``threads_per_process`` threads (``ITEMS_PER_WORKER`` for a process stage: one
    message running, the others waiting in it) runs the message of one while the others'
    wait, so on a busy stage a call lasts ``threads_per_process`` times its own work, and
    the item time the engine measures is that many times the item's. The seconds are scaled
    by it: timed against the call, 700 us items went ~6 to a message instead of 14 (0.90-0.92
    of the CPUs' time against 0.92-0.93 by 14, ``process.py --only uniform``). On an idle
    stage (calls that do not wait) the chunks come out up to that many times the 10 ms."""
    return DEFAULT_CHUNK, DEFAULT_CHUNK_S * max(1, threads_per_process)

#: How long a thread that finds every socket of the processes asked for leased waits for one
#: to be given back before it forks a process more (see ``ProcessStage._lease``).
LEASE_WAIT_S = 1.0

#: Items a worker process holds at once: one running, the rest waiting in its sockets, so
#: that it starts the next item as soon as it answers one, without waiting for the user's
#: process to be scheduled and send it (a process stage has this many threads per process).
ITEMS_PER_WORKER = 2
#: The workers after a stage's first are forked once a thread has taken the first (its
#: items go on while they fork), or after this long.
REST_AFTER_S = 1.0


def check_process_count(field: str, n: int, depth: int) -> None:
    """Refuse (``ValueError`` naming ``field = n``) to start ``n`` more worker processes
    when the OS would not let them all start, before the first: each is a task (the same
    limits as threads: ``threads-max``, ``pid_max``, ``RLIMIT_NPROC``, the cgroup's
    ``pids.max``; the engine's rule, with its margin), and here it adds ``depth`` threads and
    ``depth`` sockets (file descriptors, ``RLIMIT_NOFILE``). Without it a mistyped count
    forks until something runs out, with the machine."""
    if n <= 0:
        return
    tasks, limit = n * (1 + depth), task_limit()
    if tasks > limit:
        raise ValueError(
            f"{field}={n}: {n} worker processes and their {n * depth} threads here are "
            f"{tasks} tasks; this process may start at most {limit:,} more"
        )
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        used = len(os.listdir("/proc/self/fd"))
    except (ImportError, OSError):
        return
    if soft == resource.RLIM_INFINITY:
        return
    free = soft - used
    # a margin for the files the user's program opens meanwhile
    if n * depth > free - free // 8:
        raise ValueError(
            f"{field}={n}: each worker process holds {depth} sockets here, {n * depth} in "
            f"all, and {max(free, 0):,} of this process's {soft:,} file descriptors are free "
            f"(ulimit -n: raise it, or start fewer workers)"
        )


class ProcessStage:
    """``fn`` on worker processes: call the object (from any thread) with an item to get
    ``fn(item)`` computed in the calling thread's worker process.

    ``name`` names the stage in errors; ``init`` (optional) is run in each worker as
    ``init(worker_id)`` before its first item; ``start_method`` starts the zygote;
    ``payload`` is ``(fn, init)`` pickled already, if it was (else :meth:`start` pickles it;
    an error names ``argument``); ``depth``: the threads (sockets) per worker process.
    """

    def __init__(
        self, fn: Callable[[Any], Any], name: str, start_method: Optional[str] = None,
        init: Optional[Callable[[int], Any]] = None, payload: Optional[bytes] = None,
        argument: str = "fn", depth: Optional[int] = None,
    ) -> None:
        self.fn, self.name, self.start_method, self.init = fn, name, start_method, init
        self.argument = argument  # what an unpicklable function is called in the error
        self.depth = depth or ITEMS_PER_WORKER
        self._payload = payload
        self._lock = threading.RLock()  # the control socket, the free list and the counters
        # a socket given back to the free list (a thread waiting in _lease takes it)
        self._freed = threading.Condition(self._lock)
        #: A thread took a socket (:meth:`_fork_rest` waits for the first).
        self._leased = threading.Condition(self._lock)
        self._local = threading.local()
        self._ctrl: Optional[Connection] = None
        self._zygote: Any = None
        self._free: list[tuple[_Worker, int]] = []
        self._workers: dict[int, _Worker] = {}
        self._slots = itertools.count()
        # each worker process's seed: this stage's base plus the count of forks before it
        # (a replacement gets a number of its own), see _seed_worker
        self._seed = random.SystemRandom().getrandbits(63)
        self._forks = itertools.count()
        # messages sent, numbered: the worker takes the oldest of those waiting (_oldest)
        self._sent = itertools.count(1)
        # the processes asked for (torch's `num_workers` in a worker's `get_worker_info()`)
        self._planned = 0
        self._closed = False
        self.deaths: list[dict[str, Any]] = []
        #: items and messages of the workers that died (the live ones count their own)
        self._gone = [0, 0]
        self.started_s: Optional[float] = None
        self.started_with: Optional[str] = None

    # --- the pool ---------------------------------------------------------------------

    def start(self, prefork: int = 0, field: str = "num_workers") -> None:
        """Start the zygote (idempotent) and its first worker, and have ``prefork`` workers
        in all: the others are forked while the first runs items (:meth:`_fork_rest`; a
        fork of a process that imported torch takes 8-13 ms, so eight workers forked in
        turn before the first item held it back ~70 ms). ``TypeError`` when the function
        cannot be pickled; ``RuntimeError`` when the zygote cannot load it; ``ValueError``
        naming ``field`` (the argument ``prefork`` came from) when that many processes
        cannot be started here (:func:`check_process_count`), before any is."""
        with self._lock:
            check_process_count(field, prefork - len(self._workers), self.depth)
            self._planned = max(self._planned, prefork)
            self._start_locked()
            if prefork > 0 and not self._workers:
                self._fork_locked(next(self._slots))  # its failure is the caller's
            more = len(self._workers) < self._planned
        if more:
            threading.Thread(target=self._fork_rest, daemon=True,
                             name=f"schedlab-fork-{self.name}").start()

    def _fork_rest(self) -> None:
        """The planned workers the start did not fork, one lock hold each, so that a
        thread's lease may take each as it comes (a lease that finds none of them yet forks
        one itself: whichever comes first). A failure here is left to the lease that forks
        that worker again, which raises it at its item."""
        with self._lock:
            # not before a thread has leased the first (else that thread waits out this
            # fork for the lock), nor later than REST_AFTER_S (a loader whose threads have
            # not asked yet)
            deadline = time.monotonic() + REST_AFTER_S
            while (len(self._free) == self.depth * len(self._workers) and not self._closed
                   and time.monotonic() < deadline):
                self._leased.wait(max(0.0, deadline - time.monotonic()))
        while True:
            with self._lock:
                if self._closed or len(self._workers) >= self._planned:
                    return
                try:
                    self._fork_locked(next(self._slots))
                except Exception:  # noqa: BLE001 - see above
                    return

    def _start_locked(self) -> None:
        if self._closed:
            raise RuntimeError(f"process stage '{self.name}': closed")
        if self._ctrl is not None:
            return
        if exchange is None or not hasattr(os, "fork"):
            raise ValueError(f"process stage '{self.name}': worker processes need a POSIX "
                             "system (os.fork, Unix sockets)")
        if getattr(current_process(), "_inheriting", False):
            # This process is a fork server or a spawned child importing the user's main
            # module (as multiprocessing does to find its functions), and that module starts
            # a process stage at import: a script without a main guard. Going on would run
            # the script's work a second time, silently, in this process (the "fork" path
            # does not stop it as multiprocessing's own check does for spawn).
            raise RuntimeError(
                f"process stage '{self.name}': started while this process imports the main "
                "module to serve worker processes; a script that uses process stages needs "
                "its work under `if __name__ == \"__main__\":`"
            )
        t0 = time.perf_counter()
        payload = self._payload
        segments: list[tuple[str, int]] = []
        if payload is None:
            payload = check_picklable(self.argument, (self.fn, self.init), segments)
        try:
            self._start_zygote(payload, t0)
        finally:
            # mapped (and unlinked) by the zygote once it is ready; else nobody will
            _unlink([n for n, _ in segments])

    def _start_zygote(self, payload: bytes, t0: float) -> None:
        method, why = zygote_start_method(self.start_method)
        z: Any
        if method == "fork":
            # this process is single-threaded (or fork was asked for): the zygote is a fork
            # of it, sharing what it has loaded (the dataset) copy-on-write. numpy.random
            # (see _zygote_main) is imported here first, once: in a zygote it was imported
            # again by each (15 ms of a 60 ms start with torch loaded)
            _load_numpy_random()
            ctx: Any = get_context(method)
            mine, theirs = ctx.Pipe(duplex=True)
            z = ctx.Process(target=_zygote_main, args=(theirs, True), daemon=True,
                            name=f"schedlab-zygote-{self.name}")
            z.start()
            theirs.close()
        else:
            modules = modules_of(payload)
            if "numpy" in sys.modules:
                # numpy 2 imports numpy.random on its first use, which every worker's
                # seeding is: in the root, once for all its zygotes and their workers
                modules.append("numpy.random")
            pid, mine = _Root.zygote(method, self.name, modules,
                                     (self._planned, self.depth))
            z = _Zygote(pid, mine)
            why += f"; forked by this process's {method} root"
        try:
            mine.send_bytes(payload)
            msg = mine.recv()
        except (EOFError, OSError):
            z.join(5)
            how = (f"exit code {z.exitcode}" if method == "fork" else
                   "its socket closed: see its error above")
            raise RuntimeError(
                f"process stage '{self.name}': the zygote process exited at start ({how})"
            ) from None
        if msg[0] != "ready":
            z.join(5)
            hint = ""
            if "__mp_main__" in msg[1]:
                # the script was imported there without running its main block
                hint = (" (the worker processes import the script without running its "
                        "`if __name__ == \"__main__\":` block: define what they need at the "
                        "script's top level)")
            raise RuntimeError(
                f"process stage '{self.name}': the worker processes could not load the "
                f"function: {msg[1]}{hint}\n{msg[2]}"
            )
        self._ctrl, self._zygote = mine, z
        self.started_s = time.perf_counter() - t0
        self.started_with = f"{method} ({why})"

    def _fork_locked(self, slot: int) -> _Worker:
        """A new worker; its sockets join the free list."""
        self._start_locked()
        assert self._ctrl is not None
        seed = (self._seed + next(self._forks)) % (1 << 63)
        self._ctrl.send(("fork", self.depth, (seed, slot, max(self._planned, slot + 1))))
        _, pid, has_progress = self._ctrl.recv()
        socks = [
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=recv_handle(self._ctrl))
            for _ in range(self.depth)
        ]
        w = _Worker(pid, socks, slot)
        if has_progress:
            fd = recv_handle(self._ctrl)
            try:
                w.progress = _progress_words(fd, self.depth)
            finally:
                os.close(fd)
        self._workers[pid] = w
        self._free.extend((w, i) for i in range(self.depth))
        return w

    def _successor_locked(self, w: _Worker) -> tuple[dict[str, Any], Optional[_Worker]]:
        """Reap the dead ``w`` (once) and fork its replacement (none once closed)."""
        if w.death is None:
            self._workers.pop(w.pid, None)
            self._gone[0] += w.items
            self._gone[1] += w.messages
            unleased = {i for f, i in self._free if f is w}
            self._free = [(f, i) for f, i in self._free if f is not w]
            # only the sockets no thread holds: a leased one is closed by its thread, once
            # it has moved to the replacement (closed under a thread still using it, its
            # number could be reused by a new socket before that thread's next read)
            for i in unleased:
                _close(w.socks[i])
            status: Optional[int] = None
            if self._ctrl is not None:
                self._ctrl.send(("reap", w.pid))
                _, _, st = self._ctrl.recv()
                status = None if st is None else int(st)
            w.death = {"pid": w.pid, "status": _how(status)[2], "item": False,
                       "wait_status": status}
            self.deaths.append(w.death)
            if not self._closed:
                new = w.replaced_by = self._fork_locked(w.slot)
                # the dead one's leased sockets stay with their threads, moved to the
                # replacement's of the same number
                self._free = [(f, i) for f, i in self._free if f is not new or i in unleased]
        return w.death, w.replaced_by

    def _lease(self) -> _Lease:
        lease: Optional[_Lease] = getattr(self._local, "lease", None)
        if lease is not None:
            return lease
        with self._lock:
            deadline = time.monotonic() + LEASE_WAIT_S
            while not self._free and 0 < self._planned <= len(self._workers):
                # Every socket of the processes asked for is leased: wait for one rather than
                # fork more processes than asked for onto the same CPUs. (A loader's threads
                # that start an epoch while the last one's still end them: a chunked loader's
                # look-ahead; each takes a socket as one of the old threads gives it back.)
                # A socket held longer (a thread of an abandoned epoch stuck in a call that
                # does not return) is worked around by a process more, as before.
                if self._closed:
                    raise RuntimeError(f"process stage '{self.name}': closed")
                left = deadline - time.monotonic()
                if left <= 0 or not self._freed.wait(left):
                    break
            if not self._free or (len(self._workers) < self._planned
                                  and all(i > 0 for _, i in self._free)):
                # none free, or only the second sockets of processes taken while more are
                # planned (being forked, :meth:`_fork_rest`): one more now, not doubled up
                self._fork_locked(next(self._slots))
            # spread the threads over the processes before doubling up
            k = min(range(len(self._free)), key=lambda j: self._free[j][1])
            w, idx = self._free.pop(k)
            self._leased.notify_all()
        lease = self._local.lease = _Lease(self, w, idx)
        self._ensure_init(lease)
        return lease

    def _give_back(self, w: _Worker, idx: int) -> None:
        with self._lock:
            if w.death is not None:
                _close(w.socks[idx])
            w = w.live()
            if not self._closed and w.pid in self._workers:
                self._free.append((w, idx))
                self._freed.notify()

    def _ensure_init(self, lease: _Lease) -> None:
        """Run ``init(slot)`` in the lease's worker once, before any item of it."""
        if self.init is None:
            return
        w = lease.worker
        with w.init_lock:
            if not w.init_done:
                w.init_done = True
                try:
                    self._exchange(lease, b"w", w.slot)
                except BaseException as e:
                    w.init_error = e
                    raise
            elif w.init_error is not None:
                raise w.init_error

    # --- calls ------------------------------------------------------------------------

    def init_worker(self, worker_id: int) -> None:
        """Lease this thread's worker and run ``init`` there (once per process); its
        exception is raised here."""
        del worker_id  # a process's id is its slot (0, 1, ...), shared by its threads
        self._lease()

    def __call__(self, item: Any) -> Any:
        lease = getattr(self._local, "lease", None)
        return self._exchange(lease if lease is not None else self._lease(), b"i", item)

    def _number(self, lease: _Lease) -> None:
        """Number the message about to be sent on the lease's socket, in the words its
        worker reads to take the oldest message waiting first (:func:`_oldest`)."""
        w = lease.worker
        if w.progress is not None:
            w.progress[self.depth + lease.idx] = next(self._sent) & 0xFFFFFFFF

    #: A loader may hand it chunks (:meth:`many`).
    takes_chunks = True

    def many(self, items: list[Any], _resent: int = 0) -> list[tuple[bool, Any]]:
        """``fn`` on each of ``items`` in one message to this thread's worker process (a
        chunk): ``(True, fn(item))`` or ``(False, its exception)`` per item, in order.

        A process that dies in a chunk fails the item it was running (its progress word,
        shared with it, says which) with ``WorkerDied``; the chunk's other items go to its
        replacement: those after it never ran, those before it ran but their answers died
        with it, so they run again there (without the word, where the system has no
        ``memfd_create``, every item runs again alone, and the one that kills a process
        again fails)."""
        lease = getattr(self._local, "lease", None)
        if lease is None:
            lease = self._lease()
        sent: list[str] = []
        msg = pack_many(b"c", [pack(b"i", item, sent) for item in items])
        w = lease.worker
        try:
            if w.progress is not None:
                w.progress[lease.idx] = 0
            self._number(lease)
            reply = exchange(w.fds[lease.idx], msg)
        except (EOFError, OSError) as e:
            return self._recover_many(lease, w, items, e, _resent)
        finally:
            if sent:
                _unlink(sent)
        w.items += len(items)
        w.messages += 1
        return [self._result(m) for m in unpack_many(reply)]

    @staticmethod
    def _result(m: bytes) -> tuple[bool, Any]:
        """An answer: ``(True, value)``, or ``(False, the exception)`` with the worker's
        traceback chained as its cause."""
        kind, value = unpack(m)
        if kind == b"r":
            return True, value
        exc, tb = value
        exc.__cause__ = _RemoteTraceback(tb)
        return False, exc

    def _recover_many(self, lease: _Lease, w: _Worker, items: list[Any], e: BaseException,
                      resent: int) -> list[tuple[bool, Any]]:
        """:meth:`many`'s answers after its exchange with ``w`` failed with ``e`` (the
        chunk was sent ``resent`` times before, each time to a process that died idle)."""
        reset = isinstance(e, (ConnectionResetError, BrokenPipeError))
        if reset and resent < _RESENDS:
            # it never took the chunk (see _recover): every item goes to the replacement
            self._replace(lease, w)
            return self.many(items, resent + 1)
        at = w.progress[lease.idx] if w.progress is not None and not reset else 0
        if not 1 <= at <= len(items):
            # which item it ran is not known: each again alone, on the replacement
            self._replace(lease, w)
            out: list[tuple[bool, Any]] = []
            for item in items:
                try:
                    out.append((True, self._exchange(lease, b"i", item)))
                except Exception as err:  # noqa: BLE001 - the item's failure
                    out.append((False, err))
            return out
        try:
            self._died(lease, w, b"i")
        except WorkerDied as died:
            killed: tuple[bool, Any] = (False, died)
        rest = items[:at - 1] + items[at:]
        done = self.many(rest) if rest else []
        return done[:at - 1] + [killed] + done[at - 1:]

    def _exchange(self, lease: _Lease, kind: bytes, arg: Any) -> Any:
        sent: list[str] = []
        msg = pack(kind, arg, sent)
        w = lease.worker
        try:
            self._number(lease)
            # the common case first, with no loop and no handler set up around it
            reply = exchange(w.fds[lease.idx], msg)
        except (EOFError, OSError) as e:
            reply = self._recover(lease, w, kind, msg, e)
        finally:
            if sent:
                _unlink(sent)  # the worker's, had it mapped them; else nobody will
        lease.worker.items += 1
        lease.worker.messages += 1
        ok, value = self._result(reply)
        if ok:
            return value
        raise value

    def _recover(self, lease: _Lease, w: _Worker, kind: bytes, msg: bytes,
                 e: BaseException) -> bytes:
        """The answer to ``msg`` after its exchange with ``w`` failed with ``e``: sent again
        to the replacement when ``w`` died before it took the message, else ``WorkerDied``."""
        for _ in range(_RESENDS):
            if not isinstance(e, (ConnectionResetError, BrokenPipeError)):
                self._died(lease, w, kind)  # it took the item and died running it
            # it closed its socket with this message unread (Linux resets the connection
            # then), or before it was sent: it died before it took the item (idle, or
            # running another thread's), which never ran; send it to the replacement
            self._replace(lease, w)
            w = lease.worker
            try:
                return exchange(w.fds[lease.idx], msg)
            except (EOFError, OSError) as again:
                e = again
        self._died(lease, lease.worker, kind)

    def _replace(self, lease: _Lease, w: _Worker) -> None:
        with self._lock:
            _, new = self._successor_locked(w)
        _close(w.socks[lease.idx])
        if new is None:
            raise RuntimeError(f"process stage '{self.name}': closed")
        lease.worker = new
        self._ensure_init(lease)

    def _died(self, lease: _Lease, w: _Worker, kind: bytes) -> NoReturn:
        with self._lock:
            death, new = self._successor_locked(w)
            death["item"] = True
        sig, code, how = _how(death["wait_status"])
        _close(w.socks[lease.idx])
        if new is not None:
            lease.worker = new
            if kind != b"w":
                try:
                    self._ensure_init(lease)
                except Exception:
                    pass  # raised at this thread's next item
        what = "worker_init_fn" if kind == b"w" else "this item"
        e = WorkerDied(
            f"worker process (pid {w.pid}) of process stage '{self.name}' died running {what}: "
            f"{how}" + ("; replaced by a new worker process" if new is not None else "")
        )
        e.pid, e.signal, e.exitcode = w.pid, sig, code
        raise e

    # --- reports and shutdown ---------------------------------------------------------

    def stats(self, memory: bool = True) -> dict[str, Any]:
        """The processes: the start method, the zygote's pid and memory, and per worker its
        pid, memory (RSS, PSS, USS from ``/proc``; ``memory=False``: the RSS only, which
        costs a counter's read rather than a walk of each process's pages), items run and
        the messages they came in (fewer than the items where chunks were sent); the deaths;
        the stage's items and messages in all, the dead processes' included."""
        with self._lock:
            workers = sorted(self._workers.values(), key=lambda w: w.slot)
            zpid = self._zygote.pid if self._zygote is not None else None
            rows = [(w.slot, w.pid, w.items, w.messages) for w in workers]
            deaths = [{k: v for k, v in d.items() if k != "wait_status"} for d in self.deaths]
            items = self._gone[0] + sum(r[2] for r in rows)
            messages = self._gone[1] + sum(r[3] for r in rows)
        return {
            "start_method": self.started_with or self.start_method or "not started",
            "start_s": self.started_s,
            "items_per_worker": self.depth,
            "zygote": None if zpid is None else {"pid": zpid, **rss_bytes(zpid, memory)},
            "workers": [
                {"worker": s, "pid": p, "items": n, "messages": m, **rss_bytes(p, memory)}
                for s, p, n, m in rows
            ],
            "deaths": deaths,
            # every process's, the dead ones' included
            "items": items,
            "messages": messages,
        }

    def close(self) -> None:
        """Stop the zygote and every worker (idempotent): the workers are killed and the
        processes exit right after this returns, without it waiting for them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for w in self._workers.values():
                for c in w.socks:
                    try:
                        c.close()
                    except OSError:
                        pass
            self._free.clear()
            self._freed.notify_all()  # a thread waiting for a socket: the stage is closed
            self._leased.notify_all()
            ctrl, self._ctrl = self._ctrl, None
            self._zygote = None
        if ctrl is not None:
            # the zygote kills its workers, reaps them and exits (on "stop", or on the end
            # of file if it reads that first): not waited for here, as their exits take
            # ~10 ms each for a large process (the kernel unmaps its pages) and a loader
            # without persistent workers closes its stage at every epoch's end. A root's
            # zygote is reaped by the root; a forked one (``"fork"``) by multiprocessing, at
            # the next process start or at exit.
            try:
                ctrl.send(("stop",))
            except OSError:
                pass
            ctrl.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> Any:
        raise TypeError("a process stage cannot be pickled")


def process_lines(name: str, s: dict[str, Any]) -> list[str]:
    """A process stage's lines of a report."""
    def mb(v: Optional[int]) -> str:
        return "?" if v is None else f"{v / 2**20:.1f}"

    out = [f"  {name}: {s['start_method']} start method, {len(s['workers'])} worker processes"
           + (f", {len(s['deaths'])} died" if s["deaths"] else "")]
    if s.get("auto"):
        out.append(f"    auto: {s['auto']}")
    for w in s["workers"]:
        sent = w.get("messages", w["items"])
        chunks = f" in {sent} messages" if sent != w["items"] else ""
        out.append(f"    worker {w['worker']} pid {w['pid']}: {w['items']} items{chunks}, RSS "
                   f"{mb(w['rss_bytes'])} MB (PSS {mb(w['pss_bytes'])} MB)")
    for d in s["deaths"]:
        out.append(f"    died: pid {d['pid']}, {d['status']}"
                   + (" (its item failed)" if d["item"] else " (idle)"))
    return out



class _Truth:
    """``filter`` on a worker process: ``bool(fn(item))`` (the item itself stays here)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any) -> bool:
        return bool(self.fn(item))


class _Listed:
    """``flat_map`` on a worker process: ``list(fn(item))`` (a generator cannot travel)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any) -> list[Any]:
        return list(self.fn(item))


def remote_fn(op: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """What the worker processes run for a stage ``op`` of ``fn``."""
    return _Truth(fn) if op == "filter" else _Listed(fn) if op == "flat_map" else fn


#: How often (in calls) an ``auto`` stage on threads looks at its GIL statistics.
AUTO_CHECK_EVERY = 32
#: An ``auto`` stage judges once its threads ran this many calls ...
AUTO_MIN_CALLS = 64
#: ... over this long at least. The printed verdict asks more (``VERDICT_MIN_CALLS`` over
#: ``VERDICT_MIN_SECONDS``: 200 calls over 0.25 s, so that a report's line does not flip from
#: run to run); auto's minimum is small against an epoch, because every call before the move
#: runs at threads' speed (half a GIL-bound stage's on 2 CPUs), and a wrong early verdict is
#: guarded by the CPU-share rules below (and costs a process start, not an item).
AUTO_MIN_SECONDS = 0.05
#: An ``auto`` stage moves to processes when the GIL verdict says GIL-bound, or (a lower
#: bar than the printed verdict's half) when its threads waited for the GIL at least this
#: share of the time Python ran on the CPU ...
AUTO_WAIT_SHARE = 0.25
#: ... while the calls were mostly on the CPU (this share of their wall time at least), not
#: sleeping or reading. On a loaded machine the OS, not the GIL, keeps two threads apart part
#: of the time, and the waits of a GIL-bound stage fall below the verdict's bar; a wrong move
#: costs a process start, a missed one half the stage's throughput.
AUTO_CPU_SHARE = 0.5
#: Even with the verdict's GIL-bound, a stage whose calls were on the CPU less than this share
#: of their wall time stays on threads: its calls mostly sleep or read (a process would not
#: run them faster), and its waits for the GIL are the OS's doing. On a busy machine a stage
#: of 1 ms sleeps waits to get the GIL back longer than its few microseconds of Python run,
#: and the verdict alone called it GIL-bound. Measured at a load average of 14 on 2 CPUs:
#: 1 ms sleeps 0.01 of their call time on the CPU, a GIL-bound loop on 4 threads 0.25 to 0.9
#: (preempted by the OS, it loses the GIL inside its calls).
AUTO_CPU_SHARE_MIN = 0.1


def auto_verdict(rows: list[dict[str, Any]], elapsed_s: float, what: str) -> str:
    """The GIL verdict (:func:`schedlab.gil_verdict`'s rule and words) as an ``auto`` stage
    takes it: "too short" only below ``AUTO_MIN_CALLS`` calls or ``AUTO_MIN_SECONDS``."""
    from .dataloader import gil_verdict

    calls = sum(r.get("calls", 0) for r in rows)
    if calls < AUTO_MIN_CALLS or elapsed_s < AUTO_MIN_SECONDS:
        return (f"too short to judge: {calls} Python calls over {elapsed_s * 1e3:.1f} ms; auto "
                f"judges after {AUTO_MIN_CALLS} calls over {AUTO_MIN_SECONDS} s")
    # the verdict's own rule on the same numbers, without its (larger) minimum: rows without
    # ``calls`` and no elapsed time are never too short for it
    bare = [{k: v for k, v in r.items() if k != "calls"} for r in rows]
    return str(cast(Any, gil_verdict)(bare, None, what=what))


class AutoStage:
    """``kind="auto"``: ``fn`` on the calling threads until the GIL statistics (``probe()``:
    the rows :func:`schedlab.gil_verdict` takes, over the time since the stage's first call;
    the verdict's thresholds, judged from ``AUTO_MIN_CALLS`` calls over ``AUTO_MIN_SECONDS``:
    :func:`auto_verdict`) say the stage is GIL-bound; then on worker processes (a
    :class:`ProcessStage`) for the rest of its life."""

    def __init__(
        self, fn: Callable[[Any], Any], procs: ProcessStage, what: str, prefork: int = 0,
        field: str = "num_workers",
    ) -> None:
        self.fn, self.procs, self.what, self.prefork = fn, procs, what, prefork
        self.field = field  # the argument ``prefork`` came from, for a refused count
        self._warm: Optional[threading.Thread] = None
        self._warm_error: Optional[BaseException] = None
        self.probe: Optional[Callable[[], list[dict[str, Any]]]] = None
        self._t0: Optional[float] = None
        self.on_processes = False
        self.decision: Optional[str] = None
        self.verdict: Optional[str] = None
        self._calls = 0
        self._check = threading.Lock()
        #: Judged GIL-bound while the processes were still starting: the threads wait for
        #: them (below) instead of running ``fn``.
        self._moving = False

    def __call__(self, item: Any) -> Any:
        if self.on_processes:
            return self.procs(item)
        if self._moving:
            # The start needs the GIL for each of its steps, and two GIL-bound threads took
            # it for 5 ms at a time: the start took 0.4-0.7 s that way, against ~50 ms with
            # the threads waiting (GIL released) — and on threads the stage ran at half speed.
            w = self._warm
            if w is not None:
                w.join()
            if self.decision is None:
                self._judge()
            if self.on_processes:
                return self.procs(item)
            return self.fn(item)
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self._calls += 1
        if self._calls % AUTO_CHECK_EVERY == 0 and self.decision is None:
            self._judge()
            if self.on_processes:
                return self.procs(item)
        return self.fn(item)

    @property
    def takes_chunks(self) -> bool:
        """A loader hands it chunks (:meth:`many`) only once on processes: on threads each
        sample is its own call, counted as one by the GIL statistics it is judged by."""
        return self.on_processes

    def many(self, items: list[Any]) -> list[tuple[bool, Any]]:
        """A chunk (see :meth:`ProcessStage.many`): ``(True, fn(item))`` or ``(False, its
        exception)`` per item, in order; in one message once on processes, else each item
        as a call would run it (judged as it goes: the rest of a chunk moves with it)."""
        if self.on_processes:
            return self.procs.many(items)
        out: list[tuple[bool, Any]] = []
        for k, item in enumerate(items):
            if self.on_processes:
                return out + self.procs.many(items[k:])
            try:
                out.append((True, self(item)))
            except Exception as e:  # noqa: BLE001 - the item's failure
                out.append((False, e))
        return out

    def _judge(self) -> None:
        if self.probe is None or not self._check.acquire(blocking=False):
            return
        try:
            rows = self.probe()
            elapsed = time.perf_counter() - (self._t0 or 0.0)
            v = self.verdict = auto_verdict(rows, elapsed, self.what)
            wait = sum(r["gil_wait_s"] for r in rows)
            cpu = sum(r["python_cpu_s"] for r in rows)
            wall = sum(r["python_s"] for r in rows)
            calls = sum(r.get("calls", 0) for r in rows)
            bound = (v.startswith("GIL-bound") and cpu >= AUTO_CPU_SHARE_MIN * wall) or (
                wait >= AUTO_WAIT_SHARE * cpu > 0 and cpu >= AUTO_CPU_SHARE * wall)
            if bound and self._warm is None:
                # it looks GIL-bound already: start the processes in the background while
                # the threads go on, so that the move (once the verdict may be given) is
                # immediate. Nothing is started for a stage that does not look so.
                self._warm = threading.Thread(target=self._start, daemon=True,
                                              name="schedlab-auto-start")
                self._warm.start()
            self._moving = False
            if v.startswith("too short") or not bound:
                return
            if self._warm is not None and self._warm.is_alive():
                self._moving = True  # moves once they are up; the threads wait for them
                return
            if self._warm_error is not None:
                e = self._warm_error
                self.decision = (f"stays on threads: GIL-bound, but the worker processes "
                                 f"could not start: {e}")
                return
            if v.startswith("GIL-bound"):
                why = v
            else:
                # moved by auto's lower bar, which the printed verdict does not share: say
                # that bar, not the verdict's "not GIL-bound"
                why = (f"its threads waited {wait:.3f} s for the GIL, {wait / cpu:.0%} of the "
                       f"{cpu:.3f} s Python ran on the CPU (auto moves from "
                       f"{AUTO_WAIT_SHARE:.0%}), in calls {cpu / wall:.0%} on the CPU (from "
                       f"{AUTO_CPU_SHARE:.0%}: not sleeping or reading)")
            self.decision = (
                f"moved to worker processes after {calls} calls on threads "
                f"({elapsed:.3f} s after its first): {why}"
            )
            self.on_processes = True
        finally:
            self._check.release()

    def _start(self) -> None:
        try:
            self.procs.start(self.prefork, self.field)
        except BaseException as e:  # noqa: BLE001 - reported by the next look
            self._warm_error = e

    def stats(self, memory: bool = True) -> dict[str, Any]:
        """The process stage's statistics with ``auto``: what was decided, when and why."""
        s = self.procs.stats(memory)
        s["auto"] = self.decision or f"on threads: {self.verdict or 'not judged yet'}"
        s["on_processes"] = self.on_processes
        return s

    def close(self) -> None:
        """Stop the worker processes, if any started."""
        self.procs.close()
