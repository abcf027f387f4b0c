"""Small shared pieces: settings, ids, keys, execution input, timestamps, DLQ message shape."""

from __future__ import annotations

import re

import pytest

from browserjobs.core.clock import iso_ms, iso_seconds
from browserjobs.core.config import ConfigError, Settings
from browserjobs.core.dlq import dlq_message
from browserjobs.core.ids import (
    derived_job_id,
    direct_job_id,
    email_job_id,
    s3_job_id,
    schedule_job_id,
    sqs_job_id,
)
from browserjobs.core.keys import breaker_key, bucket_key, lock_key, slot_key, slot_keys, slot_number
from browserjobs.core.model import Status, execution_arn, execution_input, with_defaults
from tests.clocks import FixedClock

pytestmark = pytest.mark.unit


def test_settings_read_names_and_numbers_with_defaults():
    settings = Settings.from_env({"JOBS_TABLE": "jobs", "RATE_LIMIT_PER_MINUTE": "30"})

    assert settings.jobs_table == "jobs"
    assert settings.rate_limit_per_minute == 30
    assert (settings.rate_burst, settings.max_concurrent_tasks, settings.lease_grace_seconds) == (10, 10, 120)
    assert (settings.default_timeout_seconds, settings.default_heartbeat_seconds) == (900, 60)
    assert settings.job_retention_days == 90


def test_dispatch_settings_default_to_tasks_without_a_pool():
    assert (Settings.from_env({}).default_dispatch, Settings.from_env({}).pool_enabled) == ("task", False)
    pool = Settings.from_env({"DEFAULT_DISPATCH": "pool", "POOL_ENABLED": "true"})
    assert (pool.default_dispatch, pool.pool_enabled) == ("pool", True)
    with pytest.raises(ConfigError, match=re.escape("DEFAULT_DISPATCH must be one of task|pool, got 'warm'")):
        Settings.from_env({"DEFAULT_DISPATCH": "warm"})


def test_the_trace_setting_defaults_to_on_failure_and_takes_only_the_policies():
    assert Settings.from_env({}).default_trace == "on-failure"
    assert Settings.from_env({"DEFAULT_TRACE": " always "}).default_trace == "always"
    with pytest.raises(
        ConfigError, match=re.escape("DEFAULT_TRACE must be one of on-failure|always|off, got 'never'")
    ):
        Settings.from_env({"DEFAULT_TRACE": "never"})


@pytest.mark.parametrize(("value", "message"), [("ten", "must be an integer"), ("0", "must be >= 1")])
def test_bad_numbers_are_named(value, message):
    with pytest.raises(ConfigError, match=f"RATE_BURST {message}"):
        Settings.from_env({"RATE_BURST": value})


def test_require_names_every_missing_variable():
    with pytest.raises(ConfigError, match="JOBS_TABLE, STATE_MACHINE_ARN"):
        Settings.from_env({}).require("jobs_table", "state_machine_arn")
    with pytest.raises(ConfigError, match="unknown settings: jobs"):
        Settings.from_env({}).require("jobs")


def test_derived_ids_are_prefixed_sha256_and_deterministic():
    ids = [
        sqs_job_id("m-1"),
        s3_job_id("b", "k", "e"),
        email_job_id(" <x@y> "),
        schedule_job_id("arn:rule", "2025-01-01T00:00:00Z"),
        direct_job_id({"b": 1, "a": 2}),
    ]

    assert [i.split("-")[0] for i in ids] == ["sqs", "s3", "email", "sched", "direct"]
    assert all(len(i.split("-", 1)[1]) == 40 for i in ids)
    assert email_job_id("<x@y>") == ids[2]
    assert direct_job_id({"a": 2, "b": 1}) == ids[4]
    assert derived_job_id("s3", "b", "k", "e") == ids[1] != derived_job_id("s3", "b", "k", "f")


def test_keys():
    assert (lock_key("a#b"), bucket_key("r"), slot_key(3)) == ("lock#a#b", "bucket#r", "slot#3")
    assert breaker_key("shop.example:8443") == "breaker#shop.example:8443"
    assert slot_keys(2) == ["slot#0", "slot#1"]
    assert slot_number("slot#12") == 12
    with pytest.raises(ValueError, match="not a slot key"):
        slot_number("lock#12")


def test_execution_input_follows_the_contract():
    settings = Settings(lock_wait_initial_seconds=2, lock_wait_max_delay_seconds=20, lock_wait_max_attempts=9)
    params = {"steps": [{"goto": {"url": "https://shop.example/a"}}]}
    job = with_defaults({"jobId": "j", "lockKey": "l", "action": "browse", "params": params}, settings)

    assert execution_input(job, settings) == {
        "jobId": "j",
        "lockKey": "l",
        "rateKey": "l",
        "siteKey": "shop.example",  # the first URL's host: the site's circuit breaker
        "dispatch": "task",  # the stack's DefaultDispatch
        "onConflict": "wait",
        "timeoutSeconds": 900,
        "heartbeatSeconds": 60,
        "lockWait": {"attempt": 0, "delaySeconds": 2, "maxAttempts": 9, "maxDelaySeconds": 20},
    }


def test_execution_arn_is_derived_from_the_state_machine_arn():
    machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:Jobs-1"

    assert execution_arn(machine, "job-1") == "arn:aws:states:eu-west-1:123456789012:execution:Jobs-1:job-1"
    with pytest.raises(ValueError, match="not a state machine ARN"):
        execution_arn("arn:aws:lambda:x", "job-1")


def test_timestamps_are_utc_with_z():
    clock = FixedClock(1_736_933_400_007)
    clock.advance(1.5)

    assert iso_ms(clock.now_ms()) == "2025-01-15T09:30:01.507Z"
    assert iso_seconds(1_736_933_400) == "2025-01-15T09:30:00Z"


def test_only_failed_and_timed_out_jobs_have_dlq_messages():
    common = {
        "job_id": "j",
        "error": {"Error": "E", "Cause": "C"},
        "execution_arn": None,
        "lock_key": "l",
        "failed_at": "t",
        "source": "cleanup",
    }

    assert dlq_message(status=Status.TIMED_OUT, **common)["status"] == "TIMED_OUT"
    with pytest.raises(ValueError, match="INTERRUPTED"):
        dlq_message(status=Status.INTERRUPTED, **common)
