import pytest
import torch
from torch.testing import assert_close

import neurotoken as nt
from neurotoken.mixers.base import memoryless
from neurotoken.models import SpikingLM
from neurotoken.neurons import LIF

CASES = [("spikegpt", True, {"neuron": memoryless(0.3, "ternary", learn_threshold=True)}), ("spikegpt", False, {}),
         ("pspikessm", True, {"neuron": LIF(0.0, 0.3, "none", "binary")}), ("pspikessm", False, {}),
         ("mamba", True, {}), ("mamba", False, {"d_conv": 3})]


def _lm(backbone, spiking, options):
    torch.manual_seed(0)
    return SpikingLM(d_model=16, layers=2, backbone=backbone, spiking=spiking, hidden_ratio=2, d_state=4,
                     **options).double()


@pytest.mark.parametrize("backbone, spiking, options", CASES)
def test_greedy_generation_equals_argmax_of_full_forward(backbone, spiking, options):
    lm = _lm(backbone, spiking, options)
    prompt = torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(1))
    new = lm.generate(prompt, 12, temperature=0)
    assert new.shape == (2, 12)
    logits = lm(torch.cat([prompt, new], 1))
    assert torch.equal(logits[:, 8:-1].argmax(-1), new)


@pytest.mark.parametrize("backbone, spiking, options", CASES)
def test_step_loop_equals_forward_logits(backbone, spiking, options):
    lm = _lm(backbone, spiking, options)
    tokens = torch.randint(0, 256, (2, 21), generator=torch.Generator().manual_seed(2))
    logits, state = lm(tokens[:, :10], return_state=True)
    steps = []
    for t in tokens[:, 10:].unbind(1):
        out, state = lm.step(t, state)
        steps.append(out)
    assert_close(torch.cat([logits, torch.stack(steps, 1)], 1), lm(tokens))


def test_text_prompt_gives_text_and_training_flows_gradients():
    lm = SpikingLM(d_model=16, layers=1, hidden_ratio=2, neuron=memoryless(0.3, "ternary", learn_threshold=True))
    sample = lm.generate("def f", 8, generator=torch.Generator().manual_seed(0))
    assert isinstance(sample, str) and len(sample.encode(errors="replace")) >= 1
    assert lm.training
    logits = lm(torch.randint(0, 256, (3, 17)))
    assert logits.shape == (3, 17, 256)
    logits.logsumexp(-1).sum().backward()
    assert lm.blocks[0].sublayers[0].key.weight.grad.abs().sum() > 0


def test_mamba_backbone_is_spiking_mamba_with_the_conventional_block_as_twin():
    spiking, twin = _lm("mamba", True, {}), _lm("mamba", False, {})
    assert all(type(b.sublayers[0]) is nt.mixers.SpikingMamba and b.sublayers[0].spiking for b in spiking.blocks)
    assert all(type(b.sublayers[0]) is nt.mixers.MambaBlock and not b.sublayers[0].spiking for b in twin.blocks)
    twin_keys = set(twin.state_dict())
    assert twin_keys == {k for k in spiking.state_dict() if ".fire_" not in k}
    tokens = torch.randint(0, 256, (2, 7))
    with nt.accounting.count(spiking) as c:
        spiking(tokens)
    assert c.layers["blocks.0.sublayers.0.in_proj"]["acs"] > 0 == c.layers["blocks.0.sublayers.0.in_proj"]["macs"]
    with pytest.raises(TypeError, match="mlp_neuron: the mamba backbone has no MLP"):
        SpikingLM(backbone="mamba", mlp_neuron=memoryless())


@pytest.mark.parametrize("call, match", [
    (lambda lm: lm(torch.rand(2, 5)), "tokens must be integer token ids"),
    (lambda lm: lm(torch.zeros(2, 0, dtype=torch.long)), "B, L >= 1"),
    (lambda lm: lm(torch.full((1, 3), 256)), r"\[0, 256\)"),
    (lambda lm: lm(torch.zeros(1, 3, dtype=torch.long), (None,)), "tuple of 2"),
    (lambda lm: lm.generate("x", 0), "n must be"),
    (lambda lm: SpikingLM(backbone="gpt"), "backbone"),
])
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(SpikingLM(d_model=8, layers=2, hidden_ratio=1))


def test_out_of_range_ids_are_refused_without_a_value_check_in_the_forward():
    lm = SpikingLM(d_model=8, layers=1, hidden_ratio=1)
    ids = torch.tensor([[1, 300]])
    with pytest.raises(ValueError, match=r"tokens must hold token ids in \[0, 256\), got values in \[1, 300\]"):
        lm(ids)  # the CPU embedding's own bounds check, reported naming the argument
    with nt.debug(), pytest.raises(ValueError, match=r"tokens must hold token ids in \[0, 256\)"):
        lm(ids)  # debug mode checks the values first, on any device


@pytest.mark.parametrize("prompt, error, match", [
    (5, TypeError, "prompt must be a str or token ids"),
    ("", ValueError, "prompt must be token ids"),
    (torch.ones(1, 2), TypeError, "prompt must be integer token ids"),
])
def test_generate_names_the_prompt(prompt, error, match):
    with pytest.raises(error, match=match):
        SpikingLM(d_model=8, layers=1, hidden_ratio=1).generate(prompt, 2)
