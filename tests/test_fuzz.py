"""Bad inputs to every public entry point: each accepted with correct behaviour, or refused with a
ValueError/TypeError naming the argument (the table and its rules: tests/fuzz_cases.py).

``pytest tests/test_fuzz.py -q`` prints the number of cases; ``test_fuzz_counts`` prints how many
are expected accepted, refused and NaN-propagating (``-s`` to see it).
"""

import collections

import pytest
import torch

import neurotoken as nt
from fuzz_cases import CASES, Case, first_tensor


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=f"owner: {case.owner}")] if case.owner else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, tmp_path):
    torch.manual_seed(0)
    if case.outcome == "refused":
        with pytest.raises(case.errors) as info:
            case.call(tmp_path)
        name = case.name.format(tmp=tmp_path.name)
        assert name in str(info.value), f"the message does not name {name!r}: {info.value}"
        return
    out = case.call(tmp_path)
    if case.outcome == "nan":  # propagated, not refused and not silently zeroed
        assert torch.isnan(first_tensor(out)).any()
    elif case.check is not None:
        assert case.check(out)


def _public(module) -> set[str]:
    """Public callables a module exports (its __all__), leaving out named tuples and constants."""
    names = set()
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj) and not (isinstance(obj, type) and issubclass(obj, tuple)) and obj is not nt.mixers.Mixer:
            names.add(name)
    return names


def test_every_public_entry_point_has_cases():
    covered = {c.entry.split("(")[0] for c in CASES}
    required = {f"nt.mixers.{n}" for n in _public(nt.mixers)}
    for sub in ("attention", "sparse", "hippo"):
        required |= {f"nt.mixers.{sub}.{n}" for n in _public(getattr(nt.mixers, sub))
                     if f"nt.mixers.{n}" not in required}
    required |= {f"nt.mixers.rwkv.{n}" for n in ("wkv_step", "running_max", "token_shift")}
    for module in ("models", "layers", "spikes", "encoding"):
        required |= {f"nt.{module}.{n}" for n in _public(getattr(nt, module))}
    missing = sorted(required - covered)
    assert not missing, f"no fuzz case for {missing}"


def test_at_least_300_cases():
    assert len(CASES) >= 300


def test_fuzz_counts(capsys):
    counts = collections.Counter(c.outcome for c in CASES)
    known = sum(bool(c.owner) for c in CASES)
    with capsys.disabled():
        print(f"\nfuzz: {len(CASES)} cases over {len({c.entry for c in CASES})} entry points: "
              f"{counts['refused']} refused naming the argument, {counts['accepted']} accepted with a check, "
              f"{counts['nan']} NaN propagated; {known} known failures (xfail, owner named)")
    assert counts["refused"] and counts["accepted"] and counts["nan"]
