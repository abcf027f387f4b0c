"""Sessions per account (storage state in S3 under KMS, indexed in SessionsTable) and form_login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browserjobs.worker.errors import ExitCode
from tests.container.conftest import start_worker_process
from tests.container.site import PASSWORD, USERNAME

pytestmark = pytest.mark.container


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
