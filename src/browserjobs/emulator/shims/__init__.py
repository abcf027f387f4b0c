"""Every place where moto 5.2.5 behaves differently from AWS, fixed: one module per service
(CloudFormation's drift detection in a module of its own).

`apply()` installs the shims once per process; `install_hooks()` connects the ones that need the local
stack's runtime (running Lambda handlers, starting workers, delivering events). Without hooks the
runtime-dependent shims fall back to moto's own behaviour. Importing any of these modules changes nothing.

Each shim has a test in tests/unit/emulator/test_shims.py that asserts unpatched moto still misbehaves:
when one of those tests fails, moto has fixed the gap upstream and the shim should go.
"""

from __future__ import annotations

import threading

from browserjobs.emulator.shims import (
    applicationautoscaling,
    awslambda,
    cloudformation,
    cloudformation_drift,
    cloudwatch,
    dynamodb,
    ecs,
    events,
    logs,
    s3,
    server,
    servicequotas,
    sqs,
    stepfunctions,
)
from browserjobs.emulator.shims.hooks import InvokeResult, RuntimeHooks, hooks_installed, install_hooks

__all__ = ["SHIMS", "InvokeResult", "RuntimeHooks", "apply", "hooks_installed", "install_hooks"]

# Every shim, in the order they are installed (some build on others: the ECS integration's error names
# on its casing).
SHIMS = (
    stepfunctions.shim_integration_casing,
    stepfunctions.shim_send_task_failure_cause,
    stepfunctions.shim_ecs_capacity_provider_strategy,
    stepfunctions.shim_heartbeat_timeout_error_name,
    stepfunctions.shim_early_heartbeats,
    stepfunctions.shim_callback_token_per_attempt,
    stepfunctions.shim_stop_execution,
    stepfunctions.shim_choice_context_object_paths,
    stepfunctions.shim_timestamps,
    cloudformation.shim_cloudformation_state_machines,
    cloudformation.shim_cloudformation_state_machine_observability,
    cloudformation.shim_cloudformation_table_point_in_time_recovery,
    cloudformation.shim_cloudformation_bucket_notifications,
    cloudformation.shim_cloudformation_role_managed_policies,
    ecs.shim_ecs_task_lifecycle,
    ecs.shim_ecs_numeric_container_properties,
    cloudformation.shim_cloudformation_task_definition_properties,
    cloudformation.shim_cloudformation_ecs_service_properties,
    awslambda.shim_lambda_invoke,
    s3.shim_s3_notifications_async,
    sqs.shim_sqs_inline_event_source_mapping,
    events.shim_eventbridge_targets,
    events.shim_event_bus_ref,
    stepfunctions.shim_execution_status_events,
    dynamodb.shim_dynamodb_atomic_requests,
    dynamodb.shim_transaction_backs_up_items,
    server.shim_backend_lookup_once_per_host,
    server.shim_action_names_once_per_class,
    stepfunctions.shim_parse_once_per_definition,
    stepfunctions.shim_jsonpath_parse_once,
    cloudformation.shim_cloudformation_reads_during_create,
    ecs.shim_ecs_inactive_task_definition,
    stepfunctions.shim_ecs_integration_errors,
    cloudwatch.shim_put_composite_alarm,
    logs.shim_query_definitions,
    logs.shim_cloudformation_log_group_kms_key,
    sqs.shim_message_move_tasks,
    servicequotas.shim_fargate_quota,
    cloudformation_drift.shim_cloudformation_drift_detection,
    ecs.shim_ecs_service_settings,
    ecs.shim_ecs_service_counts,
    ecs.shim_ecs_task_protection,
    applicationautoscaling.shim_describe_scaling_activities,
)

_applied = False
_apply_lock = threading.Lock()


def apply() -> None:
    """Install every shim (idempotent). Nothing is patched before this is called."""
    global _applied
    with _apply_lock:
        if _applied:
            return
        for shim in SHIMS:
            shim()
        _applied = True
