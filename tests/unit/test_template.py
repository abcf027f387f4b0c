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

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
RESOURCES = TEMPLATE["Resources"]
ASL_PATH = ROOT / "statemachines" / "job.asl.json"
ASL_TEXT = ASL_PATH.read_text()
ASL = json.loads(ASL_TEXT)
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
STATE_MACHINE = RESOURCES["JobStateMachine"]["Properties"]
# Error names that AWS services raise into Step Functions (documented service integration errors).
SERVICE_ERROR = re.compile(
    r"^(States\.|Lambda\.|Sandbox\.Timedout$|DynamoDB\.|SQS\.AmazonSQSException$|ECS\.AmazonECSException$)"
)


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    bindir = Path(sys.executable).parent
    return subprocess.run([str(bindir / cmd[0]), *cmd[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240, check=False)


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
    assert placeholders == set(STATE_MACHINE["DefinitionSubstitutions"])


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


def _custom_error_names() -> set[str]:
    names = set()
    for state in ASL["States"].values():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            names |= {n for n in rule["ErrorEquals"] if not SERVICE_ERROR.match(n)}
    return names


def test_every_error_the_workflow_handles_is_raised_by_project_code():
    sources = "\n".join(p.read_text() for folder in ("container/worker", "functions")
                        for p in (ROOT / folder).rglob("*.py"))
    handled = _custom_error_names()
    assert handled, "the workflow handles no error of the worker"
    # Worker errors are names in strings; a Lambda's error name is its exception class.
    spellings = ('"{}"', "'{}'", "class {}(")
    missing = {name for name in handled if not any(s.format(name) in sources for s in spellings)}
    assert not missing, f"the workflow handles errors nothing raises: {missing}"


def test_a_claim_that_timed_out_or_crashed_is_retried_before_the_job_fails():
    """The claim is idempotent per execution (tests/unit/test_claim.py), so repeating it is safe."""
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


def test_browser_task_passes_only_token_job_and_heartbeat_in_overrides():
    task = ASL["States"]["RunBrowserTask"]
    assert task["Resource"] == "arn:aws:states:::ecs:runTask.waitForTaskToken"
    environment = task["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
    assert [e["Name"] for e in environment] == ["TASK_TOKEN", "JOB_ID", "HEARTBEAT_SECONDS"]
    assert task["HeartbeatSecondsPath"] and task["TimeoutSecondsPath"]
    caught = {name for rule in task["Catch"] for name in rule["ErrorEquals"]}
    assert {"States.HeartbeatTimeout", "States.Timeout"} <= caught


def test_spot_needs_x86_rule_is_in_the_template():
    rule = TEMPLATE["Rules"]["SpotRunsOnX86Only"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CapacityProvider"}, "FARGATE_SPOT"]}


REQUIRED_OUTPUTS = {"StateMachineArn", "IntakeFunctionName", "IntakeQueueUrl", "JobsTableName",
                    "DeadLetterQueueUrl", "ArtifactsBucketName"}


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
