import math

import pytest
import torch

from neurotoken.learning.local import STDPParams, stdp_step, three_factor_update

P = STDPParams(eta_plus=0.1, eta_minus=0.05, tau_pre=10.0, tau_post=5.0, w_min=-1.0, w_max=1.0)


def run_pair(pre_step, post_step, params=P, w0=0.0, steps=6):
    w, traces = torch.full((1, 1), w0), None
    for t in range(steps):
        s_pre = torch.tensor([[float(t == pre_step)]])
        s_post = torch.tensor([[float(t == post_step)]])
        w, traces = stdp_step(w, s_pre, s_post, traces, params)
    return w.item()


def test_pre_before_post_potentiates_by_the_rule():
    # pre at t=1, post at t=4: dW = eta_plus * exp(-3 / tau_pre)
    assert run_pair(1, 4) == pytest.approx(0.1 * math.exp(-3 / 10))


def test_post_before_pre_depresses_by_the_rule():
    # post at t=1, pre at t=3: dW = -eta_minus * exp(-2 / tau_post)
    assert run_pair(3, 1) == pytest.approx(-0.05 * math.exp(-2 / 5))


def test_simultaneous_pair_potentiates_fully():
    assert run_pair(2, 2) == pytest.approx(0.1)


def test_multiplicative_rule_scales_with_distance_to_bounds():
    mult = STDPParams(eta_plus=0.1, eta_minus=0.05, tau_pre=10.0, tau_post=5.0, w_min=-1.0, w_max=1.0,
                      multiplicative=True)
    assert run_pair(1, 4, mult, w0=0.5) - 0.5 == pytest.approx(0.1 * 0.5 * math.exp(-0.3))
    assert run_pair(3, 1, mult, w0=0.5) - 0.5 == pytest.approx(-0.05 * 1.5 * math.exp(-0.4))


def test_weights_stay_within_bounds():
    hard = STDPParams(eta_plus=5.0, w_min=0.0, w_max=1.0)
    assert run_pair(0, 0, hard, w0=0.9) == 1.0


def test_three_factor_sign_follows_the_reward():
    w = torch.zeros(1, 2)
    s, p, x = torch.tensor([[1.0]]), torch.tensor([[0.3]]), torch.tensor([[1.0, 0.5]])
    up = three_factor_update(w, s, p, x, modulator=1.0, eta=0.1)
    down = three_factor_update(w, s, p, x, modulator=-1.0, eta=0.1)
    torch.testing.assert_close(up, torch.tensor([[0.07, 0.035]]))
    torch.testing.assert_close(down, -up)
    # a silent neuron (s=0) under positive reward is pushed further from firing
    assert (three_factor_update(w, torch.zeros(1, 1), p, x, 1.0, 0.1) < 0).all()


def test_three_factor_is_the_loglikelihood_gradient_of_bernoulli_spikes():
    torch.manual_seed(0)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x = torch.rand(5, 4, dtype=torch.float64)
    s = torch.bernoulli(torch.full((5, 3), 0.5, dtype=torch.float64))
    logp = torch.distributions.Bernoulli(logits=x @ w.T).log_prob(s).sum()
    (grad,) = torch.autograd.grad(logp, w)
    p = torch.sigmoid(x @ w.T).detach()
    step = three_factor_update(torch.zeros(3, 4, dtype=torch.float64), s, p, x, 1.0, 1.0)
    torch.testing.assert_close(step, grad)


@pytest.mark.parametrize("kw, match", [(dict(tau_pre=0.0), "tau_pre"), (dict(eta_plus=-1.0), "eta_plus"),
                                       (dict(w_min=1.0, w_max=0.0), "w_max must exceed w_min")])
def test_bad_stdp_params_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        STDPParams(**kw)


def test_wta_layer_is_an_lif_with_one_winner_and_a_shared_reset():
    from neurotoken.learning.local import WTALIF

    layer = WTALIF(torch.eye(3), beta=0.5, threshold=1.0)
    drive = torch.tensor([[0.6, 0.8, 0.0]])
    s, state = layer.step(drive)  # h = (0.6, 0.8, 0): nobody reaches 1
    assert s.tolist() == [[0.0, 0.0, 0.0]] and torch.allclose(state.h, drive)
    s, state = layer.step(drive, state)  # h = 0.5 h + x = (0.9, 1.2, 0): only the winner spikes
    assert s.tolist() == [[0.0, 1.0, 0.0]]
    s, state = layer.step(torch.zeros(1, 3), state)  # the spike reset the whole layer
    assert s.tolist() == [[0.0, 0.0, 0.0]] and state.h.abs().max() == 0
    layer.theta_adapt += torch.tensor([0.0, 5.0, 0.0])  # homeostasis hands the win to the next neuron
    s, state = layer.step(torch.tensor([[1.1, 1.2, 0.0]]), state)
    assert s.tolist() == [[1.0, 0.0, 0.0]]


def test_stdp_presentation_moves_a_winner_towards_its_input():
    from neurotoken.learning.local import WTALIF, present_stdp

    g = torch.Generator().manual_seed(0)
    layer = WTALIF(torch.full((2, 4), 0.5), beta=0.9, threshold=0.5)
    x = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    stdp = STDPParams(eta_plus=0.05, eta_minus=0.0, multiplicative=True, x_target=0.5)
    counts = present_stdp(layer, x, 20, 1.0, g, stdp, theta_plus=0.0)
    assert counts.sum() > 0 and counts.max(1).values.sum() == counts.sum()  # one neuron wins throughout
    winner = int(counts.argmax())
    assert (layer.weight[winner, :2] > 0.5).all() and (layer.weight[winner, 2:] < 0.5).all()
