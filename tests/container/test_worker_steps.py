"""The browse action: every step type in a real Chromium, its data and artifacts, its callback."""

from __future__ import annotations

import json

import pytest

from browserjobs.worker.errors import ExitCode
from tests.container.site import CSV
from tests.container.stack import TASK_ARN

pytestmark = pytest.mark.container


def test_every_step_type_runs_and_its_results_reach_s3_and_step_functions(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/page"), "waitUntil": "domcontentloaded"}},
                {"wait_for": {"state": "load"}},
                {"fill": {"selector": "#name", "value": "Ada"}},
                {"click": {"selector": "#greet"}},
                {"fill": {"selector": "#search", "value": "chromium"}},
                {"press": {"selector": "#search", "key": "Enter"}},
                {"click": {"selector": "#later"}},
                {"wait_for": {"selector": "#late", "timeoutMs": 5000}},
                {"wait_for": {"timeoutMs": 200}},
                {
                    "extract": {
                        "name": "page",
                        "fields": {
                            "title": {"selector": "#title"},
                            "greeting": {"selector": "#greeting", "text": True},
                            "searched": {"selector": "#searched"},
                            "late": {"selector": "#late"},
                            "items": {"selector": ".item", "all": True},
                            "links": {"selector": ".item", "attr": "href", "all": True},
                            "firstLink": {"selector": ".item", "attr": "href"},
                            "missing": {"selector": "#nothing-here"},
                            "missingAll": {"selector": ".nothing-here", "all": True},
                        },
                    }
                },
                {"extract": {"fields": {"heading": {"selector": "h1"}}}},
                {"screenshot": {"name": "viewport"}},
                {"screenshot": {"name": "whole.png", "fullPage": True}},
                {"screenshot": {"selector": "#title"}},
                {"pdf": {"name": "page"}},
                {"download": {"selector": "#csv"}},
                {"download": {"url": site.url("/file.csv"), "name": "fetched.csv"}},
            ]
        },
    )

    code, execution = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED
    assert execution["status"] == "SUCCEEDED"
    result = stack.result(job_id)
    assert result["status"] == "SUCCEEDED" and result["taskArn"] == TASK_ARN and "error" not in result
    assert result["data"] == {
        "page": {
            "title": "Hello fixture",
            "greeting": "Hi Ada",
            "searched": "searched chromium",
            "late": "arrived",
            "items": ["Alpha", "Beta", "Gamma"],
            "links": ["/a", "/b", "/c"],
            "firstLink": "/a",
            "missing": None,
            "missingAll": [],
        },
        "step-11": {"heading": "Hello fixture"},
    }
    assert [s["type"] for s in result["steps"]][:3] == ["goto", "wait_for", "fill"]
    assert len(result["steps"]) == 17 and all(s["status"] == "succeeded" for s in result["steps"])

    names = [a["name"] for a in result["artifacts"]]
    assert names == ["viewport.png", "whole.png", "step-14.png", "page.pdf", "report.csv", "fetched.csv"]
    viewport, whole = stack.artifact(job_id, "viewport.png"), stack.artifact(job_id, "whole.png")
    assert viewport["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n" and viewport["ContentType"] == "image/png"
    assert whole["ContentLength"] > 0 and _png_height(whole) > _png_height(
        stack.artifact(job_id, "viewport.png")
    )
    assert stack.artifact(job_id, "page.pdf")["Body"].read()[:5] == b"%PDF-"
    for name in ("report.csv", "fetched.csv"):
        assert stack.artifact(job_id, name)["Body"].read() == CSV
    for name in names:
        head = stack.artifact(job_id, name)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == stack.names["kms"]

    output = json.loads(execution["output"])
    assert output["status"] == "SUCCEEDED"
    assert output["resultUri"] == f"s3://{stack.names['bucket']}/jobs/{job_id}/result.json"
    assert output["artifacts"] == [a["uri"] for a in result["artifacts"]]
    assert output["data"] == result["data"] and output["durationMs"] == result["durationMs"] > 0
    assert [name for name, _ in worker.callbacks()] == ["SendTaskSuccess"]


def _png_height(obj) -> int:
    body = obj["Body"].read() if hasattr(obj["Body"], "read") else obj["Body"]
    return int.from_bytes(body[20:24], "big")


def test_large_extracted_data_stays_in_result_json_and_out_of_the_callback(worker, stack, site):
    fields = {f"f{n}": {"selector": ".item", "all": True} for n in range(50)}
    steps = [{"goto": {"url": site.url("/page")}}]
    steps += [{"extract": {"name": f"bulk{n}", "fields": fields}} for n in range(40)]
    job_id = stack.put_job("browse", {"steps": steps})

    code, execution = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED
    output = json.loads(execution["output"])
    assert "data" not in output  # over 16 KiB: the summary stays small
    assert len(stack.result(job_id)["data"]) == 40


def test_the_task_arn_is_registered_on_the_lock_and_the_record(worker, stack, site):
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": site.url("/page")}}]})

    code, _ = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED
    ddb = stack.client("dynamodb")
    record = ddb.get_item(TableName=stack.names["jobs"], Key={"jobId": {"S": job_id}})["Item"]
    lock = ddb.get_item(TableName=stack.names["locks"], Key={"pk": {"S": f"lock#tenant#{job_id}"}})["Item"]
    assert record["taskArn"]["S"] == lock["taskArn"]["S"] == TASK_ARN
    assert record["status"]["S"] == "RUNNING"  # the workflow, not the worker, records the outcome


def test_a_job_whose_lock_is_held_by_another_job_does_not_run(worker, stack, site):
    job_id = stack.put_job(
        "browse", {"steps": [{"goto": {"url": site.url("/page?must-not-load")}}]}, lock=False
    )
    stack.client("dynamodb").put_item(
        TableName=stack.names["locks"],
        Item={"pk": {"S": f"lock#tenant#{job_id}"}, "jobId": {"S": "someone-else"}},
    )

    code, execution = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Worker.Error"]
    assert execution["status"] == "FAILED" and execution["error"] == "Worker.Error"
    assert worker.failure()[1]["holder"] == "someone-else"
    assert "/page?must-not-load" not in site.requests


@pytest.mark.parametrize(
    ("action", "params", "path"),
    [
        ("browse", {"steps": [{"goto": {"url": "file:///etc/passwd"}}]}, "/steps/0/goto/url"),
        (
            "browse",
            {"steps": [{"click": {"selector": "#a"}, "fill": {"selector": "#b", "value": "x"}}]},
            "/steps/0",
        ),
        ("browse", {"steps": [{"wait_for": {"timeoutMs": 900000}}]}, "/steps/0/wait_for/timeoutMs"),
        ("browse", {"steps": []}, "/steps"),
        ("teleport", {}, None),
    ],
)
def test_invalid_params_fail_the_job_before_any_browsing(worker, stack, site, action, params, path):
    job_id = stack.put_job(action, params)

    code, execution = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Job.InvalidParams"]
    assert execution["status"] == "FAILED" and execution["error"] == "Job.InvalidParams"
    error, cause = worker.failure()
    assert error == "Job.InvalidParams"
    assert cause["resultUri"].endswith(f"/jobs/{job_id}/result.json")
    if path:
        assert any(error["path"] == "/params" + path for error in cause["errors"]), cause
    else:
        assert "unknown action 'teleport'" in cause["message"]
    result = stack.result(job_id)
    assert (
        result["status"] == "FAILED"
        and result["steps"] == []
        and result["error"]["Error"] == "Job.InvalidParams"
    )


def test_a_missing_job_record_is_a_worker_error(worker, stack):
    code, execution = worker.run("job-that-was-never-written")

    assert code == ExitCode.BY_ERROR["Worker.Error"]
    assert execution["error"] == "Worker.Error"
    assert "no record for job job-that-was-never-written" in worker.failure()[1]["message"]
    assert stack.result("job-that-was-never-written")["action"] is None
