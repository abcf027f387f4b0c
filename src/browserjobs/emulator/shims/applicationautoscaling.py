"""Application Auto Scaling: where moto differs from AWS, and the shim that makes the local stack behave as
AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Any

# --- Application Auto Scaling: scaling activities ---------------------------------------------------------
# moto stores scalable targets and policies but never scales, so it has no DescribeScalingActivities. The
# local stack's target tracking (emulator/ecs_services.py) records each activity with record_activity();
# DescribeScalingActivities lists them newest first, filtered by resource and dimension
# (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DescribeScalingActivities.html).

_lock = threading.Lock()


def record_activity(backend: Any, activity: dict[str, Any]) -> None:
    """Keep one scaling activity (the API's ScalingActivity shape, times as epoch seconds) on the backend."""
    with _lock:
        if not hasattr(backend, "local_scaling_activities"):
            backend.local_scaling_activities = []
        backend.local_scaling_activities.insert(0, activity)


def shim_describe_scaling_activities() -> None:
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    def describe_scaling_activities(self):
        namespace = self._get_param("ServiceNamespace")
        resource_id = self._get_param("ResourceId")
        dimension = self._get_param("ScalableDimension")
        with _lock:
            activities = list(getattr(self.applicationautoscaling_backend, "local_scaling_activities", []))
        listed = [
            activity
            for activity in activities
            if activity["ServiceNamespace"] == namespace
            and (not resource_id or activity["ResourceId"] == resource_id)
            and (not dimension or activity["ScalableDimension"] == dimension)
        ]
        limit = self._get_int_param("MaxResults") or 50
        start = int(self._get_param("NextToken") or 0)
        page = listed[start : start + limit]
        answer: dict[str, Any] = {"ScalingActivities": page}
        if start + limit < len(listed):
            answer["NextToken"] = str(start + limit)
        return json.dumps(answer)

    ApplicationAutoScalingResponse.describe_scaling_activities = describe_scaling_activities
