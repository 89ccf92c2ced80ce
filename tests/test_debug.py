import pytest
import torch
from torch import nn

import neurotoken as nt
from neurotoken import _debug


def _model():
    return nn.Sequential(nn.Linear(3, 4), nt.LIF(backend="sequential"))


def test_debug_names_the_first_module_with_a_nan_output():
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nt.LIF(backend="sequential")))
    with torch.no_grad():
        model[0].weight[1, 0] = float("nan")
    with nt.debug():
        with pytest.raises(ValueError, match=r"non-finite output \(NaN\) in Linear '0'"):
            model(torch.ones(2, 3))


def test_debug_names_a_nested_module_by_its_qualified_name():
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Identity(), nt.LIF(backend="sequential")))
    model[1][1].register_forward_pre_hook(lambda m, a: (a[0] * float("nan"),))  # runs after debug's input check
    with nt.debug(), pytest.raises(ValueError, match=r"non-finite output \(NaN\) in LIF '1.1'"):
        model(torch.ones(2, 3))


def test_debug_checks_inputs_so_an_inf_that_spikes_finitely_is_caught():
    with nt.debug(), pytest.raises(ValueError, match=r"non-finite input \(inf\) to LIF$"):
        nt.LIF()(torch.tensor([[float("inf")]]))
    with nt.debug(), pytest.raises(ValueError, match=r"non-finite input \(inf\) to Sequential$"):
        _model()(torch.tensor([[float("inf"), 0.0, 0.0]]))


def test_without_debug_nan_propagates_and_nothing_is_checked():
    lif = nt.LIF(backend="sequential")
    x = torch.zeros(4, 3)
    x[1, 2] = float("nan")
    s = lif(x)
    assert s[1:, 2].isnan().all() and not s[:, :2].isnan().any() and not s[0].isnan().any()


def test_debug_switches_on_and_off_and_the_block_form_restores():
    assert not _debug.enabled()
    nt.debug(True)
    try:
        assert _debug.enabled()
        with nt.debug(False):
            assert not _debug.enabled()
            _model()(torch.full((2, 3), float("nan")))  # not checked
        assert _debug.enabled()
    finally:
        nt.debug(False)
    assert not _debug.enabled()
    with nt.debug():
        assert _debug.enabled()
    assert not _debug.enabled()


def test_debug_state_survives_an_error_inside_a_forward():
    model = _model()
    with nt.debug():
        with pytest.raises(ValueError):
            model(torch.full((2, 3), float("nan")))
        assert model(torch.ones(2, 3)).shape == (2, 4)
        assert not _debug._STACK


def test_debug_ignores_meta_and_integer_tensors():
    with nt.debug():
        assert nt.LIF()(torch.empty(3, 2, device="meta")).device.type == "meta"
        assert nn.Identity()(torch.arange(3)).tolist() == [0, 1, 2]


def test_debug_argument_must_be_a_bool():
    with pytest.raises(TypeError, match="on must be a bool"):
        nt.debug("yes")
