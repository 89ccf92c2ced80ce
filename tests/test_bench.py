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


def test_bench_help_names_every_case():
    out = subprocess.run([sys.executable, "-m", "neurotoken", "bench", "--help"], capture_output=True, text=True,
                         check=True, env={**os.environ, "COLUMNS": "300"}).stdout
    assert all(case in out for case in bench.CASES)


def test_time_fns_takes_turns_and_returns_a_median_per_name():
    calls = []
    times = bench.time_fns({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())
    assert calls == ["a", "b"] + ["a", "b"] * 3
