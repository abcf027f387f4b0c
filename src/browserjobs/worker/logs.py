"""JSON log lines on stdout (CloudWatch Logs via awslogs), each carrying the jobId. Never the task token."""

from __future__ import annotations

import logging
import os
import sys

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter


def configure(job_id: str | None) -> None:
    formatter = LambdaPowertoolsFormatter(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "browserjobs-worker"
    )
    if job_id:
        formatter.append_keys(jobId=job_id)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    logging.basicConfig(
        level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper(), handlers=[handler], force=True
    )
    for noisy in ("botocore", "boto3", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
