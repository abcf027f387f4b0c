"""The demo's scenarios as tests: each must pass every one of its checks."""

from __future__ import annotations

import pytest

from browserjobs.testing.scenarios import SCENARIOS, Context, run_scenario

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", [name for name, _, _ in SCENARIOS])
def test_scenario(context: Context, name: str) -> None:
    result = run_scenario(name, context)
    failed = [f"{check.name}: {check.detail}" for check in result.checks if not check.ok]
    assert result.checks, f"{name} checked nothing"
    assert not failed, f"{name} ({result.title}) failed:\n  " + "\n  ".join(failed)
    assert result.jobs, f"{name} ran no job"


# Statements the scenarios do not exercise, by (role, Sid or first action), each with the reason: only AWS
# exercises the first ones. Everything else in every role the stack
# deploys must have allowed at least one call by the time the scenarios have run: a statement nothing
# needs is privilege to remove, and with every statement needed, removing any one of them makes the
# endpoint refuse a call, which the suite's autouse check reports by role and action.
NOT_EXERCISED_HERE = {
    ("JobStateMachineRole", "LogDeliveryNeedsWildcard"): "log delivery is Step Functions' own",
    ("JobStateMachineRole", "XRayTracing"): "no X-Ray daemon or service runs locally",
    ("TaskRole", "SiteCredentialsUnderTheStackPrefix"): "site credentials: no scenario logs in to a site",
    ("JobStateMachineRole", "TagBrowserTaskOnRun"): "RunTask tags a task only when its definition has tags",
    # Paths no scenario takes; tests/unit/iam.py checks the handlers' calls on them against these statements.
    ("CleanupFunctionRole", "sqs:SendMessage*"): "cleanup dead-letters a job only when its execution is lost",
    ("CleanupFunctionRole", "ecs:StopTask"): "cleanup stops a task only when it outlived its execution",
    ("CleanupFunctionRole", "EndOverdueExecutions"): "cleanup ends an execution only past its deadline",
    ("IntakeFunctionRole", "sqs:SendMessage"): "Lambda's dead-letter queue: async invokes that fail 3 times",
    ("TaskRole", "Sessions"): "site sessions: no scenario logs in to a site",
    ("TaskRole", "SessionState"): "site session state: no scenario logs in to a site",
    ("PoolTaskRole", "Sessions"): "site sessions: no scenario logs in to a site",
    ("PoolTaskRole", "SessionState"): "site session state: no scenario logs in to a site",
    ("PoolTaskRole", "SiteCredentialsUnderTheStackPrefix"): "site credentials: no scenario logs in to a site",
    ("JobEventsPipeRole", "ListJobsStreams"): "Pipes lists the table's streams; here it has the ARN",
    ("JobEventsPipeRole", "KeepFailedRecords"): "PutEvents failing: tests/unit/emulator/test_pipes.py",
}


def test_every_statement_of_every_role_allowed_some_call(stack) -> None:
    """Counts every call since the package's stack started: run with the whole e2e package (the intake
    bucket's statement, for one, is exercised by test_local_runtime.py, which runs before this file)."""
    from browserjobs.emulator import access
    from browserjobs.emulator.settings import ACCOUNT_ID

    cfn = stack.client("cloudformation")
    roles = {
        resource["PhysicalResourceId"]: resource["LogicalResourceId"]
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack.stack_name)
        for resource in page["StackResourceSummaries"]
        if resource["ResourceType"] == "AWS::IAM::Role"
    }
    unused = []
    for name, logical_id in sorted(roles.items()):
        for policy, document in access.role_policies(name, ACCOUNT_ID):
            if policy.startswith("arn:"):  # AWS managed: scoped by AWS, not by this template
                continue
            statements = document["Statement"]
            if not isinstance(statements, list):
                statements = [statements]
            for index, statement in enumerate(statements):
                actions = statement.get("Action", [])
                first = actions if isinstance(actions, str) else actions[0]
                key = (logical_id, statement.get("Sid") or first)
                exercised = (name, policy, index) in access.ENFORCER.used
                if exercised or key in NOT_EXERCISED_HERE:
                    continue
                unused.append(f"{logical_id} {policy}[{index}] {statement.get('Sid', '')} {actions}")
    assert not unused, "statements that allowed no call of the whole run:\n  " + "\n  ".join(unused)
