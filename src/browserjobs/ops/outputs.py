"""Finding the deployed resources from the CloudFormation stack's Outputs.

Every operator tool (the CLI, the inspector) talks to AWS or to the local stack the same way: boto3
clients pointed at an optional endpoint, and resource names read from the stack's Outputs, never guessed.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from browserjobs.core.contract import LOCAL_CREDENTIALS, LOCAL_HOST, LOCAL_PORT, LOCAL_REGION
from browserjobs.core.stack_names import DEFAULT_STACK

LOCAL_ENDPOINT = f"http://{LOCAL_HOST}:{LOCAL_PORT}"
_CREATE_LOCK = threading.RLock()


class OperatorError(Exception):
    """A failure the operator can act on: printed as one clear line, exit code non-zero."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class StackNotFound(OperatorError):
    pass


class OutputMissing(OperatorError):
    pass


def _is_loopback(endpoint_url: str | None) -> bool:
    return endpoint_url is not None and any(
        host in endpoint_url for host in ("://127.", "://localhost", "://[::1]")
    )


@dataclass
class Target:
    """Where the tools talk to: a stack name, plus an endpoint for the local stack (None means AWS)."""

    stack_name: str = DEFAULT_STACK
    endpoint_url: str | None = None
    region: str | None = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @cached_property
    def session(self) -> boto3.session.Session:
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if _is_loopback(self.endpoint_url):
            # The local stack accepts any credentials; do not send real ones to it.
            return boto3.session.Session(
                aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=region or LOCAL_REGION,
            )
        return boto3.session.Session(region_name=region)

    @property
    def is_local(self) -> bool:
        return _is_loopback(self.endpoint_url)

    def client(self, service: str) -> Any:
        return self._cached("client", service)

    def table(self, name: str) -> Any:
        """A DynamoDB Table resource (items come back as Python values)."""
        return self._cached("resource", "dynamodb").Table(name)

    def _cached(self, kind: str, service: str) -> Any:
        # boto3 sessions are not thread-safe (the inspector serves from threads): create under a lock
        with _CREATE_LOCK:
            if (kind, service) not in self._clients:
                config = Config(
                    retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=70
                )
                try:
                    self._clients[(kind, service)] = getattr(self.session, kind)(
                        service, endpoint_url=self.endpoint_url, config=config
                    )
                except NoRegionError as error:
                    raise OperatorError("no AWS region: pass --region or set AWS_REGION") from error
            return self._clients[(kind, service)]

    @cached_property
    def outputs(self) -> StackOutputs:
        return load_stack_outputs(self.client("cloudformation"), self.stack_name, self.endpoint_url)


@dataclass(frozen=True)
class StackOutputs:
    stack_name: str
    values: dict[str, str]

    def __getitem__(self, key: str) -> str:
        try:
            return self.values[key]
        except KeyError:
            known = ", ".join(sorted(self.values)) or "none"
            raise OutputMissing(
                f"stack {self.stack_name!r} has no output {key!r} (outputs: {known}); "
                "is it deployed from this version of template.yaml?"
            ) from None

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def load_stack_outputs(cloudformation: Any, stack_name: str, endpoint_url: str | None = None) -> StackOutputs:
    where = f"at {endpoint_url}" if endpoint_url else "in AWS"
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if "does not exist" in message:
            hint = " (start it with `browserjobs local`)" if _is_loopback(endpoint_url) else ""
            raise StackNotFound(f"stack {stack_name!r} not found {where}{hint}") from error
        raise OperatorError(f"cannot read stack {stack_name!r} {where}: {message or error}") from error
    except NoCredentialsError as error:
        raise OperatorError("no AWS credentials: configure a profile, or use --local") from error
    except BotoCoreError as error:  # connection refused, DNS, timeouts: say where we tried
        hint = " (is the local stack running? `browserjobs local`)" if _is_loopback(endpoint_url) else ""
        raise OperatorError(f"cannot reach CloudFormation {where}: {error}{hint}") from error
    if not stacks:
        raise StackNotFound(f"stack {stack_name!r} not found {where}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return StackOutputs(stack_name, outputs)
