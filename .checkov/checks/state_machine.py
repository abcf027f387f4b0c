"""Custom checkov checks for Step Functions state machines, which checkov's CloudFormation checks omit.

A state machine must log every event to a CloudWatch Logs group (the execution history outlives the
console's 90 days only there) and trace with X-Ray. Loaded with `checkov --external-checks-dir`.
"""

from __future__ import annotations

from typing import Any

from cfn_values import as_dict, is_true
from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

STATE_MACHINE = ("AWS::StepFunctions::StateMachine",)


def _log_group_arn(destination: Any) -> Any:
    return as_dict(as_dict(destination).get("CloudWatchLogsLogGroup")).get("LogGroupArn")


class StateMachineLogsAllToLogGroup(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure the state machine logs every event (level ALL) to a CloudWatch Logs group",
            id="CKV_BJ_1",
            categories=(CheckCategories.LOGGING,),
            supported_resources=STATE_MACHINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["Properties/LoggingConfiguration"]
        logging = as_dict(as_dict(conf.get("Properties")).get("LoggingConfiguration"))
        destinations = logging.get("Destinations")
        to_log_group = (
            isinstance(destinations, list)
            and bool(destinations)
            and all(_log_group_arn(destination) for destination in destinations)
        )
        return CheckResult.PASSED if logging.get("Level") == "ALL" and to_log_group else CheckResult.FAILED


class StateMachineTracing(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure the state machine has X-Ray tracing enabled",
            id="CKV_BJ_2",
            categories=(CheckCategories.LOGGING,),
            supported_resources=STATE_MACHINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["Properties/TracingConfiguration/Enabled"]
        tracing = as_dict(as_dict(conf.get("Properties")).get("TracingConfiguration"))
        return CheckResult.PASSED if is_true(tracing.get("Enabled")) else CheckResult.FAILED


logs_all = StateMachineLogsAllToLogGroup()
tracing = StateMachineTracing()
