from __future__ import annotations

from tests.cli.fixtures import stack, stack_env  # noqa: F401 - fixtures used by the tests here
