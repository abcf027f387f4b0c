"""ECS task scale-in protection, set by the task itself through the ECS agent endpoint.

PUT $ECS_AGENT_URI/task-protection/v1/state {"ProtectionEnabled": bool, "ExpiresInMinutes": 1..2880}: a
protected task is not stopped by service scale-in or deployments until the protection ends
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-scale-in-protection-endpoint.html). The
endpoint acts with the task role's ecs:UpdateTaskProtection.
"""

from __future__ import annotations

import json
import logging
import urllib.request

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
MAX_MINUTES = 2_880


class ScaleInProtection:
    def __init__(self, agent_uri: str | None) -> None:
        self._url = agent_uri.rstrip("/") + "/task-protection/v1/state" if agent_uri else None
        self.enabled = False

    def set(self, enabled: bool, minutes: int = 0) -> bool:
        """Best effort: without it a scale-in may stop the task, whose jobs then end as on Spot."""
        if self._url is None:
            return False
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = max(1, min(MAX_MINUTES, minutes))
        request = urllib.request.Request(  # noqa: S310  # the agent's link-local http endpoint, by design
            self._url,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310
                answer = json.load(response)
        except (OSError, ValueError) as error:
            logger.warning("task scale-in protection not set to %s: %s", enabled, error)
            return False
        if "failure" in answer or "error" in answer:
            logger.warning("task scale-in protection not set to %s: %s", enabled, answer)
            return False
        self.enabled = enabled
        return True
