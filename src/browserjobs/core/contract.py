"""The names, limits and defaults every part of browserjobs shares, each defined here once.

The workflow (statemachines/job.asl.json), the handlers, the worker, the operator tools and the local stack
import them from here; docs/CONTRACTS.md describes them and tests/unit/core/test_contract.py checks the
workflow and the code against them.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorName(StrEnum):
    """The errors a job can end with: raised by the worker, the crash hook, the claim or the workflow."""

    # The worker's (src/browserjobs/worker/errors.py gives each its exit code).
    INVALID_PARAMS = "Job.InvalidParams"
    JOB_INTERRUPTED = "Job.Interrupted"
    WORKER_INTERRUPTED = "Worker.Interrupted"
    WORKER_TIMEOUT = "Worker.Timeout"
    # A step other than a navigation waited its whole timeoutMs (a selector never appeared or never became
    # actionable, a download never came): the page is not what the job expects. Not retried, and not a
    # site failure for its breaker.
    STEP_TIMEOUT = "Job.StepTimeout"
    SITE_CLIENT_ERROR = "Site.ClientError"
    SITE_SERVER_ERROR = "Site.ServerError"
    SITE_RATE_LIMITED = "Site.RateLimited"
    # A navigation the site never answered: no connection (refused, reset, no such host), or no response
    # within the step's timeout. Retried by the workflow, with a longer navigation timeout each time.
    SITE_UNREACHABLE = "Site.Unreachable"
    SITE_TIMEOUT = "Site.Timeout"
    # The site's circuit breaker was open when the task started: the job goes back to its claim to wait.
    SITE_BREAKER_OPEN = "Site.BreakerOpen"
    BROWSER_CRASHED = "Browser.Crashed"
    WORKER_ERROR = "Worker.Error"
    # The crash hook's, for a task that stopped without a callback (a Spot reclaim is WORKER_INTERRUPTED).
    WORKER_CRASHED = "Worker.Crashed"
    # The claim function's: its exception's class name is the error Step Functions sees.
    CLAIM_CONTENTION = "ClaimContention"
    SITE_UNAVAILABLE = "SiteUnavailable"  # the site's breaker stayed open for the job's whole timeout
    # The workflow's own Fail states.
    LOCK_WAIT_TIMEOUT = "Job.LockWaitTimeout"
    CLAIM_UNEXPECTED_OUTCOME = "Claim.UnexpectedOutcome"
    # The cleanup's, for an execution that ended without recording its job, or a lease that ran out.
    EXECUTION_FAILED = "Execution.Failed"
    EXECUTION_TIMED_OUT = "Execution.TimedOut"
    EXECUTION_ABORTED = "Execution.Aborted"
    LEASE_EXPIRED = "Lease.Expired"


# SendTaskFailure's limits: error at most 256 characters, cause at most 32,768
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html).
MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32_768

# Step Functions' answers to a callback or heartbeat whose task token is closed already: the task completed,
# timed out, or the token is unknown (API_SendTaskSuccess / API_SendTaskFailure / API_SendTaskHeartbeat).
TOKEN_CLOSED = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class JobStatus(StrEnum):
    """A job record's `status` (JobsTable)."""

    SUBMITTED = "SUBMITTED"
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    INTERRUPTED = "INTERRUPTED"
    REJECTED = "REJECTED"


FINAL_JOB_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.INTERRUPTED, JobStatus.REJECTED}
)
CLAIMABLE_JOB_STATUSES = frozenset({JobStatus.SUBMITTED, JobStatus.WAITING})

# Completion events (docs/CONTRACTS.md): every write of a final status also sets the record's `eventType`,
# which the stack's pipe (JobsTable's stream to the event bus) uses as the event's detail-type, and its
# `completion` map, whose fields (strings, "" where they do not apply) the event's detail carries at its top
# level: a pipe's input template can only name paths, so every final record has all of them.
JOB_EVENT_SOURCE = "browserjobs"
COMPLETION_FIELDS = ("lockKey", "resultUri", "error", "cause")
JOB_EVENT_DETAIL_TYPES = {
    JobStatus.SUCCEEDED: "Job Succeeded",
    JobStatus.FAILED: "Job Failed",
    JobStatus.TIMED_OUT: "Job Timed Out",
    JobStatus.REJECTED: "Job Rejected",
    JobStatus.INTERRUPTED: "Job Interrupted",
}


def completion(lock_key: str = "", result_uri: str = "", error: str = "", cause: str = "") -> dict[str, str]:
    """A final record's `completion` map: the completion event's flat fields."""
    return {"lockKey": lock_key, "resultUri": result_uri, "error": error, "cause": cause}


class ExecutionStatus(StrEnum):
    """A Step Functions execution's status (API_DescribeExecution; PENDING_REDRIVE while a redrive starts)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"


FINAL_EXECUTION_STATUSES = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED}
)

# A job's defaults when it names none (the stack parameters DefaultTimeoutSeconds and
# DefaultHeartbeatSeconds default to the same values).
DEFAULT_TIMEOUT_SECONDS = 900
DEFAULT_HEARTBEAT_SECONDS = 60
# How a job reaches a browser: a Fargate task of its own, or a worker of the pool service.
DISPATCH_MODES = ("task", "pool")
# When the worker keeps a job's Playwright trace (the job's `trace`, the stack's DefaultTrace): only when the
# job fails, always, or never; the first is the default.
TRACE_POLICIES = ("on-failure", "always", "off")

# The local stack (browserjobs.emulator) as its clients reach it: `browserjobs --local`, the harness, the
# processes the stack starts. moto accepts any credentials; these make it plain that nothing reaches AWS.
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 4566
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # nosec B105
