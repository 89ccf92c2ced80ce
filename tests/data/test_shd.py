import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurotoken.data import shd, ssc

h5py = pytest.importorskip("h5py")


def write_h5(path, samples, labels, keys=("spikes/times", "spikes/units", "labels")):
    with h5py.File(path, "w") as f:
        times = np.empty(len(samples), dtype=object)
        units = np.empty(len(samples), dtype=object)
        for i, (t, u) in enumerate(samples):
            times[i], units[i] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
        f.create_dataset(keys[0], data=times, dtype=h5py.vlen_dtype(np.float32))
        f.create_dataset(keys[1], data=units, dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset(keys[2], data=np.asarray(labels, np.uint16))


def random_samples(rng, n):
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 300))
        # whole milliseconds plus 0.3 ms: exact to the microsecond in float32, never on a bin edge
        t = np.sort(rng.integers(0, 1500, k)) * 1e-3 + 3e-4
        out.append((t, rng.integers(0, 700, k)))
    return out


def reference(t, u, T, duration):
    out = np.zeros((T, 700), np.float32)
    for ti, ui in zip(t, u):
        b = int(round(ti * 1e6)) * T // round(duration * 1e6)
        if b < T:
            out[b, ui] += 1
    return out


@pytest.fixture
def shd_root(tmp_path):
    rng = np.random.default_rng(0)
    train, test = random_samples(rng, 5), random_samples(rng, 2)
    write_h5(tmp_path / "shd_train.h5", train, [3, 19, 0, 7, 7])
    write_h5(tmp_path / "shd_test.h5", test, [1, 2])
    return tmp_path, train, test


def test_shd_counts_and_labels_read_back_exactly(shd_root):
    root, train, test = shd_root
    ds = shd(root, T=20, cache=False)
    assert len(ds) == 5 and ds.labels.tolist() == [3, 19, 0, 7, 7]
    for i, (t, u) in enumerate(train):
        x, _ = ds[i]
        assert x.shape == (20, 700) and x.dtype == torch.float32
        np.testing.assert_array_equal(x.numpy(), reference(t, u, 20, 1.4))
    assert shd(root, train=False, T=20, cache=False)[1][1] == 2


def test_shd_bin_width_covers_the_window_and_binary_clips(shd_root):
    root, train, _ = shd_root
    ds = shd(root, T=None, bin_us=100_000, duration_s=1.0, cache=False)
    x = ds[0][0]
    assert x.shape == (10, 700)
    t, u = train[0]
    np.testing.assert_array_equal(x.numpy(), reference(t, u, 10, 1.0))
    b = shd(root, T=None, bin_us=100_000, duration_s=1.0, binary=True, cache=False)[0][0]
    torch.testing.assert_close(b, x.clamp(max=1))


def test_shd_cache_and_loader_batch_time_first(shd_root):
    root, train, _ = shd_root
    cached = shd(root, T=20)
    assert (root / ".neurotoken-cache").is_dir()
    ds = shd(root, T=20, cache=False)
    for i in range(len(ds)):
        torch.testing.assert_close(cached[i][0], ds[i][0])
    x, y = next(iter(DataLoader(pickle.loads(pickle.dumps(ds)), batch_size=3, collate_fn=ds.collate_fn)))
    assert x.shape == (20, 3, 700) and y.tolist() == [3, 19, 0]


def test_ssc_subsets(tmp_path):
    rng = np.random.default_rng(1)
    write_h5(tmp_path / "ssc_valid.h5", random_samples(rng, 2), [34, 0])
    assert ssc(tmp_path, "validation", T=5, cache=False).labels.tolist() == [34, 0]
    with pytest.raises(ValueError, match="subset must be one of"):
        ssc(tmp_path, "valid")
    with pytest.raises(FileNotFoundError, match="ssc_train.h5 is missing"):
        ssc(tmp_path)


def test_shd_wrong_keys_corrupt_file_and_bad_units_name_the_file(tmp_path):
    rng = np.random.default_rng(2)
    write_h5(tmp_path / "shd_train.h5", random_samples(rng, 2), [0, 1], keys=("spikes/t", "spikes/units", "labels"))
    with pytest.raises(ValueError, match="shd_train.h5.*missing spikes/times"):
        shd(tmp_path)
    (tmp_path / "shd_train.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="shd_train.h5.*not a readable HDF5"):
        shd(tmp_path)
    write_h5(tmp_path / "shd_train.h5", [([0.1, 0.2], [3, 700])], [0])
    with pytest.raises(ValueError, match="shd_train.h5: sample 0"):
        shd(tmp_path, cache=False)[0]
    with pytest.raises(ValueError, match="T must be >= 1"):
        shd(tmp_path, T=0)
    with pytest.raises(ValueError, match="duration_s"):
        shd(tmp_path, T=None, bin_us=10, duration_s=None)


def test_missing_h5py_is_one_line_with_the_install_command(shd_root, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"nt.data.shd needs h5py: pip install 'neurotoken\[hdf5\]'"):
        shd(shd_root[0], cache=False)


def test_worker_processes_read_the_file_themselves(shd_root):
    root, _, _ = shd_root
    ds = shd(root, T=20, cache=False)
    ds[0]   # the parent opened the file; a worker must not reuse that handle
    x, y = next(iter(DataLoader(ds, batch_size=5, num_workers=1, collate_fn=ds.collate_fn)))
    for i in range(5):
        torch.testing.assert_close(x[:, i], ds[i][0])


def test_batched_reads_in_any_order_equal_single_samples(shd_root):
    root, train, _ = shd_root
    for cache in (False, True):
        ds = shd(root, T=20, cache=cache)
        order = [4, 1, 1, 0, 3]
        for (x, y), i in zip(ds.__getitems__(order), order):
            np.testing.assert_array_equal(x.numpy(), reference(*train[i], 20, 1.4))
            assert y == ds.labels[i]


def test_without_duration_each_sample_spans_its_own_spikes(shd_root):
    root, train, _ = shd_root
    ds = shd(root, T=7, duration_s=None, cache=False)
    for i, (t, u) in enumerate(train):
        span = (int(round(max(t) * 1e6)) + 1) * 1e-6 if len(t) else 1e-6
        np.testing.assert_array_equal(ds[i][0].numpy(), reference(t, u, 7, span))
