"""The template and the workflow stay deployable and agree with the code they name."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from samcli.yamlhelper import yaml_parse

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
RESOURCES = TEMPLATE["Resources"]
ASL_PATH = ROOT / "statemachines" / "job.asl.json"
ASL_TEXT = ASL_PATH.read_text()
ASL = json.loads(ASL_TEXT)
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
STATE_MACHINE = RESOURCES["JobStateMachine"]["Properties"]
# Error names that AWS services raise into Step Functions (documented service integration errors).
# DynamoDB. is the optimized integration's prefix, DynamoDb. the AWS SDK integration's (connect-ddb.html,
# "Exception prefix differences"); AmazonECS.Unknown is a run-task state whose RunTask listed failures.
SERVICE_ERROR = re.compile(
    r"^(States\.|Lambda\.|Sandbox\.Timedout$|DynamoDB\.|DynamoDb\.|SQS\.AmazonSQSException$"
    r"|ECS\.AmazonECSException$|AmazonECS\.Unknown$)"
)


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    bindir = Path(sys.executable).parent
    return subprocess.run(
        [str(bindir / cmd[0]), *cmd[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_cfn_lint_reports_nothing():
    result = _run("cfn-lint", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_sam_validate_lint_passes():
    result = _run("sam", "validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def _function_environment() -> dict[str, str]:
    """The Globals environment with each reference replaced by a plausible value."""
    parameters = TEMPLATE["Parameters"]
    env = {}
    for key, value in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"].items():
        ref = value.get("Ref") if isinstance(value, dict) else None
        if isinstance(value, str):
            env[key] = value
        elif ref in parameters:
            env[key] = str(parameters[ref]["Default"])
        else:
            env[key] = f"test-{key.lower()}"
    env["STATE_MACHINE_ARN"] = "arn:aws:states:us-east-1:123456789012:stateMachine:test"
    env["JOB_DLQ_URL"] = "https://sqs.us-east-1.amazonaws.com/123456789012/test-dlq"
    return env


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_handler_in_the_template_imports(logical_id, monkeypatch):
    properties = FUNCTIONS[logical_id]["Properties"]
    module_name, handler_name = properties["Handler"].rsplit(".", 1)
    source = ROOT / properties["CodeUri"] / f"{module_name}.py"
    assert source.is_file(), f"{logical_id}: {source} is missing"
    for key, value in _function_environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"handler_{logical_id}"
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(source.parent))
    monkeypatch.setitem(sys.modules, name, module)  # as an import would: dataclasses look themselves up there
    spec.loader.exec_module(module)
    assert callable(getattr(module, handler_name))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_a_build_target_and_sample_event(logical_id):
    properties = FUNCTIONS[logical_id]["Properties"]
    folder = ROOT / properties["CodeUri"]
    assert f"build-{logical_id}:" in (folder / "Makefile").read_text()
    events = list((ROOT / "events").glob(f"{folder.name.replace('_', '-')}-*.json"))
    assert events, f"no sample event events/{folder.name.replace('_', '-')}-*.json for {logical_id}"


def test_every_asl_placeholder_has_a_substitution_and_none_is_unused():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_TEXT))
    substitutions = set(STATE_MACHINE["DefinitionSubstitutions"])
    assert placeholders == substitutions


def _substituted_definition() -> str:
    text = ASL_TEXT
    for key in STATE_MACHINE["DefinitionSubstitutions"]:
        text = text.replace("${" + key + "}", f"test-{key}")
    return text


def test_moto_step_functions_parses_the_workflow():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program, _ = AmazonStateLanguageParser.parse(_substituted_definition())
    assert program is not None


def test_every_next_exists_and_every_state_is_reachable():
    states = ASL["States"]
    edges: dict[str, set[str]] = {}
    for name, state in states.items():
        targets = {state.get("Next"), state.get("Default")}
        targets |= {choice["Next"] for choice in state.get("Choices", [])}
        targets |= {catch["Next"] for catch in state.get("Catch", [])}
        edges[name] = {t for t in targets if t}
        assert edges[name] <= set(states), f"{name} points at a missing state"
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges[name])
    assert seen == set(states), f"unreachable: {set(states) - seen}"


def test_a_claim_that_timed_out_or_crashed_is_retried_before_the_job_fails():
    """The claim is idempotent per execution (tests/unit/core/test_claim.py), so repeating it is safe."""
    retried = {name for rule in ASL["States"]["Claim"]["Retry"] for name in rule["ErrorEquals"]}
    assert {"Sandbox.Timedout", "Lambda.Unknown", "Lambda.ServiceException", "ClaimContention"} <= retried


def test_happy_path_enters_at_most_eight_states():
    """Follows the successful branch statically; the bench counts the same from real histories."""
    states, path, name = ASL["States"], [], ASL["StartAt"]
    choose = {"LockFound": "Claim", "ClaimOutcome": "RunBrowserTask"}
    while name:
        path.append(name)
        state = states[name]
        if state["Type"] in ("Succeed", "Fail"):
            break
        name = choose.get(name) or state.get("Next") or state.get("Default")
    assert path[-1] == "Succeeded"
    assert len(path) <= 8, path
    lambda_states = [n for n in path if states[n].get("Resource", "").startswith("arn:aws:states:::lambda")]
    assert len(lambda_states) <= 1, lambda_states


def test_browser_task_passes_only_token_job_heartbeat_and_start_in_overrides():
    task = ASL["States"]["RunBrowserTask"]
    assert task["Resource"] == "arn:aws:states:::ecs:runTask.waitForTaskToken"
    environment = task["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
    names = [e["Name"] for e in environment]
    assert names == ["TASK_TOKEN", "JOB_ID", "HEARTBEAT_SECONDS", "STATE_ENTERED_TIME", "STATE_RETRY_COUNT"]
    assert task["HeartbeatSecondsPath"] and task["TimeoutSecondsPath"]
    caught = {name for rule in task["Catch"] for name in rule["ErrorEquals"]}
    assert {"States.HeartbeatTimeout", "States.Timeout"} <= caught


def test_spot_needs_x86_rule_is_in_the_template():
    rule = TEMPLATE["Rules"]["SpotRunsOnX86Only"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CapacityProvider"}, "FARGATE_SPOT"]}


REQUIRED_OUTPUTS = {
    "StateMachineArn",
    "IntakeFunctionName",
    "IntakeQueueUrl",
    "JobsTableName",
    "DeadLetterQueueUrl",
    "ArtifactsBucketName",
}


def test_outputs_name_everything_the_tools_look_up():
    assert set(TEMPLATE["Outputs"]) >= REQUIRED_OUTPUTS


def test_data_at_rest_is_encrypted_with_the_project_key():
    for name, resource in RESOURCES.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert properties["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "Key"}, name
        elif resource["Type"] == "AWS::SQS::Queue":
            assert properties["KmsMasterKeyId"] == {"Ref": "Key"}, name
        elif resource["Type"] == "AWS::S3::Bucket":
            rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", name
            assert all(properties["PublicAccessBlockConfiguration"].values()), name
        elif resource["Type"] == "AWS::Logs::LogGroup":
            assert properties["KmsKeyId"] == {"Fn::GetAtt": ["Key", "Arn"]}, name


# ---------------------------------------------------------------- Rules: refused before anything is created

# Fargate task sizes, from the "Task size" table of the ECS docs:
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#task_size
# and https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html (Linux; 8192 and
# 16384 CPU units are not offered: a browser job has no use for them).
FARGATE_MEMORY_BY_CPU = {
    "256": {512, 1024, 2048},
    "512": set(range(1024, 4096 + 1, 1024)),
    "1024": set(range(2048, 8192 + 1, 1024)),
    "2048": set(range(4096, 16384 + 1, 1024)),
    "4096": set(range(8192, 30720 + 1, 1024)),
}
PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "browserjobs",
    "AWS::Partition": "aws",
}


def _rule_value(node: object, parameters: dict[str, str]) -> object:
    """Evaluates a rule condition or assertion the way CloudFormation does (rule functions of
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html).
    A function it does not know fails the test rather than passing silently."""
    if isinstance(node, (str, bool, int)):
        return node
    if isinstance(node, list):
        return [_rule_value(item, parameters) for item in node]
    ((name, args),) = node.items()
    if name == "Ref":
        return {**PSEUDO_PARAMETERS, **parameters}[args]
    values = _rule_value(args, parameters)
    functions = {
        "Fn::Equals": lambda a: a[0] == a[1],
        "Fn::Not": lambda a: not a[0],
        "Fn::And": all,
        "Fn::Or": any,
        "Fn::Contains": lambda a: a[1] in a[0],
        "Fn::EachMemberEquals": lambda a: all(v == a[1] for v in a[0]),
        "Fn::EachMemberIn": lambda a: all(v in a[1] for v in a[0]),
    }
    assert name in functions, f"the test's rule evaluator does not know {name}"
    return functions[name](values)


def _refused_by(parameters: dict[str, str]) -> list[str]:
    """The AssertDescriptions of every assertion the template's Rules refuse for these parameter values."""
    values = {name: str(p.get("Default", "")) for name, p in TEMPLATE["Parameters"].items()} | parameters
    refused = []
    for rule in TEMPLATE.get("Rules", {}).values():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], values):
            continue
        refused += [
            a["AssertDescription"] for a in rule["Assertions"] if not _rule_value(a["Assert"], values)
        ]
    return refused


def _offered(parameter: str) -> list[str]:
    return [str(v) for v in TEMPLATE["Parameters"][parameter]["AllowedValues"]]


def test_rules_accept_exactly_the_fargate_cpu_and_memory_pairs():
    accepted, refused = set(), set()
    for cpu in _offered("WorkerCpu"):
        for memory in _offered("WorkerMemory"):
            pair = (int(cpu), int(memory))
            (refused if _refused_by({"WorkerCpu": cpu, "WorkerMemory": memory}) else accepted).add(pair)
    valid = {(int(cpu), m) for cpu in _offered("WorkerCpu") for m in FARGATE_MEMORY_BY_CPU[cpu]}
    assert accepted == valid, f"invalid pairs accepted: {sorted(accepted - valid)}"
    assert (1024, 1024) in refused and (512, 8192) in refused


def test_every_fargate_size_of_the_offered_cpus_can_be_chosen():
    """Parameters offer every memory size Fargate allows for the CPU values they offer."""
    offered = {int(m) for m in _offered("WorkerMemory")}
    for cpu in _offered("WorkerCpu"):
        assert FARGATE_MEMORY_BY_CPU[cpu] <= offered, cpu
    assert str(TEMPLATE["Parameters"]["WorkerMemory"]["Default"]) in {
        str(m) for m in FARGATE_MEMORY_BY_CPU[str(TEMPLATE["Parameters"]["WorkerCpu"]["Default"])]
    }


@pytest.mark.parametrize("cpu", ["512", "1024", "2048", "4096"])
def test_a_refused_size_says_which_memory_the_cpu_takes(cpu):
    memory = "30720" if cpu != "4096" else "1024"
    (description,) = _refused_by({"WorkerCpu": cpu, "WorkerMemory": memory})
    valid = sorted(FARGATE_MEMORY_BY_CPU[cpu])
    assert f"WorkerCpu {cpu}" in description
    assert str(valid[0]) in description and str(valid[-1]) in description, description


def test_the_spot_rule_still_refuses_arm64():
    assert _refused_by({"CapacityProvider": "FARGATE_SPOT", "WorkerArchitecture": "ARM64"})
    assert not _refused_by({"CapacityProvider": "FARGATE_SPOT", "WorkerArchitecture": "X86_64"})
    assert not _refused_by({})


# ---------------------------------------------------------------- task tokens stay out of the logs


def test_state_machine_logs_every_event_without_execution_data():
    """Execution data holds the task token: RunBrowserTask's parameters carry it in the container overrides,
    and the RunTask response echoes them. At level ALL with IncludeExecutionData every holder of
    logs:GetLogEvents on the group could complete or fail any running job; without it the log keeps every
    event's type, state and time (https://docs.aws.amazon.com/step-functions/latest/dg/cloudwatch-log-level.html,
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_LoggingConfiguration.html).
    Inputs and outputs stay in the execution history (states:GetExecutionHistory), which the CLI, the
    inspector and the runbook read."""
    logging_config = STATE_MACHINE["Logging"]
    assert logging_config["Level"] == "ALL"
    assert logging_config["IncludeExecutionData"] is False


# ---------------------------------------------------------------- stack names the intake bucket can carry


def test_stack_name_check_follows_the_template_bucket_name():
    from browserjobs.core import stack_names

    bucket = RESOURCES["IntakeBucket"]["Properties"]["BucketName"]
    assert bucket == {"Fn::Sub": stack_names.INTAKE_BUCKET_NAME}
    assert stack_names.MAX_STACK_NAME == 63 - len("-intake-123456789012-ap-southeast-1") == 28


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("browserjobs", True),
        ("browserjobs-prod", True),
        ("a" * 28, True),
        ("BrowserJobs", False),
        ("a" * 29, False),
        ("jobs_prod", False),
        ("jobs-", False),
        ("xn--jobs", False),
        ("sthree-jobs", False),
        ("amzn-s3-demo-jobs", False),
    ],
)
def test_stack_names_that_make_an_invalid_bucket_name_are_refused(name, valid):
    """S3 bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"""
    from browserjobs.core import stack_names

    assert (stack_names.problems(name) == []) is valid
    if valid:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", stack_names.intake_bucket_name(name))


def test_every_configured_stack_name_deploys_and_make_deploy_checks_first():
    from browserjobs.core import stack_names

    configured = stack_names.configured_stack_names()
    assert configured, "samconfig.toml names no stack"
    refused = {env: stack_names.problems(name) for env, name in configured.items()}
    assert {env: found for env, found in refused.items() if found} == {}
    deploy = re.search(r"^deploy:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert deploy and "browserjobs.core.stack_names" in deploy.group(1).split("sam deploy")[0]


def test_the_dashboard_body_is_json_whose_every_placeholder_is_defined():
    """CloudFormation substitutes the body and CloudWatch rejects a dashboard whose JSON does not parse
    (PutDashboard, DashboardInvalidInputError); a name Fn::Sub cannot resolve fails the deploy."""
    body, variables = TEMPLATE["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    known = set(TEMPLATE["Resources"]) | set(TEMPLATE["Parameters"]) | set(variables)
    names = set(re.findall(r"\$\{([\w:.]+)\}", body))
    assert {name for name in names if not name.startswith("AWS::")} <= known
    rendered = re.sub(r"\$\{[\w:.]+\}", "x", body)
    widgets = json.loads(rendered)["widgets"]
    assert any("Warm pool" in widget["properties"]["title"] for widget in widgets)
