"""The device the Triton tests run on: CUDA where there is one (kernels compiled), else the CPU under
Triton's interpreter, switched on only while a module that asks for it runs."""

import importlib.util
import os
import sys

import pytest
import torch


def _import_triton_interpreted() -> None:
    """Without a GPU, import Triton with the interpreter on before anything else does (torch imports it
    for its own use): Triton decorates its library functions (tl.sum, tl.zeros, tl.cdiv, ...) at import,
    and an interpreted kernel can call only interpreted ones. TRITON_INTERPRET itself is set only while
    a module that asks for the interpreter runs."""
    if torch.cuda.is_available() or "triton" in sys.modules or importlib.util.find_spec("triton") is None:
        return
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        importlib.import_module("triton.language")
    finally:
        if before is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = before


_import_triton_interpreted()


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
