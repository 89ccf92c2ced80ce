"""The trainer on Datasets and DataLoaders, devices, mixed precision and gradient accumulation."""

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

import neurotoken as nt
from neurotoken.data.collate import time_first
from neurotoken.learning.bptt import FitConfig, Trainer, cross_entropy
from neurotoken.learning.sampler import EpochPlan
from neurotoken.models import SNNClassifier

CFG = FitConfig(epochs=2, batch_size=8, lr=1e-2, seed=5, checkpoint_every=2)  # 5 steps per epoch


def data(n=37, seed=0):  # 37: the last batch of every epoch is short
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 6, generator=g)
    return x, (x[:, 0] > x[:, 1]).long() + 2 * (x[:, 2] > 0.5).long()


def model(seed=0, encoding="bernoulli"):
    torch.manual_seed(seed)
    return SNNClassifier(6, (12,), 4, T=3, encoding=encoding)  # bernoulli: draws from the global RNG


class Items(Dataset):
    """A plain map-style dataset over tensors, one item at a time."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


class Batched(Items):
    """The same, fetching a batch at once."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.calls = 0

    def __getitems__(self, idx):
        self.calls += 1
        return list(zip(self.x[idx], self.y[idx].tolist()))


def fit(x, y=None, config=CFG, seed=0, encoding="bernoulli", **kw):
    m = model(seed, encoding)
    trainer = Trainer(m, config, **{k: v for k, v in kw.items() if k == "run_dir"})
    losses = trainer.fit(x, y, **{k: v for k, v in kw.items() if k != "run_dir"})
    return losses, m, trainer


def interrupt_at(call):
    """A cross-entropy loss that raises KeyboardInterrupt at its ``call``-th call (a micro-batch)."""
    calls = {"n": 0}

    def loss(net, xb, yb):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return cross_entropy(net, xb, yb)

    return loss


def interrupted_then_resumed(x, y, config, call, run_dir):
    """Fit until the ``call``-th loss call raises KeyboardInterrupt, then resume from another init."""
    with pytest.raises(KeyboardInterrupt):
        Trainer(model(), config, loss_fn=interrupt_at(call), run_dir=run_dir).fit(x, y)
    return fit(x, y, config, seed=9, run_dir=run_dir, resume=True)


def assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def steps_logged(run_dir):
    return [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


@given(samples=st.integers(1, 60), batch=st.integers(1, 9), accumulate=st.integers(1, 3), world=st.integers(1, 3),
       epoch=st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_epoch_plan_covers_every_sample_once_in_micro_batches_of_at_most_batch_size(samples, batch, accumulate,
                                                                                    world, epoch):
    plans = [EpochPlan(samples, batch, accumulate, seed=3, world=world, rank=r) for r in range(world)]
    seen = []
    for i in range(plans[0].steps):
        per_rank = [p.micro_batches(epoch, i, i + 1) for p in plans]
        assert all(len(mb) == plans[0].count(i) <= accumulate for mb in per_rank)
        for parts in zip(*per_rank):
            size = parts[0][1]
            assert size <= batch and sum(len(idx) for idx, _ in parts) == size
            seen += [j for idx, _ in parts for j in idx]
    assert sorted(seen) == list(range(samples))
    assert plans[0].micro_batches(epoch) == plans[0].micro_batches(epoch)  # a pure function of the epoch


@pytest.mark.parametrize("make, workers", [(TensorDataset, 0), (Items, 0), (Batched, 0), (TensorDataset, 1)])
def test_a_dataset_over_the_same_tensors_trains_to_the_same_weights(make, workers):
    x, y = data()
    ref_losses, ref, _ = fit(x, y)
    config = FitConfig(**{**CFG.__dict__, "num_workers": workers})
    dataset = make(x, y)
    losses, m, _ = fit(dataset, config=config)
    assert losses == ref_losses
    assert_same_weights(m, ref)
    if isinstance(dataset, Batched) and workers == 0:
        assert dataset.calls == 10  # one fetch per batch


class PerEpoch(Items):
    """Items that change with the epoch it is told (as augmentations drawn per epoch do)."""

    epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        return self.x[i] * (1 + self.epoch) % 1, int(self.y[i])


@pytest.mark.parametrize("workers", [0, 1])
def test_a_dataset_is_told_each_epoch_and_resumes_exactly_with_workers(tmp_path, workers):
    x, y = data()
    config = FitConfig(**{**CFG.__dict__, "num_workers": workers})
    ref_losses, ref, _ = fit(PerEpoch(x, y), config=FitConfig(**{**CFG.__dict__, "num_workers": 0}))
    losses, m, _ = interrupted_then_resumed(PerEpoch(x, y), None, config, 7, tmp_path)  # in epoch 1
    assert losses == ref_losses
    assert_same_weights(m, ref)
    _, plain, _ = fit(Items(x, y))
    assert not torch.equal(plain.readout.weight, ref.readout.weight)  # epoch 1 saw other inputs


def test_gradient_accumulation_equals_the_larger_batch():
    x, y = data(48)
    big = FitConfig(epochs=2, batch_size=16, lr=1e-2, seed=1)
    _, ref, _ = fit(x, y, big, encoding="direct")
    losses, m, trainer = fit(x, y, FitConfig(epochs=2, batch_size=4, accumulate=4, lr=1e-2, seed=1),
                             encoding="direct")
    assert trainer.total_steps == 6 and len(losses) == 2
    for p, q in zip(m.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_dataset_fit_resumes_exactly_after_an_interrupt(tmp_path):
    x, y = data()
    config = FitConfig(**{**CFG.__dict__, "accumulate": 2, "batch_size": 4})
    ref_losses, ref, _ = fit(Batched(x, y), config=config, run_dir=tmp_path / "ref")
    # interrupted in the second micro-batch of step 6 (epoch 1)
    losses, m, trainer = interrupted_then_resumed(Batched(x, y), None, config, 12, tmp_path / "run")
    assert trainer.start_step == 5 and losses == ref_losses
    assert_same_weights(m, ref)
    assert steps_logged(tmp_path / "run") == list(range(1, 11))


def test_a_users_dataloader_trains_and_resumes_at_the_next_epoch_boundary_with_a_warning(tmp_path):
    x, y = data(40)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    config = FitConfig(epochs=3, batch_size=8, lr=1e-2, checkpoint_every=1)
    with pytest.raises(KeyboardInterrupt):  # in step 8, inside epoch 1 (steps 5-9)
        Trainer(model(), config, loss_fn=interrupt_at(8), run_dir=tmp_path).fit(loader)
    trainer = Trainer(model(), config, run_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="inside epoch 1: a DataLoader's position .* continues at epoch 2"):
        losses = trainer.fit(loader, resume=True)
    assert trainer.start_step == 10 and len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert steps_logged(tmp_path) == [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15]


def test_a_distributed_sampler_in_a_users_dataloader_is_told_each_epoch():
    x, y = data(16)
    sampler = DistributedSampler(TensorDataset(x, y), num_replicas=1, rank=0, shuffle=True, seed=2)
    fit(DataLoader(TensorDataset(x, y), batch_size=8, sampler=sampler), config=FitConfig(epochs=3, batch_size=8))
    assert sampler.epoch == 2


def test_time_first_batches_and_throughput_are_logged(tmp_path):
    class Sequences(Dataset):  # samples [T, D] -> batches [T, B, D] through the provided collate
        def __len__(self):
            return 12

        def __getitem__(self, i):
            return torch.full((3, 2), float(i % 2)), i % 2

    class TimeMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            assert x.shape[:2] == (3, 4)
            return self.fc(x).mean(0)

    trainer = Trainer(TimeMean(), FitConfig(epochs=2, batch_size=4, lr=0.1), run_dir=tmp_path)
    trainer.fit(Sequences(), collate_fn=time_first, val=Sequences())
    records = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert len(steps) == 6 and all(r["samples_per_s"] > 0 and r["tokens_per_s"] == r["samples_per_s"] for r in steps)
    assert [r["epoch"] for r in records if "val_loss" in r] == [0, 1]


def test_val_loss_and_mean_loss_agree_on_tensors_and_datasets():
    x, y = data()
    trainer = Trainer(model(encoding="direct"), FitConfig(batch_size=8))
    on_tensors = trainer.mean_loss(x, y)
    assert on_tensors == pytest.approx(cross_entropy(trainer.model.eval(), x, y).item(), rel=1e-5)
    assert trainer.mean_loss(Items(x, y)) == pytest.approx(on_tensors, rel=1e-6)
    assert trainer.mean_loss(DataLoader(TensorDataset(x, y), batch_size=5)) == pytest.approx(on_tensors, rel=1e-6)


def test_bf16_autocast_on_cpu_trains_and_the_loss_decreases():
    x, y = data(64)
    losses, m, _ = fit(x, y, FitConfig(epochs=6, batch_size=16, lr=2e-2, precision="bf16"), encoding="rate")
    assert losses[-1] < 0.9 * losses[0]
    assert all(p.dtype == torch.float32 for p in m.parameters())


@pytest.mark.parametrize("backend", ["auto", "sequential"])
def test_neuron_state_stays_fp32_under_autocast(backend):
    lif = nt.LIF(0.9, backend=backend)
    x = torch.rand(4, 2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s, state = lif(nn.functional.linear(x, torch.eye(8)), return_state=True)
    assert state.h.dtype == torch.float32


def test_fp16_scaler_state_is_saved_and_resume_stays_exact(tmp_path):
    x, y = data()
    config = FitConfig(epochs=2, batch_size=8, lr=1e-2, precision="fp16", checkpoint_every=3)
    ref_losses, ref, _ = fit(x, y, config, run_dir=tmp_path / "ref")
    assert all(math.isfinite(v) for v in ref_losses)
    record = json.loads(sorted((tmp_path / "ref/checkpoints").glob("*.json"))[-1].read_text())
    assert record["trainer"]["scaler"]["scale"] > 0
    losses, m, _ = interrupted_then_resumed(x, y, config, 5, tmp_path / "run")
    assert losses == ref_losses
    assert_same_weights(m, ref)


def test_a_device_this_machine_lacks_or_a_bad_name_is_refused():
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"):
        FitConfig(device="gpu")
    with pytest.raises(TypeError, match="device must be a string"):
        FitConfig(device=0)
    with pytest.raises(ValueError, match="precision must be one of"):
        FitConfig(precision="fp8")
    missing = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ValueError, match=f"device '{missing}' is not available"):
        Trainer(model(), FitConfig(device=missing))
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="device 'mps' is not available"):
            Trainer(model(), FitConfig(device="mps"))
    assert Trainer(model(), FitConfig(device="cpu")).device == torch.device("cpu")


def test_bad_data_is_refused_naming_the_argument():
    x, y = data()
    trainer = Trainer(model(), FitConfig(epochs=1))
    with pytest.raises(TypeError, match="y must be None when x is a Dataset"):
        trainer.fit(TensorDataset(x, y), y)
    with pytest.raises(TypeError, match="y must be a torch.Tensor, got NoneType"):
        trainer.fit(x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor .*, a Dataset or a DataLoader, got list"):
        trainer.fit([x], y)
    with pytest.raises(ValueError, match="x must hold at least one sample, got an empty Dataset"):
        trainer.fit(TensorDataset(x[:0], y[:0]))
    with pytest.raises(TypeError, match="collate_fn must be callable"):
        trainer.fit(TensorDataset(x, y), collate_fn="stack")
    with pytest.raises(ValueError, match=r"val must be an \(x, y\) pair"):
        trainer.fit(x, y, val=(x, y, y))
    with pytest.raises(ValueError, match=r"val\[0\] and val\[1\] must have the same length"):
        trainer.fit(x, y, val=(x, y[:3]))
    with pytest.raises(TypeError, match=r"x \(a DataLoader\) must give \(x, y\) batches, got list of 3"):
        trainer.fit(DataLoader(TensorDataset(x, y, y), batch_size=8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_from_cpu_tensors_and_a_dataset_match_and_resume_restores_the_cuda_rng(tmp_path):
    x, y = data()
    config = FitConfig(**{**CFG.__dict__, "device": "cuda"})
    ref_losses, ref, trainer = fit(x, y, config, run_dir=tmp_path / "ref")
    assert next(ref.parameters()).is_cuda and trainer.device.type == "cuda"
    losses, m, _ = fit(TensorDataset(x, y), config=config)
    assert losses == ref_losses
    assert_same_weights(m, ref)
    losses, m, _ = interrupted_then_resumed(x, y, config, 4, tmp_path / "run")
    assert losses == ref_losses
    assert_same_weights(m, ref)


class Sequences(Dataset):
    """Samples [3, 6] with their own time-first collate, as the data loaders provide; a ``labels`` array."""

    collate_fn = staticmethod(time_first)

    def __init__(self, x, y):
        self.x, self.labels = x, y.numpy()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i].expand(3, -1), int(self.labels[i])


class TimeFirst(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.fc = nn.Linear(6, classes)

    def forward(self, x):
        assert x.dim() == 3 and x.shape[0] == 3, "time-first batches [T, B, D]"
        return self.fc(x).mean(0)


def test_a_datasets_own_collate_fn_is_used_when_none_is_given_also_under_a_subset():
    x, y = data(20)
    for ds in (Sequences(x, y), torch.utils.data.Subset(Sequences(x, y), range(12))):
        trainer = Trainer(TimeFirst(), FitConfig(epochs=1, batch_size=4))
        assert all(math.isfinite(v) for v in trainer.fit(ds, val=ds))
        assert math.isfinite(trainer.mean_loss(ds))


def test_out_of_range_labels_in_a_dataset_are_refused_before_any_update():
    x, y = data(20)
    bad = y.clone()
    bad[0] = 7  # in the first batch of epoch 0 whatever the order: every batch holds 20 samples
    m = TimeFirst()
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(ValueError, match=r"the labels of x's first batch must hold class labels in \[0, 3\] "
                                         r"\(the model has 4 outputs\), got values from 0 to 7"):
        Trainer(m, FitConfig(epochs=1, batch_size=20)).fit(Sequences(x, bad))
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), before))


@pytest.mark.parametrize("wrap", [lambda d: d, lambda d: DataLoader(d, batch_size=4, collate_fn=time_first)])
def test_a_bad_label_outside_the_first_batch_is_found_in_the_datasets_labels(wrap):
    x, y = data(20)
    bad = y.clone()
    bad[-1] = 4
    ds = Sequences(x, bad)
    with pytest.raises(ValueError, match=r"the labels attribute of Sequences must hold class labels in \[0, 3\]"):
        Trainer(TimeFirst(), FitConfig(epochs=1, batch_size=4, seed=1)).fit(wrap(torch.utils.data.Subset(ds, range(1, 20))))
    Trainer(TimeFirst(), FitConfig(epochs=1, batch_size=4)).fit(torch.utils.data.Subset(ds, range(19)))  # not kept


def test_a_real_format_loader_trains_like_its_samples_as_tensors_and_resumes_exactly(tmp_path):
    """SHD files read, binned and cached by nt.data.shd: the same weights as the stacked samples, an
    interrupted fit resumes to them bit for bit, and bf16 autocast trains from the loader."""
    pytest.importorskip("h5py")
    from torch.utils.data import default_collate

    from experiments.real_formats import WRITERS

    ds = nt.data.shd(WRITERS["shd"](tmp_path / "shd"), T=10)
    x, y = default_collate([ds[i] for i in range(len(ds))])
    config = FitConfig(epochs=2, batch_size=5, lr=1e-2, seed=3, checkpoint_every=1)  # 12 samples: 3 steps/epoch

    def spotter():
        torch.manual_seed(0)
        return nt.models.KeywordSpotter(700, 20, hidden=(8,), norm="none")

    ref = spotter()
    ref_losses = Trainer(ref, config).fit(x, y)
    m = spotter()
    assert Trainer(m, config).fit(ds, collate_fn=default_collate) == ref_losses
    assert_same_weights(m, ref)

    with pytest.raises(KeyboardInterrupt):  # in the first step of epoch 1
        Trainer(spotter(), config, loss_fn=interrupt_at(4), run_dir=tmp_path / "run").fit(ds, collate_fn=default_collate)
    resumed = spotter()
    assert Trainer(resumed, config, run_dir=tmp_path / "run").fit(ds, resume=True, collate_fn=default_collate) == ref_losses
    assert_same_weights(resumed, ref)

    bf16 = FitConfig(epochs=1, batch_size=4, precision="bf16")
    losses = Trainer(nt.models.KeywordSpotter(700, 20, hidden=(8,), norm="none", time_first=True), bf16).fit(ds)
    assert math.isfinite(losses[0])  # the dataset's own time-first collate, under autocast
