"""Fixtures for the worker: a local site, moto (in-process or as a server) and a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from moto.server import ThreadedMotoServer

from browserjobs.emulator.settings import worker_chromium
from browserjobs.worker.aws import AwsClients
from browserjobs.worker.config import WorkerConfig
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.lifecycle import run_job
from browserjobs.worker.stop import StopFlag
from tests.container.site import Site
from tests.container.stack import REGION, Stack

CHROMIUM = worker_chromium()  # the browser the local stack's workers launch
ROOT = Path(__file__).resolve().parents[2]
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


@pytest.fixture(autouse=True)
def _chromium_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: set CHROMIUM_PATH (e.g. apt-get install chromium)")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    server = Site().start()
    yield server
    server.stop()


@pytest.fixture
def stack() -> Iterator[Stack]:
    """moto in-process, with its Step Functions interpreter running executions."""
    with mock_aws(config=MOTO_CONFIG):
        yield Stack(lambda service: boto3.client(service, region_name=REGION)).create()


class InProcessWorker:
    """Runs the worker's lifecycle in this process, against the in-process moto."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.stop = StopFlag()
        self.aws = AwsClients()
        self.calls: list[tuple[str, dict[str, Any]]] = []  # every Step Functions call the worker made
        self.aws("stepfunctions").meta.events.register(
            "before-parameter-build.sfn.*", lambda params, model, **_: self.calls.append((model.name, params))
        )

    def callbacks(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, params) for name, params in self.calls if name != "SendTaskHeartbeat"]

    def failure(self) -> tuple[str, dict[str, Any]]:
        """The one SendTaskFailure the worker sent: its error, and its cause parsed."""
        ((name, params),) = self.callbacks()
        assert name == "SendTaskFailure", name
        assert len(params["error"]) <= 256 and len(params["cause"]) <= 32_768
        return params["error"], json.loads(params["cause"])

    def run(
        self, job_id: str, *, heartbeat_seconds: int = 60, task_timeout: int = 300, **extra_env: str
    ) -> tuple[int, dict[str, Any]]:
        """The exit code, and the execution as Step Functions ended it."""
        task = self.stack.start_task(heartbeat_seconds=heartbeat_seconds, timeout_seconds=task_timeout)
        env = {
            **self.stack.worker_env(job_id, task, heartbeat_seconds=heartbeat_seconds),
            "CHROMIUM_PATH": CHROMIUM,
            **extra_env,
        }
        config = WorkerConfig.from_env(env)
        code = run_job(config, EgressPolicy(config.egress_allow), self.aws, self.stop)
        return code, self.stack.finished(task)


@pytest.fixture
def worker(stack: Stack) -> InProcessWorker:
    return InProcessWorker(stack)


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto as a server on a free port, for workers run as separate processes."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/config", json=MOTO_CONFIG, timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("MOTO_PORT", str(port))  # where the Step Functions interpreter sends its SQS calls
    yield endpoint
    server.stop()


@pytest.fixture
def server_stack(moto_server: str) -> Stack:
    return Stack(lambda service: boto3.client(service, region_name=REGION, endpoint_url=moto_server)).create()


def start_worker_process(env: dict[str, str]) -> subprocess.Popen[str]:
    """`python -m browserjobs.worker`, as the container runs it, from the installed package."""
    return subprocess.Popen(
        [sys.executable, "-m", "browserjobs.worker"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            **env,
            "CHROMIUM_PATH": CHROMIUM,
        },
    )
