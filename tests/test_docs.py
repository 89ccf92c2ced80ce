"""docs/equations.md is complete and every citation in src resolves inside the repository.

(a) every ``eq. (N)`` / ``eq. (N)-(M)`` / ``eqs. N, M`` / bare ``(N)`` equation reference in src
resolves to a numbered entry of docs/equations.md; (b) no src file points at documents outside the
repository; (c) no docstring carries measured figures (they belong in the README and benchmark output).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "neurotoken"
EQUATIONS = ROOT / "docs" / "equations.md"

REVIEW_EQUATIONS = range(1, 25)  # numbered as in the review the library implements
SECTIONS = ("Tokens", "Neurons and spikes", "Encoders and decoders", "Intra-token processing",
            "State-space models and linear attention", "Self-attention", "RWKV", "Training",
            "Energy and hardware")

ENTRY = re.compile(r"^### \((\d+)\) (.+)$", re.M)
# "eq. (9)", "Eq. 13", "eq. (9)-(10)", "eq. 16-17", "eqs. 4, 5 and 7", "eqs. (4)-(7)", "equation (24)"
EQ_CITATION = re.compile(r"\b(?:eqs?\.|equations?)\s*(\(?\d+\)?(?:\s*(?:-|–|,|and|or)\s*\(?\d+\)?)*)", re.I)
# a bare "(16)" or "(16)-(17)" standing for an equation (not a call such as f(1) or x[0](2))
BARE_CITATION = re.compile(r"(?<![\w\]\)])(\(\d{1,2}\)(?:\s*-\s*\(\d{1,2}\))?)(?![\w(])")

OUTSIDE_REFERENCES = {
    "MISSION": re.compile(r"\bMISSION\b"),
    "DESIGN.md": re.compile(r"DESIGN\.md"),
    "issue N": re.compile(r"\bissues?\s*#?\d+", re.I),
    "the issue": re.compile(r"\bthe issue\b|\bissue's\b", re.I),
    "brief": re.compile(r"\bbrief\b", re.I),
}

_NUMBER = r"\d+(?:\.\d+)?"
MEASURED_FIGURES = {
    "bits/byte figure": re.compile(rf"{_NUMBER}\s*bits?(?:/| per )byte|bits?(?:/| per )byte[^.\n]{{0,20}}?\d+\.\d+",
                                   re.I),
    # a percentage of an outcome ("97.5% test accuracy", "22% of its CPU time"), not a parameter ("1% jitter")
    "percentage": re.compile(rf"{_NUMBER}\s*%\s+(?:[\w-]+\s+){{0,3}}?(?:accuracy|sparsity|error|faster|slower|"
                             r"speed-?up|lower|higher|better|worse|reduction|improvement|fewer|less|more|time|runtime)\b",
                             re.I),
    "accuracy figure": re.compile(rf"accuracy[^.\n]{{0,20}}?(?:\b0?\.\d{{2,}}|{_NUMBER}\s*%)|"
                                  r"(?:spiking|twin)\s*>=?\s*0\.\d+", re.I),
    "points lower/higher": re.compile(r"\d+(?:-\d+)?\s+points?\s+(?:lower|higher|better|worse)", re.I),
    "timing": re.compile(rf"{_NUMBER}(?:\s*/\s*{_NUMBER})*\s*(?:ms|µs|us|ns|sec|seconds?|min|minutes?|hours?)\b"),
    "machine": re.compile(r"\b\d+-core\b|\bon (?:this|my|one) (?:machine|laptop|thread)\b", re.I),
    "speed-up": re.compile(rf"{_NUMBER}\s*x\s+(?:faster|slower|speed-?up)|speed-?up of {_NUMBER}", re.I),
    "throughput": re.compile(rf"{_NUMBER}\s*(?:[kMGT]?B|tokens?|it|steps?|samples?)/s\b"),
}


def parse_numbers(citation: str) -> list[int]:
    """Equation numbers of one citation: "(9)-(10)" -> [9, 10], "4, 5 and 7" -> [4, 5, 7]."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|\band\b|\bor\b)\s*", citation.strip()):
        bounds = [int(n) for n in re.findall(r"\d+", part)]
        if len(bounds) == 2:
            lo, hi = bounds
            if lo >= hi:
                raise ValueError(f"equation range {part!r} does not increase")
            numbers += range(lo, hi + 1)
        else:
            numbers += bounds
    return numbers


def cited_numbers(text: str, bare: bool) -> list[tuple[int, str, list[int]]]:
    """(line offset, citation text, numbers) of every equation citation in ``text``."""
    found = []
    patterns = (EQ_CITATION, BARE_CITATION) if bare else (EQ_CITATION,)
    for pattern in patterns:
        for m in pattern.finditer(text):
            found.append((text.count("\n", 0, m.start()), m.group(0), parse_numbers(m.group(1))))
    return found


def measured_figures(text: str) -> list[tuple[int, str, str]]:
    """(line offset, kind, matched text) of every measured-looking figure in ``text``."""
    return [(text.count("\n", 0, m.start()), kind, m.group(0))
            for kind, pattern in MEASURED_FIGURES.items() for m in pattern.finditer(text)]


def source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def docstrings(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of the module, class and function docstrings of a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                out.append((first.lineno, first.value.value))
    return out


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def entries() -> dict[int, str]:
    """Equation number -> the text of its entry in docs/equations.md."""
    text = EQUATIONS.read_text(encoding="utf-8")
    heads = list(ENTRY.finditer(text))
    out: dict[int, str] = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else text.index("\n## ", m.end())
        n = int(m.group(1))
        assert n not in out, f"equation ({n}) is numbered twice in docs/equations.md"
        out[n] = text[m.start():end]
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# ---- the parsers themselves ------------------------------------------------------------------


@pytest.mark.parametrize("text, numbers", [
    ("Eq. (9)-(10): h_t = ...", [9, 10]),
    ("(eq. 13)", [13]),
    ("eq. 16-17 with v = x", [16, 17]),
    ("eqs. 4, 5 and 7", [4, 5, 7]),
    ("eq. (5, p = sigma(W x - theta))", [5]),
    ("Inter-token mixing, eq. (16)-(20), on tokens", [16, 17, 18, 19, 20]),
    ("the recurrence of equation (24)", [24]),
])
def test_equation_citations_parse_to_their_numbers(text, numbers):
    assert [n for _, _, ns in cited_numbers(text, bare=False) for n in ns] == numbers


@given(st.integers(1, 98), st.integers(1, 50), st.booleans())
def test_any_increasing_range_parses_to_every_number_in_it(lo, width, parens):
    hi = lo + width
    text = f"eq. ({lo})-({hi})" if parens else f"eq. {lo}-{hi}"
    assert cited_numbers(text, bare=False)[0][2] == list(range(lo, hi + 1))


def test_a_decreasing_range_is_malformed():
    with pytest.raises(ValueError, match="does not increase"):
        cited_numbers("eq. (10)-(9)", bare=False)


@pytest.mark.parametrize("text, numbers", [
    ("    y_{c,t} = q_t^T S_{c,t}      (17)", [17]),
    ("y_t = Re(C h_t)       (16)-(17), a = lambda", [16, 17]),
    ("f(1) + x[0](2) and g(3)", []),
])
def test_bare_equation_numbers_are_found_and_calls_are_not(text, numbers):
    assert [n for _, _, ns in cited_numbers(text, bare=True) for n in ns] == numbers


@pytest.mark.parametrize("text", [
    "It trained to 2.82 bits/byte against the twin's 2.29 (README, 400 steps).",
    "validation bits per byte of 2.29",
    "Recipe (targets: spiking >= 0.93, twin >= 0.96)",
    "(\"binary\", \"ternary\" also run, about 1-3 points lower)",
    "the fused LIF fwd+bwd took 5.9 / 5.1 ms with OpenMP",
    "both spikegpt twins in ~10 min on one thread",
    "Measured on a 2-core CPU: the fused kernel wins",
    "reaches 97.5% test accuracy",
    "test accuracy of 97.5% after 8 epochs",
    "about 22% of its CPU time",
    "the bit-packed kernel is 3.2x faster than the matmul",
    "copies at 12.5 GB/s",
])
def test_measured_figures_are_flagged(text):
    assert measured_figures(text), text


@pytest.mark.parametrize("text", [
    "E = sum_k n_k e_k + sum_level bytes_level e_level (joules)",
    "Symmetric int8: q = clamp(round(x / s), -127, 127), x_hat = s q, with s = max|x| / 127",
    "beta = 1 - dt/tau, r dt/tau = 1 => tau = dt/(1 - beta)",
    "3 significant digits with an SI prefix: 1.23e-8 J -> '12.3 nJ', 45488 -> '45.5 k'.",
    "Mean next-byte cross-entropy in bits: sum of -log2 p(y | x) over all positions / their count.",
    "macs = 13 B L D (6 token-shift mixes, 3 WKV read-out, 3 num/den updates, 1 receptance gate)",
    "an fp32 MAC costs 5x an fp32 add",
    "A glottal pulse train at f0_hz (1% period jitter with rng; -12 dB/octave source tilt above f0)",
    "A y-range around values at least 0.1 wide (10% of their size when unbounded)",
    "The weight footprint shrinks 4x too, so weights may now fit a cheaper memory level.",
    "Measured memory bandwidth in bytes/s: a float32 tensor copy reads and writes nbytes each.",
    "Median wall time of fn() in seconds over repeats calls",
])
def test_formulas_and_constants_are_not_flagged(text):
    assert not measured_figures(text), measured_figures(text)


# ---- docs/equations.md ------------------------------------------------------------------------


def test_equations_are_numbered_without_gaps_and_keep_the_review_numbers():
    numbers = sorted(entries())
    assert numbers == list(range(1, numbers[-1] + 1))
    assert set(REVIEW_EQUATIONS) <= set(numbers)


def test_every_entry_has_a_formula_a_meaning_and_a_source():
    refs = set(re.findall(r'<a id="([\w-]+)"></a>', EQUATIONS.read_text(encoding="utf-8")))
    for n, text in entries().items():
        body = text.split("\n", 1)[1]
        assert re.search(r"^    \S", body, re.M), f"({n}) has no formula line (indented by 4)"
        source = re.search(r"Source:\s+(.+?)(?:\n\n|\Z)", body, re.S)
        assert source, f"({n}) names no source"
        cited = re.findall(r"\]\(#([\w-]+)\)", source.group(1))
        assert cited and set(cited) <= refs, f"({n}) cites {cited}, references hold {sorted(refs)}"


def test_review_equations_cite_the_review_with_their_number():
    for n in REVIEW_EQUATIONS:
        assert re.search(rf"Source:\s+\[Simeone 2026\]\(#simeone-2026\),\s+eq\. \({n}\)", entries()[n]), n


def test_contents_lists_every_section_and_every_link_resolves():
    text = EQUATIONS.read_text(encoding="utf-8")
    headings = re.findall(r"^##+ (.+)$", text, re.M)
    anchors = {slug(h) for h in headings} | set(re.findall(r'<a id="([\w-]+)"></a>', text))
    contents = text[text.index("## Contents"):text.index("---")]
    for section in SECTIONS:
        assert section in contents, section
    broken = sorted(set(re.findall(r"\]\(#([\w-]+)\)", text)) - anchors)
    assert not broken, f"links to missing anchors: {broken}"


def resolve(path: str):
    """The object a dotted path under ``neurotoken`` names ("mixers.ssm.SelectiveSSM"; call arguments
    and subscripts after the name, as in ``LIF(reset="zero")`` or ``PROFILES["loihi"]``, are ignored);
    None when its module needs an optional package that is not installed."""
    parts = re.split(r"[(\[]", path, maxsplit=1)[0].split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(("neurotoken", *parts[:cut]))
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            return None  # the module needs an optional package that is not installed: cannot tell
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(path)


def test_every_code_location_named_by_an_entry_exists():
    missing = []
    for n, text in entries().items():
        code = re.search(r"Code:(.*?)Source:", text, re.S)
        assert code, f"({n}) names no code location"
        for path in re.findall(r"`([^`]+)`", code.group(1)):
            try:
                resolve(path)
            except (ImportError, AttributeError) as e:
                missing.append(f"({n}) `{path}`: {type(e).__name__}: {e}")
    assert not missing, "code locations in docs/equations.md that do not exist:\n" + "\n".join(missing)


def test_contents_ranges_match_the_entries_of_each_section():
    text = EQUATIONS.read_text(encoding="utf-8")
    body = text[text.index("---"):text.index("## Index by number")]
    for title, listed in re.findall(r"^\d+\. \[(.+?)\]\(#[\w-]+\): (.+)$", text, re.M):
        section = re.search(rf"^## \d+\. {re.escape(title)}\n(.*?)(?=^## |\Z)", body, re.M | re.S)
        assert section, f"contents lists {title!r}, which has no section"
        numbers = sorted(int(n) for n, _ in ENTRY.findall(section.group(1)))
        assert numbers == sorted(parse_numbers(listed)), title


def test_every_reference_is_cited_by_an_entry():
    text = EQUATIONS.read_text(encoding="utf-8")
    body = text[:text.index("## References")]
    unused = sorted(r for r in re.findall(r'<a id="([\w-]+)"></a>', text) if f"(#{r})" not in body)
    assert not unused, f"references no entry cites: {unused}"


# ---- src ------------------------------------------------------------------------------------


def test_every_equation_cited_in_src_resolves_to_docs_equations():
    known = set(entries())
    unresolved = []

    def check(text: str, first_line: int, bare: bool, path: Path) -> None:
        try:
            citations = cited_numbers(text, bare)
        except ValueError as e:
            unresolved.append(f"{where(path, first_line)}: {e}")
            return
        unresolved.extend(f"{where(path, first_line + offset)}: {citation!r}"
                          for offset, citation, numbers in citations if set(numbers) - known)

    for path in source_files():
        check(path.read_text(encoding="utf-8"), 1, False, path)
        for line, doc in docstrings(path):
            check(doc, line, True, path)
    assert not unresolved, "equations cited in src but missing from docs/equations.md:\n" + "\n".join(unresolved)


def test_src_refers_to_no_document_outside_the_repository():
    found = []
    for path in source_files():
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{where(path, i)}: {kind}: {line.strip()}" for kind, pattern in OUTSIDE_REFERENCES.items()
                      if pattern.search(line)]
    assert not found, "references to documents outside the repository:\n" + "\n".join(found)


def test_docstrings_carry_no_measured_figures():
    found = []
    for path in source_files():
        for line, doc in docstrings(path):
            found += [f"{where(path, line + offset)}: {kind}: {text!r}" for offset, kind, text in measured_figures(doc)]
    assert not found, "measured figures in docstrings (move them to the README or benchmark output):\n" + \
        "\n".join(found)
