"""HTTP statuses of the main frame: 429, other 4xx and 5xx fail the job with the Site.* error; a site that
cannot be reached is Site.Unreachable, and a retried task gives its navigations more time."""

from __future__ import annotations

import socket
import time

import pytest

from browserjobs.worker.errors import ExitCode

pytestmark = pytest.mark.container


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, "Site.RateLimited"),
        (404, "Site.ClientError"),
        (403, "Site.ClientError"),
        (503, "Site.ServerError"),
    ],
)
def test_a_main_frame_error_status_fails_the_job_with_its_class(worker, stack, site, status, error):
    url = site.url(f"/status/{status}")
    job_id = stack.put_job(
        "browse", {"steps": [{"goto": {"url": url}}, {"extract": {"fields": {"h": {"selector": "h1"}}}}]}
    )

    code, execution = worker.run(job_id)

    assert code == ExitCode.BY_ERROR[error]
    assert execution["status"] == "FAILED" and execution["error"] == error
    sent_error, cause = worker.failure()
    assert sent_error == error
    assert cause["status"] == status and cause["url"] == url and cause["step"] == {"index": 1, "type": "goto"}
    assert cause["message"] == f"HTTP {status} from {url}"
    result = stack.result(job_id)
    assert [s["status"] for s in result["steps"]] == ["failed"]  # the extract step never ran
    assert "failure-screenshot.png" in [a["name"] for a in result["artifacts"]]


def test_a_click_that_navigates_to_a_server_error_fails_that_step(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/page")}},
                {"click": {"selector": "#broken"}},
                {"wait_for": {"timeoutMs": 500}},
            ]
        },
    )

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.ServerError"]
    _, cause = worker.failure()
    assert cause["status"] == 500 and cause["step"] == {"index": 2, "type": "click"}


def test_a_redirect_to_a_server_error_fails_the_navigation(worker, stack, site):
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": site.url("/redirect?to=/status/502")}}]})

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.ServerError"]
    _, cause = worker.failure()
    assert cause["status"] == 502 and cause["url"] == site.url("/status/502")


def test_error_statuses_of_subresources_and_redirects_do_not_fail_the_job(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/redirect?to=/page")}},
                {"extract": {"fields": {"title": {"selector": "#title"}}}},
            ]
        },
    )

    code, _ = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED, worker.calls
    assert stack.result(job_id)["data"] == {"step-2": {"title": "Hello fixture"}}


def test_a_site_nobody_answers_on_is_unreachable(worker, stack):
    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": url}}]})

    code, execution = worker.run(job_id)

    # The egress guard's own 502 (X-Egress-Guard: error) is not the site's 5xx.
    assert code == ExitCode.BY_ERROR["Site.Unreachable"]
    assert execution["error"] == "Site.Unreachable"
    assert worker.failure()[1]["url"] == url


def test_a_retried_task_gives_a_slow_page_twice_the_time(worker, stack, site):
    steps = {"steps": [{"goto": {"url": site.url("/slow/2500"), "timeoutMs": 1500}}]}

    code, _ = worker.run(stack.put_job("browse", steps))
    assert code == ExitCode.BY_ERROR["Site.Timeout"]
    assert "did not finish within 1500 ms" in worker.failure()[1]["message"]

    code, execution = worker.run(stack.put_job("browse", steps), STATE_RETRY_COUNT="1")
    assert code == ExitCode.SUCCEEDED, worker.failure()
    assert execution["status"] == "SUCCEEDED"


def test_a_429_slows_the_rate_key_down_until_its_retry_after(worker, stack, site):
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": site.url("/retry-after/7")}}]})
    before_ms = time.time_ns() // 1_000_000

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.RateLimited"]
    assert worker.failure()[1]["retryAfterSeconds"] == 7
    bucket = stack.client("dynamodb").get_item(
        TableName=stack.names["locks"], Key={"pk": {"S": f"bucket#tenant#{job_id}"}}, ConsistentRead=True
    )["Item"]
    assert bucket["ratePercent"]["N"] == "50" and float(bucket["tokens"]["N"]) == 0
    assert int(bucket["refilledAtMs"]["N"]) >= before_ms + 7_000  # nothing refills before the site's time


def _open_breaker(stack, site_key: str, probe: str | None = None) -> None:
    item = {"pk": {"S": f"breaker#{site_key}"}, "state": {"S": "OPEN"}, "failures": {"N": "5"}}
    item["openUntilMs"] = {"N": str(time.time_ns() // 1_000_000 + 60_000)}
    if probe:
        item["probeJobId"] = {"S": probe}
    stack.client("dynamodb").put_item(TableName=stack.names["locks"], Item=item)


def test_a_task_whose_site_breaker_is_open_loads_nothing(worker, stack, site):
    url = site.url("/page")
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": url}}]})
    site_key = url.split("//", 1)[1].split("/", 1)[0]  # the job's siteKey: host:port of its URL
    _open_breaker(stack, site_key)
    asked_before = len(site.requests)

    try:
        code, execution = worker.run(job_id)
    finally:  # the site is shared with the other tests
        stack.client("dynamodb").delete_item(
            TableName=stack.names["locks"], Key={"pk": {"S": f"breaker#{site_key}"}}
        )

    assert code == ExitCode.BY_ERROR["Site.BreakerOpen"] and execution["error"] == "Site.BreakerOpen"
    assert len(site.requests) == asked_before  # no page was loaded
    assert "circuit breaker of 127.0.0.1:" in worker.failure()[1]["message"]


def test_the_probe_job_loads_its_site_and_its_success_closes_the_breaker(worker, stack, site):
    url = site.url("/page")
    site_key = url.split("//", 1)[1].split("/", 1)[0]
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": url}}]})
    _open_breaker(stack, site_key, probe=job_id)

    code, _ = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED
    breaker = stack.client("dynamodb").get_item(
        TableName=stack.names["locks"], Key={"pk": {"S": f"breaker#{site_key}"}}, ConsistentRead=True
    )["Item"]
    assert breaker["state"]["S"] == "CLOSED" and breaker["failures"]["N"] == "0"
