import json
import os
import subprocess
import sys

import pytest

from neurotoken import bench


def test_time_fn_returns_the_median_after_warmup():
    calls = []
    assert bench.time_fn(lambda: calls.append(1), repeats=3, warmup=2) >= 0
    assert len(calls) == 5


def test_copy_bandwidth_is_a_positive_rate():
    assert bench.copy_bandwidth(2**16, repeats=2) > 1e6


def test_summarise_ratios_and_bound_fractions():
    rows = [{"case": "c", "impl": "ours", "peer": False, "median_s": 1.0, "bytes": 100},
            {"case": "c", "impl": "a", "peer": True, "median_s": 4.0, "bytes": 100},
            {"case": "c", "impl": "b", "peer": True, "median_s": 2.0, "bytes": 100},
            {"case": "d", "impl": "ours", "peer": False, "median_s": 0.5, "bytes": 100}]
    out = bench.summarise(rows, bandwidth=200.0)
    assert out[0]["vs_best_peer"] == 2.0 and out[1]["vs_best_peer"] == 0.5
    assert out[0]["fraction_of_bound"] == 0.5 and out[3]["vs_best_peer"] is None


def test_quick_run_writes_json_and_png(tmp_path):
    results = bench.run_all(quick=True, repeats=1, peers=False)
    impls = {r["impl"] for r in results["rows"]}
    assert {"neurotoken fused", "neurotoken sequential", "linear_scan parallel + spike",
            "linear_scan sequential + spike", "linear_scan fused + spike", "torch float32 matmul", "neurotoken bitpack popcount kernel",
            "torch dense masked softmax", "neurotoken event-driven"} <= impls
    assert any(i.startswith("linear_scan auto (picks ") for i in impls)
    cases = {r["case"] for r in results["rows"]}
    assert any(c.startswith("AND scores") for c in cases) and any(c.startswith("sparse attention") for c in cases)
    json_path, png_path = bench.save(results, tmp_path)
    assert json.loads(json_path.read_text())["rows"][0]["median_s"] > 0
    assert png_path.read_bytes()[:4] == b"\x89PNG"


def test_bench_command_runs_quick(tmp_path):
    out = subprocess.run([sys.executable, "-m", "neurotoken", "bench", "--quick", "--repeats", "1", "--no-peers",
                          "--out", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    (run_dir,) = tmp_path.iterdir()
    assert "of bandwidth bound" in out and run_dir.name.endswith("-bench") and (run_dir / "results.json").exists()


def test_cases_can_be_chosen_and_unknown_ones_are_refused():
    results = bench.run_all(quick=True, repeats=1, peers=False, cases=("reset",))
    assert results["rows"] and all(r["case"].startswith("LIF subtract reset") for r in results["rows"])
    with pytest.raises(ValueError, match=r"cases\[0\] must be one of"):
        bench.run_all(quick=True, cases=("nope",))


def test_blocksparse_case_times_ours_against_dense_and_the_neighbour_gather():
    results = bench.run_all(quick=True, repeats=1, peers=False, cases=("blocksparse",))
    rows = results["rows"]
    cases = {r["case"] for r in rows}
    assert len(cases) == 6 and all(c.startswith("block-sparse attention") for c in cases)
    for case in cases:
        impls = {r["impl"] for r in rows if r["case"] == case}
        assert "torch dense masked softmax" in impls and any(i.startswith("neurotoken block-sparse") for i in impls)
        assert ("torch gather of neighbouring key blocks" in impls) == (" local " in case)
    assert all(r["vs_dense"] > 0 for r in rows if not r["peer"])


def test_neighbour_gather_baseline_equals_dense_masked_attention():
    import torch

    from neurotoken.mixers import attention, sparse

    q, k, v = torch.randn(3, 2, 100, 4, dtype=torch.float64).unbind(0)
    torch.testing.assert_close(bench._neighbour_gather(q, k, v, 41, block=64),
                               attention.softmax_attention(q, k, v, sparse.local(100, 41)))


def test_event_linear_case_times_event_and_auto_against_dense_at_each_rate():
    rows = bench.run_all(quick=True, repeats=1, peers=False, cases=("event-linear",))["rows"]
    cases = {r["case"] for r in rows}
    assert len(cases) == 8 and all(c.startswith("event linear") for c in cases)
    for case in cases:
        impls = {r["impl"] for r in rows if r["case"] == case}
        assert {"torch dense", "neurotoken event"} <= impls
        assert ("torch sparse CSR (with the conversion)" in impls) == (" forward " in case)
        assert ("neurotoken auto" in impls) == ("mask" not in case)
    assert all(r["vs_dense"] > 0 for r in rows if not r["peer"])


def test_snn_step_case_times_a_training_step_and_reports_hidden_rates():
    rows = bench.run_all(quick=True, repeats=1, peers=False, cases=("snn-step",))["rows"]
    assert {r["impl"] for r in rows} == {"neurotoken (event chooser)", "neurotoken dense"}
    assert all(r["case"].startswith("SNN training step 20-16-16-3") and r["median_s"] > 0 for r in rows)
    assert all(len(r["hidden_spike_rates"]) == 2 and all(0 <= v <= 1 for v in r["hidden_spike_rates"]) for r in rows)


def test_selective_scan_case_times_each_method_forward_and_backward_against_the_sequential_scan():
    rows = bench.run_all(quick=True, repeats=1, peers=False, cases=("selective-scan",))["rows"]
    cases = {r["case"] for r in rows}
    assert cases == {"selective scan forward B=2 L=33 D=8 N=4", "selective scan forward+backward B=2 L=33 D=8 N=4"}
    for case in cases:
        impls = {r["impl"] for r in rows if r["case"] == case}
        assert impls == {"selective_scan sequential", "selective_scan parallel", "selective_scan auto"}  # no Triton here
    forward = [r for r in rows if " forward " in r["case"]]
    backward = [r for r in rows if "backward" in r["case"]]
    assert forward[0]["bytes"] == (3 * 2 * 33 * 8 + 2 * 2 * 33 * 4 + 8 * 4 + 2 * 8 * 4) * 4 < backward[0]["bytes"]
    assert all(r["peer"] == r["impl"].endswith("sequential") and r["vs_best_peer"] > 0 for r in rows)


def _interpreted(expression: str):
    """The value of a Python ``expression`` over ``bench``, evaluated in a fresh process with the
    Triton kernels interpreted on the CPU."""
    pytest.importorskip("triton")
    code = f"from neurotoken import bench; print(repr({expression}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TRITON_INTERPRET": "1"}).stdout
    return eval(out)  # noqa: S307 - our own printed value


def test_selective_scan_case_adds_the_triton_kernel_where_it_runs():
    impls = _interpreted("sorted({r['impl'] for r in bench.selective_scan_cases(B=1, L=9, D=4, N=2, repeats=1)})")
    assert impls == ["selective_scan auto", "selective_scan parallel", "selective_scan sequential", "selective_scan triton"]


def test_and_scores_on_the_cpu_time_the_numba_kernel_and_no_gpu_rows():
    rows = bench.attention_cases(B=1, H=1, L=16, bits=64, sparse_L=64, d=4, density=0.1, repeats=1)
    scores = {r["impl"] for r in rows if r["case"].startswith("AND scores")}
    assert scores == {"torch float32 matmul", "neurotoken bitpack popcount kernel", "neurotoken bitpack (with packing)"}
    assert any(r["case"].startswith("sparse attention") for r in rows)


def test_bench_help_names_every_case():
    out = subprocess.run([sys.executable, "-m", "neurotoken", "bench", "--help"], capture_output=True, text=True,
                         check=True, env={**os.environ, "COLUMNS": "300"}).stdout
    assert all(case in out for case in bench.CASES)


def test_time_fns_takes_turns_in_a_new_order_each_round_and_returns_a_median_per_name():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = bench.time_fns(fns, repeats=8, warmup=1)
    assert set(times) == set("abc") and all(t >= 0 for t in times.values())
    rounds = ["".join(calls[i:i + 3]) for i in range(3, len(calls), 3)]
    assert "".join(calls[:3]) == "abc" and all(sorted(r) == list("abc") for r in rounds)
    assert len({r.index("b") - r.index("a") for r in rounds}) > 1  # b does not always follow a


needs_cuda = pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")


def test_saved_bytes_count_each_saved_storage_once_per_neuron_step():
    import torch

    x = torch.randn(9, 3, 5)
    assert bench.saved_bytes_per_neuron_step(lambda t: t * t, x) == 4.0  # x, saved twice, counted once
    assert bench.saved_bytes_per_neuron_step(lambda t: (t * 2).sum(), x) == 0.0
    assert bench.saved_bytes_per_neuron_step(lambda t: torch.cat([t.exp(), t.double().exp()]), x) == 4.0 + 8.0


def test_lif_case_reports_saved_bytes_per_neuron_step_and_no_peak_memory_on_the_cpu():
    rows, _ = bench.lif_cases(T=8, B=2, N=64, repeats=1, peers=False)
    saved = {r["impl"]: r.get("saved_bytes_per_neuron_step") for r in rows if "backward" in r["case"]}
    assert saved["neurotoken fused"] == 4.0  # float32 states (they give the spikes again)
    assert saved["neurotoken fused (bf16 state)"] == 2.0  # no spikes: the subtract reset never reads them
    assert all(r["peak_bytes"] is None for r in rows)
    assert all("saved_bytes_per_neuron_step" not in r for r in rows if "backward" not in r["case"])


def test_triton_lif_with_bf16_state_and_bit_spikes_saves_at_most_2_2_bytes_per_neuron_step():
    saved = _interpreted("{r['impl']: r['saved_bytes_per_neuron_step'] for r in "
                         "bench.lif_cases(T=8, B=2, N=64, repeats=1, peers=False)[0] if 'backward' in r['case']}")
    assert saved["neurotoken triton (bf16 state, bit spikes)"] <= 2.2 < saved["neurotoken triton"]


def test_time_fns_on_the_cpu_leaves_peaks_empty():
    peaks = {}
    bench.time_fns({"a": lambda: None}, repeats=1, warmup=1, device="cpu", peaks=peaks)
    assert peaks == {}


def test_gpu_cases_have_gpu_sizes_and_unknown_devices_are_refused():
    assert set(bench.GPU_SIZES) == set(bench.GPU_CASES) <= set(bench.CASES)
    for device in ("mps", "nope"):
        with pytest.raises(ValueError, match="device"):
            bench.run_all(quick=True, device=device)


def test_device_code_path_runs_the_gpu_cases_at_tiny_sizes_on_the_cpu():
    results = bench.run_all(quick=True, repeats=1, peers=False, cases=("scan", "blocksparse"), device="cpu")
    assert results["machine"]["device"] == "cpu"
    assert all("peak_bytes" in r for r in results["rows"])
    assert any(r["impl"] == "neurotoken fused LIF (reset none)" for r in results["rows"])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is present")
def test_bench_on_cuda_without_a_gpu_is_one_clear_line():
    run = subprocess.run([sys.executable, "-m", "neurotoken", "bench", "--device", "cuda", "--quick"],
                         capture_output=True, text=True)
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1 and "no CUDA device" in lines[0] and "Traceback" not in lines[0]


@needs_cuda
def test_quick_gpu_run_times_every_gpu_case_with_peak_memory(tmp_path):
    results = bench.run_all(quick=True, repeats=1, peers=False, device="cuda")
    rows = results["rows"]
    assert results["machine"]["copy_bandwidth_Bps"] > 0 and results["machine"]["device_name"]
    assert {"neurotoken triton", "neurotoken triton (bf16 state, bit spikes)"} <= {r["impl"] for r in rows}
    assert all(r["peak_bytes"] > 0 for r in rows)
    assert any(r["impl"] == "torch SDPA (masked)" for r in rows)
    assert {"selective_scan triton", "neurotoken bitpack triton (with packing)"} <= {r["impl"] for r in rows}
    assert not any(r["case"].startswith("sparse attention") for r in rows)  # the blocksparse case on CUDA
    bench.save(results, tmp_path)


def test_copy_beside_takes_its_turn_in_every_time_fns_call_and_records_its_bandwidth():
    calls = []
    with bench.copy_beside(2**16) as beside:
        times = bench.time_fns({"a": lambda: calls.append("a")}, repeats=3, warmup=1)
        bench.time_fn(lambda: None, repeats=2)
    assert list(times) == ["a"] and len(calls) == 4 and len(beside) == 2 and all(b > 1e6 for b in beside)
    bench.time_fns({"a": lambda: None}, repeats=1)  # outside: no copy, nothing recorded
    assert len(beside) == 2


def test_run_all_bounds_use_the_copy_timed_beside_the_cases():
    results = bench.run_all(quick=True, repeats=2, peers=False, cases=("lif",))
    m = results["machine"]
    assert m["copy_bandwidth_Bps"] > 0 and m["copy_bandwidth_alone_Bps"] > 0
    rows = results["rows"]
    assert len({r["copy_Bps"] for r in rows}) == 1  # one case: its rows share the copies of its rotations
    assert all(r["bound_s"] == r["bytes"] / r["copy_Bps"] for r in rows)


def test_each_case_bounds_use_the_copies_of_its_own_rotations():
    results = bench.run_all(quick=True, repeats=2, peers=False, cases=("lif", "event-linear"))
    by_case = {r["case"].split()[0]: r["copy_Bps"] for r in results["rows"]}
    assert set(by_case) == {"LIF", "event"} and all(b > 0 for b in by_case.values())
    assert results["machine"]["copy_bandwidth_Bps"] > 0


def test_summarise_takes_a_rows_own_bandwidth_before_the_runs():
    rows = [{"case": "c", "impl": "ours", "peer": False, "median_s": 1.0, "bytes": 100, "copy_Bps": 400.0},
            {"case": "d", "impl": "ours", "peer": False, "median_s": 1.0, "bytes": 100}]
    out = bench.summarise(rows, bandwidth=200.0)
    assert out[0]["fraction_of_bound"] == 0.25 and out[1]["fraction_of_bound"] == 0.5
