from __future__ import annotations

import pytest

from tests.cli.fixtures import local_stack, stack, stack_env  # noqa: F401 - fixtures used by the tests here

LOOPBACK = ["127.0.0.1", "localhost", "::1"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"stack", "local_stack"} & set(getattr(item, "fixturenames", ())):
            # these talk to the moto endpoint the fixture starts on loopback, and to nothing else
            item.add_marker(pytest.mark.allow_hosts(LOOPBACK))
