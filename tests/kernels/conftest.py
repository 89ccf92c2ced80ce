"""The device the Triton tests run on: CUDA where there is one (kernels compiled), else the CPU under
Triton's interpreter, switched on only while a module that asks for it runs."""

import os

import pytest
import torch


@pytest.fixture(scope="module")
def triton_device():
    if torch.cuda.is_available():
        pytest.importorskip("triton")
        yield torch.device("cuda")
        return
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"  # read when kernels are decorated (at import) and chosen
    pytest.importorskip("triton")
    yield torch.device("cpu")
    if before is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = before
