"""The demo's scenarios as tests: each must pass every one of its checks."""

from __future__ import annotations

import pytest

from local.scenarios import SCENARIOS, Context, run_scenario

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", [name for name, _, _ in SCENARIOS])
def test_scenario(context: Context, name: str) -> None:
    result = run_scenario(name, context)
    failed = [f"{check.name}: {check.detail}" for check in result.checks if not check.ok]
    assert result.checks, f"{name} checked nothing"
    assert not failed, f"{name} ({result.title}) failed:\n  " + "\n  ".join(failed)
    assert result.jobs, f"{name} ran no job"
