import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

import neurotoken as nt
from mixer_checks import fired, random_grads, step_outputs
from neurotoken.accounting import count
from neurotoken.mixers.spiking_ssm import SpikingLRU, SpikingSSM, SpikingSSMState, lif_fixed_point
from neurotoken.mixers.ssm import SelectiveSSM, ssm_scan
from neurotoken.neurons import NPEParams, NPEState, npe_multistep
from neurotoken.spikes import Bernoulli, MultiLevel, resolve_spike

F64 = torch.float64


def test_reset_free_lif_is_ssm_eq_16_with_beta_a_input_kv():
    torch.manual_seed(0)
    B, L, D, N, beta = 2, 63, 3, 4, 0.8
    k, v = torch.randn(B, L, N, dtype=F64), torch.randn(B, L, D, dtype=F64)
    current = (v.unsqueeze(-1) * k.unsqueeze(-2)).transpose(0, 1)  # [L, B, D, N]: input k v
    _, h = npe_multistep(current, NPEParams(beta, 1.0, "none"), backend="sequential")
    for n in range(N):  # q = e_n reads state element n: y = S[..., n]
        q = torch.nn.functional.one_hot(torch.full((B, L), n), N).to(F64)
        y, _ = ssm_scan(beta, 1.0, k.unsqueeze(2), v.unsqueeze(2), q.unsqueeze(2))
        assert_close(y.squeeze(2), h[..., n].transpose(0, 1))
    # and its spikes: nt.LIF(reset="none") on k v fires where the SSM state reaches theta
    spikes = nt.LIF(beta=beta, threshold=0.5, reset="none")(current)
    assert (spikes != nt.spikes.binary(h, 0.5)).double().mean() <= 1e-3


KINDS = ["binary", "ternary", MultiLevel(levels=3)]


@settings(deadline=None, max_examples=15)
@given(st.sampled_from([1, 2, 17, 63]), st.integers(1, 3), st.integers(1, 4), st.sampled_from(KINDS),
       st.booleans(), st.integers(0, 1000))
def test_fixed_point_reset_equals_sequential_bptt(T, B, D, kind, with_state, seed):
    g = torch.Generator().manual_seed(seed)
    x = (0.8 * torch.randn(T, B, D, generator=g, dtype=F64) + 0.4).requires_grad_()
    beta = torch.full((D,), 0.85, dtype=F64, requires_grad=True)
    theta = torch.tensor(0.9, dtype=F64, requires_grad=True)
    p = NPEParams(beta, theta, "subtract", resolve_spike(kind))
    state = NPEState(torch.randn(B, D, generator=g, dtype=F64), torch.ones(B, D, dtype=F64)) if with_state else None
    s_ref, h_ref = npe_multistep(x, p, state, "sequential")
    s, h, iterations = lif_fixed_point(x, p, state)
    assert 1 <= iterations <= T + 1
    assert torch.equal(s, s_ref)
    assert_close(h, h_ref)
    for a, b in zip(random_grads((s, h), [x, beta, theta]), random_grads((s_ref, h_ref), [x, beta, theta])):
        assert_close(a, b)


def test_fixed_point_needs_several_iterations_and_max_iter_stops_early():
    x = torch.full((40, 1, 1), 0.6, dtype=F64)  # fires every other step: each scan fixes one more spike
    p = NPEParams(0.9, 1.0, "subtract")
    s, _, iterations = lif_fixed_point(x, p)
    assert iterations > 2
    _, _, stopped = lif_fixed_point(x, p, max_iter=2)
    assert stopped == 2


def readout(threshold, spike="binary", beta=0.0, reset="none"):
    """The readout NPE: reset-free and memoryless by default (s = spike(y - theta))."""
    return nt.LIF(beta, threshold, reset, spike)


def _pair(neuron=None, **kw):
    """A spiking SSM and a twin with the same parameters (float64)."""
    torch.manual_seed(0)
    spiking = SpikingSSM(6, d_state=4, **({} if neuron is None else {"neuron": neuron}), **kw).double()
    twin = SpikingSSM(6, d_state=4, neuron=None, **kw).double()
    twin.load_state_dict(spiking.state_dict())
    return spiking, twin


def test_conventional_twin_is_the_selective_ssm():
    _, twin = _pair()
    ssm = SelectiveSSM(6, d_state=4).double()
    ssm.load_state_dict(twin.state_dict())
    x = torch.randn(2, 17, 6, dtype=F64)
    assert_close(twin(x), ssm(x))


def spike_fn(spike):
    kind = resolve_spike(spike)
    return lambda h, theta: kind(h, theta, nt.spikes.DEFAULT_SURROGATE)


@pytest.mark.parametrize("spike, values", [("binary", {0.0, 1.0}), ("ternary", {-1.0, 0.0, 1.0}),
                                           (MultiLevel(levels=4), {0.0, 1.0, 2.0, 3.0})])
def test_spike_outputs_are_discrete_and_drive_the_projection(spike, values):
    mixer, twin = _pair(readout(0.05, spike))
    x = 3 * torch.randn(4, 33, 6, dtype=F64)
    y, spikes = fired(mixer, x)
    assert set(spikes.unique().tolist()) == values
    y_twin, _ = twin.readout(x)
    assert_close(y, mixer.out(spike_fn(spike)(y_twin, 0.05)))


def test_bernoulli_spikes_fire_with_probability_sigma_of_readout():
    g = torch.Generator().manual_seed(0)
    mixer, twin = _pair(readout(1.0, Bernoulli(generator=g)))
    x = torch.randn(1, 8, 6, dtype=F64).expand(4000, 8, 6)
    _, spikes = fired(mixer, x)
    y, _ = twin.readout(x[:1])
    rate = spikes.mean(0)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert_close(rate, torch.sigmoid(y[0] - 1.0), atol=0.04, rtol=0)


def test_reset_variant_fixed_point_equals_sequential_backend():
    torch.manual_seed(1)
    lif = readout(0.3, beta=0.7, reset="subtract")
    fixed, _ = _pair(lif)
    sequential, _ = _pair(lif, reset_backend="sequential")
    x = 2 * torch.randn(2, 63, 6, dtype=F64)
    (out_f, spikes), out_s = fired(fixed, x), sequential(x)
    assert_close(out_f, out_s)
    assert fixed.last_iterations > 1 and spikes.sum() > 0
    grads = (random_grads((out,), list(m.parameters())) for out, m in ((out_f, fixed), (out_s, sequential)))
    for a, b in zip(*grads):
        assert_close(a, b)


def _lru(**kw):
    torch.manual_seed(0)
    return SpikingLRU(5, d_state=7, **kw).double()


STEPPERS = {"binary": lambda: _pair(readout(0.2))[0],
            "ternary_reset": lambda: _pair(readout(0.2, "ternary", beta=0.6, reset="subtract"))[0],
            "twin": lambda: _pair(None)[1],
            "lru_ternary": lambda: _lru(neuron=readout(0.3, "ternary")),
            "lru_twin": lambda: _lru(neuron=None)}


@pytest.mark.parametrize("name", STEPPERS)
def test_step_from_saved_state_continues_the_sequence(name):
    mixer = STEPPERS[name]()
    x = 2 * torch.randn(2, 40, mixer.d_model, dtype=F64)
    full = mixer(x)
    head, state = mixer(x[:, :25], return_state=True)
    tail, _ = step_outputs(mixer, x[:, 25:], state)
    assert_close(torch.cat([head, tail], 1), full)


def test_accounting_counts_spikes_and_accumulates():
    # B = 1, L = 3, D = 4, N = 2: SSM readout as SelectiveSSM, then n spikes x D accumulates
    mixer = SpikingSSM(4, d_state=2, neuron=readout(0.1))
    twin = SpikingSSM(4, d_state=2, neuron=None)
    x = torch.randn(1, 3, 4)
    macs = 4 * 3 * 4 * 2 + 2 * 3 * 4  # per state element; Delta x, skip (projections are Linear children)
    own = {"macs": macs, "state_updates": 3 * 4 * 2, "state_bytes": 4 * 2 * 4}
    assert mixer.accounting((x,), mixer(x)) == own == twin.accounting((x,), twin(x))
    for m in (mixer, SpikingSSM(4, d_state=2, neuron=readout(0.1, beta=0.5, reset="subtract"))):
        with count(m) as c:  # the readout neuron: B L D updates; the output projection: n events x D fan-out
            _, spikes = fired(m, x)
        n = int((spikes != 0).sum())
        assert {k: c.layers["fire"][k] for k in ("neuron_updates", "spikes")} == {"neuron_updates": 12, "spikes": n}
        assert c.layers["out"]["acs"] == n * 4 and c.layers["out"]["macs"] == 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="reset_backend='fixed_point' needs"):
        SpikingSSM(4, neuron=readout(1.0, "bernoulli", beta=0.9, reset="subtract"))
    with pytest.raises(TypeError, match="neuron must be an NPE"):
        SpikingSSM(4, neuron="binary")
    with pytest.raises(ValueError, match="lif_fixed_point needs reset='subtract'"):
        lif_fixed_point(torch.zeros(3, 1), NPEParams(0.9, 1.0, "none"))
    mixer = SpikingSSM(4, d_state=2, neuron=readout(1.0, beta=0.9, reset="subtract"))
    x = torch.zeros(2, 5, 4)
    with pytest.raises(TypeError, match="state must be a SpikingSSMState"):
        mixer(x, torch.zeros(2, 4, 2))
    bad = SpikingSSMState(torch.zeros(2, 4, 2), NPEState(torch.zeros(2, 3), torch.zeros(2, 3)))
    with pytest.raises(ValueError, match=r"state.npe.h must have shape \(2, 4\)"):
        mixer(x, bad)
    with pytest.raises(ValueError, match="at least one token"):
        mixer(torch.zeros(2, 0, 4))


def _lru_reference(mixer, x):
    """The recurrence token by token: h = lambda h + gamma (B x), y = Re(C h) + d x."""
    B, C = torch.view_as_complex(mixer.B), torch.view_as_complex(mixer.C)
    h, ys = torch.zeros(x.shape[0], mixer.d_state, dtype=B.dtype), []
    for x_t in x.unbind(1):
        h = mixer.decay() * h + mixer.log_gamma.exp() * (x_t.to(B.dtype) @ B.T)
        ys.append((h @ C.T).real + mixer.skip * x_t)
    return torch.stack(ys, 1)


@pytest.mark.parametrize("method", ["parallel", "sequential", "fft"])
def test_lru_readout_is_the_complex_diagonal_recurrence(method):
    mixer = _lru(method=method)
    x = torch.randn(3, 63, 5, dtype=F64)
    y, h = mixer.readout(x)
    assert_close(y, _lru_reference(mixer, x))
    out, spikes = fired(mixer, x)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert_close(out, mixer.out(nt.spikes.binary(y, 1.0)))
    twin = _lru(method=method, neuron=None)  # same weights; the spike's place holds GELU
    assert_close(twin(x), twin.out(torch.nn.functional.gelu(y)))


def test_lru_init_puts_decays_in_r_range_and_normalises_the_input():
    mixer = SpikingLRU(4, d_state=500, r_range=(0.9, 0.99), max_phase=0.2)
    lam = mixer.decay().detach()
    assert lam.abs().min() >= 0.9 - 1e-6 and lam.abs().max() <= 0.99 + 1e-6
    assert 0 < lam.angle().min() and lam.angle().max() <= 0.2
    assert_close(mixer.log_gamma.exp().detach() ** 2, 1 - lam.abs() ** 2)


def test_lru_accounting_counts_spikes_and_accumulates():
    mixer, twin = SpikingLRU(4, d_state=3, neuron=readout(0.1)), SpikingLRU(4, d_state=3, neuron=None)
    x = torch.randn(2, 5, 4)
    macs = 2 * 5 * (4 * 3 * 4 + 6 * 3 + 4)
    with count(mixer) as c:  # the output projection sees the spikes: n events x D fan-out
        _, spikes = fired(mixer, x)
    n = int(torch.count_nonzero(spikes))
    assert c.layers["fire"]["spikes"] == n > 0 and c.layers["fire"]["neuron_updates"] == 2 * 5 * 4
    assert c.layers["SpikingLRU"]["macs"] == macs
    assert c.layers["out"]["acs"] == n * 4 and c.layers["out"]["macs"] == 0
    assert twin.accounting((x,), twin(x)) == {"macs": macs, "state_updates": 2 * 5 * 3, "state_bytes": 2 * 2 * 3 * 4}


def test_lru_bad_arguments_raise():
    with pytest.raises(ValueError, match="r_range"):
        SpikingLRU(4, r_range=(0.5, 1.0))
    with pytest.raises(ValueError, match="max_phase"):
        SpikingLRU(4, max_phase=0.0)
    with pytest.raises(TypeError, match="state must be a torch.complex64 tensor"):
        SpikingLRU(4, d_state=2)(torch.zeros(1, 3, 4), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"state must have shape \(1, 2\)"):
        SpikingLRU(4, d_state=2)(torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.cfloat))


@pytest.mark.parametrize("make, legacy, neuron", [
    (SpikingSSM, {"spike": "binary", "threshold": 0.1}, readout(0.1)),
    (SpikingSSM, {"spike": "ternary", "threshold": 0.2, "reset": "subtract", "beta": 0.6},
     readout(0.2, "ternary", beta=0.6, reset="subtract")),
    (SpikingSSM, {"spiking": False}, None),
    (SpikingLRU, {"spike": "multilevel", "threshold": 0.3}, readout(0.3, "multilevel")),
    (SpikingLRU, {"spiking": False}, None)])
def test_former_neuron_keywords_warn_and_build_the_same_mixer(make, legacy, neuron):
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="neuron="):
        old = make(4, 3, **legacy)
    torch.manual_seed(0)
    new = make(4, 3, neuron=neuron)
    x = torch.randn(2, 9, 4)
    assert_close(old(x), new(x))
    with pytest.raises(TypeError, match="not both"):
        make(4, 3, neuron=readout(0.1), **legacy)
