"""`sam local invoke -e` without Docker: a handler from its source folder, in its own process.

The function's environment is the one the template gives it (Globals plus the function's own
variables), with references resolved against the deployed stack when there is one, then overridden
from a sam-style env-vars file ({"Parameters": {...}, "<LogicalId>": {...}}). As with sam, only the
variables the template declares can be overridden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local.outputs import PROJECT_ROOT, OperatorError, Target

TEMPLATE = PROJECT_ROOT / "template.yaml"


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: float
    memory: int
    environment: dict[str, Any]  # values may still be intrinsic functions


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from samcli.yamlhelper import yaml_parse  # parses !Ref, !GetAtt, !Sub like sam does

    if not path.is_file():
        raise OperatorError(f"no template at {path}")
    return yaml_parse(path.read_text())


def find_function(template: dict[str, Any], name: str) -> FunctionSpec:
    """A function by logical id or by its folder name under functions/."""
    globals_ = template.get("Globals", {}).get("Function", {})
    candidates = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        code_uri = str(props.get("CodeUri", globals_.get("CodeUri", ""))).rstrip("/")
        candidates.append(logical_id)
        if name in (logical_id, Path(code_uri).name):
            environment = {**globals_.get("Environment", {}).get("Variables", {}),
                           **props.get("Environment", {}).get("Variables", {})}
            return FunctionSpec(
                logical_id=logical_id, code_dir=PROJECT_ROOT / code_uri,
                handler=props.get("Handler", globals_.get("Handler", "app.lambda_handler")),
                timeout=float(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment=environment,
            )
    raise OperatorError(f"no function {name!r} in template.yaml (functions: {', '.join(candidates)})",
                        exit_code=2)


def _deployed_environment(target: Target, logical_id: str) -> tuple[str, dict[str, str]] | None:
    """The resolved variables of the deployed function, when the stack is there."""
    try:
        resource = target.client("cloudformation").describe_stack_resource(
            StackName=target.stack_name, LogicalResourceId=logical_id)["StackResourceDetail"]
        name = resource["PhysicalResourceId"]
        config = target.client("lambda").get_function_configuration(FunctionName=name)
    except (ClientError, OperatorError):
        return None
    return name, config.get("Environment", {}).get("Variables", {})


def _template_value(value: Any, parameters: dict[str, Any]) -> str:
    """A literal, or a parameter's value; anything else resolves to its logical id, as sam does."""
    if isinstance(value, dict) and "Ref" in value:
        return str(parameters.get(value["Ref"], value["Ref"]))
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        attribute = value["Fn::GetAtt"]
        return attribute if isinstance(attribute, str) else ".".join(attribute)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def function_environment(spec: FunctionSpec, template: dict[str, Any], target: Target | None,
                         overrides: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The handler's environment and the warnings worth showing."""
    warnings: list[str] = []
    parameters = {name: p.get("Default") for name, p in template.get("Parameters", {}).items()
                  if "Default" in p}
    parameters.update(overrides.get("Parameters", {}))
    deployed = _deployed_environment(target, spec.logical_id) if target else None
    if deployed:
        function_name, variables = deployed
        variables = {key: variables.get(key, "") for key in spec.environment} | variables
    else:
        function_name = spec.logical_id
        variables = {key: _template_value(value, parameters) for key, value in spec.environment.items()}
        warnings.append(f"stack {target.stack_name if target else '?'!r} not found: references in the "
                        "template resolve to logical ids (pass --env-vars to set them)")
    for section in ("Parameters", spec.logical_id):
        for key, value in overrides.get(section, {}).items():
            if key in spec.environment:
                variables[key] = str(value)
            elif section != "Parameters":
                warnings.append(f"{key} is not a variable of {spec.logical_id} in template.yaml: ignored")
    region = target.session.region_name if target else os.environ.get("AWS_REGION", "us-east-1")
    env = {
        "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
        "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": function_name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "PYTHONPATH": os.pathsep.join([str(spec.code_dir), str(PROJECT_ROOT / "functions" / "shared")]),
    }
    if target and target.endpoint_url:
        env["AWS_ENDPOINT_URL"] = target.endpoint_url
    if target and target.is_local:
        env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    else:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "HOME"):
            if key in os.environ:
                env[key] = os.environ[key]
    env.update(variables)
    return env, warnings


@dataclass
class Invocation:
    result: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False


def run_handler(spec: FunctionSpec, event: Any, env: dict[str, str]) -> Invocation:
    module_name, _, function = spec.handler.rpartition(".")
    app = spec.code_dir / f"{module_name.replace('.', '/')}.py"
    if not app.is_file():
        raise OperatorError(f"{spec.logical_id}: handler file {app} does not exist")
    with tempfile.TemporaryDirectory(prefix="invoke-") as scratch:
        result_file = Path(scratch) / "result.json"
        runner_env = {**env, "PYTHONPATH": env["PYTHONPATH"] + os.pathsep + str(PROJECT_ROOT)}
        try:
            subprocess.run(
                [sys.executable, "-m", "local.handler_runner", str(app), function, str(spec.timeout),
                 str(result_file)],
                input=json.dumps(event), text=True, env=runner_env, cwd=spec.code_dir,
                timeout=spec.timeout + 5, check=False,
            )
        except subprocess.TimeoutExpired:
            return Invocation(timed_out=True, error={
                "errorType": "TimeoutError", "errorMessage": f"Task timed out after {spec.timeout:.0f} s"})
        if not result_file.is_file():
            return Invocation(error={"errorType": "Runtime.ExitError",
                                     "errorMessage": "the handler process ended without a result"})
        outcome = json.loads(result_file.read_text())
    return Invocation(result=outcome.get("result"), error=outcome.get("error"))


def read_json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise OperatorError(f"cannot read {what} {path}: {error.strerror}", exit_code=2) from error
    except json.JSONDecodeError as error:
        raise OperatorError(f"{what} {path} is not JSON: {error.msg} at line {error.lineno}", exit_code=2) \
            from error
