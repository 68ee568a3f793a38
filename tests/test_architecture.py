"""The house rules of docs/architecture.md that import-linter cannot see.

import-linter (pyproject.toml, run by ``make test``) holds the layers and forbids import
cycles; these tests hold the rest: no module reaches into another module's private names, and
units stay small enough to hold in one's head.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "otelperf"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 200


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _module_of(name: str) -> Path | None:
    """The file of an ``otelperf`` module or package named ``name``, None if it is not one."""
    base = PACKAGE.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(tree: ast.AST) -> set[str]:
    """Every private name a module defines itself: functions, classes, its own attributes
    (``self._x = ...``), slots and other string constants, keyword arguments."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)  # argparse's set_defaults(_run=...), dataclass replace(...)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            names.update(
                c.value for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )  # fmt: skip
    return {n for n in names if _private(n)}


def _package_names(path: Path) -> set[str]:
    """The private names the modules of ``path``'s package define: a class's underscored
    fields are private to its package (``emit``'s modules share Operation's), not to the
    rest of otelperf."""
    names: set[str] = set()
    for module in path.parent.glob("*.py"):
        names |= _own_names(ast.parse(module.read_text(encoding="utf-8")))
    return names


def _imported_modules(tree: ast.AST) -> dict[str, str]:
    """Local name -> otelperf module for ``import otelperf.x as y`` / ``from otelperf import x``."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("otelperf"):
                    out[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("otelperf"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if _module_of(full) is not None:
                    out[a.asname or a.name] = full
    return out


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _package_names(path)
    allowed = THIRD_PARTY_PRIVATES.get(_rel(path), set())
    modules = _imported_modules(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("otelperf"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if _private(a.name) and _module_of(full) is None and full != "otelperf.__version__":
                    found.append(f"{_rel(path)}:{node.lineno} imports {full}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in modules:
                if _module_of(f"{modules[base.id]}.{node.attr}") is None:
                    found.append(f"{_rel(path)}:{node.lineno} reads {modules[base.id]}.{node.attr}")
            elif node.attr not in own and node.attr not in allowed:
                found.append(f"{_rel(path)}:{node.lineno} uses .{node.attr} defined elsewhere")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and node.args[1].value not in own | allowed
        ):
            found.append(f"{_rel(path)}:{node.lineno} uses .{node.args[1].value} by name")
    return found


# Other libraries' private fields otelperf touches, and where: the OTel SDK's, probed once in
# otelperf/_core/sdk_compat.py and read inline by the processor's per-span hooks (a call per
# span costs; sdk_compat's probe decides whether they may); grafanalib's Template keeps the
# selected value in ``_current`` with no public setter.  No other module touches any.
_SPAN_FIELDS = {
    "_context", "_parent", "_name", "_start_time", "_end_time", "_attributes", "_kind", "_status",
}  # fmt: skip
THIRD_PARTY_PRIVATES: dict[str, set[str]] = {
    "otelperf/_core/sdk_compat.py": _SPAN_FIELDS | {
        "_Span", "_tracers", "_active_span_processor", "_lock", "_span_processors", "_root",
        "_remote_parent_sampled", "_remote_parent_not_sampled", "_local_parent_sampled",
        "_local_parent_not_sampled", "_ProxyMeterProvider", "_metric_readers",
        "_collector_to_names", "_dict", "_on_ending",
    },
    "otelperf/derive/traces.py": _SPAN_FIELDS | {"_dict"},
    "otelperf/generate/dashboards/panels.py": {"_current"},
}  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_module_uses_another_modules_private_names(path: Path) -> None:
    assert _violations(path) == []


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_units_are_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_rel(path)} has {lines} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"class {node.name} has {length} lines"
