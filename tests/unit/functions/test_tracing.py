"""Handlers import without the X-Ray SDK, boto3 or the batch utility; tracing still patches botocore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HANDLERS = ["intake", "claim", "cleanup", "crash_hook"]
HEAVY = [
    "aws_xray_sdk.core",
    "boto3",
    "botocore.client",
    "botocore.config",
    "jsonschema",
    "aws_lambda_powertools.utilities.batch",
]

# Run in a fresh interpreter: this process has long imported all of them.
PROBE = """
import json, sys
import app
before = {name: name in sys.modules for name in HEAVY}
provider = app.tracer.provider
recorder = provider.recorder  # what the first traced call does
from aws_xray_sdk.core import xray_recorder
from botocore.client import BaseClient
print(json.dumps({
    "before": before,
    "disabled": app.tracer.disabled,
    "same_recorder": recorder is xray_recorder,
    "botocore_patched": hasattr(BaseClient._make_api_call, "__wrapped__"),
    "streaming_threshold": xray_recorder.streaming_threshold,
}))
"""


def _environment(handler: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env.update(
        LAMBDA_TASK_ROOT=str(ROOT / "functions" / handler),  # Powertools turns tracing on inside Lambda
        AWS_LAMBDA_FUNCTION_NAME=f"browserjobs-{handler}",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
        POWERTOOLS_SERVICE_NAME="browserjobs",
        JOBS_TABLE="jobs",
        LOCKS_TABLE="locks",
        ARTIFACTS_BUCKET="artifacts",
        STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:job",
        JOB_DLQ_URL="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        CLUSTER_ARN="arn:aws:ecs:us-east-1:123456789012:cluster/browserjobs",
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions" / "shared"), str(ROOT / "functions" / handler)]),
    )
    return env


@pytest.mark.parametrize("handler", HANDLERS)
def test_import_defers_the_xray_sdk_and_boto3_and_the_first_traced_call_patches_botocore(handler):
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}"],
        env=_environment(handler),
        cwd=ROOT / "functions" / handler,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    imported = [name for name, loaded in report["before"].items() if loaded]
    assert imported == [], f"imported by the handler's import: {imported}"
    assert report["disabled"] is False
    assert report["same_recorder"] is True
    assert report["botocore_patched"] is True
    assert report["streaming_threshold"] == 0
