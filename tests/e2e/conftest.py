"""One local stack for the end-to-end tests: the real template, Lambdas, worker, Chromium, sample site."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import Harness
from browserjobs.testing.sample_site.server import SampleSite
from browserjobs.testing.scenarios import PARAMETERS, Context


@pytest.fixture(scope="package")
def site() -> Iterator[SampleSite]:
    with SampleSite() as running:
        yield running


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    logs = tmp_path_factory.mktemp("e2e-logs")
    with LocalStack.start(port=0, parameter_overrides=PARAMETERS, log_dir=logs) as running:
        yield running


@pytest.fixture(scope="package")
def harness(stack: LocalStack) -> Harness:
    return Harness.for_endpoint(stack.stack_name, stack.endpoint_url)


@pytest.fixture(scope="package")
def context(stack: LocalStack, harness: Harness, site: SampleSite) -> Context:
    return Context(stack, harness, site.url)
