"""Issue 29: autotune with a batch (thread counts, not time), advice that never contradicts
itself, and the Rust builder's per-stage settings from Python. No assertion on time."""

import time

import pytest

import schedlab
from schedlab.dataloader import VERDICT_MIN_CALLS, _hold_advice, gil_verdict


def read(i):
    time.sleep(0.001)
    return i


def decode(i):
    return i * 2


# --- autotune with a batch ------------------------------------------------------------------


def test_autotune_with_a_batch_adds_read_threads_from_one():
    p = (
        schedlab.Pipeline(3000, workers=2, autotune=True)
        .map(read, kind="blocking", concurrency=1, name="read")
        .map(decode, name="decode")
        .batch(32)
    )
    got = [int(x) for b in p for x in b]
    assert got == [2 * i for i in range(3000)]
    s = p.report()
    read_stage = next(st for st in s["stages"] if st["name"] == "read")
    ups = [c for c in s["tuning"]["changes"] if c["knob"] == "read.threads" and c["to"] > c["from"]]
    assert ups and ups[0]["from"] == 1, s["tuning"]["changes"]
    assert read_stage["concurrency"] > 1, str(s)
    p.close()


def test_autotune_with_collate_fn_flat_map_and_filter_adds_read_threads():
    p = (
        schedlab.Pipeline(2000, workers=2, autotune=True)
        .map(read, kind="blocking", concurrency=1, name="read")
        .flat_map(lambda i: (i, -i - 1), name="split")
        .filter(lambda x: x >= 0, name="keep")
        .batch(16, collate_fn=lambda xs: sum(xs))
    )
    assert sum(p) == sum(range(2000))
    s = p.report()
    assert next(st for st in s["stages"] if st["name"] == "read")["concurrency"] > 1, str(s)
    p.close()


# --- advice ---------------------------------------------------------------------------------


class Tiny:
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return i


def test_a_tiny_epoch_is_too_short_to_judge_and_recommends_nothing():
    dl = schedlab.DataLoader(Tiny(), batch_size=2, num_workers=2)
    assert len(list(dl)) == 5
    r = dl.report()
    assert r["gil_verdict"].startswith("too short to judge"), r["gil_verdict"]
    assert r["recommended_workers"] is None and r["recommended_prefetch"] is None
    text = str(r)
    assert "recommended: none yet" in text and "GIL-bound" not in text, text
    dl.close()
    p = schedlab.Pipeline(10, workers=2).map(decode)
    assert list(p) == [2 * i for i in range(10)]
    s = p.report()
    assert s["gil_verdict"].startswith("too short to judge")
    assert "one more thread there: ~" not in str(s) and "CPU worker there: ~" not in str(s)
    p.close()


def test_the_verdict_needs_enough_calls_and_time():
    w = {"gil_wait_s": 0.0, "python_s": 0.001, "python_cpu_s": 0.001}
    assert gil_verdict([dict(w, calls=VERDICT_MIN_CALLS - 1)], 10.0).startswith("too short")
    assert gil_verdict([dict(w, calls=VERDICT_MIN_CALLS)], 0.005).startswith("too short")
    assert gil_verdict([dict(w, calls=VERDICT_MIN_CALLS)], 1.0).startswith("not GIL-bound")


def _gil_bound_rows():
    return [
        {"gil_wait_s": 0.74, "python_s": 0.75, "python_cpu_s": 0.75, "calls": 1000},
        {"gil_wait_s": 0.76, "python_s": 0.74, "python_cpu_s": 0.73, "calls": 1000},
    ]


def test_gil_bound_is_never_beside_a_recommendation_of_more_workers():
    data = {"workers": 2, "recommended_workers": 10, "recommended_prefetch": 4}
    data["gil_verdict"] = gil_verdict(_gil_bound_rows(), 1.46)
    assert data["gil_verdict"].startswith("GIL-bound")
    text = _hold_advice(data, "epoch 0 ...\n  recommended: 10 workers, prefetch 4")
    assert "10 workers" not in text and "recommended: 2 workers (GIL-bound" in text, text
    assert data["recommended_workers"] == 2
    # not GIL-bound: the recommendation stands
    ok = {"workers": 2, "recommended_workers": 10, "recommended_prefetch": 4,
          "gil_verdict": "not GIL-bound: ..."}
    assert "recommended: 10 workers" in _hold_advice(ok, "  recommended: 10 workers, prefetch 4")


def test_the_pipelines_verdict_speaks_of_stages():
    v = gil_verdict(_gil_bound_rows(), 1.46, what="stage functions")
    assert "stage functions" in v and "__getitem__" not in v
    p = schedlab.Pipeline(400, workers=2).map(decode)
    list(p)
    assert "__getitem__" not in p.report()["gil_verdict"]
    assert "__getitem__" not in str(p.report())
    p.close()


# --- parity with the Rust builder -------------------------------------------------------------


def bad_on_3(i):
    if i % 10 == 3:
        raise KeyError(i)
    return i


def test_on_failure_skip_leaves_the_items_out_and_counts_them():
    p = schedlab.Pipeline(50, workers=2, on_failure="skip").map(bad_on_3)
    assert list(p) == [i for i in range(50) if i % 10 != 3]
    assert p.report()["failures"] == 5
    p.close()


def test_on_failure_halt_raises_the_originals_then_ends_the_epoch():
    p = schedlab.Pipeline(50, workers=1, on_failure="halt", max_failures=2).map(bad_on_3)
    it = iter(p)
    seen, errors = [], []
    while True:
        try:
            seen.append(next(it))
        except StopIteration:
            break
        except KeyError as e:
            errors.append(e)
        except RuntimeError as e:
            assert "halted" in str(e)
            break
    assert len(errors) == 2 and all(isinstance(e.__cause__, KeyError) for e in errors)
    assert seen[:3] == [0, 1, 2] and len(seen) < 47
    p.close()


def test_window_and_a_stage_strategy_are_passed_on():
    p = schedlab.Pipeline(100, workers=2, window=8).map(decode, strategy="work-stealing")
    assert list(p) == [2 * i for i in range(100)]
    p.close()


@pytest.mark.parametrize(
    "kw, stage_kw, err, word",
    [
        (dict(on_failure="ignore"), {}, ValueError, "on_failure"),
        (dict(on_failure="halt"), {}, ValueError, "max_failures"),
        (dict(max_failures=3), {}, ValueError, "max_failures"),
        (dict(on_failure="halt", max_failures=1.5), {}, ValueError, "max_failures"),
        (dict(on_failure="halt", max_failures="3"), {}, TypeError, "max_failures"),
        (dict(window=0), {}, ValueError, "window"),
        ({}, dict(strategy="no-such-strategy"), ValueError, "strategy"),
        ({}, dict(strategy="central", kind="blocking", concurrency=2), ValueError, "strategy"),
        ({}, dict(strategy=3), TypeError, "strategy"),
    ],
)
def test_bad_parity_arguments_name_the_argument(kw, stage_kw, err, word):
    with pytest.raises(err, match=word):
        schedlab.Pipeline(10, **kw).map(decode, **stage_kw)
