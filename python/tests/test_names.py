"""One vocabulary with Rust (issue 28): the new names work; the old ones are deprecated
aliases that warn (DeprecationWarning) and do the same for one release, except torch's own
DataLoader arguments, which stay (the DataLoader is a drop-in for torch's)."""

import warnings

import pytest

import schedlab


def _batches(dl):
    return [list(map(int, b)) for b in dl]


def test_the_dataloader_takes_torchs_names_and_the_pipelines_without_warning():
    # the DataLoader is a drop-in for torch's: its `in_order` and `timeout` stay first-class
    # (changing the import must stay the whole migration); `ordered` and `batch_timeout`,
    # the names of schedlab.Pipeline and Rust, are the same settings
    data = list(range(20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither name warns
        new = schedlab.DataLoader(data, batch_size=4, num_workers=2, ordered=True)
        old = schedlab.DataLoader(data, batch_size=4, num_workers=2, in_order=False)
        t1 = schedlab.DataLoader(data, batch_size=2, num_workers=2, batch_timeout=30)
        t2 = schedlab.DataLoader(data, batch_size=2, num_workers=2, timeout=30)
    assert new.ordered is True and new.in_order is True
    assert _batches(new) == [data[i:i + 4] for i in range(0, 20, 4)]
    assert old.ordered is False and old.in_order is False
    assert sorted(x for b in _batches(old) for x in b) == data
    assert t1.batch_timeout == t1.timeout == 30 == t2.batch_timeout == t2.timeout
    assert len(_batches(t2)) == 10
    with pytest.raises(ValueError, match="disagree"):
        schedlab.DataLoader(data, num_workers=2, in_order=True, ordered=False)
    with pytest.raises(ValueError, match="same setting"):
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
