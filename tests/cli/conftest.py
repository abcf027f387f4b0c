from __future__ import annotations

import os

import pytest

from tests.cli.fixtures import local_stack, stack, stack_env  # noqa: F401 - fixtures used by the tests here

LOOPBACK = ["127.0.0.1", "localhost", "::1"]

# Parallel workers start with COLUMNS set to the controlling terminal's width (80 without one), and rich fixes
# a console's width from COLUMNS when the console is made, at the CLI's import: without it, each command's
# own COLUMNS (the tests give 200) decides, as for an operator's shell.
os.environ.pop("COLUMNS", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"stack", "local_stack"} & set(getattr(item, "fixturenames", ())):
            # these talk to the moto endpoint the fixture starts on loopback, and to nothing else
            item.add_marker(pytest.mark.allow_hosts(LOOPBACK))
