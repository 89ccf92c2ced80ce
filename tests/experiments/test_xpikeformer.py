import math

import pytest
import torch

from neurotoken.data.qam import demodulation
from neurotoken.experiments import Xpikeformer, run_xpikeformer
from neurotoken.experiments.xpikeformer import breakdown_figure
from neurotoken.metrics import predict, symbol_error_rate
from neurotoken.models import SpikingTransformer


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("xpikeformer")
    return Xpikeformer.quick(), run_xpikeformer(Xpikeformer.quick(), run_dir=run_dir), run_dir


def test_ser_and_energy_side_by_side_relative_to_the_softmax_transformer(quick_run):
    config, results, _ = quick_run
    rows = results.tables["rows"]
    assert [(r["model"].split(" (")[0], r["chip"]) for r in rows] == [
        ("softmax transformer", "digital_accelerator"), ("spiking transformer", "digital_accelerator"),
        ("spiking transformer", "analog_pcm")]
    assert rows[1]["model"] == "spiking transformer (T=2, stochastic attention)"
    assert rows[2]["model"].endswith("analog projections")
    for r in rows:
        assert all(0.0 <= r[f"ser_{snr:g}db"] <= 1.0 for snr in config.demodulation.snrs_db)
        assert r["energy_j_per_inference"] > 0 and r["fits"] and r["cores"] >= 1
        assert r["energy_vs_softmax"] == pytest.approx(r["energy_j_per_inference"] / rows[0]["energy_j_per_inference"])
    assert rows[0]["energy_vs_softmax"] == 1.0
    assert "neuron_updates" in rows[2]["unpriced"]  # the analog chip prices its crossbars only: said, not hidden


def test_the_breakdown_lists_every_priced_component_and_sums_to_the_energy(quick_run):
    _, results, _ = quick_run
    for r in results.tables["rows"]:
        parts = [b for b in results.tables["breakdown"] if b["model"] == r["model"]]
        assert sum(b["energy_j"] for b in parts) == pytest.approx(r["energy_j_per_inference"])
        assert math.fsum(b["share"] for b in parts) == pytest.approx(1.0)
        assert any(b["component"] == "op:macs" for b in parts)
    analog = [b["component"] for b in results.tables["breakdown"] if b["chip"] == "analog_pcm"]
    assert {"adc", "dac"} <= set(analog)


def test_the_energy_plot_is_written_with_labelled_axes(quick_run):
    _, results, run_dir = quick_run
    (path,) = results.artifacts["plots"]
    assert path == run_dir / "xpikeformer_energy.png" and path.stat().st_size > 1000
    ax = breakdown_figure(results.tables["breakdown"], results.tables["rows"]).axes[0]
    assert "energy per inference (nJ)" in ax.get_xlabel()
    assert [t.get_text().split("\n")[1] for t in ax.get_yticklabels()] == ["on digital_accelerator",
                                                                          "on digital_accelerator", "on analog_pcm"]


@pytest.mark.parametrize("changes, message", [
    ({"analog_chip": "loihi"}, "analog_chip must be an analog chip"),
    ({"digital_chip": "tpu9"}, "digital_chip: chip must be one of"),
    ({"draws": 0}, "draws"),
])
def test_bad_configs_are_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        Xpikeformer(**changes)


def test_the_stochastic_attention_transformer_learns_in_context_demodulation():
    """Rates clamp(W x, 0, 1) make the scores depend on the query: far below chance (0.75) in 150 steps."""
    train, test = demodulation(1024, 8, 15.0, seed=1), demodulation(500, 8, 15.0, seed=2)
    torch.manual_seed(0)
    model = SpikingTransformer(5, d_model=16, heads=2, layers=1, T=4, score="stochastic", classes=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        i = torch.randint(len(train.labels), (64,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(train.tokens[i]), train.labels[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert symbol_error_rate(predict(model.eval(), test.tokens, 500), test.labels) < 0.4
