import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from neurotoken.data import events as ev
from neurotoken.data import dvs_gesture, nmnist


def reference_counts(x, y, t, p, T, sensor, channels=2, f=1):
    """Loop definition of the binning: T equal bins over [t_min, t_max]."""
    h, w = (sensor[0] + f - 1) // f, (sensor[1] + f - 1) // f
    out = np.zeros((T, h, w, channels), np.float32)
    if len(t) == 0:
        return out
    t0, span = min(t), max(t) - min(t) + 1
    for xi, yi, ti, pi in zip(x, y, t, p):
        out[(ti - t0) * T // span, yi // f, xi // f, pi if channels == 2 else 0] += 1
    return out


def nmnist_bytes(x, y, t, p) -> bytes:
    out = bytearray()
    for xi, yi, ti, pi in zip(x, y, t, p):
        out += bytes([xi, yi, (pi << 7) | ((ti >> 16) & 127), (ti >> 8) & 255, ti & 255])
    return bytes(out)


def random_events(rng, n, sensor=(34, 34), t_max=300_000):
    t = np.sort(rng.integers(0, t_max, n))
    return rng.integers(0, sensor[1], n), rng.integers(0, sensor[0], n), t, rng.integers(0, 2, n)


@pytest.fixture
def nmnist_root(tmp_path):
    rng = np.random.default_rng(0)
    samples = {}
    for split, digits in (("Train", (0, 3, 3, 9)), ("Test", (5,))):
        for k, d in enumerate(digits):
            folder = tmp_path / split / str(d)
            folder.mkdir(parents=True, exist_ok=True)
            e = random_events(rng, 50 + 37 * k)
            (folder / f"{k:05d}.bin").write_bytes(nmnist_bytes(*e))
            samples.setdefault(split, []).append((d, e))
    return tmp_path, samples


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 200), st.integers(1, 9), st.integers(1, 13), st.data())
def test_bin_times_matches_loop(n, T, n_cells, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    t = np.sort(rng.integers(0, 1000, n))
    cell = rng.integers(0, n_cells, n)
    use_width = data.draw(st.booleans())
    if use_width:
        width = data.draw(st.integers(1, 400))
        got = ev.bin_times(t, cell, n_cells, bin_us=width, T=None)
        steps = int(t.max()) // width + 1 if n else 1
        assert got.shape == (steps, n_cells)
        want = np.zeros_like(got)
        for ti, ci in zip(t, cell):
            want[ti // width, ci] += 1
    else:
        got = ev.bin_times(t, cell, n_cells, T=T, t_span=1000)
        want = np.zeros((T, n_cells), np.int64)
        for ti, ci in zip(t, cell):
            want[ti * T // 1000, ci] += 1
    np.testing.assert_array_equal(got, want)
    assert got.sum() == n


def denoise_loop(x, y, t, filter_us, sensor):
    """tonic's Denoise rule, one event at a time (memory starts empty)."""
    h, w = sensor
    last = np.full((w, h), -(10**12))
    keep = []
    for xi, yi, ti in zip(x, y, t):
        last[xi, yi] = ti
        near = [last[a, b] for a, b in ((xi - 1, yi), (xi + 1, yi), (xi, yi - 1), (xi, yi + 1)) if 0 <= a < w and 0 <= b < h]
        keep.append(any(ti - s < filter_us for s in near))
    return np.array(keep, dtype=bool)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 120), st.integers(1, 500), st.integers(0, 2**31))
def test_denoise_matches_event_loop(n, filter_us, seed):
    rng = np.random.default_rng(seed)
    sensor = (5, 7)
    x, y, t, _ = random_events(rng, n, sensor, t_max=2000)
    np.testing.assert_array_equal(ev.denoise(x, y, t, filter_us, sensor), denoise_loop(x, y, t, filter_us, sensor))


def test_nmnist_counts_and_labels_read_back_exactly(nmnist_root):
    root, samples = nmnist_root
    ds = nmnist(root, T=7, cache=False)
    assert len(ds) == 4 and ds.labels.tolist() == [0, 3, 3, 9]
    for i, (digit, e) in enumerate(samples["Train"]):
        x, label = ds[i]
        assert label == digit and x.dtype == torch.float32 and x.shape == (7, 34, 34, 2)
        np.testing.assert_array_equal(x.numpy(), reference_counts(*e, 7, (34, 34)))
    test = nmnist(root, train=False, T=3, cache=False)
    np.testing.assert_array_equal(test[0][0].numpy(), reference_counts(*samples["Test"][0][1], 3, (34, 34)))


def test_nmnist_downsample_merged_polarity_and_binary(nmnist_root):
    root, samples = nmnist_root
    e = samples["Train"][3][1]
    x = nmnist(root, T=4, channels=1, downsample=4, cache=False)[3][0]
    assert x.shape == (4, 9, 9, 1)
    np.testing.assert_array_equal(x.numpy(), reference_counts(*e, 4, (34, 34), channels=1, f=4))
    b = nmnist(root, T=4, channels=1, downsample=4, binary=True, cache=False)[3][0]
    torch.testing.assert_close(b, x.clamp(max=1))


def test_nmnist_overflow_record_shifts_later_events(tmp_path):
    (tmp_path / "Train" / "1").mkdir(parents=True)
    data = nmnist_bytes([1], [2], [100], [1]) + bytes([0, 240, 0, 0, 0]) + nmnist_bytes([3], [4], [50], [0])
    (tmp_path / "Train" / "1" / "a.bin").write_bytes(data)
    x, y, t, p = ev.read_nmnist(tmp_path / "Train" / "1" / "a.bin")
    assert x.tolist() == [1, 3] and y.tolist() == [2, 4] and t.tolist() == [100, 50 + 8192] and p.tolist() == [1, 0]


def test_nmnist_bin_width_gives_variable_lengths_padded_by_collate(nmnist_root):
    root, samples = nmnist_root
    ds = nmnist(root, T=None, bin_us=50_000, cache=False)
    lengths = [ds[i][0].shape[0] for i in range(len(ds))]
    for (_, (_, _, t, _)), n in zip(samples["Train"], lengths):
        assert n == (t.max() - t.min()) // 50_000 + 1
    x, y = next(iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn)))
    assert x.shape == (max(lengths), 4, 34, 34, 2) and y.tolist() == [0, 3, 3, 9]
    for i in range(4):
        torch.testing.assert_close(x[: lengths[i], i], ds[i][0])
        assert not x[lengths[i]:, i].any()


def test_nmnist_cache_is_reused_and_keyed_by_binning(nmnist_root, monkeypatch):
    root, _ = nmnist_root
    first = nmnist(root, T=5)
    folders = sorted((root / ".neurotoken-cache").iterdir())
    assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()
    monkeypatch.setattr(ev, "read_nmnist", lambda path: pytest.fail("cache not used"))
    again = nmnist(root, T=5)
    for i in range(len(first)):
        torch.testing.assert_close(again[i][0], first[i][0])
        assert again[i][1] == first[i][1]
    with pytest.raises(pytest.fail.Exception):
        nmnist(root, T=6)


def test_nmnist_corrupt_cache_is_rebuilt_with_warning(nmnist_root, tmp_path):
    root, samples = nmnist_root
    nmnist(root, T=5, cache=tmp_path / "c")
    (folder,) = (tmp_path / "c").iterdir()
    (folder / "count.npy").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache"):
        ds = nmnist(root, T=5, cache=tmp_path / "c")
    np.testing.assert_array_equal(ds[0][0].numpy(), reference_counts(*samples["Train"][0][1], 5, (34, 34)))


def test_nmnist_truncated_or_foreign_file_names_the_file(tmp_path):
    (tmp_path / "Train" / "2").mkdir(parents=True)
    bad = tmp_path / "Train" / "2" / "bad.bin"
    bad.write_bytes(nmnist_bytes([1, 2], [1, 2], [5, 6], [0, 1])[:-2])
    with pytest.raises(ValueError, match="bad.bin.*truncated"):
        nmnist(tmp_path, cache=False)[0]
    bad.write_bytes(nmnist_bytes([200], [1], [5], [0]))
    with pytest.raises(ValueError, match="bad.bin.*not an N-MNIST"):
        nmnist(tmp_path, cache=False)[0]


def test_nmnist_missing_folders_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="Train"):
        nmnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        nmnist(tmp_path / "nope")
    with pytest.raises(TypeError, match="root"):
        nmnist(3)
    (tmp_path / "Train").mkdir()
    with pytest.raises(ValueError, match="T must be >= 1"):
        nmnist(tmp_path, T=0)
    with pytest.raises(ValueError, match="channels"):
        nmnist(tmp_path, channels=3)
    with pytest.raises(ValueError, match="T .*or bin_us"):
        nmnist(tmp_path, T=None)
    with pytest.raises(FileNotFoundError, match="no <digit>"):
        nmnist(tmp_path)


def aedat_bytes(packets, header=b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"):
    out = bytearray(header)
    for kind, overflow, records in packets:
        out += struct.pack("<hhiiiiii", kind, 1, 8, 4, overflow, len(records), len(records), len(records))
        for data, ts in records:
            out += struct.pack("<Ii", data, ts)
    return bytes(out)


def polarity(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


@pytest.fixture
def gesture_root(tmp_path):
    rng = np.random.default_rng(1)
    x, y, t, p = random_events(rng, 400, (128, 128), t_max=10_000)
    records = [(polarity(int(a), int(b), int(c)), int(d)) for a, b, c, d in zip(x, y, p, t)]
    packets = [(_kind, 0, r) for _kind, r in ((1, records[:150]), (0, [(7, 5)]), (1, records[150:]))]
    packets.append((1, 0, [(polarity(5, 5, 1, valid=0), 9_000)]))   # invalid event: dropped
    (tmp_path / "user01_led.aedat").write_bytes(aedat_bytes(packets))
    (tmp_path / "user01_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,100,4000\n11,4000,9500\n")
    (tmp_path / "trials_to_train.txt").write_text("user01_led.aedat\n\n")
    return tmp_path, (x, y, t, p)


def test_dvs_gesture_slices_by_label_times_exactly(gesture_root):
    root, (x, y, t, p) = gesture_root
    ds = dvs_gesture(root, T=6, cache=False)
    assert len(ds) == 2 and ds.labels.tolist() == [2, 10]
    for i, (lo, hi) in enumerate(((100, 4000), (4000, 9500))):
        m = (t >= lo) & (t < hi)
        got, label = ds[i]
        assert got.shape == (6, 128, 128, 2)
        np.testing.assert_array_equal(got.numpy(), reference_counts(x[m], y[m], t[m], p[m], 6, (128, 128)))
    cached = dvs_gesture(root, T=6, downsample=4)
    assert cached[1][0].shape == (6, 32, 32, 2) and cached[1][0].sum() == ((t >= 4000) & (t < 9500)).sum()


def test_aedat_timestamp_overflow_extends_time(tmp_path):
    path = tmp_path / "a.aedat"
    path.write_bytes(aedat_bytes([(1, 0, [(polarity(1, 2, 1), 10)]), (1, 1, [(polarity(3, 4, 0), 5)])]))
    x, y, t, p = ev.read_aedat31(path)
    assert x.tolist() == [1, 3] and y.tolist() == [2, 4] and t.tolist() == [10, 5 + 2**31] and p.tolist() == [1, 0]


def test_dvs_gesture_corrupt_files_name_the_file(gesture_root):
    root, _ = gesture_root
    f = root / "user01_led.aedat"
    good = f.read_bytes()
    f.write_bytes(good[:-3])
    with pytest.raises(ValueError, match="user01_led.aedat.*truncated"):
        dvs_gesture(root, cache=False)[0]
    f.write_bytes(b"garbage" + good)
    with pytest.raises(ValueError, match="user01_led.aedat.*AEDAT"):
        dvs_gesture(root, cache=False)[0]
    (root / "user01_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n12,1,2\n")
    with pytest.raises(ValueError, match="_labels.csv.*classes"):
        dvs_gesture(root, cache=False)
    (root / "user01_led_labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match="_labels.csv is missing"):
        dvs_gesture(root, cache=False)
    with pytest.raises(FileNotFoundError, match="trials_to_test.txt is missing"):
        dvs_gesture(root, train=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2**31)), min_size=0, max_size=5))
def test_sparse_cache_round_trips_dense_samples(tmp_path_factory, specs):
    from neurotoken.data.cache import SparseSamples

    samples = [np.random.default_rng(seed).integers(0, 3, (steps, 4, 3)) for steps, seed in specs]
    labels = np.arange(len(samples))
    folder = tmp_path_factory.mktemp("cache") / "c"
    SparseSamples.from_dense(iter(samples), labels, (4, 3)).save(folder)
    back = SparseSamples.load(folder)
    assert len(back) == len(samples) and back.labels.tolist() == labels.tolist()
    for i, s in enumerate(samples):
        np.testing.assert_array_equal(back.dense(i), s)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=5), st.integers(0, 60), st.booleans(),
       st.integers(0, 2**31))
def test_sparse_from_event_keys_equals_the_dense_counts(lengths, events, binary, seed):
    from neurotoken.data.cache import SparseSamples

    rng = np.random.default_rng(seed)
    cells = 6  # cell_shape (2, 3)
    total = sum(lengths) * cells
    keys = rng.integers(0, max(total, 1), events if total else 0)
    flat = np.bincount(keys, minlength=total).astype(np.float32)
    if binary:
        flat = np.minimum(flat, 1)
    got = SparseSamples.from_keys(keys, lengths, np.arange(len(lengths)), (2, 3), binary)
    starts = np.cumsum([0] + lengths) * cells
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(got.dense(i), flat[starts[i]:starts[i + 1]].reshape(n, 2, 3))
    rows = rng.integers(0, len(lengths), 7)
    for x, i in zip(got.dense_many(rows), rows):
        np.testing.assert_array_equal(x, got.dense(i))
    both = SparseSamples.concat([got, got])
    assert both.labels.tolist() == 2 * got.labels.tolist()
    for i in range(2 * len(lengths)):
        np.testing.assert_array_equal(both.dense(i), got.dense(i % len(lengths)))


def test_cache_stores_indices_and_counts_in_narrow_types(tmp_path):
    from neurotoken.data.cache import SparseSamples

    samples = [np.full((3, 2), 7), np.array([[0, 300], [1, 0]])]
    SparseSamples.from_dense(iter(samples), np.arange(2), (2,)).save(tmp_path / "c")
    back = SparseSamples.load(tmp_path / "c")
    assert back.index.dtype == np.uint8 and back.count.dtype == np.uint16
    np.testing.assert_array_equal(back.dense(1), samples[1])


def test_getitems_matches_getitem_in_any_order_and_refuses_out_of_range(nmnist_root):
    root, _ = nmnist_root
    for cache in (True, False):
        ds = nmnist(root, T=5, cache=cache)
        order = [3, 0, 3, -1, 1]
        for (x, y), i in zip(ds.__getitems__(order), order):
            torch.testing.assert_close(x, ds[i][0])
            assert y == ds.labels[i]
        with pytest.raises(IndexError, match="index 4 is out of range for a dataset of 4 samples"):
            ds[4]


def test_cache_argument_is_checked(nmnist_root):
    with pytest.raises(TypeError, match="cache must be True, False or a folder"):
        nmnist(nmnist_root[0], cache=3)


def test_aedat_packet_capacity_beyond_its_event_number_is_skipped(tmp_path):
    head = b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"
    packet = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 3, 2, 2) + struct.pack("<IiIiIi", polarity(1, 1, 1), 1,
                                                                            polarity(2, 2, 0), 2, polarity(9, 9, 1), 3)
    second = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", polarity(4, 4, 1), 4)
    (tmp_path / "a.aedat").write_bytes(head + packet + second)
    x, _, t, _ = ev.read_aedat31(tmp_path / "a.aedat")
    assert x.tolist() == [1, 2, 4] and t.tolist() == [1, 2, 4]


def test_unwritable_cache_warns_and_serves_from_memory(nmnist_root, tmp_path):
    root, samples = nmnist_root
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should go")
    with pytest.warns(UserWarning, match="could not write the cache"):
        ds = nmnist(root, T=5, cache=blocker)
    np.testing.assert_array_equal(ds[1][0].numpy(), reference_counts(*samples["Train"][1][1], 5, (34, 34)))
