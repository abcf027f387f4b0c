"""The JobDeadLetterQueue message (CONTRACTS: DLQ message)."""

from __future__ import annotations

import json
from typing import Any, Literal

from browserjobs.core.model import Status

DlqSource = Literal["workflow", "cleanup"]


def dlq_message(
    *,
    job_id: str,
    status: Status,
    error: dict[str, str],
    execution_arn: str | None,
    lock_key: str | None,
    failed_at: str,
    source: DlqSource,
) -> dict[str, Any]:
    if status not in (Status.FAILED, Status.TIMED_OUT):
        raise ValueError(f"only FAILED and TIMED_OUT jobs go to the DLQ, not {status}")
    return {
        "jobId": job_id,
        "status": str(status),
        "error": {"Error": error["Error"], "Cause": error["Cause"]},
        "executionArn": execution_arn,
        "lockKey": lock_key,
        "failedAt": failed_at,
        "source": source,
    }


def send_dlq_message(sqs: Any, queue_url: str, message: dict[str, Any]) -> str:
    response = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(message, ensure_ascii=False),
        MessageAttributes={"jobId": {"DataType": "String", "StringValue": message["jobId"]}},
    )
    return str(response["MessageId"])
