"""`sam local invoke -e` without Docker: a handler from its source folder, in the local Lambda runtime.

The function's environment is the one the template gives it (Globals plus the function's own
variables), with references resolved against the deployed stack when there is one, then overridden
from a sam-style env-vars file ({"Parameters": {...}, "<LogicalId>": {...}}). As with sam, only the
variables the template declares can be overridden.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from samtranslator.yaml_helper import yaml_parse  # parses !Ref, !GetAtt, !Sub like sam does

from browserjobs.core.contract import LOCAL_ACCOUNT_ID, LOCAL_REGION
from browserjobs.core.project import PROJECT_DIR_VARIABLE, project_dir
from browserjobs.emulator.lambda_runtime import ExecutionEnvironment, FunctionConfig
from browserjobs.ops.outputs import OperatorError, Target


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: float
    memory: int
    environment: dict[str, Any]  # values may still be intrinsic functions


def load_template(path: Path | None = None) -> dict[str, Any]:
    path = path or project_dir() / "template.yaml"
    if not path.is_file():
        raise OperatorError(
            f"no template at {path}: run from the project's folder or set {PROJECT_DIR_VARIABLE}", exit_code=2
        )
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
            environment = {
                **globals_.get("Environment", {}).get("Variables", {}),
                **props.get("Environment", {}).get("Variables", {}),
            }
            return FunctionSpec(
                logical_id=logical_id,
                code_dir=project_dir() / code_uri,
                handler=props.get("Handler", globals_.get("Handler", "app.lambda_handler")),
                timeout=float(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment=environment,
            )
    raise OperatorError(
        f"no function {name!r} in template.yaml (functions: {', '.join(candidates)})", exit_code=2
    )


def _deployed_environment(target: Target, logical_id: str) -> tuple[str, dict[str, str]] | None:
    """The resolved variables of the deployed function, when the stack is there."""
    try:
        pages = (
            target.client("cloudformation")
            .get_paginator("list_stack_resources")
            .paginate(StackName=target.stack_name)
        )
        resources = [resource for page in pages for resource in page["StackResourceSummaries"]]
        names = [r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == logical_id]
        if not names:
            return None
        config = target.client("lambda").get_function_configuration(FunctionName=names[0])
    except (BotoCoreError, ClientError, OperatorError):
        return None
    variables = config.get("Environment", {}).get("Variables", {})
    return names[0], {key: str(value) for key, value in variables.items()}


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


def function_environment(
    spec: FunctionSpec, template: dict[str, Any], target: Target, overrides: dict[str, Any]
) -> tuple[str, dict[str, str], list[str]]:
    """The function's name, its environment variables, and the warnings worth showing."""
    warnings: list[str] = []
    parameters = {
        name: p.get("Default") for name, p in template.get("Parameters", {}).items() if "Default" in p
    }
    parameters.update(overrides.get("Parameters", {}))
    deployed = _deployed_environment(target, spec.logical_id)
    if deployed:
        function_name, variables = deployed
    else:
        function_name = spec.logical_id
        variables = {key: _template_value(value, parameters) for key, value in spec.environment.items()}
        warnings.append(
            f"stack {target.stack_name!r} not found: references in the template resolve to "
            "logical ids (set them with --env-vars)"
        )
    for section in ("Parameters", spec.logical_id):
        for key, value in overrides.get(section, {}).items():
            if key in spec.environment:
                variables[key] = str(value)
            elif section != "Parameters":
                warnings.append(f"{key} is not a variable of {spec.logical_id} in template.yaml: ignored")
    if not target.endpoint_url:
        # against AWS the handler gets the caller's resolved credentials, as `sam local invoke` passes them
        credentials = target.session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise OperatorError("no AWS credentials: configure a profile, or use --local")
        variables |= {
            "AWS_ACCESS_KEY_ID": frozen.access_key,
            "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
            "AWS_REGION": target.session.region_name or "",
            "AWS_DEFAULT_REGION": target.session.region_name or "",
        }
        if frozen.token:
            variables["AWS_SESSION_TOKEN"] = frozen.token
    return function_name, variables, warnings


def layer_dirs(template: dict[str, Any], logical_id: str) -> tuple[Path, ...]:
    """The source folders of the function's layers (Globals first), as the local stack runs them."""
    resources = template.get("Resources", {})
    layers = [
        *template.get("Globals", {}).get("Function", {}).get("Layers", []),
        *resources[logical_id].get("Properties", {}).get("Layers", []),
    ]
    folders = []
    for layer in layers:
        ref = layer.get("Ref") if isinstance(layer, dict) else None
        content = resources.get(ref, {}).get("Properties", {}).get("ContentUri") if ref else None
        if isinstance(content, str):
            folders.append(project_dir() / content)
    return tuple(folders)


@dataclass
class Invocation:
    result: Any = None
    error: dict[str, Any] | None = None


def run_handler(
    spec: FunctionSpec,
    layers: tuple[Path, ...],
    function_name: str,
    variables: dict[str, str],
    event: Any,
    endpoint_url: str | None,
    echo: Callable[[str], None],
) -> Invocation:
    """One invocation in a fresh execution environment of the local Lambda runtime; logs go to echo."""
    from browserjobs.emulator.deploy import FunctionSource
    from browserjobs.emulator.processes import Launcher, LogSink

    config = FunctionConfig(
        name=function_name,
        arn=f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{function_name}",
        handler=spec.handler,
        runtime="python3.13",
        timeout=spec.timeout,
        memory_size=spec.memory,
        environment=variables,
        source=FunctionSource(code_dir=spec.code_dir, layer_dirs=layers),
    )
    launcher = Launcher()
    with tempfile.TemporaryDirectory(prefix="invoke-logs-") as logs:
        environment = ExecutionEnvironment(config, launcher, LogSink(Path(logs), echo), endpoint_url or "")
        try:
            response = environment.invoke(str(uuid.uuid4()), json.dumps(event).encode(), timeout=spec.timeout)
        except TimeoutError:
            return Invocation(
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {spec.timeout:.2f} seconds",
                }
            )
        finally:
            environment.close()
            launcher.stop()
    if "error" in response:
        return Invocation(error=response["error"])
    return Invocation(result=json.loads(response["payload"] or "null"))


def read_json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise OperatorError(f"cannot read {what} {path}: {error.strerror}", exit_code=2) from error
    except json.JSONDecodeError as error:
        raise OperatorError(
            f"{what} {path} is not JSON: {error.msg} at line {error.lineno}", exit_code=2
        ) from error
