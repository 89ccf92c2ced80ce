import dataclasses
import re
import typing
import tomllib
from dataclasses import dataclass, field

import pytest

from neurotoken.experiments import EXPERIMENTS
from neurotoken.experiments import config as cfg
from neurotoken.learning.bptt import FitConfig


@dataclass(frozen=True)
class Inner:
    n: int = 1
    rate: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    flag: bool = False
    Ts: tuple[int, ...] = (1, 2)
    pair: tuple[int, str] = (0, "a")
    maybe: float | None = None
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize("name", EXPERIMENTS.names())
def test_every_experiment_config_round_trips_through_toml(name):
    config_class = EXPERIMENTS.get(name).config
    default = config_class()
    assert cfg.from_dict(config_class, tomllib.loads(cfg.dumps(default))) == default


def test_nested_values_are_converted_and_defaults_kept():
    got = cfg.from_dict(Outer, {"Ts": [4, 8], "inner": {"rate": 1}, "maybe": 2, "pair": [3, "b"]})
    assert got == Outer(Ts=(4, 8), inner=Inner(n=1, rate=1.0), maybe=2.0, pair=(3, "b"))
    assert isinstance(got.inner.rate, float)


@pytest.mark.parametrize("data, message", [
    ({"nope": 1}, "unknown key 'nope' for Outer"),
    ({"inner": {"nope": 1}}, "unknown key 'inner.nope' for Inner"),
])
def test_unknown_keys_are_rejected_by_dotted_name(data, message):
    with pytest.raises(ValueError, match=message):
        cfg.from_dict(Outer, data)


@pytest.mark.parametrize("data, message", [
    ({"inner": {"n": "3"}}, r"inner.n: expected int, got str '3'"),
    ({"inner": {"n": True}}, r"inner.n: expected int, got bool"),
    ({"flag": 1}, r"flag: expected bool, got int"),
    ({"Ts": 3}, r"Ts: expected a list, got int"),
    ({"Ts": [1, "x"]}, r"Ts\[1\]: expected int, got str"),
    ({"pair": [1]}, r"pair: expected 2 items, got 1"),
    ({"inner": 3}, r"inner: expected a table of Inner fields"),
    ({"maybe": "high"}, r"maybe: expected float, got str"),
])
def test_wrong_types_are_rejected_by_dotted_name(data, message):
    with pytest.raises(TypeError, match=message):
        cfg.from_dict(Outer, data)


def test_checks_of_the_config_class_still_run():
    with pytest.raises(ValueError, match="epochs"):
        cfg.from_dict(FitConfig, {"epochs": 0})


def test_overrides_take_toml_values_and_bare_words():
    got = cfg.with_overrides(Outer(), ["inner.n=5", "Ts=[3]", "name=hello world", "flag=true", "maybe=1e-3"])
    assert got == Outer(name="hello world", flag=True, Ts=(3,), maybe=1e-3, inner=Inner(n=5))


@pytest.mark.parametrize("assignment, error, message", [
    ("inner.n", ValueError, "key=value"),
    ("=3", ValueError, "key=value"),
    ("name.x=3", ValueError, "'name': it is not a table"),
    ("inner.n=x", TypeError, "inner.n: expected int"),
])
def test_bad_overrides_are_named(assignment, error, message):
    with pytest.raises(error, match=message):
        cfg.with_overrides(Outer(), [assignment])


def test_load_names_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cfg.load(Outer, tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("inner = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        cfg.load(Outer, bad)
    good = tmp_path / "good.toml"
    good.write_text(cfg.dumps(Outer(Ts=(7,))))
    assert cfg.load(Outer, good) == Outer(Ts=(7,))


def test_field_type_follows_dotted_keys():
    assert cfg.field_type(Outer, "inner.rate") is float
    assert cfg.field_type(Outer, "Ts") == tuple[int, ...]
    with pytest.raises(ValueError, match="unknown key 'inner.x'"):
        cfg.field_type(Outer, "inner.x")


@pytest.mark.parametrize("assignment, message", [
    ("intra.Ts=[0]", "intra.Ts[0] must be >= 1"), ("intra.Ts=[]", "intra.Ts must hold"),
    ("intra.hidden=[-5]", "intra.hidden[0] must be >= 1"), ("intra.beta=1.5", "intra.beta must be <= 1.0"),
    ("attention.heads=3", "attention.heads must divide d_model"), ("ssm.dropout=1.5", "ssm.dropout must be < 1.0"),
    ("language.d_model=0", "language.d_model must be >= 1"), ("intra.fit.epochs=0", "intra.fit.epochs must be >= 1"),
])
def test_nested_range_errors_name_the_dotted_key_before_anything_runs(assignment, message):
    from neurotoken.experiments import MainJob

    with pytest.raises(ValueError, match=re.escape(message)):
        cfg.with_overrides(MainJob(), [assignment])


def test_a_partial_table_in_a_file_keeps_the_other_keys(tmp_path):
    from neurotoken.experiments import DigitsSweep, MainJob

    path = tmp_path / "c.toml"
    path.write_text("[fit]\nepochs = 3\n")
    loaded = cfg.load(DigitsSweep, path)
    assert loaded.fit.epochs == 3 and loaded.fit.lr == DigitsSweep().fit.lr
    path.write_text("[ssm.fit]\nepochs = 2\n")
    main = cfg.load(MainJob, path, MainJob.quick())
    assert main.ssm.fit.epochs == 2 and main.ssm.d_model == MainJob.quick().ssm.d_model
    assert main.count_batch == MainJob.quick().count_batch


def test_the_former_one_value_keys_of_the_main_job_still_load_with_a_warning():
    from neurotoken.experiments import MainJob

    with pytest.warns(DeprecationWarning, match=re.escape("intra.T is deprecated; use intra.Ts = [4]")):
        job = cfg.with_overrides(MainJob(), ["intra.T=4"])
    assert job.intra.Ts == (4,)
    with pytest.warns(DeprecationWarning) as warned:
        job = cfg.from_dict(MainJob, {"attention": {"T": 2, "test_snr_db": 5.0}})
    assert sorted(str(w.message).split()[0] for w in warned) == ["attention.T", "attention.test_snr_db"]
    assert (job.attention.Ts, job.attention.snrs_db) == ((2,), (5.0,))


def _config_classes():
    """Every experiment config class and every config class nested in one (recursively)."""
    seen, todo = [], [EXPERIMENTS.get(n).config for n in EXPERIMENTS.names()]
    while todo:
        cls = todo.pop()
        if cls not in seen and hasattr(cls, "CHECKS"):
            seen.append(cls)
            todo += [f.type for f in dataclasses.fields(cls) if dataclasses.is_dataclass(f.type)]
            todo += [tp for tp in typing.get_type_hints(cls).values() if dataclasses.is_dataclass(tp)]
    return seen


@pytest.mark.parametrize("config_class", _config_classes(), ids=lambda c: c.__name__)
def test_every_field_of_every_experiment_config_has_one_validator(config_class):
    assert set(config_class.CHECKS) == {f.name for f in dataclasses.fields(config_class)}
    default, quick = config_class(), config_class.quick() if hasattr(config_class, "quick") else None
    cfg.validate(default)
    if quick is not None:
        cfg.validate(quick)


# (experiment, assignment, the message's start): each trained nonsense or failed after earlier fits before
BAD = [
    ("digits", "hidden=[0]", "hidden[0] must be >= 1"), ("digits", "hidden=[-5]", "hidden[0] must be >= 1"),
    ("digits", "encodings=['nope']", "encodings[0] must be one of"), ("digits", "beta=1.5", "beta must be <= 1"),
    ("digits", "threshold=nan", "threshold must be finite"), ("digits", "Ts=[]", "Ts must hold at least 1"),
    ("digits", "Ts=[2, 2]", "Ts must not repeat"), ("digits", "split_seed=-1", "split_seed must be >= 0"),
    ("main", "language.d_model=0", "language.d_model must be >= 1"),
    ("main", "ssm.spike=bogus", "ssm.spike must be one of"),
    ("main", "attention.heads=3", "attention.heads must divide d_model"),
    ("main", "attention.snrs_db=[nan]", "attention.snrs_db[0] must be finite"),
    ("main", "ssm.dropout=1.5", "ssm.dropout must be < 1"), ("main", "intra.encodings=['nope']", "intra.encodings[0]"),
    ("main", "seed=-1", "seed must be >= 0"), ("main", "profile=nope", "profile: unknown profile"),
    ("main", "paradigms=['language', 'language']", "paradigms must not repeat"),
    ("main", "attention.score=or", "attention.score must be one of"),
    ("main", "attention.n_train=2", "attention.n_train must be >= len(train_snrs_db)"),
    ("main", "language.prompt=''", "language.prompt must not be empty"),
    ("main", "language.twins=[]", "language.twins must hold at least 1"),
    ("language", "path=nowhere.txt", "path must name an existing file or folder"), ("main", "language.path=no.txt", "language.path"),
    ("main", "ssm.permutation_seed=-3", "ssm.permutation_seed must be >= 0"),
    ("listops", "max_length=3", "max_length must be >= min_length"),
    ("listops", "dt_range=[0.5, 0.1]", "dt_range must be (low, high) with low < high"),
    ("listops", "max_args=1", "max_args must be >= 2"),
    ("stdp-digits", "beta=2.0", "beta must be <= 1"), ("stdp-digits", "theta_plus=-1.0", "theta_plus must be >= 0"),
    ("energy-tradeoff", "encodings=['nope']", "encodings[0] must be one of"),
    ("energy-tradeoff", "pricings=[['cmos45', 'x']]", "pricings[0][1] must be one of"),
    ("energy-tradeoff", "hidden=[0]", "hidden[0] must be >= 1"),
    ("three-factor-digits", "seed=-1", "seed must be >= 0"),
    ("zeroth-order-digits", "memory_Ts=[4, 4]", "memory_Ts must not repeat"),
]


@pytest.mark.parametrize("experiment, assignment, message", BAD)
def test_an_invalid_config_is_refused_when_made_naming_the_dotted_key(experiment, assignment, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        cfg.with_overrides(EXPERIMENTS.get(experiment).config(), [assignment])


def test_configs_made_in_python_are_checked_too():
    from neurotoken.experiments import DigitsSweep, MainJob, SeqDigits

    with pytest.raises(TypeError, match="intra must be a DigitsSweep, got str"):
        MainJob(intra="digits")
    with pytest.raises(TypeError, match="permuted must be a bool"):
        SeqDigits(permuted=1)
    with pytest.raises(TypeError, match="Ts must be a tuple"):
        DigitsSweep(Ts=4)
