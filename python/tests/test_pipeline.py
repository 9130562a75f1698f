"""schedlab.Pipeline: order, stages, batches, errors, statistics and threads."""

import itertools
import threading
import time

import numpy as np
import pytest

import schedlab
from schedlab import _core

from probes import back_to, baseline


def test_stages_in_order_with_filter_flat_map_and_batch():
    seen_read = set()
    lock = threading.Lock()

    def read(i):
        with lock:
            seen_read.add(threading.get_ident())
        time.sleep(0.0005)
        return i

    p = (
        schedlab.Pipeline(60, workers=2)
        .map(read, kind="blocking", concurrency=4)
        .map(lambda x: x * 10, name="times10")
        .filter(lambda x: x % 20 == 0)
        .flat_map(lambda x: (x, x + 1))
        .batch(4)
    )
    batches = list(p)
    expect = [v for i in range(60) if (i * 10) % 20 == 0 for v in (i * 10, i * 10 + 1)]
    assert [int(v) for b in batches for v in b] == expect
    assert all(b.dtype == np.int64 for b in batches)
    assert [len(b) for b in batches] == [4] * 15
    assert 1 <= len(seen_read) <= 4 and threading.get_ident() not in seen_read
    p.close()


def test_unordered_is_exactly_once_and_drop_last():
    p = schedlab.Pipeline(list(range(50)), workers=2, ordered=False).map(lambda x: x + 1).batch(
        8, drop_last=True, collate_fn=None
    )
    batches = list(p)
    assert len(batches) == 6 and all(isinstance(b, list) and len(b) == 8 for b in batches)
    vals = sorted(v for b in batches for v in b)
    assert len(set(vals)) == 48 and set(vals) <= set(range(1, 51))
    p.close()


def test_shuffled_source_changes_per_epoch():
    p = schedlab.Pipeline(30, workers=2, shuffle=True, seed=5).map(lambda x: x)
    e0, e1 = list(p), list(p)
    assert e0 == _core.epoch_order(5, 0, 30) and e1 == _core.epoch_order(5, 1, 30)
    assert sorted(e0) == list(range(30)) and e0 != e1
    p.close()


class StageError(Exception):
    pass


def test_exception_at_its_position_as_the_original_type():
    def decode(x):
        if x == 7:
            raise StageError("bad header in 7")
        return x

    p = schedlab.Pipeline(20, workers=2).map(decode).batch(5)
    it = iter(p)
    assert next(it).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(StageError, match="bad header in 7") as info:
        next(it)
    assert "stage 'decode'" in str(info.value) and "Traceback" in str(info.value)
    assert isinstance(info.value.__cause__, StageError)
    assert next(it).tolist() == [10, 11, 12, 13, 14]
    assert next(it).tolist() == [15, 16, 17, 18, 19]
    with pytest.raises(StopIteration):
        next(it)
    p.close()


def test_an_exception_whose_constructor_takes_more_than_a_message_keeps_its_base_type():
    # json.JSONDecodeError(msg, doc, pos) cannot be remade from one message: it is raised as
    # the nearest base that can (ValueError), not as a RuntimeError, so `except ValueError`
    # still catches it; the original is the cause.
    import json

    p = schedlab.Pipeline(["[1]", "{bad"]).map(json.loads)
    it = iter(p)
    assert next(it) == [1]
    with pytest.raises(ValueError, match="stage 'loads'") as info:
        next(it)
    assert type(info.value) is ValueError
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
    p.close()


def test_stats_as_dict_and_text_with_gil_per_stage():
    p = (
        schedlab.Pipeline(40, workers=2)
        .map(lambda i: i, kind="blocking", concurrency=2, name="read")
        .map(lambda i: i * 2, name="decode")
        .batch(8)
    )
    assert len(list(p)) == 5
    s = p.report()
    assert [st["name"] for st in s["stages"]] == ["read", "decode", "collate"]
    assert s["items"] == 5 and s["source_items"] == 40
    assert s["gil"]["read"]["calls"] == 40 and s["gil"]["decode"]["calls"] == 40
    assert s["gil"]["collate"]["calls"] == 5
    text = str(p.report())
    assert "bottleneck" in text and "GIL per stage" in text and "decode" in text
    p.close()


def test_threads_joined_after_close_and_bad_arguments():
    before = baseline()
    for _ in range(20):
        p = schedlab.Pipeline(100, workers=2).map(lambda x: x, kind="blocking", concurrency=3)
        it = iter(p)
        next(it)
        del it
        p.close()
    assert back_to(before)
    with pytest.raises(ValueError, match="kind"):
        schedlab.Pipeline(3).map(lambda x: x, kind="gpu")
    with pytest.raises(ValueError, match="workers"):
        schedlab.Pipeline(3, workers=0)
    with pytest.raises(TypeError, match="callable"):
        schedlab.Pipeline(3).map(5)
    with pytest.raises(ValueError, match="batch_size"):
        schedlab.Pipeline(3).batch(0)
    with pytest.raises(ValueError, match="concurrency"):
        schedlab.Pipeline(3).map(lambda x: x, concurrency=0)
    assert back_to(before)


def test_autotune_adds_read_threads_keeps_order_and_the_cap():
    def read(i):
        time.sleep(0.0003)
        return i

    p = (
        schedlab.Pipeline(1500, workers=2, autotune=True, max_items=64)
        .map(read, kind="blocking", concurrency=1)
        .map(lambda x: x + 1)
    )
    assert list(p) == list(range(1, 1501))
    s = p.report()
    changes = s["tuning"]["changes"]
    assert any(c["knob"] == "read.threads" and c["to"] > c["from"] for c in changes), changes
    assert all(pt["window"] <= 64 for pt in s["tuning"]["trajectory"])
    assert "autotune:" in str(p.report())
    p.close()


def test_max_items_needs_autotune_and_a_positive_int():
    with pytest.raises(ValueError, match="autotune=True"):
        schedlab.Pipeline(10, max_items=8)
    with pytest.raises(ValueError, match="max_items"):
        schedlab.Pipeline(10, autotune=True, max_items=0)


def _resumable(ordered, batch):
    p = (
        schedlab.Pipeline(60, workers=2, shuffle=True, seed=4, ordered=ordered)
        .map(lambda x: x * 10, name="times10")
        .filter(lambda x: x % 30 != 0, name="no30")
        .flat_map(lambda x: (x, x + 1), name="pair")
    )
    return p.batch(4, collate_fn=None) if batch else p


def _expected(epoch, batch):
    flat = [v for i in _core.epoch_order(4, epoch, 60) if (i * 10) % 30 for v in (i * 10, i * 10 + 1)]
    return [flat[k : k + 4] for k in range(0, len(flat), 4)] if batch else flat


def _values(items, batch):
    return [v for b in items for v in b] if batch else list(items)


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_state_dict_resumes_mid_epoch_exactly(ordered, batch):
    p = _resumable(ordered, batch)
    list(p)  # epoch 0
    it = iter(p)  # epoch 1
    head = [next(it) for _ in range(5 if batch else 17)]  # 17: inside a flat_map pair
    state = p.state_dict()
    assert state["epoch"] == 1 and state["stages"] == ["times10", "no30", "pair"] + (
        ["collate"] if batch else []
    )
    del it
    p.close()

    q = _resumable(ordered, batch)
    q.load_state_dict(state)
    assert q.state_dict() == state
    rest = list(q)
    want = _expected(1, batch)
    if ordered:
        assert head + rest == want  # exactly the remaining items, in order
    got = _values(head + rest, batch)
    assert sorted(got) == sorted(_values(want, batch))  # each exactly once
    assert q.state_dict()["epoch"] == 2
    nxt = list(q)  # and the next epoch is whole
    if ordered:
        assert nxt == _expected(2, batch)
    assert sorted(_values(nxt, batch)) == sorted(_values(_expected(2, batch), batch))
    q.close()


@pytest.mark.parametrize("batch", [False, True])
def test_state_dict_after_break_is_where_the_loop_stopped(batch):
    # `for item in pipeline: ... break`, then state_dict(): the loop's iterator is dropped at
    # the break, and the state must still be that epoch's position (not the next epoch's
    # start, which would skip the rest of the epoch on resume).
    p = _resumable(True, batch)
    head = []
    for k, item in enumerate(p):
        head.append(item)
        if k == (4 if batch else 16):
            break
    state = p.state_dict()
    assert state["epoch"] == 0 and state["positions_done"] > 0
    p.close()
    q = _resumable(True, batch)
    q.load_state_dict(state)
    assert head + list(q) == _expected(0, batch)
    q.close()


def test_load_state_dict_refuses_another_pipelines_state():
    state = _resumable(True, False).state_dict()
    assert state["epoch"] == 0 and state["positions_done"] == 0
    other = schedlab.Pipeline(60, workers=2).map(lambda x: x, name="other")
    with pytest.raises(ValueError, match="stages"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="state_dict"):
        other.load_state_dict({"epoch": 1})
    other.close()


def test_an_int_source_too_long_for_its_shuffled_order_is_a_value_error_not_a_panic():
    p = schedlab.Pipeline(2**62, shuffle=True).batch(4)
    with pytest.raises(ValueError, match=r"^source: 4611686018427387904 samples: an epoch's order"):
        next(iter(p))
    p.close()


def test_an_int_source_in_order_makes_its_indices_as_it_reads_them():
    """``Pipeline(n)`` in order holds no list of n ints: 2**62 items start at once (the list
    was made whole before the first item; ``Pipeline(10**9)`` ran out of memory)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    p = schedlab.Pipeline(2**62).batch(4, collate_fn=list)
    it = iter(p)
    assert [next(it), next(it)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    del it
    p.close()
    q = schedlab.Pipeline(10**9, workers=2).map(lambda x: x * x)
    assert list(itertools.islice(iter(q), 5)) == [0, 1, 4, 9, 16]
    q.close()
    # kilobytes: a list of 10**9 ints is ~36 GB; the engine's windows hold a few hundred
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


def test_after_a_break_the_same_epoch_goes_on_and_iter_starts_the_next():
    # documented in Pipeline.epoch: epoch(e) again goes on where the broken iterator stood;
    # iter(pipeline) moves to the next epoch, whole
    p = schedlab.Pipeline(20)
    it = p.epoch(0)
    assert [next(it), next(it)] == [0, 1]
    del it
    assert list(p.epoch(0)) == list(range(2, 20))
    p.close()
    q = schedlab.Pipeline(20, shuffle=True, seed=3)
    it = iter(q)
    first = [next(it), next(it)]
    del it
    rest = list(iter(q))  # epoch 1: a new permutation, whole
    assert sorted(rest) == list(range(20)) and len(first) == 2
    q.close()


def test_prefetch_next_epoch_starts_it_while_this_one_ends_without_changing_any_order():
    calls = []
    lock = threading.Lock()

    def f(x):
        with lock:
            calls.append(x)
        return x

    def build(prefetch):
        return schedlab.Pipeline(200, shuffle=True, seed=5, prefetch_next_epoch=prefetch).map(
            f, kind="blocking", concurrency=4)

    plain = build(False)
    want = [list(plain.epoch(e)) for e in (0, 1, 3)]
    plain.close()
    calls.clear()
    p = build(True)
    e0 = list(p.epoch(0))
    deadline = time.time() + 10
    while len(calls) <= 200 and time.time() < deadline:
        time.sleep(0.01)
    assert len(calls) > 200, "epoch 1 started before epoch(1) was called"
    e1 = list(p.epoch(1))
    e3 = list(p.epoch(3))  # not the next epoch: the one prefetched is dropped, 3 starts anew
    assert [e0, e1, e3] == want  # the same permutations, each item once
    p.close()


def test_prefetch_next_epoch_needs_a_source_known_ahead():
    with pytest.raises(ValueError, match="^prefetch_next_epoch: only for an int or a sequence"):
        schedlab.Pipeline(lambda e: range(3), prefetch_next_epoch=True)
    with pytest.raises(ValueError, match="^prefetch_next_epoch: "):
        schedlab.Pipeline(iter(range(3)), prefetch_next_epoch=True)
    p = schedlab.Pipeline([10, 20, 30], prefetch_next_epoch=True)
    it = p.epoch(0)
    assert next(it) == 10
    del it  # a break: the prefetched epoch, if any, is dropped; epoch 0 goes on
    assert list(p.epoch(0)) == [20, 30] and list(p.epoch(1)) == [10, 20, 30]
    p.close()
