"""docs/CONTRACTS.md against the code: the SendTaskFailure error names the worker reports."""

from __future__ import annotations

import json
import re

import pytest

from browserjobs.worker.errors import WORKER_ERRORS
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def test_the_worker_reports_exactly_the_error_names_of_the_contract():
    contract = (
        (ROOT / "docs" / "CONTRACTS.md")
        .read_text()
        .split("SendTaskFailure error names")[1]
        .split("## DLQ")[0]
    )
    named = set(re.findall(r"`((?:Job|Worker|Site|Browser)\.[A-Za-z]+)`", contract))
    result_schema = json.loads((ROOT / "schemas" / "result.schema.json").read_text())
    assert named - {"Worker.Crashed"} == {str(e) for e in WORKER_ERRORS}  # Worker.Crashed: the crash hook's
    assert set(result_schema["properties"]["error"]["properties"]["Error"]["enum"]) == {
        str(e) for e in WORKER_ERRORS
    }
