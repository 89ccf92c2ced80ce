"""The mixer contract, checked on every Mixer subclass that neurotoken.mixers exports."""

import pytest
import torch
from torch.testing import assert_close

import neurotoken as nt
from mixer_checks import step_outputs
from neurotoken.mixers import Mixer, Residual
from neurotoken.mixers.base import memoryless

D = 8


def binary(threshold=0.2):
    return nt.LIF(0.0, threshold, "none", "binary")


# one deterministic configuration per class (stochastic spikes would draw in another order when stepped)
FACTORIES = {
    nt.mixers.SoftmaxAttention: lambda: nt.mixers.SoftmaxAttention(D, heads=2),
    nt.mixers.SpikingAttention: lambda: nt.mixers.SpikingAttention(D, heads=2, T=3, mask="causal",
                                                                   neuron=nt.LIF(threshold=0.3)),
    nt.mixers.LinearAttention: lambda: nt.mixers.LinearAttention(D, heads=2),
    nt.mixers.SelectiveSSM: lambda: nt.mixers.SelectiveSSM(D, d_state=4),
    nt.mixers.SpikingSSM: lambda: nt.mixers.SpikingSSM(D, d_state=4, neuron=binary()),
    nt.mixers.SpikingLRU: lambda: nt.mixers.SpikingLRU(D, d_state=4, neuron=binary()),
    nt.mixers.HiPPOSSM: lambda: nt.mixers.HiPPOSSM(D, d_state=4, neuron=binary()),
    nt.mixers.MambaBlock: lambda: nt.mixers.MambaBlock(D, d_state=4, d_conv=3),
    nt.mixers.SpikingMamba: lambda: nt.mixers.SpikingMamba(D, d_state=4, d_conv=3),
    nt.mixers.RWKVTimeMix: lambda: nt.mixers.RWKVTimeMix(D, neuron=memoryless(0.1, "ternary")),
    nt.mixers.RWKVChannelMix: lambda: nt.mixers.RWKVChannelMix(D, 2, neuron=memoryless(0.05, "multilevel")),
    nt.mixers.RWKVBlock: lambda: nt.mixers.RWKVBlock(D, hidden_ratio=2),
    nt.mixers.SpikeGPTBlock: lambda: nt.mixers.SpikeGPTBlock(D, hidden_ratio=2),
    nt.mixers.Residual: lambda: Residual(D, [nt.mixers.SoftmaxAttention(D, 2), torch.nn.Linear(D, D)]),
    nt.mixers.SpikingOutput: lambda: nt.mixers.SpikingOutput(nt.mixers.RWKVTimeMix(D), nt.LIF(0.5, 0.5, reset="zero")),
}
EXPORTED = sorted({c for c in vars(nt.mixers).values() if isinstance(c, type) and issubclass(c, Mixer)} - {Mixer},
                  key=lambda c: c.__name__)


def make(cls):
    torch.manual_seed(0)
    return FACTORIES[cls]().double()


def test_every_exported_mixer_has_a_configuration_here():
    assert set(EXPORTED) == set(FACTORIES)


def test_streaming_softmax_attention_inside_a_residual_equals_its_forward():
    torch.manual_seed(0)
    block = Residual(16, [nt.mixers.SoftmaxAttention(16, 2)])
    x = torch.randn(2, 9, 16)
    assert_close(step_outputs(block, x)[0], block(x))


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("where", ["bare", "residual"])
def test_step_loop_equals_forward(cls, where):
    mixer = make(cls)
    if where == "residual":
        mixer = Residual(D, [mixer, torch.nn.Linear(D, D)], dropout=0.3).double().eval()
    x = 2 * torch.randn(3, 11, D, dtype=torch.float64)
    steps, state = step_outputs(mixer, x)
    assert_close(steps, mixer(x))
    # and a forward from that state continues the sequence
    more = 2 * torch.randn(3, 4, D, dtype=torch.float64)
    assert_close(mixer(more, state), mixer(torch.cat([x, more], 1))[:, -4:])


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_initial_state_is_what_no_state_means(cls):
    mixer = make(cls)
    x = torch.randn(2, 5, D, dtype=torch.float64)
    y, _ = mixer(x, mixer.initial_state(2), return_state=True)
    assert_close(y, mixer(x))
    for t in torch.utils._pytree.tree_leaves(mixer.initial_state(2)):
        assert t is None or t.dtype in (torch.float64, torch.complex128) and t.device == x.device


@pytest.mark.parametrize("batch", [2.0, -1, "2"])
def test_initial_state_refuses_a_bad_batch(batch):
    with pytest.raises((TypeError, ValueError), match="batch"):
        make(nt.mixers.SpikeGPTBlock).initial_state(batch)


def test_initial_state_follows_the_parameters_dtype():
    mixer = nt.mixers.SpikingSSM(D, 4, neuron=nt.LIF(0.5, 0.3, "subtract", "binary")).to(torch.float64)
    state = mixer.initial_state(3)
    assert state.ssm.shape == (3, D, 4) and state.npe.h.shape == (3, D)
    assert all(t.dtype == torch.float64 for t in (state.ssm, *state.npe))


def test_residual_dropout_acts_in_training_only():
    torch.manual_seed(0)
    block = Residual(D, [torch.nn.Linear(D, D)], dropout=0.5)
    x = torch.randn(2, 5, D)
    assert not torch.equal(block(x), block(x))
    block.eval()
    assert_close(block(x), x + block.sublayers[0](block.norms[0](x)))


def test_one_neuron_instance_configures_several_places_as_copies():
    lif = nt.LIF(beta=0.5, threshold=0.4, learn_threshold=True)
    attention = nt.mixers.SpikingAttention(D, T=2, neuron=lif)
    assert attention.neuron is not lif and attention.out_neuron is not attention.neuron
    assert attention.neuron.threshold is not attention.out_neuron.threshold
    assert float(attention.neuron.threshold) == float(attention.out_neuron.threshold) == pytest.approx(0.4)


def test_bad_neurons_are_refused_naming_the_argument():
    with pytest.raises(TypeError, match="neuron must be"):
        nt.mixers.SpikingLRU(D, neuron="binary")
    with pytest.raises(TypeError, match="memoryless"):
        nt.mixers.SpikingLRU(D, neuron=nt.LIF(0.9))
    with pytest.raises(TypeError, match="conventional form is SoftmaxAttention"):
        nt.mixers.SpikingAttention(D, neuron=None)


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_counting_runs_every_submodule_once_as_the_forward_does(cls):
    mixer = make(cls)
    calls = []
    handles = [m.register_forward_hook(lambda m, i, o: calls.append(m)) for m in mixer.modules()]
    x = torch.randn(2, 5, D, dtype=torch.float64)
    mixer(x)
    plain, calls[:] = list(calls), []
    with nt.accounting.count(mixer):
        mixer(x)
    for h in handles:
        h.remove()
    assert calls == plain  # accounting reads the call's inputs and outputs: no replay


def test_stochastic_attention_counts_the_spikes_it_drew():
    torch.manual_seed(0)
    model = nt.mixers.SpikingAttention(D, heads=2, T=4, score="stochastic", mask="causal")
    drawn = []  # the Bernoulli q, k, v streams of this forward (no cache: all of k and v are new)
    model.mix.register_forward_hook(lambda m, qkv_mask, out: drawn.append(sum(map(torch.count_nonzero, qkv_mask[:3]))))
    with nt.accounting.count(model) as c:
        model(torch.randn(2, 5, D))
    assert c.layers["mix"]["spikes"] == drawn[0] > 0


BAD_INPUTS = {  # for float32 mixers of D channels: (x, error, message)
    "wrong width": (lambda: torch.randn(2, 3, D + 1), ValueError, f"x must have {D} channels last"),
    "no tokens": (lambda: torch.randn(2, 0, D), ValueError, "x must hold at least one token"),
    "no sequences": (lambda: torch.randn(0, 3, D), ValueError, "x must hold at least one token"),
    "integer": (lambda: torch.ones(2, 3, D, dtype=torch.long), TypeError, "x must be a real floating-point"),
    "complex": (lambda: torch.ones(2, 3, D, dtype=torch.cfloat), TypeError, "x must be a real floating-point"),
    "float16": (lambda: torch.randn(2, 3, D).half(), TypeError, r"x has dtype torch.float16 .* model.to\("),
    "float64": (lambda: torch.randn(2, 3, D).double(), TypeError, r"x has dtype torch.float64 .* model.to\("),
    "meta": (lambda: torch.randn(2, 3, D, device="meta"), ValueError, "x is on meta but the parameters are on cpu"),
    "a list": (lambda: [[0.0] * D], TypeError, "x must be a torch.Tensor"),
}


@pytest.mark.parametrize("bad", BAD_INPUTS)
@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_bad_inputs_are_refused_naming_x_before_any_compute(cls, bad):
    torch.manual_seed(0)
    mixer = FACTORIES[cls]()
    x, error, message = BAD_INPUTS[bad]
    with pytest.raises(error, match=message):
        mixer(x())


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_step_refuses_a_bad_token_naming_x_t(cls):
    mixer = FACTORIES[cls]()
    with pytest.raises(ValueError, match=rf"x_t must have {D} channels last \(\[B, {D}\]\)"):
        mixer.step(torch.randn(2, D + 1))
    with pytest.raises(TypeError, match="x_t has dtype torch.float64"):
        mixer.step(torch.randn(2, D, dtype=torch.float64))


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_a_state_of_the_wrong_shape_or_dtype_is_refused_naming_the_state(cls):
    mixer = make(cls)
    x = torch.randn(2, 5, D, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match="state"):
        mixer(x, mixer.initial_state(3))  # a state for another batch size
    with pytest.raises((ValueError, TypeError), match="state"):
        mixer(x, "not a state")
    leaves, spec = torch.utils._pytree.tree_flatten(mixer.initial_state(2))
    with pytest.raises(TypeError, match=r"state\S* must be a torch.(complex128|float64) tensor"):
        mixer(x, torch.utils._pytree.tree_unflatten([t if t is None else t.to(torch.complex64 if t.is_complex()
                                                                               else torch.float32)
                                                      for t in leaves], spec))


def test_models_compute_in_any_floating_dtype_of_their_parameters():
    mixer = nt.mixers.SpikeGPTBlock(D, hidden_ratio=2).to(torch.bfloat16)
    y = mixer(torch.randn(2, 3, D, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and y.shape == (2, 3, D)


def test_under_autocast_inputs_may_differ_from_the_parameters_dtype():
    mixer = nt.mixers.LinearAttention(D, heads=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mixer(torch.randn(2, 3, D, dtype=torch.bfloat16))
    assert y.shape == (2, 3, D)


def test_bool_flags_refuse_strings():
    with pytest.raises(TypeError, match="causal must be a bool"):
        nt.mixers.LinearAttention(D, causal="no")
    with pytest.raises(TypeError, match="bias must be a bool"):
        nt.mixers.SoftmaxAttention(D, bias="no")
    with pytest.raises(TypeError, match="shared_dt must be a bool"):
        nt.mixers.HiPPOSSM(D, shared_dt="no")


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_forward_and_step_check_no_values_so_they_run_on_meta(cls):
    """A host sync (a value check) in a forward pass fails on the meta device: there is none."""
    mixer = FACTORIES[cls]().to("meta")
    assert mixer(torch.randn(2, 5, D, device="meta")).shape == (2, 5, D)
    y, state = mixer.step(torch.randn(2, D, device="meta"), mixer.initial_state(2))
    assert y.shape == (2, D) and y.device.type == "meta"
