"""The package's layout rules: one import root, dependencies that point one way, no path edits.

core runs everywhere (the Lambda layer, the worker image, the CLI); worker, ops and emulator build on it;
testing builds on ops and the emulator; nothing builds on testing. The handlers use the layer only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "browserjobs"
ALLOWED = {
    "core": set(),
    "worker": {"core"},
    "ops": {"core"},
    "emulator": {"core"},
    "testing": {"core", "ops", "emulator"},
}


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    return modules


def _subpackages_used(path: Path) -> set[str]:
    return {
        name.split(".")[1]
        for name in _imported_modules(path)
        if name.startswith("browserjobs.") and name.split(".")[1] in ALLOWED
    }


@pytest.mark.parametrize("subpackage", sorted(ALLOWED))
def test_dependencies_point_one_way(subpackage: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(used - ALLOWED[subpackage] - {subpackage})
        for path in (PACKAGE / subpackage).rglob("*.py")
        if (used := _subpackages_used(path)) - ALLOWED[subpackage] - {subpackage}
    }
    assert not wrong, f"browserjobs.{subpackage} may use only {sorted(ALLOWED[subpackage])}: {wrong}"


def test_the_handlers_use_only_what_their_layer_holds() -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(used)
        for path in (ROOT / "functions").rglob("*.py")
        if (used := _subpackages_used(path) - {"core"})
    }
    assert not wrong, f"the layer is browserjobs.core alone: {wrong}"


def test_the_old_import_roots_are_gone() -> None:
    old = {"local", "worker", "jobcore"}
    sources = [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "functions").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
    ]
    wrong = {
        str(path.relative_to(ROOT)): sorted(top)
        for path in sources
        if (top := {name.split(".")[0] for name in _imported_modules(path)} & old)
    }
    assert not wrong, wrong


def _is_sys_path(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys"


def _edits_sys_path(path: Path) -> bool:
    """sys.path.<method>(...), sys.path[...] = ..., sys.path += ..."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        call = node.func if isinstance(node, ast.Call) else None
        if isinstance(call, ast.Attribute) and _is_sys_path(call.value):
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(_is_sys_path(t.value if isinstance(t, ast.Subscript) else t) for t in targets):
            return True
    return False


def test_no_code_edits_sys_path() -> None:
    """The package is installed (editable in a checkout); subprocesses get PYTHONPATH, never a path edit."""
    edited = [
        str(path.relative_to(ROOT))
        for path in [
            *PACKAGE.rglob("*.py"),
            *(ROOT / "bench").rglob("*.py"),
            *(ROOT / "functions").rglob("*.py"),
        ]
        if _edits_sys_path(path)
    ]
    assert not edited


def test_the_checker_sees_a_path_edit(tmp_path: Path) -> None:
    edits = ("sys.path.append('x')", "sys.path[:0] = ['x']", "sys.path.insert(0, 'x')", "sys.path += ['x']")
    for line in edits:
        source = tmp_path / "edit.py"
        source.write_text(f"import sys\n{line}\n")
        assert _edits_sys_path(source), line
