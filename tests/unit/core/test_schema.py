"""Job validation: the schema, the cross-field rule, the action registry, params and size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from browserjobs.core import schema
from browserjobs.core.config import Settings
from browserjobs.core.model import JobRejected, RejectionCode
from tests.conftest import ROOT, load_event

pytestmark = pytest.mark.unit

SETTINGS = Settings()


def job(**fields):
    return {
        "lockKey": "acct#1",
        "action": "browse",
        "params": {"steps": [{"goto": {"url": "https://a.example/"}}]},
        **fields,
    }


def rejection(candidate, settings=SETTINGS) -> JobRejected:
    with pytest.raises(JobRejected) as caught:
        schema.check_job(candidate, settings)
    return caught.value


@pytest.fixture
def registry(tmp_path: Path, monkeypatch) -> Path:
    """A schemas folder with the real job schema and one test action ('ping', params {host})."""
    shutil.copy(ROOT / "schemas" / "job.schema.json", tmp_path / "job.schema.json")
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "ping.schema.json").write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "additionalProperties": False,
                "required": ["host"],
                "properties": {"host": {"type": "string", "minLength": 1}},
            }
        )
    )
    monkeypatch.setenv("SCHEMAS_DIR", str(tmp_path))
    return tmp_path


def test_the_job_schema_is_valid_2020_12():
    from jsonschema import Draft202012Validator

    document = json.loads((ROOT / "schemas" / "job.schema.json").read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"].endswith("2020-12/schema")
    assert document["additionalProperties"] is False


def test_defaults_fill_every_optional_field():
    checked = schema.check_job(job(), Settings(default_timeout_seconds=600, default_heartbeat_seconds=20))

    assert checked["rateKey"] == "acct#1"
    assert checked["onConflict"] == "wait"
    assert (checked["timeoutSeconds"], checked["heartbeatSeconds"]) == (600, 20)
    assert checked["meta"] == {}


def test_trace_defaults_to_the_stacks_and_takes_only_the_policies():
    assert schema.check_job(job(), SETTINGS)["trace"] == "on-failure"
    assert schema.check_job(job(), Settings(default_trace="off"))["trace"] == "off"
    assert schema.check_job(job(trace="always"), SETTINGS)["trace"] == "always"
    assert rejection(job(trace="on-error"), SETTINGS).errors[0]["path"] == "/trace"


def test_dispatch_defaults_to_the_stacks_and_pool_needs_a_pool():
    assert schema.check_job(job(), SETTINGS)["dispatch"] == "task"
    with_pool = Settings(default_dispatch="pool", pool_enabled=True)
    assert schema.check_job(job(), with_pool)["dispatch"] == "pool"
    assert schema.check_job(job(dispatch="task"), with_pool)["dispatch"] == "task"

    caught = rejection(job(dispatch="pool"), SETTINGS)

    assert caught.code == RejectionCode.INVALID_JOB and "no worker pool" in caught.message
    assert caught.errors[0]["path"] == "/dispatch"
    assert rejection(job(dispatch="warm"), with_pool).errors[0]["path"] == "/dispatch"


def test_whole_number_floats_become_integers():
    checked = schema.check_job(job(timeoutSeconds=120.0, heartbeatSeconds=30.0), SETTINGS)

    assert (type(checked["timeoutSeconds"]), type(checked["heartbeatSeconds"])) == (int, int)


@pytest.mark.parametrize(
    ("candidate", "path"),
    [
        ({"action": "browse"}, "/"),
        (job(jobId="has space"), "/jobId"),
        (job(jobId="x" * 81), "/jobId"),
        (job(lockKey=""), "/lockKey"),
        (job(lockKey="a\nb"), "/lockKey"),
        (job(rateKey="r" * 257), "/rateKey"),
        (job(onConflict="sometimes"), "/onConflict"),
        (job(timeoutSeconds=9), "/timeoutSeconds"),
        (job(timeoutSeconds=86401), "/timeoutSeconds"),
        (job(heartbeatSeconds=1), "/heartbeatSeconds"),
        (job(session="../other"), "/session"),
        (job(session=".."), "/session"),
        (job(session="."), "/session"),
        (job(meta={"k": 1}), "/meta/k"),
        (job(meta={f"k{n}": "v" for n in range(33)}), "/meta"),
        (job(params=[]), "/params"),
        (job(extra=True), "/"),
    ],
)
def test_each_schema_violation_names_its_path(candidate, path):
    caught = rejection(candidate)

    assert caught.code == "INVALID_JOB"
    assert path in {e["path"] for e in caught.errors}


def test_a_non_object_is_rejected_as_such():
    assert rejection(["a", "list"]).message == "a job must be a JSON object, got list"


def test_heartbeat_must_be_below_the_timeout_after_defaults():
    caught = rejection(job(timeoutSeconds=30), Settings(default_heartbeat_seconds=60))

    assert caught.errors == [
        {"path": "/heartbeatSeconds", "message": "60 is not less than timeoutSeconds 30"}
    ]


def test_an_unregistered_action_is_rejected_naming_the_registered_ones(registry):
    caught = rejection(job(action="teleport"))

    assert caught.code == "UNKNOWN_ACTION"
    assert caught.errors == [{"path": "/action", "message": "registered actions: ping"}]


def test_params_are_validated_by_the_action_schema(registry):
    caught = rejection(job(action="ping", params={"host": "", "port": 1}))

    assert caught.code == "INVALID_PARAMS"
    assert {e["path"] for e in caught.errors} == {"/params", "/params/host"}
    assert schema.check_job(job(action="ping", params={"host": "a"}), SETTINGS)["params"] == {"host": "a"}


def test_without_any_action_schema_actions_are_accepted_unchecked(tmp_path, monkeypatch):
    shutil.copy(ROOT / "schemas" / "job.schema.json", tmp_path / "job.schema.json")
    monkeypatch.setenv("SCHEMAS_DIR", str(tmp_path))

    assert schema.registered_actions() is None
    assert schema.check_job(job(action="anything", params={"x": 1}), SETTINGS)["action"] == "anything"


def test_a_job_over_64_kib_is_rejected(registry):
    caught = rejection(job(action="ping", params={"host": "h" * (schema.MAX_JOB_BYTES + 1)}))

    assert caught.code == "JOB_TOO_LARGE"


def test_schemas_are_the_packages_own_data():
    """The Lambda layer, the worker image and a wheel all carry them inside browserjobs.core."""
    assert schema.schemas_dir() == Path(schema.__file__).resolve().parent / "schemas"
    assert (schema.schemas_dir() / "actions" / "browse.schema.json").is_file()


def test_schemas_dir_overrides_the_packages_schemas(tmp_path, monkeypatch):
    shutil.copytree(schema.schemas_dir(), tmp_path / "schemas")
    monkeypatch.setenv("SCHEMAS_DIR", str(tmp_path / "schemas"))

    assert schema.schemas_dir() == tmp_path / "schemas"


def test_a_missing_schema_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEMAS_DIR", str(tmp_path))
    monkeypatch.setattr(schema, "__file__", str(tmp_path / "core" / "schema.py"))

    with pytest.raises(FileNotFoundError, match=r"job\.schema\.json not found"):
        schema.schemas_dir()


@pytest.mark.parametrize("name", ["intake-direct", "intake-sqs", "intake-schedule"])
def test_the_sample_jobs_are_valid_against_the_real_schemas(name):
    sample = load_event(name)
    body = json.loads(sample["Records"][0]["body"]) if "Records" in sample else sample.get("detail", sample)

    assert schema.check_job(body, SETTINGS)["action"] == "browse"
