"""One vocabulary with Rust (issue 28): the new names work; the old ones are deprecated
aliases that warn (DeprecationWarning) and do the same for one release."""

import warnings

import pytest

import schedlab


def _batches(dl):
    return [list(map(int, b)) for b in dl]


def test_ordered_is_the_name_and_in_order_a_deprecated_alias():
    data = list(range(20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name does not warn
        new = schedlab.DataLoader(data, batch_size=4, num_workers=2, ordered=True)
        assert new.ordered is True
        assert _batches(new) == [data[i:i + 4] for i in range(0, 20, 4)]
    with pytest.warns(DeprecationWarning, match="ordered"):
        old = schedlab.DataLoader(data, batch_size=4, num_workers=2, in_order=False)
    assert old.ordered is False and old.in_order is False
    assert sorted(x for b in _batches(old) for x in b) == data
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        schedlab.DataLoader(data, num_workers=2, in_order=True, ordered=False)


def test_batch_timeout_is_the_name_and_timeout_a_deprecated_alias():
    data = list(range(8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dl = schedlab.DataLoader(data, batch_size=2, num_workers=2, batch_timeout=30)
        assert dl.batch_timeout == 30
        assert len(_batches(dl)) == 4
    with pytest.warns(DeprecationWarning, match="batch_timeout"):
        old = schedlab.DataLoader(data, batch_size=2, num_workers=2, timeout=30)
    assert old.batch_timeout == 30 and old.timeout == 30
    assert len(_batches(old)) == 4
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="same setting"):
        schedlab.DataLoader(data, num_workers=2, timeout=5, batch_timeout=5)
    with pytest.raises(ValueError):
        schedlab.DataLoader(data, num_workers=2, batch_timeout=-1)


def test_report_is_the_name_and_stats_a_deprecated_alias():
    p = schedlab.Pipeline(12, workers=2).map(lambda x: x * 2).batch(4)
    got = [list(map(int, b)) for b in p]
    assert got == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18, 20, 22]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = p.report()
    with pytest.warns(DeprecationWarning, match="report"):
        old = p.stats()
    assert new is not None and old is not None
    assert old["items"] == new["items"] == 3
    assert old["stages"] == new["stages"]
