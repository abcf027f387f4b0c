"""`browserjobs artifacts`: a job's evidence listed, presigned and downloaded, against a moto endpoint."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from browserjobs.ops.artifacts import derive_kind, job_artifacts, safe_file_name
from browserjobs.ops.cli import app
from browserjobs.ops.outputs import OperatorError, Target
from tests.cli.operator_stack import OperatorStack, png, start_job

pytestmark = pytest.mark.unit


def run(stack: OperatorStack, *args: str):
    return CliRunner().invoke(
        app, ["--endpoint-url", stack.url, "--stack", stack.name, *args], env={"COLUMNS": "200"}
    )


def put_evidence(stack: OperatorStack, job_id: str, with_result: bool = True) -> None:
    """A failed job's files as the worker leaves them; console.json is missing from result.json."""
    s3, bucket = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    prefix = f"jobs/{job_id}/artifacts/"
    s3.put_object(Bucket=bucket, Key=prefix + "failure-screenshot.png", Body=png(), ContentType="image/png")
    s3.put_object(Bucket=bucket, Key=prefix + "trace.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    s3.put_object(Bucket=bucket, Key=prefix + "console.json", Body=b"[]", ContentType="application/json")
    s3.put_object(Bucket=bucket, Key=prefix + "report.bin", Body=b"x")
    if with_result:
        listed = [("trace.zip", "trace", "application/zip"), ("report.bin", "download", "text/plain")]
        result = {
            "status": "FAILED",
            "artifacts": [
                {"name": n, "uri": f"s3://{bucket}/{prefix}{n}", "contentType": t, "bytes": 1, "kind": k}
                for n, k, t in listed
            ],
        }
        s3.put_object(Bucket=bucket, Key=f"jobs/{job_id}/result.json", Body=json.dumps(result).encode())


def test_kinds_are_derived_from_names_and_types():
    assert derive_kind("artifacts/trace.zip") == "trace"
    assert derive_kind("artifacts/failure-screenshot.png") == "failure-screenshot"
    assert derive_kind("artifacts/network.json", "application/json") == "network"
    assert derive_kind("artifacts/shot", "image/jpeg") == "screenshot"
    assert derive_kind("artifacts/invoice.pdf") == "pdf"
    assert derive_kind("artifacts/result.json") == "file"  # a job's own file, not the worker's result
    assert derive_kind("result.json") == "result"
    assert safe_file_name("artifacts/../../etc/passwd") == "artifacts__..__..__etc__passwd"
    assert safe_file_name("../.bashrc") == "__.bashrc"


def test_lists_kinds_from_the_result_and_the_prefix(stack):
    job_id, _ = start_job(stack, "acct-artifacts")
    put_evidence(stack, job_id)
    result = run(stack, "artifacts", job_id, "--json", "--expires", "60")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["artifacts"]}
    assert {name: row["kind"] for name, row in rows.items()} == {
        "artifacts/failure-screenshot.png": "failure-screenshot",  # not in result.json: derived
        "artifacts/trace.zip": "trace",
        "artifacts/console.json": "console",
        "artifacts/report.bin": "download",  # result.json's word wins
        "result.json": "result",
    }
    assert rows["artifacts/report.bin"]["content_type"] == "text/plain"
    shot = requests.get(rows["artifacts/failure-screenshot.png"]["url"], timeout=30)
    assert shot.status_code == 200 and shot.content == png()
    table = run(stack, "artifacts", job_id)
    assert table.exit_code == 0 and "failure-screenshot" in table.stdout
    assert "playwright show-trace" in table.stdout


def test_a_crashed_worker_s_files_are_listed_without_result_json(stack):
    job_id, _ = start_job(stack, "acct-crashed")
    put_evidence(stack, job_id, with_result=False)
    rows = json.loads(run(stack, "artifacts", job_id, "--json").stdout)["artifacts"]
    assert {row["kind"] for row in rows} == {"failure-screenshot", "trace", "console", "file"}


def test_download_refuses_to_overwrite_without_force(stack, tmp_path):
    job_id, _ = start_job(stack, "acct-download")
    put_evidence(stack, job_id)
    first = run(stack, "artifacts", job_id, "--download", str(tmp_path))
    assert first.exit_code == 0, first.output
    assert (tmp_path / "artifacts__failure-screenshot.png").read_bytes() == png()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "artifacts__console.json",
            "artifacts__failure-screenshot.png",
            "artifacts__report.bin",
            "artifacts__trace.zip",
            "result.json",
        ]
    )
    again = run(stack, "artifacts", job_id, "--download", str(tmp_path))
    assert again.exit_code == 2 and "--force" in again.stderr
    assert run(stack, "artifacts", job_id, "--download", str(tmp_path), "--force").exit_code == 0


def test_unknown_jobs_and_jobs_without_files_are_told_apart(stack):
    unknown = run(stack, "artifacts", "no-such-job")
    assert unknown.exit_code == 3 and "not found" in unknown.stderr
    job_id, _ = start_job(stack, "acct-empty")
    empty = run(stack, "artifacts", job_id)
    assert empty.exit_code == 3 and "has no artifacts" in empty.stderr
    assert run(stack, "artifacts", "..").exit_code == 2


def test_access_denied_names_the_permissions_the_operator_needs(stack, monkeypatch):
    target = Target(stack.name, stack.url)
    s3 = target.client("s3")

    def denied(**_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2")

    monkeypatch.setattr(s3, "get_object", denied)
    monkeypatch.setattr(s3, "list_objects_v2", denied)
    with pytest.raises(OperatorError) as raised:
        job_artifacts(target, "acct-denied")
    assert raised.value.exit_code == 1
    assert "access denied" in str(raised.value) and "kms:Decrypt" in str(raised.value)
