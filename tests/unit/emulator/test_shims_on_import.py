"""Importing the local stack changes nothing: moto is patched by shims.apply() (and the endpoint's IAM and
fault hooks by their install()), never as a side effect of an import. Each check runs in a fresh Python."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

# Snapshot of the moto modules given on stdin: every module-level function and every attribute of every
# class defined there (by identity), and how many subclasses each class has.
SNAPSHOT = r"""
import importlib, inspect, json, pkgutil, sys

def snapshot(names):
    seen = {}
    for name in names:
        module = sys.modules[name]
        for attr, value in list(vars(module).items()):
            if inspect.isfunction(value):
                seen[f"{name}.{attr}"] = id(value)
            elif inspect.isclass(value) and value.__module__ == name:
                seen[f"{name}.{attr}.__subclasses__"] = len(type.__subclasses__(value))
                for key, member in list(vars(value).items()):
                    seen[f"{name}.{attr}.{key}"] = id(member)
    return seen

def import_project():
    import browserjobs.emulator, browserjobs.testing
    for package in (browserjobs.emulator, browserjobs.testing):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
"""

LIST_MOTO = (
    SNAPSHOT
    + r"""
import_project()
print(json.dumps(sorted(n for n in sys.modules if n.split(".")[0] in ("moto", "botocore"))))
"""
)

COMPARE = (
    SNAPSHOT
    + r"""
names = json.load(sys.stdin)
for name in names:
    importlib.import_module(name)
before = snapshot(names)
import_project()
after_import = snapshot(names)
from browserjobs.emulator import access, faults, shims
shims.apply(); access.install(); faults.activate(None)
after_apply = snapshot(names)
changed = lambda a, b: sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
print(json.dumps({"import": changed(before, after_import), "apply": changed(after_import, after_apply)}))
"""
)


def _python(code: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_importing_the_local_stack_patches_nothing_and_apply_does():
    moto_modules = _python(LIST_MOTO)

    changed = json.loads(_python(COMPARE, moto_modules))

    assert changed["import"] == [], f"patched on import: {changed['import'][:20]}"
    # The comparison sees patches at all: apply() replaces moto's ECS and Step Functions code, among others.
    assert any(key.startswith("moto.ecs.") for key in changed["apply"]), changed["apply"][:20]
    assert any(key.startswith("moto.stepfunctions.") for key in changed["apply"]), changed["apply"][:20]
