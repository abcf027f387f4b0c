"""The task ARN on the lock, and the leases a retried task (Fargate Spot) extends while registering it."""

from __future__ import annotations

import time
import uuid

import pytest

from browserjobs.core.claim import LEASE_ITEM_TTL_PADDING_SECONDS
from browserjobs.core.clock import iso_seconds
from browserjobs.core.ddb import from_item, to_item
from browserjobs.worker.errors import ErrorName, JobFailure
from browserjobs.worker.jobs import DuplicateDispatch, Job, register_task
from tests.container.stack import TASK_ARN

pytestmark = pytest.mark.unit

GRACE = 120
CLAIMED_LONG_AGO = 1_700_000_000  # the first attempt's claim: its lease is long over


def _claimed(stack, *, slot_holder: str | None = None, lock_holder: str | None = None) -> Job:
    """A job record, its lock and its slot as the claim (browserjobs.core.claim) writes them."""
    lock_key = f"tenant#{uuid.uuid4().hex[:8]}"
    job = Job(f"job-{uuid.uuid4().hex[:12]}", lock_key, lock_key, "browse", {}, 600, None)
    ddb, locks = stack.client("dynamodb"), stack.names["locks"]
    ddb.put_item(TableName=stack.names["jobs"], Item=to_item({"jobId": job.job_id, "lockKey": job.lock_key}))
    lease = CLAIMED_LONG_AGO + job.timeout_seconds + GRACE
    ddb.put_item(
        TableName=locks,
        Item=to_item(
            {
                "pk": f"lock#{job.lock_key}",
                "jobId": lock_holder or job.job_id,
                "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e",
                "slot": "slot#3",
                "claimedAt": "2023-11-14T22:13:20.000Z",
                "leaseExpiresAt": iso_seconds(lease),
                "leaseExpiresAtEpoch": lease,
                "expiresAt": lease + LEASE_ITEM_TTL_PADDING_SECONDS,
            }
        ),
    )
    ddb.put_item(
        TableName=locks,
        Item=to_item(
            {
                "pk": "slot#3",
                "jobId": slot_holder or job.job_id,
                "lockKey": job.lock_key,
                "leaseExpiresAtEpoch": lease,
                "expiresAt": lease + LEASE_ITEM_TTL_PADDING_SECONDS,
            }
        ),
    )
    return job


def _item(stack, pk: str) -> dict:
    return from_item(
        stack.client("dynamodb").get_item(TableName=stack.names["locks"], Key={"pk": {"S": pk}})["Item"]
    )


def _register(stack, job: Job) -> None:
    register_task(
        stack.client("dynamodb"),
        locks_table=stack.names["locks"],
        jobs_table=stack.names["jobs"],
        job=job,
        task_arn=TASK_ARN,
        lease_grace_seconds=GRACE,
    )


def test_registering_the_task_extends_the_lock_and_slot_leases(stack):
    """A Spot retry starts a new task long after the claim: the leases must cover it from now on
    (now + timeoutSeconds + LEASE_GRACE_SECONDS), in the fields and formats browserjobs.core.claim writes."""
    job = _claimed(stack)
    before = int(time.time())

    _register(stack, job)

    after = int(time.time()) + 1
    lock, slot = _item(stack, f"lock#{job.lock_key}"), _item(stack, "slot#3")
    epoch = int(lock["leaseExpiresAtEpoch"])
    assert before + job.timeout_seconds + GRACE <= epoch <= after + job.timeout_seconds + GRACE
    assert lock["leaseExpiresAt"] == iso_seconds(epoch)  # the ASL compares this string with EnteredTime
    assert int(lock["expiresAt"]) == epoch + LEASE_ITEM_TTL_PADDING_SECONDS
    assert lock["taskArn"] == TASK_ARN and lock["jobId"] == job.job_id and lock["slot"] == "slot#3"
    assert int(slot["leaseExpiresAtEpoch"]) == epoch
    assert int(slot["expiresAt"]) == epoch + LEASE_ITEM_TTL_PADDING_SECONDS
    assert "leaseExpiresAt" not in slot  # browserjobs.core keeps only the number on a slot


def test_a_slot_taken_over_by_another_job_is_left_alone(stack):
    job = _claimed(stack, slot_holder="job-other")

    _register(stack, job)

    assert int(_item(stack, f"lock#{job.lock_key}")["leaseExpiresAtEpoch"]) > time.time()
    slot = _item(stack, "slot#3")
    assert slot["jobId"] == "job-other"
    assert int(slot["leaseExpiresAtEpoch"]) == CLAIMED_LONG_AGO + job.timeout_seconds + GRACE


def test_a_lock_held_by_another_job_is_neither_registered_nor_extended(stack):
    job = _claimed(stack, lock_holder="job-other", slot_holder="job-other")

    with pytest.raises(JobFailure) as failure:
        _register(stack, job)

    assert failure.value.error == ErrorName.WORKER_ERROR and failure.value.details["holder"] == "job-other"
    lock = _item(stack, f"lock#{job.lock_key}")
    assert "taskArn" not in lock
    assert int(lock["leaseExpiresAtEpoch"]) == CLAIMED_LONG_AGO + job.timeout_seconds + GRACE


def _register_dispatch(stack, job: Job, message_id: str) -> None:
    register_task(
        stack.client("dynamodb"),
        locks_table=stack.names["locks"],
        jobs_table=stack.names["jobs"],
        job=job,
        task_arn=TASK_ARN,
        lease_grace_seconds=GRACE,
        dispatch_id=message_id,
    )


def test_a_second_delivery_of_a_dispatch_message_is_not_registered_again(stack):
    """SQS delivers a message at least once (Amazon SQS Developer Guide, "At-least-once delivery"): the
    pool worker's registration carries the MessageId, and a second delivery of it must not run the job."""
    job = _claimed(stack)
    _register_dispatch(stack, job, "message-1")

    with pytest.raises(DuplicateDispatch):
        _register_dispatch(stack, job, "message-1")

    assert _item(stack, f"lock#{job.lock_key}")["dispatchId"] == "message-1"


def test_a_retry_sends_a_new_message_which_registers_afresh(stack):
    job = _claimed(stack)
    _register_dispatch(stack, job, "message-1")

    _register_dispatch(stack, job, "message-2")

    assert _item(stack, f"lock#{job.lock_key}")["dispatchId"] == "message-2"


def test_a_dispatch_for_a_lock_held_by_another_job_fails_as_for_a_task(stack):
    job = _claimed(stack, lock_holder="job-other")

    with pytest.raises(JobFailure) as failure:
        _register_dispatch(stack, job, "message-1")

    assert failure.value.details["holder"] == "job-other"
