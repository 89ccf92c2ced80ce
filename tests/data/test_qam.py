import math

import pytest
import torch

from neurotoken.data import qam


@pytest.mark.parametrize("scheme, size", [("qpsk", 4), ("qam16", 16)])
def test_constellations_are_distinct_unit_energy_grids(scheme, size):
    points = qam.constellation(scheme)
    assert points.shape == (size,) and len(set(points.tolist())) == size
    torch.testing.assert_close(points.abs().square().mean(), torch.tensor(1.0))
    assert set(points.real.tolist()) == set(points.imag.tolist())  # a square grid


def test_sequences_are_pilot_pairs_then_a_query_from_one_channel():
    d = qam.demodulation(500, pilots=6, snr_db=10.0, scheme="qam16", seed=3)
    assert d.tokens.shape == (500, 7, qam.FEATURES) and d.labels.shape == (500,)
    assert torch.equal(d.labels, d.symbols[:, -1])
    points = qam.constellation("qam16")
    assert torch.equal(d.tokens[:, :-1, 2], points[d.symbols[:, :-1]].real)
    assert torch.equal(d.tokens[:, :, 4], torch.tensor([0.0] * 6 + [1.0]).expand(500, 7))
    assert not d.tokens[:, -1, 2:4].any()  # the query's symbol is hidden
    assert torch.equal(d.tokens[..., 0], d.received.real)
    assert torch.equal(qam.demodulation(500, 6, 10.0, "qam16", seed=3).tokens, d.tokens)


def test_noise_power_matches_the_snr():
    d = qam.demodulation(20000, pilots=4, snr_db=6.0, seed=0)
    noise = d.received - d.gain[:, None] * qam.constellation("qpsk")[d.symbols]
    assert abs(noise.abs().square().mean().item() / 10 ** (-0.6) - 1) < 0.02
    assert abs(d.gain.abs().square().mean().item() - 1) < 0.05


def test_noise_free_ls_estimate_recovers_the_channel_exactly():
    d = qam.demodulation(50, pilots=3, snr_db=200.0, scheme="qam16", seed=1)
    points = qam.constellation("qam16")
    torch.testing.assert_close(qam.ls_gain(d.received[:, :-1], points[d.symbols[:, :-1]]), d.gain)
    assert qam.symbol_error_rate(qam.ls_detect(d), d.labels) == 0.0


def test_known_channel_qpsk_error_rate_matches_theory_and_ls_approaches_it():
    n = 40000
    d = qam.demodulation(n, pilots=64, snr_db=10.0, seed=2)
    genie = qam.symbol_error_rate(qam.ml_detect(d.received[:, -1], d.gain), d.labels)
    # given h, QPSK is two BPSK axes each erring with Q(|h| sqrt(SNR))
    tail = 0.5 * torch.erfc(d.gain.abs().double() * math.sqrt(10.0) / math.sqrt(2))
    theory = (1 - (1 - tail) ** 2).mean().item()
    assert abs(genie - theory) < 4 * math.sqrt(theory * (1 - theory) / n)
    ls = qam.symbol_error_rate(qam.ls_detect(d), d.labels)
    few = qam.demodulation(n, pilots=1, snr_db=10.0, seed=2)
    assert genie <= ls < 1.1 * genie < qam.symbol_error_rate(qam.ls_detect(few), few.labels)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="scheme must be one of 'qpsk', 'qam16'"):
        qam.demodulation(4, scheme="qam64")
    with pytest.raises(ValueError, match="pilots must be >= 1"):
        qam.demodulation(4, pilots=0)
    with pytest.raises(ValueError, match="predicted and labels must have one shape"):
        qam.symbol_error_rate(torch.zeros(3), torch.zeros(4))
