"""Imports run one way: nothing in the library imports an experiment, except the CLI (and the
deprecated ``neurotoken.report`` shim, which re-exports the main-job report for one release)."""

import ast
from pathlib import Path

import neurotoken

ROOT = Path(neurotoken.__file__).parent
ALLOWED = {"cli.py", "report.py"}


def imported_modules(path: Path) -> list[str]:
    """Absolute dotted names of every module ``path`` imports (relative imports resolved)."""
    package = ["neurotoken", *path.relative_to(ROOT).parent.parts]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [module] + [f"{module}.{a.name}" for a in node.names]
    return names


def test_no_library_module_imports_an_experiment():
    offenders = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "experiments" or str(rel) in ALLOWED:
            continue
        bad = [m for m in imported_modules(path) if m.split(".")[:2] == ["neurotoken", "experiments"]]
        if bad:
            offenders[str(rel)] = bad
    assert not offenders, f"library modules importing experiments: {offenders}"


def test_the_walk_sees_relative_imports():
    assert "neurotoken.experiments.runner" in imported_modules(ROOT / "experiments" / "digits.py")
    assert "neurotoken.experiments.report" in imported_modules(ROOT / "cli.py")
