"""`sam package` + `sam deploy` against the local endpoint.

The SAM template is packaged (function and layer folders zipped into a deployment bucket, the state
machine definition inlined), translated to CloudFormation with samtranslator and created as a stack by
moto's CloudFormation, so the stack's Outputs are read back exactly as on AWS. The network the task
parameters need is created first, as a user would bring their own VPC.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
from samtranslator.yaml_helper import yaml_parse

from browserjobs.core.project import project_dir, project_file
from browserjobs.core.stack_names import default_stack_name
from browserjobs.emulator import unsupported
from browserjobs.emulator.settings import REGION

DEPLOYMENT_BUCKET = "browserjobs-local-deployments"
# Heavier defaults would make a 2-core laptop run ten Chromiums at once. The pool exists (up to two warm
# workers) but starts none until jobs are dispatched to it.
LOCAL_PARAMETER_DEFAULTS = {
    "WorkerImageUri": "browserjobs-worker:local",
    "MaxConcurrentTasks": "4",
    "PoolMinTasks": "0",
    "PoolMaxTasks": "2",
    "PoolDrainSeconds": "5",  # a Spot-style SIGTERM in the demo waits seconds, not minutes
}


class ParameterError(ValueError):
    """A parameter override the template does not declare, or LOCAL_PARAMETERS that do not parse."""


def parse_parameters(text: str | None) -> dict[str, str]:
    """`Key=Value Key2=Value2` (LOCAL_PARAMETERS, as `sam deploy --parameter-overrides` takes them);
    a value with spaces is quoted: `ScheduledJobJson='{"a": 1}'`."""
    try:
        words = shlex.split(text or "")
    except ValueError as error:
        raise ParameterError(f"LOCAL_PARAMETERS does not parse ({error}): {text!r}") from None
    parameters: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ParameterError(f"LOCAL_PARAMETERS: {word!r} is not Key=Value (in {text!r})")
        parameters[key] = value
    return parameters


def configured_parameters() -> dict[str, str]:
    """LOCAL_PARAMETERS from the environment (see parse_parameters)."""
    return parse_parameters(os.environ.get("LOCAL_PARAMETERS"))


def template_parameters(template_path: Path | None = None) -> dict[str, Any]:
    return yaml_parse((template_path or project_file("template.yaml")).read_text()).get("Parameters", {})


def check_overrides(overrides: dict[str, str], declared: dict[str, Any]) -> None:
    """CloudFormation refuses a parameter the template does not declare; so does the local stack."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ParameterError(
            f"Parameters: {unknown} do not exist in the template. The template's parameters are: "
            + ", ".join(sorted(declared))
        )


@dataclass(frozen=True)
class FunctionSource:
    """Where a deployed function's code lives in the working tree."""

    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()


@dataclass
class DeployedStack:
    name: str
    stack_id: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    function_sources: dict[str, FunctionSource] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_id: str
    security_group_id: str


def create_network(session: boto3.Session, endpoint_url: str) -> Network:
    """A VPC with DNS hostnames (ECS awsvpc tasks need it), one private subnet and an egress-only SG."""
    ec2 = session.client("ec2", endpoint_url=endpoint_url)
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    group_id = ec2.create_security_group(
        GroupName="browserjobs-local-tasks", Description="browser tasks: egress only", VpcId=vpc_id
    )["GroupId"]
    return Network(vpc_id=vpc_id, subnet_id=subnet_id, security_group_id=group_id)


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _upload_folder(s3: Any, folder: Path, root: Path) -> dict[str, str]:
    key = f"{folder.relative_to(root).as_posix().strip('/')}.zip"
    s3.put_object(Bucket=DEPLOYMENT_BUCKET, Key=key, Body=_zip_folder(folder))
    return {"Bucket": DEPLOYMENT_BUCKET, "Key": key}


def package(template: dict[str, Any], s3: Any, root: Path | None = None) -> dict[str, FunctionSource]:
    """Rewrite local paths as `sam package` does; return each function's source folders by logical id."""
    root = root or project_dir()
    s3.create_bucket(Bucket=DEPLOYMENT_BUCKET)
    resources = template["Resources"]
    layer_dirs: dict[str, Path] = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::LayerVersion" and isinstance(
            properties.get("ContentUri"), str
        ):
            layer_dirs[logical_id] = root / properties["ContentUri"]
            properties["ContentUri"] = _upload_folder(s3, layer_dirs[logical_id], root)
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["Definition"] = json.loads((root / properties.pop("DefinitionUri")).read_text())

    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    sources: dict[str, FunctionSource] = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::Function" or not isinstance(properties.get("CodeUri"), str):
            continue
        code_dir = root / properties["CodeUri"]
        properties["CodeUri"] = _upload_folder(s3, code_dir, root)
        layers = [*global_layers, *properties.get("Layers", [])]
        refs = [
            layer["Ref"] for layer in layers if isinstance(layer, dict) and layer.get("Ref") in layer_dirs
        ]
        sources[logical_id] = FunctionSource(code_dir=code_dir, layer_dirs=tuple(layer_dirs[r] for r in refs))
    return sources


def translate(template: dict[str, Any], parameters: dict[str, str], session: boto3.Session) -> dict[str, Any]:
    """What samtranslator's transform() does, with the session's region and the policy map it ships."""
    policies = get_bundled_managed_policy_map("aws") or {}
    to_py27_compatible_template(template, parameters)
    translator = Translator(None, Parser(), boto_session=session)
    translated = translator.translate(
        template, parameter_values=dict(parameters), get_managed_policy_map=lambda: policies
    )
    return undo_mark_unicode_str_in_template(translated)


def deploy(
    session: boto3.Session,
    endpoint_url: str,
    stack_name: str | None = None,
    template_path: Path | None = None,
    parameter_overrides: dict[str, str] | None = None,
) -> DeployedStack:
    stack_name = stack_name or default_stack_name()
    network = create_network(session, endpoint_url)
    parameters = {
        **LOCAL_PARAMETER_DEFAULTS,
        "VpcSubnetIds": network.subnet_id,
        "SecurityGroupIds": network.security_group_id,
        **(parameter_overrides or {}),
    }
    template = yaml_parse((template_path or project_file("template.yaml")).read_text())
    declared = template.get("Parameters", {})
    check_overrides(parameter_overrides or {}, declared)
    parameters = {key: value for key, value in parameters.items() if key in declared}

    sources_by_logical_id = package(template, session.client("s3", endpoint_url=endpoint_url))
    cloudformation_template = unsupported.stand_in(translate(template, parameters, session))

    cfn = session.client("cloudformation", endpoint_url=endpoint_url)
    stack_id = cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cloudformation_template),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )["StackId"]
    stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(
            f"stack {stack_name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}"
        )

    function_sources = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id):
        for resource in page["StackResourceSummaries"]:
            if resource["LogicalResourceId"] in sources_by_logical_id:
                function_sources[resource["PhysicalResourceId"]] = sources_by_logical_id[
                    resource["LogicalResourceId"]
                ]
    return DeployedStack(
        name=stack_name,
        stack_id=stack_id,
        outputs={output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])},
        parameters=parameters,
        function_sources=function_sources,
    )
