"""The ECS container agent's task scale-in protection endpoint for local tasks.

ECS gives each container ECS_AGENT_URI; `PUT $ECS_AGENT_URI/task-protection/v1/state` with
{"ProtectionEnabled": bool, "ExpiresInMinutes": int} sets the task's scale-in protection and GET reads it
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-scale-in-protection-endpoint.html). The
agent does it by calling ECS UpdateTaskProtection / GetTaskProtection with the task role's credentials, so
the task role needs ecs:UpdateTaskProtection / ecs:GetTaskProtection on the task: here too, the call goes to
the local endpoint with the credentials the task was given, and the endpoint's IAM check decides. The answer
is the agent's: {"protection": {...}} on success, {"failure": {...}} for an ECS failure (e.g. TASK_NOT_VALID),
{"error": {...}} with the ECS error's code and HTTP status otherwise (the agent's handlers in
github.com/aws/amazon-ecs-agent, ecs-agent/tmds/handlers/taskprotection).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from moto.ecs.models import Task

from browserjobs.emulator.access import role_client
from browserjobs.emulator.settings import REGION

STATE_PATH = "task-protection/v1/state"
# The task and the credentials ECS gave it (empty without a task role), by task id.
TaskLookup = Callable[[str], tuple[Task, dict[str, str]] | None]


def _agent_time(moment: datetime.datetime | None) -> str | None:
    """How the agent (Go's encoding of time.Time) writes ExpirationDate: RFC 3339 in UTC."""
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_AGENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"})


class TaskProtectionAgent:
    def __init__(self, endpoint_url: str, lookup: TaskLookup):
        self._endpoint_url = endpoint_url
        self._lookup = lookup

    def handle(self, task_id: str, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """The agent's HTTP status and JSON answer for a GET or PUT from the task `task_id`."""
        found = self._lookup(task_id)
        if found is None:
            return 404, _error("", "ResourceNotFoundException", "Invalid request: no task was found")
        task, credentials = found
        arn = task.task_arn
        if not credentials:
            message = "Invalid Request: no task IAM role credentials available for task"
            return 403, _error(arn, "AccessDeniedException", message)
        ecs = role_client(
            "ecs", credentials, region=REGION, endpoint_url=self._endpoint_url or None, config=_AGENT_CONFIG
        )
        call: Callable[[], dict[str, Any]]
        if method == "PUT":
            try:
                request = json.loads(body or b"null")
            except ValueError:
                request = None
            if not isinstance(request, dict):
                message = "UpdateTaskProtection: failed to decode request"
                return 400, _error(arn, "InvalidParameterException", message)
            if "ProtectionEnabled" not in request:
                message = "Invalid request: does not contain 'ProtectionEnabled' field"
                return 400, _error(arn, "InvalidParameterException", message)
            minutes = request.get("ExpiresInMinutes")
            call = lambda: ecs.update_task_protection(  # noqa: E731
                cluster=task.cluster_arn,
                tasks=[arn],
                protectionEnabled=bool(request["ProtectionEnabled"]),
                **({"expiresInMinutes": int(minutes)} if minutes is not None else {}),
            )
        else:
            call = lambda: ecs.get_task_protection(cluster=task.cluster_arn, tasks=[arn])  # noqa: E731
        try:
            answer = call()
        except ClientError as error:
            details = error.response.get("Error", {})
            code = details.get("Code", "ServerException")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            document = _error(arn, code, details.get("Message", ""))
            document["requestID"] = error.response.get("ResponseMetadata", {}).get("RequestId")
            return (500 if code == "ServerException" else status), document
        if answer.get("failures"):
            failure = answer["failures"][0]
            keys = {"Arn": "arn", "Detail": "detail", "Reason": "reason"}
            return 200, {"failure": {key: failure.get(name) for key, name in keys.items()}}
        protected = answer["protectedTasks"][0]
        return 200, {
            "protection": {
                "ExpirationDate": _agent_time(protected.get("expirationDate")),
                "ProtectionEnabled": bool(protected.get("protectionEnabled")),
                "TaskArn": protected.get("taskArn", arn),
            }
        }


def _error(arn: str, code: str, message: str) -> dict[str, Any]:
    return {"error": {**({"Arn": arn} if arn else {}), "Code": code, "Message": message}}
