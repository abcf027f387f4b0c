"""The job's one and only final callback: SendTaskSuccess or SendTaskFailure."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from browserjobs.worker.errors import JobFailure

logger = logging.getLogger(__name__)


class TaskCallback:
    def __init__(self, sfn: Any, task_token: str) -> None:
        self._sfn = sfn
        self._token = task_token
        self.sent = False

    def succeed(self, output: dict[str, Any]) -> bool:
        return self._send("SendTaskSuccess", self._sfn.send_task_success, output=json.dumps(output))

    def fail(self, failure: JobFailure) -> bool:
        record = failure.as_record()
        return self._send(
            "SendTaskFailure", self._sfn.send_task_failure, error=record["Error"], cause=record["Cause"]
        )

    def _send(self, name: str, call: Any, **payload: str) -> bool:
        """True when Step Functions took it; a refusal (token timed out, execution gone) is logged."""
        if self.sent:
            raise RuntimeError("the job's callback was already sent")
        self.sent = True
        try:
            call(taskToken=self._token, **payload)
        except (BotoCoreError, ClientError) as error:
            logger.error("%s was not accepted: %s", name, error)
            return False
        logger.info("%s sent", name)
        return True
