"""The worker's logic without a browser: `stack` is the worker's AWS side in moto in-process, as the
container suite builds it (tests/container/stack.py), with moto's Step Functions interpreter running the
execution that hands out the task token."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from pytest_socket import disable_socket, enable_socket

from tests.container.conftest import MOTO_CONFIG
from tests.container.stack import REGION, Stack


@pytest.fixture(autouse=True)
def _event_loops_may_wake_themselves(socket_disabled: None) -> None:
    """asyncio's event loop wakes itself through a socket pair (AF_UNIX): that kind alone is allowed, so
    the worker's async code runs here; nothing reaches a network, and names are still not resolved."""
    enable_socket()
    disable_socket(allow_unix_socket=True)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws(config=MOTO_CONFIG):
        yield Stack(lambda service: boto3.client(service, region_name=REGION)).create()
