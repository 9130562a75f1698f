"""Mixing (issue 31): weighted interleaving of streams, exact resume, statistics."""

import itertools
import json

import pytest

import schedlab


def tagged(tag, n=None):
    """A callable epoch -> iterable of (tag, epoch, i)."""
    def make(epoch):
        it = itertools.count() if n is None else range(n)
        return ((tag, epoch, i) for i in it)
    make.__qualname__ = f"source_{tag}"
    return make


def take(p, n):
    it = iter(p)
    out = [next(it) for _ in range(n)]
    return out


def test_interleave_prefixes_hold_floor_or_ceil_of_each_share():
    w = [0.4, 0.3, 0.2, 0.1]
    p = schedlab.Pipeline(schedlab.mix([tagged(t) for t in "abcd"], w))
    got = [x[0] for x in take(p, 1000)]
    p.close()
    for n in range(1, 1001):
        for t, wi in zip("abcd", w):
            c = got[:n].count(t)
            assert abs(c - n * wi) < 1 + 1e-9, (n, t, c)
    for n in range(10, 1001, 10):
        assert [got[:n].count(t) for t in "abcd"] == [4 * n // 10, 3 * n // 10, 2 * n // 10,
                                                      n // 10]


def test_all_exhausted_reads_every_item_once_and_sequences_work():
    sources = [list(range(0, 30)), range(100, 150), tagged("c", 20)]
    m = schedlab.mix(sources, [2, 1, 1], stop="all_exhausted")
    got = list(schedlab.Pipeline(m, workers=3).map(lambda x: x, kind="blocking"))
    nums = sorted(x for x in got if isinstance(x, int))
    assert nums == list(range(0, 30)) + list(range(100, 150))
    assert [x for x in got if isinstance(x, tuple)] == [("c", 0, i) for i in range(20)]


def test_first_exhausted_and_never():
    m = schedlab.mix([range(3), tagged("b")], [1, 1])
    assert len(list(schedlab.Pipeline(m))) == 6
    m = schedlab.mix([tagged("a", 2), tagged("b")], [1, 1], stop="never")
    p = schedlab.Pipeline(m)
    a = [x for x in take(p, 12) if x[0] == "a"]
    p.close()
    assert a == [("a", 0, 0), ("a", 0, 1), ("a", 1, 0), ("a", 1, 1), ("a", 2, 0), ("a", 2, 1)]


def test_random_is_reproducible_for_a_seed():
    def run(seed):
        p = schedlab.Pipeline(schedlab.mix([tagged("a"), tagged("b")], [3, 1], seed=seed,
                                           mode="random"))
        out = [x[0] for x in take(p, 400)]
        p.close()
        return out
    assert run(5) == run(5)
    assert run(5) != run(6)
    assert 240 < run(5).count("a") < 360


def test_a_schedule_pauses_a_source_without_ending_it():
    def curriculum(step):
        return [1.0, 0.0] if step < 20 else [1.0, 1.0]
    p = schedlab.Pipeline(schedlab.mix([tagged("a"), tagged("b")], curriculum))
    got = take(p, 40)
    p.close()
    assert all(x[0] == "a" for x in got[:20])
    assert [x for x in got if x[0] == "b"] == [("b", 0, i) for i in range(10)]


def test_a_bad_schedule_fails_naming_the_step():
    p = schedlab.Pipeline(schedlab.mix([tagged("a"), tagged("b")],
                                       lambda step: [1, -1] if step == 3 else [1, 1]))
    it = iter(p)
    for _ in range(3):
        next(it)
    with pytest.raises(Exception, match=r"weights\(step=3\)"):
        next(it)
    p.close()


def test_a_schedule_that_raises_fails_with_its_exception_named():
    def weights(step):
        if step == 5:
            raise ZeroDivisionError("no weights at step five")
        return [1, 1]

    p = schedlab.Pipeline(schedlab.mix([tagged("a"), tagged("b")], weights))
    it = iter(p)
    for _ in range(5):
        next(it)
    with pytest.raises(Exception, match=r"weights\(step=5\).*ZeroDivisionError.*no weights at step five"):
        next(it)
    p.close()


@pytest.mark.parametrize("mode", ["interleave", "random"])
@pytest.mark.parametrize("cut", [0, 1, 57, 333])
def test_state_dict_resumes_item_for_item(mode, cut):
    def make():
        inner = schedlab.mix([tagged("x", 40), tagged("y")], [1, 2], seed=4, mode=mode,
                             stop="all_exhausted")
        m = schedlab.mix([tagged("a", 100), range(1000, 1200), inner],
                         lambda s: [1 + s % 3, 1, 2], seed=9, mode=mode, stop="all_exhausted")
        return schedlab.Pipeline(m, workers=2).map(lambda x: x, kind="blocking")

    ref = take(make(), 500)
    p = make()
    it = iter(p)
    got = [next(it) for _ in range(cut)]
    state = json.loads(json.dumps(p.state_dict()))
    p.close()
    q = make()
    q.load_state_dict(state)
    it = iter(q)
    got += [next(it) for _ in range(500 - cut)]
    q.close()
    assert got == ref


def test_a_state_of_another_mix_is_refused():
    p = schedlab.Pipeline(schedlab.mix([tagged("a"), tagged("b")], [3, 1]))
    it = iter(p)
    for _ in range(10):
        next(it)
    state = p.state_dict()
    assert state["positions_done"] == 10
    p.close()
    q = schedlab.Pipeline(schedlab.mix([tagged("a"), tagged("b")], [1, 1]))
    with pytest.raises(ValueError, match=r"weights \[3\.0, 1\.0\]"):
        q.load_state_dict(state)
        next(iter(q))
    q.close()


def test_stats_name_each_source():
    m = schedlab.mix([tagged("a"), tagged("b")], [3, 1], names=["code", "web"])
    assert m.stats() is None
    p = schedlab.Pipeline(m)
    take(p, 200)
    p.close()
    s = m.stats()
    assert s["items"] >= 200
    code, web = s["sources"]
    assert (code["name"], web["name"]) == ("code", "web")
    assert code["taken"] + web["taken"] == s["items"]
    assert code["target_share"] == pytest.approx(0.75)
    assert abs(code["share"] - 0.75) * s["items"] <= 1 + 1e-9
    assert s["holding_back"] in ("code", "web")
    assert "code" in m.report()


def test_the_pipeline_report_names_each_source_of_its_mix():
    m = schedlab.mix([tagged("a", 90), tagged("b", 30)], [3, 1], names=["code", "web"])
    p = schedlab.Pipeline(m).map(lambda x: x, name="same").batch(8, collate_fn=None)
    assert sum(len(b) for b in p) == 120
    r = p.report()
    assert r is not None
    names = [s["name"] for s in r["mix"]["sources"]]
    assert names == ["code", "web"]
    assert [s["taken"] for s in r["mix"]["sources"]] == [90, 30]
    assert r["mix"]["holding_back"] in names
    text = str(r)
    assert "source (mix):" in text and "code" in text and "web" in text
    assert "same" in text  # the stage table is still there
    p.close()
    plain = schedlab.Pipeline(10).map(lambda x: x, name="same")
    list(plain)
    r2 = plain.report()
    assert r2 is not None and "mix" not in r2
    plain.close()


def test_arguments_are_checked_naming_the_field():
    a, b = tagged("a"), tagged("b")
    for kwargs, exc, msg in [
        (dict(sources=[a, b], weights=[1, -1]), ValueError, r"weights\[1\]: must be"),
        (dict(sources=[a, b], weights=[1, float("nan")]), ValueError, r"weights\[1\]"),
        (dict(sources=[a, b], weights=[0, 0]), ValueError, "all zero"),
        (dict(sources=[a, b], weights=[1]), ValueError, "expected 2 weights"),
        (dict(sources=[a, b], weights=[1, "x"]), TypeError, r"weights\[1\]: expected a number"),
        (dict(sources=[], weights=[]), ValueError, "sources: expected at least one"),
        (dict(sources=[a, 3], weights=[1, 1]), TypeError, "sources: expected"),
        (dict(sources=[a, b], weights=[1, 1], mode="rr"), ValueError, "mode: expected"),
        (dict(sources=[a, b], weights=[1, 1], stop="end"), ValueError, "stop: expected"),
        (dict(sources=[a, b], weights=[1, 1], seed=-1), ValueError, "seed"),
        (dict(sources=[a, b], weights=[1, 1], names=["x"]), ValueError, "names: expected 2"),
        (dict(sources=[a, b], weights=[1, 1], names=["x", "x"]), ValueError,
         r"names\[1\]: 'x' names an earlier source too"),
    ]:
        with pytest.raises(exc, match=msg):
            schedlab.mix(**kwargs)


def test_weights_whose_sum_overflows_mix_by_their_ratio():
    # Each weight is finite, their sum is not: the shares were all 0 (a panic on the first pick).
    huge = schedlab.mix([tagged("a"), tagged("b")], [1e308, 1e308 / 3])
    small = schedlab.mix([tagged("a"), tagged("b")], [3, 1])
    got = [x for x, _ in zip(schedlab.Pipeline(huge), range(40))]
    assert got == [x for x, _ in zip(schedlab.Pipeline(small), range(40))]
    assert sum(1 for x in got if x[0] == "a") == 30
