import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken import encoding as enc

BINARY = (enc.rate, enc.unary, enc.positional, enc.first_spike)
UNIT_ENCODERS = ("rate", "unary", "bernoulli", "positional", "first_spike", "multilevel")

shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**31 - 1)


def unit(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def spikes_list(f, x, T, **kw):
    return f(torch.tensor(x), T, **kw).tolist()


# ---------------------------------------------------------------- hand computations

def test_rate_hand_computed():
    # s_t = floor(t x + 1/2) - floor((t-1) x + 1/2)
    assert spikes_list(enc.rate, 0.5, 4) == [1, 0, 1, 0]
    assert spikes_list(enc.rate, 0.25, 8) == [0, 1, 0, 0, 0, 1, 0, 0]
    assert spikes_list(enc.rate, 0.0, 3) == [0, 0, 0]
    assert spikes_list(enc.rate, 1.0, 3) == [1, 1, 1]
    assert spikes_list(enc.rate, 0.75, 4) == [1, 1, 0, 1]


def test_unary_puts_ones_first():
    assert spikes_list(enc.unary, 0.5, 4) == [1, 1, 0, 0]
    assert spikes_list(enc.unary, 0.75, 4) == [1, 1, 1, 0]
    assert spikes_list(enc.unary, 0.2, 5) == [1, 0, 0, 0, 0]
    assert spikes_list(enc.unary, 0.0, 2) == [0, 0]


def test_positional_is_msb_first_bits():
    # 0.5 * 15 = 7.5 rounds half up to 8 = 0b1000; 11/15 -> 0b1011
    assert spikes_list(enc.positional, 0.5, 4) == [1, 0, 0, 0]
    assert spikes_list(enc.positional, 11 / 15, 4) == [1, 0, 1, 1]
    assert spikes_list(enc.positional, 1.0, 3) == [1, 1, 1]


def test_first_spike_larger_x_fires_earlier():
    assert spikes_list(enc.first_spike, 1.0, 4) == [1, 0, 0, 0]
    assert spikes_list(enc.first_spike, 0.0, 4) == [0, 0, 0, 1]
    assert spikes_list(enc.first_spike, 0.5, 5) == [0, 0, 1, 0, 0]
    assert spikes_list(enc.first_spike, 0.5, 4) == [0, 0, 1, 0]  # 1.5 rounds half up to 2


def test_multilevel_hand_computed():
    # K = 4: 1.5 binary steps per step -> cumulative 2, 3, 5, 6
    assert spikes_list(enc.multilevel, 0.5, 4) == [2, 1, 2, 1]
    assert spikes_list(enc.multilevel, 1.0, 3, levels=3) == [2, 2, 2]
    assert spikes_list(enc.multilevel, 0.3, 5, levels=4) == [1, 1, 1, 1, 1]


def test_direct_repeats_the_value():
    x = torch.tensor([[-2.5, 3.0]])
    s = enc.direct(x, 3)
    assert s.shape == (3, 1, 2)
    assert torch.equal(s, x.expand(3, 1, 2))
    torch.testing.assert_close(enc.decode_rate(s), x)


def test_decoders_hand_computed():
    assert enc.decode_positional(torch.tensor([1.0, 0.0, 1.0, 1.0])).item() == pytest.approx(11 / 15)
    assert enc.decode_first_spike(torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])).item() == pytest.approx(0.75)
    assert enc.decode_first_spike(torch.zeros(5)).item() == 0.0
    assert enc.decode_multilevel(torch.tensor([3.0, 0.0]), levels=4).item() == pytest.approx(0.5)
    assert enc.decode_rate(torch.tensor([1.0, 0.0, 1.0, 1.0])).item() == pytest.approx(0.75)


def test_multilevel_with_two_levels_is_rate():
    x = unit((7, 3), 0)
    assert torch.equal(enc.multilevel(x, 9, levels=2), enc.rate(x, 9))


# ---------------------------------------------------------------- round trips (property)

@settings(max_examples=30, deadline=None)
@given(shape=shapes, T=st.integers(1, 40), seed=seeds)
def test_rate_and_unary_decode_within_half_step(shape, T, seed):
    x = unit(shape, seed)
    for f in (enc.rate, enc.unary):
        s = f(x, T)
        assert s.shape == (T, *shape)
        assert s.dtype == x.dtype
        assert bool(((s == 0) | (s == 1)).all())
        assert float((enc.decode_rate(s) - x).abs().max()) <= 1 / (2 * T) + 1e-6


@settings(max_examples=30, deadline=None)
@given(shape=shapes, T=st.integers(1, 40), seed=seeds)
def test_rate_and_unary_have_same_spike_count(shape, T, seed):
    x = unit(shape, seed)
    n_rate, n_unary = enc.rate(x, T).sum(0), enc.unary(x, T).sum(0)
    assert torch.equal(n_rate, n_unary)
    assert torch.equal(n_rate, torch.floor(x.double() * T + 0.5).float())


@settings(max_examples=30, deadline=None)
@given(shape=shapes, T=st.integers(1, 30), K=st.integers(2, 9), seed=seeds)
def test_multilevel_decode_within_half_binary_step(shape, T, K, seed):
    x = unit(shape, seed)
    s = enc.multilevel(x, T, levels=K)
    assert s.shape == (T, *shape)
    assert bool(((s >= 0) & (s <= K - 1) & (s == s.round())).all())
    assert torch.equal(s.sum(0), torch.floor(x.double() * T * (K - 1) + 0.5).float())
    err = (enc.decode_multilevel(s, levels=K) - x).abs().max()
    assert float(err) <= 1 / (2 * T * (K - 1)) + 1e-6


@settings(max_examples=30, deadline=None)
@given(shape=shapes, T=st.integers(1, 24), seed=seeds)
def test_positional_round_trip_exact_on_grid(shape, T, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 2**T, shape, generator=g)
    x = q.float() / (2**T - 1)
    s = enc.positional(x, T)
    assert s.shape == (T, *shape)
    assert torch.equal(enc.decode_positional(s), x)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, T=st.integers(1, 24), seed=seeds)
def test_positional_encode_inverts_decode_on_bit_patterns(shape, T, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 2, (T, *shape), generator=g).float()
    assert torch.equal(enc.positional(enc.decode_positional(s), T), s)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, T=st.integers(1, 24), seed=seeds)
def test_positional_decode_within_half_quantum(shape, T, seed):
    x = unit(shape, seed)
    err = (enc.decode_positional(enc.positional(x, T)) - x).abs().max()
    assert float(err) <= 1 / (2 * (2**T - 1)) + 1e-6


@settings(max_examples=30, deadline=None)
@given(shape=shapes, T=st.integers(2, 40), seed=seeds)
def test_first_spike_fires_exactly_once_and_decodes_within_half_step(shape, T, seed):
    x = unit(shape, seed)
    s = enc.first_spike(x, T)
    assert s.shape == (T, *shape)
    assert bool(((s == 0) | (s == 1)).all())
    assert bool((s.sum(0) == 1).all())
    err = (enc.decode_first_spike(s) - x).abs().max()
    assert float(err) <= 1 / (2 * (T - 1)) + 1e-6


@settings(max_examples=20, deadline=None)
@given(shape=shapes, T=st.integers(1, 30), seed=seeds)
def test_encode_by_name_matches_function(shape, T, seed):
    x = unit(shape, seed)
    assert torch.equal(enc.encode("rate", x, T), enc.rate(x, T))
    assert torch.equal(enc.encode("multilevel", x, T, levels=3), enc.multilevel(x, T, levels=3))
    assert torch.equal(enc.encode("direct", x, T), enc.direct(x, T))


def test_bernoulli_mean_within_three_sigma():
    torch.manual_seed(0)
    x = torch.rand(200)
    T = 64
    s = enc.bernoulli(x, T, generator=torch.Generator().manual_seed(1))
    assert s.shape == (T, 200)
    assert bool(((s == 0) | (s == 1)).all())
    sigma = torch.sqrt(x * (1 - x) / T)
    inside = ((enc.decode_rate(s) - x).abs() <= 3 * sigma + 1e-6).float().mean()
    assert float(inside) >= 0.97  # ~99.7% expected
    # aggregate: the total spike count over all elements is within 3 sigma of sum x T
    total_sigma = math.sqrt(float((x * (1 - x)).sum()) * T)
    assert abs(float(s.sum()) - float(x.sum()) * T) <= 3 * total_sigma


def test_bernoulli_extremes_are_deterministic():
    x = torch.tensor([0.0, 1.0])
    s = enc.bernoulli(x, 50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s[:, 0], torch.zeros(50))
    assert torch.equal(s[:, 1], torch.ones(50))


def test_bernoulli_seeding():
    x = torch.full((8, 9), 0.5)
    a = enc.bernoulli(x, 16, generator=torch.Generator().manual_seed(7))
    b = enc.bernoulli(x, 16, generator=torch.Generator().manual_seed(7))
    c = enc.bernoulli(x, 16, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ---------------------------------------------------------------- dtypes, shapes, registry

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", UNIT_ENCODERS + ("direct",))
def test_encoders_keep_dtype_and_device(name, dtype):
    x = torch.rand(3, 5, dtype=dtype)
    s = enc.encode(name, x, 6)
    assert s.shape == (6, 3, 5)
    assert s.dtype == dtype
    assert s.device == x.device


def test_scalar_input_gives_time_vector():
    for f in BINARY + (enc.multilevel, enc.bernoulli, enc.direct):
        assert f(torch.tensor(0.3), 5).shape == (5,)


def test_registry_lists_all_encoders():
    assert set(enc.ENCODERS.names()) == {"direct", *UNIT_ENCODERS}
    assert enc.ENCODERS.get("first_spike") is enc.first_spike


def test_direct_passes_gradients():
    x = torch.tensor([0.2, -1.0], requires_grad=True)
    enc.direct(x, 4).sum().backward()
    assert torch.equal(x.grad, torch.full((2,), 4.0))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("name", UNIT_ENCODERS)
def test_out_of_range_raises_unless_clip(name):
    x = torch.tensor([-0.5, 0.5, 1.5])
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*clip=True"):
        enc.encode(name, x, 4)
    clipped = enc.encode(name, x, 4, clip=True)
    expected = enc.encode(name, torch.tensor([0.0, 0.5, 1.0]), 4)
    if name == "bernoulli":  # random in the middle, deterministic at 0 and 1
        clipped, expected = clipped[:, [0, 2]], expected[:, [0, 2]]
    assert torch.equal(clipped, expected)


def test_direct_has_no_range_limit():
    assert enc.direct(torch.tensor([5.0, -7.0]), 2).tolist() == [[5.0, -7.0], [5.0, -7.0]]


@pytest.mark.parametrize("name", UNIT_ENCODERS)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_x_raises(name, bad):
    with pytest.raises(ValueError, match="x"):
        enc.encode(name, torch.tensor([0.5, bad]), 4, clip=True)


def test_direct_reads_no_values_so_a_nan_current_propagates():
    assert enc.direct(torch.tensor([0.5, math.nan]), 3)[:, 1].isnan().all()


@pytest.mark.parametrize("name", UNIT_ENCODERS + ("direct",))
@pytest.mark.parametrize("clip", [False, True])
def test_encoders_run_on_meta_tensors(name, clip):
    kwargs = {} if name == "direct" else {"clip": clip}
    s = enc.encode(name, torch.empty(2, 3, device="meta"), 4, **kwargs)
    assert s.device.type == "meta" and s.shape == (4, 2, 3)


@pytest.mark.parametrize("name", UNIT_ENCODERS + ("direct",))
def test_bad_T_raises(name):
    with pytest.raises(ValueError, match="T"):
        enc.encode(name, torch.tensor([0.5]), 0)
    with pytest.raises(TypeError, match="T"):
        enc.encode(name, torch.tensor([0.5]), 4.0)


def test_x_must_be_a_tensor():
    with pytest.raises(TypeError, match="x"):
        enc.rate(0.5, 4)


def test_unknown_encoder_name_lists_options():
    with pytest.raises(ValueError, match="unknown encoding 'morse'.*rate.*positional.*first_spike"):
        enc.encode("morse", torch.tensor([0.5]), 4)


def test_positional_T_limit():
    enc.positional(torch.tensor([1.0]), 24)
    with pytest.raises(ValueError, match="T must be <= 24"):
        enc.positional(torch.tensor([0.5]), 25)


def test_first_spike_needs_two_steps():
    with pytest.raises(ValueError, match="T"):
        enc.first_spike(torch.tensor([0.5]), 1)
    with pytest.raises(ValueError, match="s"):
        enc.decode_first_spike(torch.ones(1, 3))


@pytest.mark.parametrize("levels", [1, 0])
def test_multilevel_levels_must_be_at_least_two(levels):
    with pytest.raises(ValueError, match="levels"):
        enc.multilevel(torch.tensor([0.5]), 4, levels=levels)
    with pytest.raises(ValueError, match="levels"):
        enc.decode_multilevel(torch.ones(4), levels=levels)
    with pytest.raises(TypeError, match="levels"):
        enc.multilevel(torch.tensor([0.5]), 4, levels=2.0)


@pytest.mark.parametrize("decode", [enc.decode_rate, enc.decode_positional, enc.decode_first_spike,
                                    enc.decode_multilevel])
def test_decoders_validate_s(decode):
    with pytest.raises(ValueError, match="s must have at least 1"):
        decode(torch.tensor(1.0))
    with pytest.raises(TypeError, match="s"):
        decode([1.0, 0.0])


def test_bad_generator_raises():
    with pytest.raises(TypeError, match="generator"):
        enc.bernoulli(torch.tensor([0.5]), 4, generator=7)


@pytest.mark.parametrize("name", UNIT_ENCODERS + ("direct",))
def test_complex_input_to_every_encoder_is_refused(name):
    with pytest.raises(TypeError, match="x must be a real tensor"):
        enc.encode(name, torch.full((2,), 0.5, dtype=torch.complex64), 4)


@pytest.mark.parametrize("decode", [enc.decode_rate, enc.decode_positional, enc.decode_first_spike,
                                    enc.decode_multilevel])
def test_decoders_refuse_complex_and_empty_time(decode):
    with pytest.raises(TypeError, match="s must be a real tensor"):
        decode(torch.zeros(4, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="s must hold at least one time step"):
        decode(torch.zeros(0, 3))


def test_decode_positional_refuses_non_binary_input_and_t_beyond_the_encoder():
    with pytest.raises(ValueError, match="s must be binary"):
        enc.decode_positional(torch.tensor([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="s must have at most 24 time steps"):
        enc.decode_positional(torch.zeros(25, 1))
    x = torch.tensor([0.0, 0.3, 1.0])
    assert torch.allclose(enc.decode_positional(enc.positional(x, 24)), x)


@pytest.mark.parametrize("name", UNIT_ENCODERS + ("direct",))
def test_numpy_integers_are_accepted_for_T_and_bools_refused(name):
    np = pytest.importorskip("numpy")
    x = torch.tensor([0.25, 0.75])
    assert torch.equal(enc.encode(name, x, np.int64(4), **({"generator": torch.Generator().manual_seed(0)}
                                                              if name == "bernoulli" else {})),
                       enc.encode(name, x, 4, **({"generator": torch.Generator().manual_seed(0)}
                                                 if name == "bernoulli" else {})))
    with pytest.raises(TypeError, match="T must be an int, got bool"):
        enc.encode(name, x, True)
    with pytest.raises(TypeError, match="T must be an int, got float64"):
        enc.encode(name, x, np.float64(4.0))


def test_multilevel_levels_take_numpy_integers():
    np = pytest.importorskip("numpy")
    x = torch.tensor([0.5])
    assert torch.equal(enc.multilevel(x, 4, levels=np.int32(3)), enc.multilevel(x, 4, levels=3))
    assert torch.equal(enc.decode_multilevel(enc.multilevel(x, 4, levels=3), np.int16(3)), x)


@pytest.mark.parametrize("name", UNIT_ENCODERS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_x_raises_without_clip_too(name, bad):
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        enc.encode(name, torch.tensor([0.5, bad]), 4)
