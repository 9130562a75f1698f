"""Streams (issue 30): iterables and shards pulled lazily, a shuffle buffer, exact resume."""

import errno
import io
import itertools
import json
import sys
import tarfile
import threading

import pytest

import schedlab


def write_tars(tmp_path, n, per):
    paths = []
    for s in range(n):
        p = tmp_path / f"shard-{s:03}.tar"
        with tarfile.open(p, "w") as tf:
            for i in range(per):
                for ext, data in (("txt", f"{s}-{i}".encode()), ("cls", str(i % 10).encode())):
                    info = tarfile.TarInfo(f"{i:05}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        paths.append(str(p))
    return paths


def test_an_endless_generator_is_pulled_at_most_the_window_ahead():
    pulled = []

    def gen(epoch):
        for i in itertools.count():
            pulled.append(i)
            yield i

    p = schedlab.Pipeline(gen, workers=2, window=16).map(lambda x: x * 2)
    it = iter(p)
    for i in range(500):
        assert next(it) == 2 * i
        assert len(pulled) - (i + 1) <= 17
    p.close()


def test_an_iterable_source_gives_every_item_once_in_order():
    p = schedlab.Pipeline(iter(range(1000)), workers=3).map(lambda x: x + 1)
    assert list(p) == list(range(1, 1001))


def test_tar_shards_exactly_once_across_ranks_each_shard_on_one_rank(tmp_path):
    paths = write_tars(tmp_path, 7, 20)
    for balanced, spread in ((False, 20), (True, 1)):
        seen, counts = [], []
        for rank in range(3):
            src = schedlab.shards(paths, rank=rank, world_size=3, shuffle=True, seed=4,
                                  balanced=balanced)
            got = [(d["__url__"], d["__key__"], d["txt"]) for d in schedlab.Pipeline(src)]
            counts.append(len(got))
            seen += got
        assert len(seen) == len(set(seen)) == 140
        assert max(counts) - min(counts) <= spread
        sample = next(iter(schedlab.Pipeline(schedlab.shards(paths[:1]))))
        assert sample["__key__"] == "00000" and sample["cls"] == b"0"


def test_jsonl_file_and_callable_readers(tmp_path):
    j = tmp_path / "a.jsonl"
    j.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert list(schedlab.Pipeline(schedlab.shards([str(j)], reader="jsonl"))) == [
        {"a": 1}, {"a": 2}]
    assert list(schedlab.Pipeline(schedlab.shards([str(j)], reader="file"))) == [
        j.read_bytes()]
    src = schedlab.shards(["x", "y"], reader=lambda path: [path + "0", path + "1"])
    assert list(schedlab.Pipeline(src)) == ["x0", "x1", "y0", "y1"]


def shuffled(workers, seed=5, buffer=300):
    return (schedlab.Pipeline(lambda e: range(3000), workers=workers)
            .shuffle(buffer, seed=seed).map(lambda x: x, kind="blocking", concurrency=workers))


def test_the_shuffle_buffer_is_deterministic_whatever_the_workers():
    ref = list(shuffled(1))
    assert sorted(ref) == list(range(3000)) and ref != sorted(ref)
    assert list(shuffled(4)) == ref
    assert list(shuffled(2, seed=6)) != ref


@pytest.mark.parametrize("cut", [1, 37, 150])
def test_resume_is_identical_to_the_uninterrupted_run_with_other_workers(tmp_path, cut):
    paths = write_tars(tmp_path, 5, 40)

    def make(workers):
        src = schedlab.shards(paths, rank=1, world_size=2, shuffle=True, seed=3, balanced=True)
        return (schedlab.Pipeline(src, workers=workers).shuffle(50, seed=9)
                .map(lambda d: d["txt"].decode(), kind="blocking", concurrency=workers)
                .batch(4, collate_fn=None))

    ref = list(make(2))
    p = make(3)
    it = iter(p)
    got = [next(it) for _ in range(min(cut, len(ref)))]
    state = json.loads(json.dumps(p.state_dict()))
    p.close()
    q = make(1)
    q.load_state_dict(state)
    got += list(q)
    assert got == ref


def test_a_state_with_a_10000_item_buffer_is_small_and_a_foreign_one_refused(tmp_path):
    p = schedlab.Pipeline(lambda e: itertools.count()).shuffle(10_000, seed=1)
    it = iter(p)
    for _ in range(30_000):
        next(it)
    state = p.state_dict()
    assert len(json.dumps(state)) <= 64 * 1024
    p.close()
    q = schedlab.Pipeline(lambda e: itertools.count()).shuffle(9_999, seed=1)
    q.load_state_dict(state)
    with pytest.raises(ValueError, match="buffer_size 10000") as e:
        next(iter(q))
    assert "\n" not in str(e.value)


def test_shards_arguments_are_checked():
    with pytest.raises(ValueError, match="rank"):
        schedlab.shards(["a"], rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        schedlab.shards(["a"], world_size=0)
    with pytest.raises(TypeError, match="paths"):
        schedlab.shards("a.tar")
    with pytest.raises(ValueError, match="reader"):
        schedlab.shards(["a"], reader="zip")
    with pytest.raises(ValueError, match="shuffle"):
        schedlab.Pipeline([1, 2, 3]).shuffle(10)


class Stream:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


@pytest.mark.parametrize("num_workers", [0, 1, 4])
def test_the_dataloader_takes_an_iterable_dataset_once_whatever_num_workers(num_workers):
    dl = schedlab.DataLoader(Stream(103), batch_size=10, num_workers=num_workers,
                             collate_fn=list)
    batches = list(dl)
    assert [x for b in batches for x in b] == list(range(103))
    it = iter(dl)
    first = [next(it), next(it)]
    state = dl.state_dict()
    rest = schedlab.DataLoader(Stream(103), batch_size=10, collate_fn=list)
    rest.load_state_dict(state)
    assert first + list(rest) == batches
    with pytest.raises(ValueError, match="shuffle"):
        schedlab.DataLoader(Stream(3), shuffle=True)


def test_a_subclass_of_torchs_iterable_dataset_is_a_stream(monkeypatch):
    """torch's ``IterableDataset`` has the ``__getitem__`` of torch's ``Dataset`` (raising
    ``NotImplementedError``): by the protocol alone it looked map-style and was refused
    ("expected a map-style dataset"). Stood in for by a module of that name, so that the
    test runs without torch; with torch, its own class."""
    try:
        import torch.utils.data as tud
    except ImportError:
        import types

        tud = types.ModuleType("torch.utils.data")

        class Dataset:
            def __getitem__(self, index):
                raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

        class IterableDataset(Dataset):
            def __iter__(self):
                raise NotImplementedError

        tud.Dataset, tud.IterableDataset = Dataset, IterableDataset
        monkeypatch.setitem(sys.modules, "torch.utils.data", tud)

    class Numbers(tud.IterableDataset):
        def __iter__(self):
            return iter(range(23))

    dl = schedlab.DataLoader(Numbers(), batch_size=5, num_workers=2, collate_fn=list,
                             in_order=True)
    assert [x for b in dl for x in b] == list(range(23))
    Numbers.__len__ = lambda self: 23  # torch's len(): the dataset's, in batches
    assert len(dl) == 5
    assert len(schedlab.DataLoader(Numbers(), batch_size=5, drop_last=True)) == 4
    assert len(schedlab.DataLoader(Numbers(), batch_size=None)) == 23
    assert list(schedlab.Pipeline(Numbers(), workers=2).map(lambda x: -x)) == [
        -x for x in range(23)]
    for wt in ("process", "auto"):
        with pytest.raises(ValueError, match=f"worker_type='{wt}': an iterable dataset is read "
                                             "by one reader"):
            schedlab.DataLoader(Numbers(), worker_type=wt)


class Stalls:
    """Waits (for ``release``, at most 30 s) before its items."""

    def __init__(self):
        self.release = threading.Event()

    def __iter__(self):
        self.release.wait(30)
        yield from (0, 1, 2)


def test_the_dataloader_over_an_iterable_dataset_keeps_its_timeout():
    # `timeout` was accepted and ignored: a stalled stream waited as long as it stalled
    ds = Stalls()
    dl = schedlab.DataLoader(ds, batch_size=1, num_workers=1, collate_fn=list, timeout=0.2)
    it = iter(dl)
    try:
        with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
            next(it)
    finally:
        ds.release.set()
    dl.close()
    with pytest.raises(ValueError, match="same setting"):
        schedlab.DataLoader(Stream(3), timeout=1, batch_timeout=2)
    assert [b for b in schedlab.DataLoader(Stream(3), batch_timeout=5, collate_fn=list)] == [
        [0], [1], [2]]


def test_a_missing_shard_raises_oserror_naming_the_file_and_the_other_shards_arrive(tmp_path):
    paths = write_tars(tmp_path, 2, 3)
    missing = str(tmp_path / "missing.tar")
    p = schedlab.Pipeline(schedlab.shards([paths[0], missing, paths[1]]))
    it = iter(p)
    assert [next(it)["__key__"] for _ in range(3)] == ["00000", "00001", "00002"]
    with pytest.raises(FileNotFoundError) as e:
        next(it)
    # Raised as torch does (the type again, the original as its cause).
    assert missing in str(e.value)
    cause = e.value.__cause__
    assert (cause.errno, cause.filename) == (errno.ENOENT, missing)
    p.close()
    skip = schedlab.Pipeline(schedlab.shards([paths[0], missing, paths[1]]), on_failure="skip")
    skip.map(lambda d: d["__url__"])
    assert list(skip) == [paths[0]] * 3 + [paths[1]] * 3
    # A jsonl shard too, and a folder given as a file: the OSError the OS gives.
    with pytest.raises(FileNotFoundError):
        list(schedlab.Pipeline(schedlab.shards([missing], reader="jsonl")))
    with pytest.raises(OSError) as e:
        list(schedlab.Pipeline(schedlab.shards([str(tmp_path)], reader="file")))
    assert e.value.__cause__.filename == str(tmp_path)


def test_a_damaged_tar_shard_raises_valueerror_and_a_reader_s_own_exception_is_raised_as_is(
        tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar archive at all" * 40)
    with pytest.raises(ValueError, match="bad.tar.*checksum"):
        list(schedlab.Pipeline(schedlab.shards([str(bad)])))

    def reader(path):
        raise KeyError(f"no such table: {path}")

    with pytest.raises(KeyError, match="no such table: t1"):
        list(schedlab.Pipeline(schedlab.shards(["t1"], reader=reader)))


def test_a_bare_generator_gives_one_epoch_then_a_clear_error_naming_what_to_pass():
    p = schedlab.Pipeline((i for i in range(5)), workers=2).map(lambda x: x * 10)
    assert list(p) == [0, 10, 20, 30, 40]
    with pytest.raises(TypeError, match=r"one-pass iterator.*callable epoch -> iterable"):
        list(p)
    p.close()
    # Resuming a generator that was already iterated is refused the same way.
    p = schedlab.Pipeline(iter(range(10)))
    it = iter(p)
    next(it)
    state = p.state_dict()
    del it
    p.load_state_dict(state)
    with pytest.raises(Exception, match="one-pass iterator") as e:
        list(p)
    assert "callable epoch -> iterable" in str(e.value)
    p.close()
    # A callable epoch -> iterable, or a re-iterable, gives every epoch.
    q = schedlab.Pipeline(lambda epoch: (i + epoch for i in range(3)))
    assert [list(q), list(q)] == [[0, 1, 2], [1, 2, 3]]
    r = schedlab.Pipeline(Stream(3))
    assert [list(r), list(r)] == [[0, 1, 2], [0, 1, 2]]


class _FlakyStream:
    """0..5 with an exception in place of 2 (a stream that raised is finished: the epoch ends
    after the failure)."""

    def __iter__(self):
        self.i = 0
        return self

    def __next__(self):
        i = self.i
        self.i += 1
        if i >= 6:
            raise StopIteration
        if i == 2:
            raise ValueError("bad stream item 2")
        return i


@pytest.mark.parametrize("stage", [False, True])
def test_on_failure_applies_to_a_streams_exceptions_with_or_without_a_stage(stage):
    def build(on_failure):
        p = schedlab.Pipeline(_FlakyStream(), on_failure=on_failure)
        return p.map(lambda x: x, name="same") if stage else p

    p = build("skip")
    assert list(p) == [0, 1]  # skipped (and counted), not raised
    r = p.report()
    assert r is not None and r["failures"] == 1
    p.close()
    p = build("raise")
    it = iter(p)
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(ValueError, match="bad stream item 2"):
        next(it)
    assert list(it) == []  # a stream that raised is finished
    p.close()


def test_tar_members_of_every_size_arrive_as_bytes_equal_to_tarfile_s(tmp_path):
    # Members over 4 KiB are read straight into the bytes object Python receives (made
    # uninitialised, filled by the reader); smaller ones are copied. Both must be whole,
    # hash as their contents and stay independent of the next sample's read.
    sizes = [0, 1, 511, 512, 513, 4096, 4097, 8192, 50_000, 123_457]
    path = tmp_path / "sizes.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for i, size in enumerate(sizes):
            body = bytes((j * 7 + i) % 256 for j in range(size))
            for ext, data in (("bin", body), ("cls", b"3")):
                info = tarfile.TarInfo(f"{i:02}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    with tarfile.open(path) as tf:
        want = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
        last = tf.getmember("09.bin")
    got = list(schedlab.Pipeline(schedlab.shards([str(path)]), workers=2))
    assert [d["__key__"] for d in got] == [f"{i:02}" for i in range(len(sizes))]
    for d in got:
        for ext in ("bin", "cls"):
            v = d[ext]
            assert type(v) is bytes and v == want[f"{d['__key__']}.{ext}"]
            assert hash(v) == hash(bytes(bytearray(v)))
    # Cut inside the last, large member (the file still longer than it): the samples
    # before it, then a ValueError naming the sample.
    data = path.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:last.offset_data + last.size - 20_000])
    it = iter(schedlab.Pipeline(schedlab.shards([str(cut)])))
    assert [next(it)["__key__"] for _ in range(len(sizes) - 1)] == [
        f"{i:02}" for i in range(len(sizes) - 1)]
    with pytest.raises(ValueError, match="cut.tar.*sample 9.*truncated"):
        next(it)


def test_a_shard_listed_twice_is_refused_naming_the_repeat(tmp_path):
    # it was read twice: every sample of it delivered twice
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"x": 1}\n')
    b.write_text('{"x": 2}\n')
    with pytest.raises(ValueError, match=r"^paths\[2\]: .*a\.jsonl is paths\[0\] again"):
        schedlab.shards([str(a), str(b), str(a)], reader="jsonl")
    got = list(schedlab.Pipeline(schedlab.shards([str(a), str(b)], reader="jsonl")))
    assert sorted(d["x"] for d in got) == [1, 2]
