import pytest
import torch

from neurotoken.experiments.zeroth_order import ZeroOrderDigits, peak_step_bytes, run_zero_order_digits
from neurotoken.learning.zeroth_order import ZOConfig, fit_zeroth_order, spsa_gradient, zo_step

A = torch.tensor([[2.0, 0.5, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, 3.0]], dtype=torch.float64)
B = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)


def quadratic(theta):
    return lambda: ((A @ theta - B) ** 2).sum()


def test_spsa_estimate_averages_to_the_true_gradient_and_restores_params():
    theta = torch.tensor([0.3, -0.1, 0.7], dtype=torch.float64)
    true = 2 * A.T @ (A @ theta - B)
    est = torch.zeros(3, dtype=torch.float64)
    for seed in range(2000):
        g, _ = spsa_gradient([theta], quadratic(theta), seed, 1e-3)
        est += g * torch.randn(3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    est /= 2000
    assert torch.nn.functional.cosine_similarity(est, true, dim=0) > 0.97
    torch.testing.assert_close(theta, torch.tensor([0.3, -0.1, 0.7], dtype=torch.float64), atol=1e-12, rtol=0)


def test_single_estimates_correlate_positively_with_the_gradient():
    theta = torch.tensor([0.3, -0.1, 0.7], dtype=torch.float64)
    true = 2 * A.T @ (A @ theta - B)
    dots = []
    for seed in range(300):
        g, _ = spsa_gradient([theta], quadratic(theta), seed, 1e-3)
        z = torch.randn(3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        dots.append(float((g * z) @ true))
    assert min(dots) >= -1e-9  # g z . grad = (z . grad)^2 for a quadratic: never negative


def test_zo_steps_minimise_a_quadratic():
    theta = torch.zeros(3, dtype=torch.float64)
    start = quadratic(theta)().item()
    for seed in range(400):
        zo_step([theta], quadratic(theta), seed, ZOConfig(lr=0.01, eps=1e-3))
    assert quadratic(theta)().item() < 0.05 * start


def test_zo_training_of_a_classifier_reduces_loss():
    torch.manual_seed(0)
    x = torch.rand(128, 4)
    y = (x[:, 0] > x[:, 1]).long()
    model = torch.nn.Linear(4, 2)
    losses = fit_zeroth_order(model, x, y, ZOConfig(steps=600, lr=0.05, eps=1e-2, batch_size=32))
    assert sum(losses[-50:]) / 50 < 0.8 * sum(losses[:50]) / 50


def test_zo_peak_memory_is_that_of_inference():
    inference = peak_step_bytes("inference", 16, 512, 128)
    assert peak_step_bytes("zo", 16, 512, 128) <= 1.3 * inference
    assert peak_step_bytes("bptt", 16, 512, 128) > 1.2 * inference


def test_bad_input_rejected():
    with pytest.raises(ValueError, match="eps"):
        ZOConfig(eps=0.0)
    with pytest.raises(ValueError, match="mode must be one of"):
        peak_step_bytes("adam", 4, 8, 8)
    with pytest.raises(ValueError, match="same length"):
        fit_zeroth_order(torch.nn.Linear(2, 2), torch.rand(3, 2), torch.zeros(2, dtype=torch.long))


@pytest.mark.slow
def test_zero_order_digits_reaches_reported_figures():
    r = run_zero_order_digits(ZeroOrderDigits()).tables
    accuracy = {row["trainer"]: row["test_accuracy"] for row in r["rows"]}
    assert accuracy["zo"] >= 0.8 and accuracy["bptt"] >= 0.95
    for row in r["memory"]:
        assert row["zo_mb"] <= 1.3 * row["inference_mb"]
    assert r["memory"][-1]["bptt_mb"] > 4 * r["memory"][0]["bptt_mb"]


def test_zo_trains_a_spiking_transformer():
    from neurotoken.models import SpikingTransformer

    torch.manual_seed(0)
    x = torch.randn(256, 6, 3)
    y = (x[:, -1, 0] > 0).long()  # the query token's sign
    model = SpikingTransformer(3, d_model=8, heads=2, layers=1, classes=2, T=2, threshold=0.5)
    losses = fit_zeroth_order(model, x, y, ZOConfig(steps=250, lr=3e-3, eps=1e-2, batch_size=64))
    assert sum(losses[-25:]) / 25 < 0.7 * sum(losses[:25]) / 25
