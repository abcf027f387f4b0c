"""`make local` while a client polls the stack, as `aws cloudformation wait stack-create-complete` does.

moto's CloudFormation creates a resource the first time anything reads it; reads served while CreateStack
is still creating used to create functions and the state machine a second time, and the Outputs then named
the copies (browserjobs.emulator.shims.cloudformation, shim_cloudformation_reads_during_create). This test
runs the local stack the way a user does, in its own process, polls it from two threads from the first
moment, and checks that the stack holds exactly the template's resources and that its Outputs are what the
functions use.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from browserjobs.core.stack_names import default_stack_name
from browserjobs.emulator.settings import DUMMY_CREDENTIALS, REGION
from tests.conftest import ROOT, template

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

START_SECONDS = 180
POLL_SECONDS = 0.02


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=30),
    )


def _poll_stack(endpoint: str, name: str, done: threading.Event, seen: Counter[str]) -> None:
    cfn = _client("cloudformation", endpoint)
    while not done.is_set():
        try:
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
            cfn.list_stack_resources(StackName=name)
            seen[status] += 1
            if status == "CREATE_COMPLETE":
                return
        except (ClientError, BotoCoreError):
            seen["not yet"] += 1  # no endpoint yet, or no stack yet
        time.sleep(POLL_SECONDS)


def test_a_stack_polled_while_it_is_created_holds_each_resource_once_and_its_outputs_are_used() -> None:
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    name = default_stack_name()
    env = {**os.environ, "LOCAL_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "browserjobs.testing", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    printed: list[str] = []
    up = threading.Event()

    def read_output() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            printed.append(line)
            if "Stack outputs:" in line:
                up.set()

    threading.Thread(target=read_output, daemon=True).start()
    done, seen = threading.Event(), Counter[str]()
    pollers = [threading.Thread(target=_poll_stack, args=(endpoint, name, done, seen)) for _ in range(2)]
    for poller in pollers:
        poller.start()
    try:
        assert up.wait(START_SECONDS), "the local stack did not come up:\n" + "".join(printed[-40:])
        done.set()
        for poller in pollers:
            poller.join()
        resources = template()["Resources"].values()
        expected_functions = sum(r["Type"] == "AWS::Serverless::Function" for r in resources)
        expected_machines = sum(
            r["Type"] in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
            for r in resources
        )

        cfn, sfn, lam = (_client(s, endpoint) for s in ("cloudformation", "stepfunctions", "lambda"))
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        machines = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
        functions = lam.list_functions()["Functions"]

        assert seen["CREATE_IN_PROGRESS"] + seen["CREATE_COMPLETE"] > 0, f"never polled the stack: {seen}"
        assert len(machines) == expected_machines, machines
        assert len(functions) == expected_functions, [f["FunctionName"] for f in functions]
        assert outputs["StateMachineArn"] in machines
        names = {f["FunctionName"] for f in functions}
        assert {v for k, v in outputs.items() if k.endswith("FunctionName")} == names
        for function in functions:
            variables = function.get("Environment", {}).get("Variables", {})
            for key, value in variables.items():
                if str(value).startswith("arn:aws:states:") and ":stateMachine:" in str(value):
                    assert value == outputs["StateMachineArn"], (function["FunctionName"], key, value)
    finally:
        done.set()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
