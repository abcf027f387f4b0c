"""EventBridge as AWS services feed it: service events, Lambda and Step Functions targets, schedules.

Service events (ECS task state changes, Step Functions execution status changes) go through moto's
PutEvents, so rules match them with moto's own pattern matching; Lambda targets are invoked
asynchronously and Step Functions targets start an execution, as EventBridge does. Scheduled rules with
rate() expressions fire on time (cron() expressions are reported and left idle).

AWS services deliver their events to EventBridge best effort: late, twice or, rarely, not at all
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-delivery-level.html). With
LOCAL_FAULTS' events.late / events.duplicate / events.lost (browserjobs.emulator.faults) service events are
delivered so.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.utils import get_backend as lambda_backend
from moto.events.models import Rule, events_backends
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.responses import get_backend as sfn_backend
from moto.utilities.arns import parse_arn

from browserjobs.core.contract import FINAL_EXECUTION_STATUSES
from browserjobs.emulator.faults import Faults
from browserjobs.emulator.lambda_runtime import LambdaRuntime
from browserjobs.emulator.settings import ACCOUNT_ID, REGION

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch_ms(moment: datetime.datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def rate_seconds(expression: str) -> int | None:
    match = _RATE.match(expression or "")
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class EventBridge:
    def __init__(self, runtime: LambdaRuntime, log: Callable[[str], None], faults: Faults | None = None):
        self._runtime = runtime
        self._log = log
        self._faults = faults
        self._open = True

    def close(self) -> None:
        self._open = False

    def publish(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        """An event from an AWS service, on the default bus."""
        if not self._open:
            return
        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=str),
            "Resources": resources,
        }

        def put() -> None:
            if not self._open:
                return
            try:
                events_backends[ACCOUNT_ID][REGION].put_events([entry])
            except Exception as error:  # the service's own call (RunTask, StopTask) does not fail with it
                self._log(f"EventBridge could not deliver {detail_type} for {resources}: {error!r}")

        if self._faults:
            self._faults.deliver_event(put)
        else:
            put()

    def deliver(self, rule: Rule, target: dict[str, Any], event: Any) -> None:
        if not self._open:
            return
        arn = parse_arn(target["Arn"])
        if arn.service == "lambda":
            function = lambda_backend(arn.account, arn.region).get_function(target["Arn"])
            self._runtime.invoke(function, json.dumps(event).encode(), "Event")
        elif arn.service == "states":
            sfn_backend(arn.account, arn.region).start_execution(
                target["Arn"], name=str(uuid.uuid4()), execution_input=json.dumps(event)
            )

    def execution_status_changed(self, execution: Execution, status: str) -> None:
        """AWS's "Step Functions Execution Status Change" event for `status`, which moto does not emit."""
        final = status in FINAL_EXECUTION_STATUSES
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _epoch_ms(execution.start_date),
            "stopDate": _epoch_ms(execution.stop_date) if final else None,
            "input": json.dumps(execution.input_data),
            "output": json.dumps(execution.output) if status == "SUCCEEDED" else None,
            "inputDetails": {"included": True},
            "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
            "error": execution.error if final else None,
            "cause": execution.cause if final else None,
        }
        self.publish("aws.states", "Step Functions Execution Status Change", detail, [execution.exec_arn])

    def fire_schedule(self, rule: Rule) -> None:
        """Deliver one "Scheduled Event" from a rule to its targets, now."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": rule.account_id,
            "time": _iso_now(),
            "region": rule.region_name,
            "resources": [rule.arn],
            "detail": {},
        }
        rule.send_to_targets(event)


class Scheduler:
    """Fires enabled rate() rules when they are due; the first firing is one period after the stack starts."""

    def __init__(self, eventbridge: EventBridge, log: Callable[[str], None], tick_seconds: float = 1.0):
        self._eventbridge = eventbridge
        self._log = log
        self._tick = tick_seconds
        self._due: dict[str, float] = {}
        self._reported: set[str] = set()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def scheduled_rules(self) -> list[Rule]:
        buses = events_backends[ACCOUNT_ID][REGION].event_buses.values()
        return [rule for bus in buses for rule in bus.rules.values() if rule.scheduled_expression]

    def _run(self) -> None:
        while not self._stopped.wait(self._tick):
            now = time.monotonic()
            for rule in self.scheduled_rules():
                period = rate_seconds(rule.scheduled_expression)
                if period is None:
                    if rule.arn not in self._reported:
                        self._reported.add(rule.arn)
                        self._log(f"schedule {rule.name}: {rule.scheduled_expression} is not fired locally")
                    continue
                due = self._due.setdefault(rule.arn, now + period)
                if now >= due and rule.state == "ENABLED":
                    self._due[rule.arn] = due + period
                    self._eventbridge.fire_schedule(rule)
