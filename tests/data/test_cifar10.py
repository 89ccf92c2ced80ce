import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from neurotoken.data import cifar10
from neurotoken.data.cifar10 import MEAN, STD, augment_draws

SIZES = (3, 2, 1, 2, 3)


def records(rng, n):
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return labels, pixels, np.concatenate([labels[:, None], pixels], axis=1).tobytes()


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("c")
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train_l, train_p = [], []
    for k, n in enumerate(SIZES, start=1):
        labels, pixels, data = records(rng, n)
        (folder / f"data_batch_{k}.bin").write_bytes(data)
        train_l.append(labels)
        train_p.append(pixels)
    labels, pixels, data = records(rng, 4)
    (folder / "test_batch.bin").write_bytes(data)
    return root, (np.concatenate(train_l), np.concatenate(train_p)), (labels, pixels)


def hwc(pixels):
    """Reference layout: record bytes are channel planes of 32 rows of 32."""
    out = np.zeros((32, 32, 3), np.float32)
    for ch in range(3):
        for r in range(32):
            out[r, :, ch] = pixels[ch * 1024 + r * 32: ch * 1024 + r * 32 + 32]
    return out / 255


def test_cifar10_pixels_and_labels_read_back_exactly(cifar_root):
    root, (labels, pixels), (tl, tp) = cifar_root
    ds = cifar10(root)
    assert len(ds) == sum(SIZES)
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (32, 32, 3) and x.dtype == torch.float32 and y == labels[i]
        np.testing.assert_array_equal(x.numpy(), hwc(pixels[i]))
    test = cifar10(root / "cifar-10-batches-bin", train=False)
    assert len(test) == 4 and test[3][1] == tl[3]
    np.testing.assert_array_equal(test[3][0].numpy(), hwc(tp[3]))
    norm = cifar10(root, normalize=True)
    torch.testing.assert_close(norm[2][0], (ds[2][0] - torch.tensor(MEAN)) / torch.tensor(STD))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 1000), st.lists(st.integers(0, sum(SIZES) - 1), min_size=1, max_size=6))
def test_cifar10_augmentation_is_a_padded_crop_and_flip_fixed_by_seed_epoch_index(cifar_root, seed, epoch, idx):
    root, (_, pixels), _ = cifar_root
    ds = cifar10(root, augment=True, seed=seed)
    ds.set_epoch(epoch)
    batch = ds.__getitems__(idx)
    dy, dx, flip = augment_draws(seed, epoch, np.array(idx))
    for k, i in enumerate(idx):
        padded = np.pad(hwc(pixels[i]), ((4, 4), (4, 4), (0, 0)))
        want = padded[dy[k]: dy[k] + 32, dx[k]: dx[k] + 32]
        want = want[:, ::-1] if flip[k] else want
        np.testing.assert_array_equal(batch[k][0].numpy(), want)
        torch.testing.assert_close(ds[i][0], batch[k][0])
    assert dy.min() >= 0 and dy.max() <= 8 and dx.min() >= 0 and dx.max() <= 8


def test_cifar10_augmentation_varies_with_epoch_and_draws_all_offsets():
    dy, dx, flip = augment_draws(3, 0, np.arange(5000))
    assert set(dy) == set(range(9)) and set(dx) == set(range(9)) and 0.45 < flip.mean() < 0.55
    dy1, dx1, flip1 = augment_draws(3, 1, np.arange(5000))
    assert (dy != dy1).mean() > 0.8 and (flip != flip1).mean() > 0.4


def test_cifar10_loader_batches_channels_last(cifar_root):
    root, (labels, _), _ = cifar_root
    ds = cifar10(root, augment=True)
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 32, 32, 3) and y.tolist() == labels[:4].tolist()


def test_cifar10_truncated_or_missing_files_name_the_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        cifar10(tmp_path)
    rng = np.random.default_rng(1)
    (folder / "test_batch.bin").write_bytes(records(rng, 2)[2][:-5])
    with pytest.raises(ValueError, match="test_batch.bin: truncated"):
        cifar10(tmp_path, train=False)
    bad = bytearray(records(rng, 1)[2])
    bad[0] = 12
    (folder / "test_batch.bin").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="test_batch.bin: label byte 12"):
        cifar10(tmp_path, train=False)
    with pytest.raises(TypeError, match="augment must be a bool"):
        cifar10(tmp_path, augment="yes")
