"""Job records read in batches, as the run watches them (BatchGetItem: 100 keys a call, consistent)."""

from __future__ import annotations

from typing import Any

from browserjobs.core.ddb import from_item
from browserjobs.testing.harness import Harness

BATCH_GET_LIMIT = 100


def read_jobs(harness: Harness, job_ids: list[str], *fields: str) -> dict[str, dict[str, Any]]:
    """jobId -> the record's `fields` (and jobId), for the jobs that have a record."""
    ddb, table = harness.client("dynamodb"), harness.outputs["JobsTableName"]
    names = {f"#f{index}": name for index, name in enumerate(("jobId", *fields))}
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"jobId": {"S": job_id}} for job_id in job_ids[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
        }
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            for raw in response["Responses"].get(table, []):
                item = from_item(raw) or {}
                found[item["jobId"]] = item
            request = response.get("UnprocessedKeys") or {}
    return found
