"""The local stack's ECS services: the scheduler, scale-in protection, the agent endpoint, target tracking.

The arithmetic runs here. The scenarios need moto patched (shims.apply() is process-wide) and real worker
processes, so they run in one fresh Python (this file run as a script), each against its own moto, and
report what they saw; the tests assert on the reports. The workers are tiny stand-ins (`sleep`, a
Python one-liner), not the browser worker.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEADLINE_SECONDS = 20.0
SLEEPER = ("sleep", "600")
SPOT_STRATEGY = [
    {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
    {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 4},
]


# --- the arithmetic (in this process) ------------------------------------------------------------------


def test_placement_fills_the_base_then_follows_the_weights() -> None:
    from browserjobs.emulator.ecs_services import place, planned_split

    assert place(SPOT_STRATEGY, Counter()) == "FARGATE"  # the base first
    assert place(SPOT_STRATEGY, Counter({"FARGATE": 1})) == "FARGATE_SPOT"
    # Beyond the base, 1:4 (API_CapacityProviderStrategyItem.html).
    assert planned_split(SPOT_STRATEGY, 11) == Counter({"FARGATE": 3, "FARGATE_SPOT": 8})
    assert place([], Counter()) is None


def test_scale_in_never_stops_a_protected_task_and_keeps_the_split() -> None:
    from browserjobs.emulator.ecs_services import Candidate, choose_to_stop

    tasks = [
        Candidate("base", "FARGATE", created=1, protected=False),
        Candidate("spot-old", "FARGATE_SPOT", created=2, protected=False),
        Candidate("spot-busy", "FARGATE_SPOT", created=3, protected=True),
        Candidate("spot-new", "FARGATE_SPOT", created=4, protected=False),
    ]
    # Down to 2: the plan for 2 is FARGATE + FARGATE_SPOT, so Spot tasks go, newest first, never the busy one.
    assert choose_to_stop(tasks, 2, SPOT_STRATEGY) == ["spot-new", "spot-old"]
    # Down to 0: everything unprotected goes; the protected one stays whatever the count asks.
    assert sorted(choose_to_stop(tasks, 4, SPOT_STRATEGY)) == ["base", "spot-new", "spot-old"]
    everything_busy = [Candidate(c.arn, c.provider, c.created, True) for c in tasks]
    assert choose_to_stop(everything_busy, 2, SPOT_STRATEGY) == []


@pytest.mark.parametrize(
    ("capacity", "metric", "expected"),
    [
        (4, 0.8, 4),  # at the target: no change (not 5 from 4 * 0.8 / 0.8 rounding up)
        (2, 1.6, 4),  # twice the target: twice the tasks
        (4, 0.2, 1),  # a quarter of the target: a quarter of the tasks
        (1, 0.25, 1),  # from zero tasks (the metric divides by 1): one waiting job asks for one task
        (1, 10.0, 6),  # never above the maximum
        (3, 0.0, 0),  # idle: down to the minimum
    ],
)
def test_target_tracking_is_proportional_within_min_and_max(
    capacity: int, metric: float, expected: int
) -> None:
    from browserjobs.emulator.ecs_services import desired_capacity

    # ceil(capacity * metric / target) within [min, max]: target-tracking-scaling-policy-overview.html
    assert desired_capacity(capacity, metric, target=0.8, minimum=0, maximum=6) == expected


def test_the_pool_metric_math_is_evaluated() -> None:
    from browserjobs.emulator.ecs_services import evaluate_expression

    expression = "(waiting + running) / (IF(tasks > 0, tasks, 1) * 4)"
    assert evaluate_expression(expression, {"waiting": 3, "running": 5, "tasks": 2}) == 1.0
    assert evaluate_expression(expression, {"waiting": 2, "running": 0, "tasks": 0}) == 0.5
    with pytest.raises(ValueError, match="does not evaluate"):
        evaluate_expression("__import__('os')", {})


def test_the_templates_pool_expression_is_evaluated_locally() -> None:
    """The expression PoolScalingPolicy tracks (FILL included): a policy the local stack cannot evaluate
    never scales, and pool jobs would wait for their heartbeat deadline."""
    from browserjobs.emulator.ecs_services import evaluate_expression
    from tests.unit.template.test_template import TEMPLATE

    metrics = TEMPLATE["Resources"]["PoolScalingPolicy"]["Properties"][
        "TargetTrackingScalingPolicyConfiguration"
    ]["CustomizedMetricSpecification"]["Metrics"]
    [returned] = [m for m in metrics if m.get("ReturnData", True)]
    expression = returned["Expression"]["Fn::Sub"].replace("${PoolJobsPerTask}", "4")

    assert evaluate_expression(expression, {"waiting": 4, "running": 0, "tasks": 0}) == 1.0
    assert evaluate_expression(expression, {"waiting": 3, "running": 5, "tasks": 2}) == 1.0


def test_the_scale_in_cooldown_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from browserjobs.emulator.ecs_services import (
        DEFAULT_SCALE_IN_COOLDOWN_SECONDS,
        configured_scale_in_cooldown_seconds,
    )

    monkeypatch.delenv("LOCAL_SCALE_IN_COOLDOWN_SECONDS", raising=False)
    assert configured_scale_in_cooldown_seconds() == DEFAULT_SCALE_IN_COOLDOWN_SECONDS
    monkeypatch.setenv("LOCAL_SCALE_IN_COOLDOWN_SECONDS", "0.5")
    assert configured_scale_in_cooldown_seconds() == 0.5
    monkeypatch.setenv("LOCAL_SCALE_IN_COOLDOWN_SECONDS", "soon")
    with pytest.raises(ValueError, match="not a number"):
        configured_scale_in_cooldown_seconds()


# --- scenarios (run in a fresh process) -----------------------------------------------------------------


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name="us-east-1")


def _until(condition: Callable[[], Any], what: str, seconds: float = DEADLINE_SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


class Local:
    """The parts of the local stack a service needs: a TaskRunner behind moto's RunTask and StopTask, the
    scheduler and (optionally) target tracking; events are recorded."""

    def __init__(self, command: tuple[str, ...] = SLEEPER, cooldown: float | None = None) -> None:
        from browserjobs.emulator import shims
        from browserjobs.emulator.ecs_runner import TaskRunner
        from browserjobs.emulator.ecs_services import ServiceScheduler, TargetTracking
        from browserjobs.emulator.processes import Launcher, LogSink

        self.events: list[dict[str, Any]] = []
        self.launcher = Launcher()
        self.tasks = TaskRunner(
            self.launcher,
            LogSink(Path(os.environ["SCENARIO_LOGS"])),
            endpoint_url="",
            publish=lambda source, kind, detail, resources: self.events.append(detail),
            command=command,
            start_seconds=0.2,
        )
        scaling = TargetTracking(cooldown, say=lambda line: None) if cooldown is not None else None
        self.scheduler = ServiceScheduler(self.tasks, scaling, say=lambda line: None)
        shims.install_hooks(self)  # type: ignore[arg-type]  # the task hooks are all a service needs
        self.scheduler.start()

    def task_started(self, task: Any) -> None:
        self.tasks.start(task)

    def stop_task(self, task: Any, reason: str) -> bool:
        return self.tasks.stop(task, reason)

    def close(self) -> None:
        from browserjobs.emulator import shims

        self.scheduler.stop()
        self.tasks.stop_all(5.0)
        self.launcher.stop()
        shims.install_hooks(None)

    def running(self, service: str = "pool") -> list[dict[str, Any]]:
        ecs = _client("ecs")
        arns = ecs.list_tasks(cluster="c", desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster="c", tasks=arns)["tasks"] if arns else []
        return [t for t in tasks if t["group"] == f"service:{service}" and t["lastStatus"] == "RUNNING"]

    def counts(self, service: str = "pool") -> tuple[int, int, int]:
        described = _client("ecs").describe_services(cluster="c", services=[service])["services"][0]
        return described["desiredCount"], described["runningCount"], described["pendingCount"]

    def stopped_event(self, task_arn: str) -> dict[str, Any] | None:
        return next(
            (e for e in self.events if e["taskArn"] == task_arn and e["lastStatus"] == "STOPPED"), None
        )


def _cluster(container: dict[str, Any] | None = None, task_role: str | None = None) -> dict[str, str]:
    ec2, ecs = _client("ec2"), _client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="c")
    definition = ecs.register_task_definition(
        family="pool",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        **({"taskRoleArn": task_role} if task_role else {}),
        containerDefinitions=[
            {"name": "worker", "image": "i", "memory": 512, "stopTimeout": 1, **(container or {})}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return {"definition": definition, "subnet": subnet, "group": group}


def _service(network: dict[str, str], desired: int, name: str = "pool") -> None:
    _client("ecs").create_service(
        cluster="c",
        serviceName=name,
        taskDefinition=network["definition"],
        desiredCount=desired,
        capacityProviderStrategy=SPOT_STRATEGY,
        enableECSManagedTags=True,
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [network["subnet"]], "securityGroups": [network["group"]]}
        },
    )


def scenario_keeps_desired_count_and_replaces_a_killed_task() -> dict[str, Any]:
    network = _cluster()
    _service(network, desired=2)
    local = Local()
    try:
        first = _until(lambda: len(local.running()) == 2 and local.running(), "two tasks run")
        counts = _until(lambda: local.counts() == (2, 2, 0) and local.counts(), "runningCount 2")
        victim = first[0]["taskArn"]
        killed_at = time.monotonic()
        local.tasks.crash(victim)

        def replaced_in_one_look() -> list[dict[str, Any]] | None:
            running = local.running()  # one snapshot: the victim may leave between two looks
            return running if len(running) == 2 and victim not in [t["taskArn"] for t in running] else None

        replaced = _until(replaced_in_one_look, "the killed task is replaced")
        stopped = local.stopped_event(victim) or {}
        return {
            "counts": counts,
            "started_by": sorted({t["startedBy"].split("/")[0] for t in first}),
            "groups": sorted({t["group"] for t in first}),
            "providers": sorted(t["capacityProviderName"] for t in first),
            "subnet in attachments": all(
                any(d["value"] == network["subnet"] for a in t["attachments"] for d in a["details"])
                for t in first
            ),
            "replaced within seconds": time.monotonic() - killed_at < 5,
            "replacements": len({t["taskArn"] for t in replaced} - {t["taskArn"] for t in first}),
            "killed": {
                "stopCode": stopped.get("stopCode"),
                "exitCode": stopped["containers"][0].get("exitCode"),
            },
        }
    finally:
        local.close()


def scenario_update_service_scales_out_and_in() -> dict[str, Any]:
    network = _cluster()
    _service(network, desired=1)
    local = Local()
    ecs = _client("ecs")
    try:
        _until(lambda: local.counts() == (1, 1, 0), "one task runs")
        ecs.update_service(cluster="c", service="pool", desiredCount=3)
        right_after = local.counts()
        out = _until(lambda: local.counts() == (3, 3, 0) and local.running(), "three tasks run")
        ecs.update_service(cluster="c", service="pool", desiredCount=1)
        _until(lambda: local.counts() == (1, 1, 0), "back to one task")
        gone = [t["taskArn"] for t in out if t["taskArn"] not in [r["taskArn"] for r in local.running()]]
        stops = [_until(lambda arn=arn: local.stopped_event(arn), "a STOPPED event") for arn in gone]
        return {
            "running right after UpdateService": right_after[1],
            "scaled out": len(out),
            "stopped": len(gone),
            "stop codes": sorted({s["stopCode"] for s in stops}),
            "reason": stops[0]["stoppedReason"].split("(")[0].strip(),
            "kept the base": [t["capacityProviderName"] for t in local.running()],
        }
    finally:
        local.close()


def _protect(task_arn: str, enabled: bool) -> dict[str, Any]:
    answer = _client("ecs").update_task_protection(cluster="c", tasks=[task_arn], protectionEnabled=enabled)
    return answer["protectedTasks"][0]


def scenario_scale_in_never_stops_a_protected_task() -> dict[str, Any]:
    network = _cluster()
    _service(network, desired=2)
    local = Local()
    ecs = _client("ecs")
    try:
        busy, idle = (
            t["taskArn"] for t in _until(lambda: len(local.running()) == 2 and local.running(), "2 run")
        )
        protection = _protect(busy, True)
        ecs.update_service(cluster="c", service="pool", desiredCount=0)
        _until(lambda: local.stopped_event(idle), "the idle task stops")
        # Rounds of the scheduler pass (it reconciles twice a second); the protected task keeps running.
        held = time.monotonic() + 1.5
        while time.monotonic() < held:
            assert [t["taskArn"] for t in local.running()] == [busy], "a protected task was stopped"
            time.sleep(0.1)
        counts_while_protected = local.counts()
        _protect(busy, False)
        _until(lambda: local.stopped_event(busy), "the task stops once unprotected")
        got = ecs.get_task_protection(
            cluster="c", tasks=[busy, "arn:aws:ecs:us-east-1:123456789012:task/c/nope"]
        )
        return {
            "protection": {k: protection[k] is not None for k in ("protectionEnabled", "expirationDate")},
            "minutes": round((protection["expirationDate"].timestamp() - time.time()) / 60),
            "counts while protected": counts_while_protected,
            "after": local.counts(),
            "get": [t["protectionEnabled"] for t in got["protectedTasks"]],
            "failures": [f["reason"] for f in got["failures"]],
        }
    finally:
        local.close()


AGENT_WORKER = r"""
import json, os, sys, urllib.request, urllib.error
url = os.environ["ECS_AGENT_URI"] + "/task-protection/v1/state"
def call(method, body=None):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
results = [call("PUT", {"ProtectionEnabled": True, "ExpiresInMinutes": 30}), call("GET"), call("PUT", {})]
open(os.environ["RESULTS"], "w").write(json.dumps(results))
import time; time.sleep(600)
"""


def _role(name: str, actions: list[str]) -> str:
    iam = _client("iam")
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    statement = {
        "Effect": "Allow",
        "Action": actions,
        "Resource": "arn:aws:ecs:us-east-1:123456789012:task/c/*",
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return arn


def _agent_answers(role: str, actions: list[str]) -> dict[str, Any]:
    """What a service task's worker got from the agent endpoint, its task role allowing `actions`."""
    from browserjobs.emulator import access
    from browserjobs.emulator.access import ENFORCER

    access.install()
    ENFORCER.enabled = True
    results = Path(os.environ["SCENARIO_LOGS"]) / f"{role}.json"
    network = _cluster({"environment": [{"name": "RESULTS", "value": str(results)}]}, _role(role, actions))
    _service(network, desired=1)
    local = Local(command=(sys.executable, "-c", AGENT_WORKER))
    try:
        task = _until(local.running, "the task runs")[0]["taskArn"]
        answers = json.loads(_until(lambda: results.exists() and results.read_text(), "the agent's answers"))
        (put_status, put), (get_status, get), (bad_status, bad) = answers
        return {
            "put": put_status,
            "put body": sorted(put),
            "protected": put.get("protection", {}).get("ProtectionEnabled"),
            "names the task": task
            in (put.get("protection", {}).get("TaskArn"), put.get("error", {}).get("Arn")),
            "error": put.get("error", {}).get("Code"),
            "get": (get_status, get.get("protection", {}).get("ProtectionEnabled")),
            "missing field": (bad_status, bad["error"]["Code"]),
            "api sees": _client("ecs").get_task_protection(cluster="c", tasks=[task])["protectedTasks"][0][
                "protectionEnabled"
            ],
            "denials": sorted({(d.role, d.action) for d in ENFORCER.take_denials()}),
        }
    finally:
        ENFORCER.enabled = False
        local.close()


def scenario_agent_endpoint_with_a_task_role_that_allows_it() -> dict[str, Any]:
    return _agent_answers("allowed", ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"])


def scenario_agent_endpoint_with_a_task_role_that_does_not() -> dict[str, Any]:
    return _agent_answers("denied", ["ecs:GetTaskProtection"])


def scenario_spot_interruption_is_sigterm_then_sigkill_and_replaced() -> dict[str, Any]:
    ready = Path(os.environ["SCENARIO_LOGS"]) / "ignoring-sigterm"
    network = _cluster({"environment": [{"name": "READY", "value": str(ready)}]})
    _service(network, desired=1)
    # A worker that ignores SIGTERM (and says when it does): it is killed once the container's stopTimeout
    # (1 s here) has passed.
    stubborn = (
        sys.executable,
        "-c",
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " open(os.environ['READY'], 'a').close(); time.sleep(600)",
    )
    local = Local(command=stubborn)
    try:
        task = _until(lambda: local.running(), "a task runs")[0]["taskArn"]
        _until(ready.exists, "the worker ignores SIGTERM")
        local.tasks.interrupt(task)
        stopped = _until(lambda: local.stopped_event(task), "the interrupted task stops")
        _until(lambda: [t for t in local.running() if t["taskArn"] != task], "a replacement runs")
        at = {key: datetime.datetime.fromisoformat(stopped[key]) for key in ("stoppingAt", "stoppedAt")}
        return {
            "stopCode": stopped["stopCode"],
            "stoppedReason": stopped["stoppedReason"],
            "exitCode": stopped["containers"][0]["exitCode"],
            "killed after the stop timeout": (at["stoppedAt"] - at["stoppingAt"]).total_seconds() >= 0.9,
        }
    finally:
        local.close()


def _pool_scaling(queue_name: str, minimum: int, maximum: int) -> None:
    aas = _client("application-autoscaling")
    resource = "service/c/pool"
    aas.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=minimum,
        MaxCapacity=maximum,
    )

    def stat(
        query_id: str, namespace: str, name: str, dimensions: dict[str, str], stat: str
    ) -> dict[str, Any]:
        metric = {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        }
        return {"Id": query_id, "MetricStat": {"Metric": metric, "Stat": stat}, "ReturnData": False}

    # The contract's policy (pool-notes/CONTRACT.md): (waiting + running) / (IF(tasks > 0, tasks, 1) * 4).
    aas.put_scaling_policy(
        PolicyName="pool-backlog",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 0.8,
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 30,
            "CustomizedMetricSpecification": {
                "Metrics": [
                    stat(
                        "waiting",
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        {"QueueName": queue_name},
                        "Sum",
                    ),
                    stat("running", "BrowserJobs", "PoolJobsRunning", {"Stage": "test"}, "Sum"),
                    stat(
                        "tasks",
                        "ECS/ContainerInsights",
                        "RunningTaskCount",
                        {"ClusterName": "c", "ServiceName": "pool"},
                        "Average",
                    ),
                    {
                        "Id": "utilization",
                        "Expression": "(waiting + running) / (IF(tasks > 0, tasks, 1) * 4)",
                        "ReturnData": True,
                    },
                ]
            },
        },
    )


def scenario_an_unhealthy_service_task_is_stopped_and_replaced() -> dict[str, Any]:
    """A container whose health check fails `retries` times in a row (after its start period) is UNHEALTHY;
    a service's task is then stopped and replaced (API_HealthCheck.html). The check's clock runs at
    LOCAL_HEALTH_CHECK_SECONDS: its first (passing) run, then the marker file goes and it fails."""
    os.environ["LOCAL_HEALTH_CHECK_SECONDS"] = "0.2"
    marker = Path(os.environ["SCENARIO_LOGS"]) / "healthy"
    marker.write_text("ok")
    probe = f"import os, sys; sys.exit(0 if os.path.exists({str(marker)!r}) else 1)"
    check = {"command": ["CMD", "python", "-c", probe], "interval": 5, "retries": 2, "startPeriod": 0}
    network = _cluster({"healthCheck": check})
    _service(network, desired=1)
    local = Local()
    try:
        [first] = _until(lambda: len(local.running()) == 1 and local.running(), "the task runs")
        victim = first["taskArn"]
        _until(lambda: _health(local, victim) == "HEALTHY", "the first checks pass")
        marker.unlink()
        stopped = _until(lambda: local.stopped_event(victim), "the unhealthy task to stop")
        [replacement] = _until(
            lambda: (r := local.running()) and victim not in [t["taskArn"] for t in r] and r, "a replacement"
        )
        return {
            "statuses": _changes([e.get("healthStatus") for e in local.events if e["taskArn"] == victim]),
            "stopCode": stopped.get("stopCode"),
            "stoppedReason": stopped.get("stoppedReason"),
            "replaced": replacement["taskArn"] != victim,
        }
    finally:
        local.close()
        del os.environ["LOCAL_HEALTH_CHECK_SECONDS"]


def _changes(statuses: list[str | None]) -> list[str | None]:
    return [status for index, status in enumerate(statuses) if index == 0 or statuses[index - 1] != status]


def _health(local: Local, task_arn: str) -> str | None:
    found = [
        e.get("healthStatus") for e in local.events if e["taskArn"] == task_arn and e.get("healthStatus")
    ]
    return found[-1] if found else None


def scenario_target_tracking_scales_from_zero_and_in_after_the_cooldown() -> dict[str, Any]:
    network = _cluster()
    _service(network, desired=0)
    sqs = _client("sqs")
    queue = sqs.create_queue(QueueName="dispatch")["QueueUrl"]
    _pool_scaling("dispatch", minimum=0, maximum=3)
    cooldown = 1.0
    local = Local(cooldown=cooldown)
    ecs = _client("ecs")
    try:
        idle = local.counts()
        sqs.send_message(QueueUrl=queue, MessageBody="job")
        _until(lambda: len(local.running()) == 1, "one waiting job starts one task")
        sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": f"job {n}"} for n in range(10)]
        )
        sqs.send_message(QueueUrl=queue, MessageBody="job 10")
        # 12 waiting / (1 task * 4) = 3.0 -> ceil(1 * 3.0 / 0.8) = 4, capped at the maximum, 3.
        _until(lambda: local.counts()[0] == 3, "the backlog scales out to the maximum")
        _until(lambda: len(local.running()) == 3, "three tasks run")
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        received += sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in received:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        emptied = time.monotonic()
        _until(lambda: local.counts()[0] == 0, "no work: back to the minimum")
        scaled_in_after = time.monotonic() - emptied
        _until(lambda: local.counts() == (0, 0, 0), "every task stopped")
        activities = _client("application-autoscaling").describe_scaling_activities(
            ServiceNamespace="ecs", ResourceId="service/c/pool"
        )["ScalingActivities"]
        return {
            "idle": idle,
            "scaled in no sooner than the cooldown": scaled_in_after >= cooldown,
            "desired counts, oldest first": [
                int(a["Description"].removeprefix("Setting desired count to ").rstrip("."))
                for a in reversed(activities)
            ],
            "statuses": sorted({a["StatusCode"] for a in activities}),
            "stopped by the scheduler": sorted(
                {e.get("stopCode") for e in local.events if e["lastStatus"] == "STOPPED"}
            ),
            "services": len(ecs.list_services(cluster="c")["serviceArns"]),
        }
    finally:
        local.close()


# --- the tests ------------------------------------------------------------------------------------------

SCENARIOS = sorted(name.removeprefix("scenario_") for name in list(globals()) if name.startswith("scenario_"))


def run_scenarios(names: list[str]) -> dict[str, Any]:
    from moto import mock_aws

    from browserjobs.emulator import shims

    shims.apply()
    results: dict[str, Any] = {}
    for name in names:
        with mock_aws():
            try:
                results[name] = globals()[f"scenario_{name}"]()
            except Exception as error:  # a scenario that fails outright reports how
                results[name] = f"{type(error).__name__}: {error}"
    return results


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "AWS_ACCESS_KEY_ID": "scenario",
        "AWS_SECRET_ACCESS_KEY": "scenario",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SCENARIO_LOGS": str(tmp_path_factory.mktemp("scenario-logs")),
    }
    completed = subprocess.run(
        [sys.executable, __file__, *SCENARIOS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_a_service_keeps_its_desired_count_and_replaces_a_killed_task(seen: dict[str, Any]) -> None:
    # ECS replaces a task that stops (ecs_services.html); its tasks carry the service's fields.
    assert seen["keeps_desired_count_and_replaces_a_killed_task"] == {
        "counts": [2, 2, 0],
        "started_by": ["ecs-svc"],
        "groups": ["service:pool"],
        "providers": ["FARGATE", "FARGATE_SPOT"],
        "subnet in attachments": True,
        "replaced within seconds": True,
        "replacements": 1,
        "killed": {"stopCode": "EssentialContainerExited", "exitCode": 137},
    }


def test_an_unhealthy_service_task_is_stopped_and_replaced(seen: dict[str, Any]) -> None:
    # API_HealthCheck.html: "if the task reports as unhealthy then the task will be stopped and the service
    # scheduler will replace it".
    assert seen["an_unhealthy_service_task_is_stopped_and_replaced"] == {
        "statuses": ["UNKNOWN", "HEALTHY", "UNHEALTHY"],
        "stopCode": "ServiceSchedulerInitiated",
        "stoppedReason": "Task failed container health checks",
        "replaced": True,
    }


def test_update_service_scales_out_and_in(seen: dict[str, Any]) -> None:
    assert seen["update_service_scales_out_and_in"] == {
        "running right after UpdateService": 1,  # counts follow the tasks, not the request (API_Service.html)
        "scaled out": 3,
        "stopped": 2,
        "stop codes": ["ServiceSchedulerInitiated"],
        "reason": "Scaling activity initiated by",
        "kept the base": ["FARGATE"],
    }


def test_a_protected_task_is_never_stopped_by_scale_in(seen: dict[str, Any]) -> None:
    # task-scale-in-protection.html; API_UpdateTaskProtection.html (default 120 minutes).
    assert seen["scale_in_never_stops_a_protected_task"] == {
        "protection": {"protectionEnabled": True, "expirationDate": True},
        "minutes": 120,
        "counts while protected": [0, 1, 0],
        "after": [0, 0, 0],
        "get": [False],
        "failures": ["MISSING"],
    }


def test_the_agent_endpoint_protects_the_task_with_the_task_role(seen: dict[str, Any]) -> None:
    # task-scale-in-protection-endpoint.html: PUT/GET $ECS_AGENT_URI/task-protection/v1/state.
    assert seen["agent_endpoint_with_a_task_role_that_allows_it"] == {
        "put": 200,
        "put body": ["protection"],
        "protected": True,
        "names the task": True,
        "error": None,
        "get": [200, True],
        "missing field": [400, "InvalidParameterException"],
        "api sees": True,
        "denials": [],
    }


def test_the_agent_endpoint_is_refused_what_the_task_role_does_not_allow(seen: dict[str, Any]) -> None:
    # The agent calls UpdateTaskProtection with the task role's credentials; ECS's AccessDeniedException
    # comes back as the agent's error, with ECS's status.
    assert seen["agent_endpoint_with_a_task_role_that_does_not"] == {
        "put": 400,
        "put body": ["error", "requestID"],
        "protected": None,
        "names the task": True,
        "error": "AccessDeniedException",
        "get": [200, False],
        "missing field": [400, "InvalidParameterException"],
        "api sees": False,
        "denials": [["denied", "ecs:UpdateTaskProtection"]],
    }


def test_a_spot_interruption_stops_the_task_and_the_service_replaces_it(seen: dict[str, Any]) -> None:
    assert seen["spot_interruption_is_sigterm_then_sigkill_and_replaced"] == {
        "stopCode": "SpotInterruption",
        "stoppedReason": "Your Spot Task was interrupted.",
        "exitCode": 137,
        "killed after the stop timeout": True,
    }


def test_target_tracking_scales_from_zero_and_in_after_the_cooldown(seen: dict[str, Any]) -> None:
    scaling = seen["target_tracking_scales_from_zero_and_in_after_the_cooldown"]
    assert isinstance(scaling, dict), scaling
    desired = scaling.pop("desired counts, oldest first")
    # One waiting job from zero: one task. Twelve: to the maximum (a batch may land between two evaluations,
    # hence maybe a step on the way). Idle: the minimum, in one scale-in after the cooldown.
    assert desired[0] == 1 and desired[-2:] == [3, 0] and desired == [*sorted(desired[:-1]), 0], desired
    assert scaling == {
        "idle": [0, 0, 0],
        "scaled in no sooner than the cooldown": True,
        "statuses": ["Successful"],
        "stopped by the scheduler": ["ServiceSchedulerInitiated"],
        "services": 1,
    }


if __name__ == "__main__":
    print(json.dumps(run_scenarios(sys.argv[1:]), default=str))
