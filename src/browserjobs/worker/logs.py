"""JSON log lines on stdout (CloudWatch Logs via awslogs), each carrying the jobId. Never the task token.

A task of its own has one job for the whole process; a pool worker's lines carry the jobId of the job
whose thread or event-loop task wrote them (JOB_ID).
"""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

JOB_ID: ContextVar[str | None] = ContextVar("job_id", default=None)


class _JobOfContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job_id = JOB_ID.get()
        if job_id:
            record.jobId = job_id
        return True


def configure(job_id: str | None) -> None:
    formatter = LambdaPowertoolsFormatter(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "browserjobs-worker"
    )
    if job_id:
        formatter.append_keys(jobId=job_id)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_JobOfContext())
    logging.basicConfig(
        level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper(), handlers=[handler], force=True
    )
    for noisy in ("botocore", "boto3", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
