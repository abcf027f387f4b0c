"""EventBridge: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from moto.events.models import EventBus, EventTemplateParser, Rule
from moto.utilities.arns import parse_arn

from browserjobs.emulator.shims import hooks

# --- EventBridge: Lambda and Step Functions targets -------------------------------------------------------
# moto's PutEvents delivers to SQS, logs and buses only (Lambda and Step Functions targets raise
# NotImplementedError), does not skip DISABLED rules, and sends every event to a scheduled rule (its empty
# pattern matches anything), where AWS delivers only the rule's own "Scheduled Event".


def _target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    if "InputPath" in target:
        from jsonpath_ng import parse as jsonpath

        matches = [match.value for match in jsonpath(target["InputPath"]).find(event)]
        return matches[0] if matches else None
    return event


def _is_own_schedule(rule: Rule, event: dict[str, Any]) -> bool:
    return (
        event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
        and rule.arn in (event.get("resources") or [])
    )


def shim_eventbridge_targets() -> None:
    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        if hooks.current() is None:
            return original(self, original_event, transform_input)
        if self.state != "ENABLED" or not self.event_pattern.matches_event(original_event):
            return None
        scheduled_only = self.scheduled_expression and not self.event_pattern.get_pattern()
        if scheduled_only and not _is_own_schedule(self, original_event):
            return None
        event = dict(original_event)
        event.pop("ingestion-time", None)
        for target in self.targets:
            if parse_arn(target["Arn"]).service in ("lambda", "states"):
                hooks.current().deliver_to_target(
                    self, target, _target_input(target, event) if transform_input else event
                )
            else:
                single = copy.copy(self)
                single.targets = [target]
                # moto's own targets read the event's ingestion-time (input transformers): the original event.
                original(single, copy.deepcopy(original_event), transform_input)
        return None

    Rule.send_to_targets = send_to_targets


# --- EventBridge: Ref of an event bus ---------------------------------------------------------------------
# moto's CloudFormation event bus has no physical id, so Ref gives the model object's repr; on AWS "Ref
# returns the name of the event bus" (AWS::Events::EventBus, Return values).


def shim_event_bus_ref() -> None:
    EventBus.physical_resource_id = property(lambda bus: bus.name)  # type: ignore[attr-defined]
