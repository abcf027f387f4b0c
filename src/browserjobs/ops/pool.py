"""The warm worker pool as an operator sees it: the service's counts, its queue, each task and its jobs."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from browserjobs.core import pool_registry
from browserjobs.ops.outputs import OperatorError, Target

QUEUE_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


def pool_status(target: Target) -> dict[str, Any]:
    """Service desired/running/pending, scaling bounds, queue depth, and per task: status, health,
    capacity provider, scale-in protection and the jobs its registry says it holds."""
    outputs = target.outputs
    service_name = outputs.get("PoolServiceName")
    if not service_name:
        raise OperatorError("this stack has no worker pool (PoolMaxTasks is 0): nothing to show", exit_code=2)
    cluster = outputs["ClusterArn"]
    ecs = target.client("ecs")
    try:
        services = ecs.describe_services(cluster=cluster, services=[service_name])["services"]
        if not services:
            raise OperatorError(f"service {service_name} not found in {cluster}")
        service = services[0]
        task_arns = ecs.list_tasks(cluster=cluster, serviceName=service_name, desiredStatus="RUNNING")[
            "taskArns"
        ]
        described = ecs.describe_tasks(cluster=cluster, tasks=task_arns)["tasks"] if task_arns else []
        # A service's tasks are in its group (the local stack's ListTasks ignores serviceName, as moto does).
        tasks = [task for task in described if task.get("group") == f"service:{service_name}"]
        task_arns = [task["taskArn"] for task in tasks]
        protected = _protection(ecs, cluster, task_arns)
        queue = target.client("sqs").get_queue_attributes(
            QueueUrl=outputs["DispatchQueueUrl"], AttributeNames=QUEUE_ATTRIBUTES
        )["Attributes"]
        bounds = _scaling_bounds(target, cluster, service_name)
    except (BotoCoreError, ClientError) as error:
        raise OperatorError(f"cannot read the pool: {error}") from error
    ddb, locks = target.client("dynamodb"), outputs["LocksTableName"]
    return {
        "service": service_name,
        "desired": service.get("desiredCount", 0),
        "running": service.get("runningCount", 0),
        "pending": service.get("pendingCount", 0),
        **bounds,
        "queue": {
            "waiting": int(queue.get("ApproximateNumberOfMessages", 0)),
            "taken": int(queue.get("ApproximateNumberOfMessagesNotVisible", 0)),
        },
        "tasks": [
            {
                "taskArn": task["taskArn"],
                "status": task.get("lastStatus"),
                "health": task.get("healthStatus", "UNKNOWN"),
                "capacityProvider": task.get("capacityProviderName"),
                "startedAt": _iso(task.get("startedAt")),
                "protected": protected.get(task["taskArn"], False),
                "jobs": sorted(
                    pool_registry.held_jobs(ddb, locks, task["taskArn"])
                ),  # ids only, never tokens
            }
            for task in tasks
        ],
    }


def _protection(ecs: Any, cluster: str, task_arns: list[str]) -> dict[str, bool]:
    if not task_arns:
        return {}
    answer = ecs.get_task_protection(cluster=cluster, tasks=task_arns)
    return {item["taskArn"]: bool(item.get("protectionEnabled")) for item in answer.get("protectedTasks", [])}


def _scaling_bounds(target: Target, cluster: str, service_name: str) -> dict[str, Any]:
    resource = f"service/{cluster.rsplit('/', 1)[-1]}/{service_name}"
    found = target.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource]
    )["ScalableTargets"]
    if not found:
        return {"min": None, "max": None}
    return {"min": found[0]["MinCapacity"], "max": found[0]["MaxCapacity"]}


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if hasattr(moment, "isoformat") else moment
