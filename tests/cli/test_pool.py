"""`browserjobs pool status` on the local stack: the pool service, its scaling bounds and its queue."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import run
from tests.cli.test_doctor import client


@pytest.mark.e2e
def test_pool_status_shows_the_service_its_bounds_and_its_queue(local_stack):
    """The local deploy's PoolMinTasks 0 and PoolMaxTasks 2, as Application Auto Scaling holds them."""
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in client(local_stack, "cloudformation").describe_stacks(StackName=local_stack.name)["Stacks"][
            0
        ]["Outputs"]
    }

    result = run(local_stack, "pool", "status", "--json")

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["service"] == outputs["PoolServiceName"]
    assert (status["min"], status["max"]) == (0, 2)
    assert set(status["queue"]) == {"waiting", "taken"} and status["running"] == len(status["tasks"])
    text = run(local_stack, "pool", "status")
    assert text.exit_code == 0 and "(min 0, max 2)" in text.output
