import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from neurotoken.learning.bptt import Trainer

SETUP = """
import torch
from neurotoken.learning.bptt import FitConfig
from neurotoken.models import SNNClassifier
g = torch.Generator().manual_seed(0)
x = torch.rand(48, 6, generator=g)
y = (x[:, 0] > x[:, 1]).long()
cfg = FitConfig(epochs=2, batch_size=8, lr=1e-2, seed=3)
streamed = FitConfig(epochs=2, batch_size=4, accumulate=2, lr=1e-2, seed=3)  # the same steps, from a Dataset
torch.manual_seed(0)
model = SNNClassifier(6, (10,), 2, T=4, encoding="direct")
torch.manual_seed(0)
model2 = SNNClassifier(6, (10,), 2, T=4, encoding="direct")
"""

WORKER = SETUP + """
import sys, torch.distributed as dist
from neurotoken.learning.bptt import Trainer
dist.init_process_group("gloo")
from torch.utils.data import TensorDataset
losses = Trainer(model, cfg).fit(x, y)
losses2 = Trainer(model2, streamed).fit(TensorDataset(x, y))
torch.save({"losses": losses, "params": model.state_dict(), "losses2": losses2, "params2": model2.state_dict()},
           f"{sys.argv[1]}/rank{dist.get_rank()}.pt")
dist.destroy_process_group()
"""


def test_two_cpu_processes_match_single_process_with_same_global_batch(tmp_path):
    """Tensors, and a Dataset with two accumulated micro-batches per step (DDP syncs once per step)."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    (tmp_path / "worker.py").write_text(WORKER)
    subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29517", str(tmp_path / "worker.py"),
                    str(tmp_path)], check=True, capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for key in ("params", "params2"):
        for a, b in zip(ranks[0][key].values(), ranks[1][key].values()):
            assert torch.equal(a, b)  # DDP keeps the replicas identical

    scope: dict = {}
    exec(textwrap.dedent(SETUP), scope)
    single = Trainer(scope["model"], scope["cfg"]).fit(scope["x"], scope["y"])
    torch.testing.assert_close(torch.tensor(ranks[0]["losses"]), torch.tensor(single), rtol=1e-5, atol=1e-6)
    for name, p in scope["model"].state_dict().items():
        torch.testing.assert_close(ranks[0]["params"][name], p, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ranks[0]["params2"][name], p, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.tensor(ranks[0]["losses2"]), torch.tensor(single), rtol=1e-5, atol=1e-6)


def test_under_torchrun_a_cuda_device_without_index_is_the_ranks_local_device(monkeypatch):
    from neurotoken.learning.bptt import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setenv("LOCAL_RANK", "2")
    model = torch.nn.Linear(2, 2)
    assert resolve_device("cuda", model, distributed=True) == torch.device("cuda", 2)
    assert resolve_device("cuda:1", model, distributed=True) == torch.device("cuda", 1)  # an explicit index stays
    assert resolve_device("cuda", model, distributed=False) == torch.device("cuda", 0)
    assert resolve_device(None, model, distributed=True) == torch.device("cpu")  # the model's own device
    monkeypatch.setenv("LOCAL_RANK", "5")
    with pytest.raises(ValueError, match="device 'cuda' is not available: this machine has 4 CUDA device"):
        resolve_device("cuda", model, distributed=True)
