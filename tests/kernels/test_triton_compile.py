"""The Triton kernels compile for a GPU (sm_90 PTX) without one: the interpreter runs them as Python
and misses type errors the compiler would raise. In a subprocess, away from the interpreter."""

import os
import subprocess
import sys

import pytest

SCRIPT = r'''
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from neurotoken.kernels.triton import bitpack as P, blocksparse as B, lif as L, scan as S, selective_scan as SS
from neurotoken import surrogate as sg

def compile_(fn, types, constants):
    signature = {**types, **{name: "constexpr" for name in constants}}
    assert triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", 90, 32)).asm["ptx"]

f32 = "*fp32"
for name in sg.SURROGATES.names():
    compile_(L._apply, {"x": f32, "y": f32, "w": "fp32"}, {"F": L.formula(sg.SURROGATES.get(name))})
for pack, state, spikes, neg, levels in ((0, f32, f32, 0, 2), (1, "*bf16", "*u8", 0, 2), (2, "*bf16", "*i8", 1, 3)):
    for reset in (0, 1, 2):
        codes = {"RESET": reset, "NEG": neg, "LEVELS": levels, "PACK": pack, "BLOCK": L.BLOCK}
        compile_(L._lif_forward, {"x": f32, "beta": f32, "th": f32, "h0": f32, "s0": f32, "s_out": f32,
                                  "states": state, "final": f32, "spikes": spikes, "T": "i32", "M": "i32"},
                 {**codes, "SAVE": True})
        compile_(L._lif_backward, {"states": state, "spikes": spikes, "beta": f32, "th": f32, "h0": f32, "s0": f32,
                                   "gs": f32, "gh": f32, "width": "fp32", "T": "i32", "Tg": "i32", "M": "i32",
                                   "dx": f32, "dbeta": f32, "dth": f32, "dh0": f32, "ds0": f32},
                 {**codes, "PARAMS": True, "F": L.formula(sg.Atan)})
for complex_ in (False, True):
    for reverse in (False, True):
        for write in (False, True):
            compile_(S._scan_chunks, {**{n: f32 for n in ("a", "b", "carry", "h", "last", "prod")},
                                      **{n: "i32" for n in ("L", "C", "a_rows", "a_len")}},
                     {"CHUNK": 16, "REVERSE": reverse, "WRITE": write, "COMPLEX": complex_, "BLOCK": S.BLOCK})
sizes = {"L": "i32", "D": "i32", "N": "i32"}
blocks = {"CHUNK": SS.CHUNK, "BLOCK_D": SS.BLOCK_D, "BLOCK_N": 16}
for save in (False, True):
    compile_(SS._selective_forward, {**{n: f32 for n in ("x", "delta", "A", "k", "q", "h0", "y", "final",
                                                         "checkpoints")}, **sizes}, {**blocks, "SAVE": save})
compile_(SS._selective_backward, {**{n: f32 for n in ("x", "delta", "A", "k", "q", "checkpoints", "gy", "gfinal",
                                                      "scratch", "dx", "ddelta", "dA", "dk", "dq", "dh0")}, **sizes},
         blocks)
for xnor in (False, True):
    for hardware in (False, True):
        compile_(P._scores, {"a": "*i32", "b": "*i32", "out": f32, **{n: "i32" for n in ("L", "S", "W", "n_bits")}},
                 {"XNOR": xnor, "HARDWARE": hardware, "BLOCK_L": P.BLOCK_L, "BLOCK_S": P.BLOCK_S, "BLOCK_W": P.BLOCK_W})
tiles = {"kblocks": "*i64", "blocked": "*u8", **{n: "i32" for n in ("Lp", "Sp", "K", "b", "d", "dv")}}
for dtype, wide, precision, size in ((f32, False, "tf32", 64), (f32, False, "ieee", 64), ("*bf16", False, "ieee", 64),
                                    ("*fp16", False, "ieee", 64), ("*fp64", True, "fma", 16)):
    blocks = {"BLOCK": 32, "BLOCK_D": size, "BLOCK_DV": size, "PRECISION": precision,
              "ACC": tl.float64 if wide else tl.float32}
    values = {n: dtype for n in ("q", "k", "v", "out", "gout", "dq")}
    sums = {n: "*fp64" if wide else f32 for n in ("lse", "glse", "dk", "dv_")}
    compile_(B._forward, {**{n: values[n] for n in ("q", "k", "v")}, **tiles, "out": dtype, "lse": sums["lse"]},
             blocks)
    compile_(B._backward, {**{n: values[n] for n in ("q", "k", "v")}, **tiles, **values, **sums}, blocks)
'''


@pytest.mark.slow
def test_triton_kernels_compile_for_a_gpu_target(tmp_path):
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp_path), TRITON_DEFAULT_FP_FUSION="1")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
