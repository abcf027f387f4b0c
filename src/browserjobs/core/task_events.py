"""ECS "Task State Change" events of the cluster's browser tasks, as the crash hook reads them.

The task's container overrides carry its callback token and jobId (the workflow's RunBrowserTask puts them
there); a task that stopped without reporting fails its callback with the error and cause made here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Self

from browserjobs.core.contract import MAX_CAUSE_CHARS, MAX_ERROR_CHARS, ErrorName

# ECS's stopCode when Fargate reclaims a Spot task (after its two-minute warning).
SPOT_INTERRUPTION = "SpotInterruption"


@dataclass(frozen=True)
class StoppedTask:
    task_arn: str
    token: str | None
    job_id: str | None
    stop_code: str
    stopped_reason: str
    containers: list[dict[str, Any]]

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> Self:
        env: dict[str, str] = {}
        for override in (detail.get("overrides") or {}).get("containerOverrides") or []:
            for variable in override.get("environment") or []:
                env.setdefault(variable.get("name", ""), variable.get("value", ""))
        return cls(
            task_arn=detail.get("taskArn", ""),
            token=env.get("TASK_TOKEN") or None,
            job_id=env.get("JOB_ID") or None,
            stop_code=detail.get("stopCode", ""),
            stopped_reason=detail.get("stoppedReason", ""),
            containers=[
                {k: c[k] for k in ("name", "exitCode", "reason", "lastStatus") if k in c}
                for c in detail.get("containers") or []
            ],
        )

    def failure(self) -> tuple[str, str]:
        """(error, cause) for SendTaskFailure, within the API's limits."""
        spot = self.stop_code == SPOT_INTERRUPTION
        return self._record(ErrorName.WORKER_INTERRUPTED if spot else ErrorName.WORKER_CRASHED, {})

    def pool_failure(self, job_id: str) -> tuple[str, str]:
        """A pool task's job: Worker.Interrupted whatever stopped the task, since the cause may be another
        job's (its memory, its hung page) or none of the job's (Spot, a health check): retried elsewhere."""
        return self._record(ErrorName.WORKER_INTERRUPTED, {"jobId": job_id, "pool": True})

    def _record(self, error: ErrorName, extra: dict[str, Any]) -> tuple[str, str]:
        cause = {
            **extra,
            "taskArn": self.task_arn,
            "exitCodes": {c.get("name", "?"): c.get("exitCode") for c in self.containers},
            "stopCode": self.stop_code,
            "stoppedReason": self.stopped_reason,
            "containers": self.containers,
        }
        return str(error)[:MAX_ERROR_CHARS], json.dumps(cause, ensure_ascii=False)[:MAX_CAUSE_CHARS]
