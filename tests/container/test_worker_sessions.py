"""Sessions per account (storage state in S3 under KMS, indexed in SessionsTable) and form_login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browserjobs.core.sessions import normalise_cookies
from browserjobs.worker.errors import ExitCode
from tests.container.conftest import start_worker_process
from tests.container.site import PASSWORD, USERNAME

pytestmark = pytest.mark.container


def test_a_session_round_trips_through_s3_under_the_project_key(stack):
    state = {
        "cookies": [
            {
                "name": "sid",
                "value": "abc",
                "domain": "example.com",
                "path": "/",
                "expires": -1,
                "httpOnly": True,
                "secure": True,
                "sameSite": "Lax",
            }
        ],
        "origins": [{"origin": "https://example.com", "localStorage": [{"name": "k", "value": "v"}]}],
    }
    store = stack.session_store()

    uri = store.save("acme-ops", state, updated_by="job-1")

    assert uri == f"s3://{stack.names['bucket']}/sessions/acme-ops/state.json"
    head = stack.client("s3").head_object(Bucket=stack.names["bucket"], Key="sessions/acme-ops/state.json")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == stack.names["kms"]
    item = stack.client("dynamodb").get_item(
        TableName=stack.names["sessions"], Key={"account": {"S": "acme-ops"}}
    )
    assert item["Item"]["s3Key"]["S"] == "sessions/acme-ops/state.json"
    assert item["Item"]["updatedBy"]["S"] == "job-1" and item["Item"]["updatedAt"]["S"].endswith("Z")
    assert store.load("acme-ops") == state
    assert store.load("nobody-yet") is None


def test_an_account_name_cannot_escape_its_prefix(stack):
    with pytest.raises(ValueError, match="invalid account"):
        stack.session_store().save("../jobs", {"cookies": [], "origins": []}, updated_by="x")


def test_cookies_from_a_browser_extension_export_become_playwright_cookies():
    exported = [
        {
            "name": "sid",
            "value": "1",
            "domain": ".example.com",
            "expirationDate": 1893456000.5,
            "hostOnly": False,
            "httpOnly": True,
            "sameSite": "no_restriction",
            "secure": True,
            "session": False,
        },
        {
            "name": "pref",
            "value": "dark",
            "domain": "example.com",
            "session": True,
            "sameSite": "unspecified",
        },
    ]

    assert normalise_cookies(exported) == [
        {
            "name": "sid",
            "value": "1",
            "domain": ".example.com",
            "path": "/",
            "expires": 1893456000.5,
            "httpOnly": True,
            "secure": True,
            "sameSite": "None",
        },
        {
            "name": "pref",
            "value": "dark",
            "domain": "example.com",
            "path": "/",
            "expires": -1,
            "httpOnly": False,
            "secure": False,
            "sameSite": "Lax",
        },
    ]
    assert normalise_cookies({"cookies": exported[:1], "origins": []})[0]["name"] == "sid"
    with pytest.raises(ValueError, match="cookie 0: needs string name and value, and a domain"):
        normalise_cookies([{"name": "x", "value": "y"}])
    with pytest.raises(ValueError, match="unknown sameSite"):
        normalise_cookies([{"name": "x", "value": "y", "domain": "d", "sameSite": "sometimes"}])


def _login_params(site) -> dict:
    return {
        "checkUrl": site.url("/account"),
        "loggedInSelector": "#account-name",
        "loginUrl": site.url("/login"),
        "usernameSelector": "#username",
        "passwordSelector": "#password",
        "submitSelector": "#submit",
        "credentialsSecretId": "browserjobs/acme-ops",
        "checkTimeoutMs": 1000,
    }


def _secret(stack, password: str = PASSWORD) -> None:
    stack.client("secretsmanager").create_secret(
        Name="browserjobs/acme-ops", SecretString=json.dumps({"username": USERNAME, "password": password})
    )


def test_form_login_logs_in_once_then_reuses_the_stored_session(worker, stack, site):
    _secret(stack)
    logins_before = site.logins

    first = stack.put_job("form_login", _login_params(site), session="acme-ops")
    code, execution = worker.run(first)

    assert code == ExitCode.SUCCEEDED, worker.calls
    assert site.logins == logins_before + 1
    assert json.loads(execution["output"])["data"] == {
        "login": {"sessionReused": False, "url": site.url("/account")}
    }
    result = stack.result(first)
    assert result["session"] == {"account": "acme-ops", "loaded": False, "saved": True}
    stored = stack.session_store().load("acme-ops")
    assert [c["name"] for c in stored["cookies"]] == ["sid"]
    assert PASSWORD not in json.dumps(result)

    second = stack.put_job("form_login", _login_params(site), session="acme-ops")
    worker.calls.clear()
    code, execution = worker.run(second)

    assert code == ExitCode.SUCCEEDED
    assert site.logins == logins_before + 1  # no second login
    assert json.loads(execution["output"])["data"]["login"]["sessionReused"] is True
    assert stack.result(second)["session"] == {"account": "acme-ops", "loaded": True, "saved": True}
    assert [s["type"] for s in stack.result(second)["steps"]] == ["check_session"]


def test_a_rejected_login_is_a_client_error_and_the_password_stays_secret(worker, stack, site):
    _secret(stack, password="wrong-" + PASSWORD)
    job_id = stack.put_job("form_login", {**_login_params(site), "timeoutMs": 2000}, session="acme-ops")

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.ClientError"]
    _, cause = worker.failure()
    assert cause["message"].startswith("login failed: #account-name not visible")
    assert cause["step"] == {"index": 6, "type": "confirm_login"}
    assert PASSWORD not in json.dumps(stack.result(job_id)) and PASSWORD not in json.dumps(cause)
    assert stack.session_store().load("acme-ops") is None  # nothing saved from a failed job


def test_form_login_needs_an_account_to_keep_the_session_in(worker, stack, site):
    job_id = stack.put_job("form_login", _login_params(site))

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Job.InvalidParams"]
    assert "needs the job's `session`" in worker.failure()[1]["message"]


def _upload_command(stack, cookies: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ARTIFACTS_BUCKET": stack.names["bucket"],
        "SESSIONS_TABLE": stack.names["sessions"],
        "KMS_KEY_ID": stack.names["kms"],
    }
    command = [
        sys.executable,
        "-m",
        "browserjobs.core.sessions",
        "upload",
        "--account",
        "acme-ops",
        "--cookies",
        str(cookies),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_cookies_uploaded_with_the_command_log_the_next_job_in(server_stack, site, tmp_path):
    site.sessions.add("uploaded-sid")
    cookies = tmp_path / "cookies.json"
    cookies.write_text(
        json.dumps(
            [{"name": "sid", "value": "uploaded-sid", "domain": "127.0.0.1", "path": "/", "sameSite": "lax"}]
        )
    )

    upload = _upload_command(server_stack, cookies)

    assert upload.returncode == 0, upload.stderr
    assert json.loads(upload.stdout) == {
        "account": "acme-ops",
        "uri": f"s3://{server_stack.names['bucket']}/sessions/acme-ops/state.json",
    }
    logins_before = site.logins
    job_id = server_stack.put_job("form_login", _login_params(site), session="acme-ops")
    task = server_stack.start_task()
    process = start_worker_process(server_stack.worker_env(job_id, task))
    output, _ = process.communicate(timeout=90)
    assert process.returncode == ExitCode.SUCCEEDED, output
    assert server_stack.result(job_id)["data"]["login"]["sessionReused"] is True
    assert site.logins == logins_before  # no credentials needed, none read: there is no secret here


def test_the_upload_command_explains_what_it_cannot_use(server_stack, tmp_path):
    missing = _upload_command(server_stack, tmp_path / "missing.json")
    assert missing.returncode == 2 and "error:" in missing.stderr and "missing.json" in missing.stderr
    not_cookies = tmp_path / "not-cookies.json"
    not_cookies.write_text(json.dumps({"hello": "world"}))
    wrong = _upload_command(server_stack, not_cookies)
    assert wrong.returncode == 2 and "expected a list of cookies" in wrong.stderr
    assert server_stack.session_store().load("acme-ops") is None


def test_an_unreadable_stored_session_fails_the_job_with_what_is_wrong(worker, stack, site):
    stack.client("s3").put_object(
        Bucket=stack.names["bucket"], Key="sessions/acme-ops/state.json", Body=b"{oops"
    )
    stack.client("dynamodb").put_item(
        TableName=stack.names["sessions"],
        Item={"account": {"S": "acme-ops"}, "s3Key": {"S": "sessions/acme-ops/state.json"}},
    )
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": site.url("/page")}}]}, session="acme-ops")

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Worker.Error"]
    assert (
        worker.failure()[1]["message"]
        == "ValueError: sessions/acme-ops/state.json is not a Playwright storage state"
    )
    assert stack.result(job_id)["session"] == {"account": "acme-ops", "loaded": False, "saved": False}
