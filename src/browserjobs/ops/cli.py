"""browserjobs: the operator CLI, the same against AWS and against the local stack.

Exit codes: 0 ok, 1 failed (an AWS error, a failed job), 2 bad input, 3 not found, 4 deadline passed.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from browserjobs.core.contract import DEFAULT_TIMEOUT_SECONDS, FINAL_EXECUTION_STATUSES
from browserjobs.core.ids import sqs_job_id
from browserjobs.core.sessions import SessionStore
from browserjobs.core.stack_names import default_stack_name
from browserjobs.ops import artifacts as artifact_store
from browserjobs.ops import breakers, dlq, doctor, intake_dlq, jobs, locks, pool
from browserjobs.ops.outputs import LOCAL_ENDPOINT, OperatorError, Target
from browserjobs.ops.timeline import build_timeline, event_summary

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _OperatorErrors(TyperGroup):
    """Every command's OperatorError becomes one red line on stderr and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OperatorError as error:
            err.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(error.exit_code) from None
        except (BotoCoreError, ClientError) as error:  # an AWS call no command expected to fail
            err.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_OperatorErrors,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Operate browserjobs: submit jobs, follow executions, redrive the DLQ.",
)
dlq_app = typer.Typer(help="The job dead-letter queue.", no_args_is_help=True)
locks_app = typer.Typer(help="Locks and slots (leases) in LocksTable.", no_args_is_help=True)
sessions_app = typer.Typer(help="Stored browser sessions.", no_args_is_help=True)
breakers_app = typer.Typer(help="Sites' circuit breakers.", no_args_is_help=True)
pool_app = typer.Typer(help="The warm worker pool (dispatch pool).", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(pool_app, name="pool")
app.add_typer(locks_app, name="locks")
app.add_typer(sessions_app, name="sessions")
app.add_typer(breakers_app, name="breakers")

STATUS_STYLE = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "ABORTED": "red",
    "CAUGHT": "dark_orange",
    "RUNNING": "blue",
    "PENDING_REDRIVE": "blue",
}
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")


def _target(ctx: typer.Context) -> Target:
    return ctx.obj


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str))


def _styled(status: str | None) -> str:
    status = status or "-"
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _ms(value: int | None) -> str:
    if value is None:
        return "…"
    return f"{value} ms" if value < 10_000 else f"{value / 1000:.1f} s"


@app.callback()
def main_options(
    ctx: typer.Context,
    stack: Annotated[str | None, typer.Option(help="Stack name (default: samconfig.toml's).")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="AWS endpoint, e.g. the local stack's.")] = None,
    local: Annotated[bool, typer.Option("--local", help=f"Use the local stack at {LOCAL_ENDPOINT}.")] = False,
    region: Annotated[str | None, typer.Option(help="AWS region (default: your AWS config).")] = None,
) -> None:
    if local and endpoint_url:
        raise typer.BadParameter("use --local or --endpoint-url, not both")
    ctx.obj = Target(
        stack_name=stack or default_stack_name(),
        endpoint_url=LOCAL_ENDPOINT if local else endpoint_url,
        region=region,
    )


@app.command()
def submit(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Job JSON file, or - for stdin.")],
    direct: Annotated[bool, typer.Option(help="Invoke intake directly instead of the queue.")] = False,
    follow_: Annotated[bool, typer.Option("--follow", help="Then follow the execution.")] = False,
    deadline: Annotated[
        float, typer.Option(help="Seconds --follow waits at most.")
    ] = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    """Validate a job against schemas/job.schema.json and send it to intake."""
    text = sys.stdin.read() if file == "-" else _read_text(Path(file))
    job = jobs.parse_job(text, "stdin" if file == "-" else file)
    target = _target(ctx)
    if direct:
        answer = jobs.submit_direct(target, job)
        _print_json(answer)
        if answer.get("status") == "REJECTED":  # intake's own checks went further than the schema
            raise typer.Exit(1)
        job_id = str(answer.get("jobId") or job.get("jobId"))
    else:
        message_id = jobs.submit_to_queue(target, job)
        job_id = job.get("jobId") or sqs_job_id(message_id)  # the id intake derives from the message
        out.print(f"sent to the intake queue as message {message_id}: job [bold]{job_id}[/]")
    if follow_:
        _follow(target, job_id, deadline, interval=1.0)


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise OperatorError(f"cannot read {path}: {error.strerror}", exit_code=2) from error


@app.command()
def status(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The jobId (or an execution ARN).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The job record and its execution's status."""
    target = _target(ctx)
    record, arn = jobs.resolve_execution(target, job_id)
    execution = jobs.describe_execution(target, arn)
    if as_json:
        _print_json(
            {
                "job": record,
                "execution": execution and {k: v for k, v in execution.items() if k != "ResponseMetadata"},
            }
        )
        return
    table = Table(show_header=False, box=None)
    record = record or {}
    table.add_row("job", f"[bold]{record.get('jobId', job_id)}[/]")
    table.add_row("status", _styled(record.get("status")))
    for key in (
        "lockKey",
        "rateKey",
        "siteKey",
        "action",
        "onConflict",
        "waitReason",
        "createdAt",
        "updatedAt",
        "claimedAt",
        "endedAt",
        "taskArn",
        "resultUri",
    ):
        if record.get(key) is not None:
            table.add_row(key, str(record[key]))
    for key in ("error", "rejection", "summary", "interruptedBy"):
        if record.get(key):
            table.add_row(key, json.dumps(record[key]))
    table.add_row("execution", arn)
    if execution:
        table.add_row("execution status", _styled(execution["status"]))
        if execution.get("error"):
            table.add_row("execution error", f"{execution['error']}: {execution.get('cause', '')}")
    else:
        table.add_row("execution status", "not started")
    out.print(table)


@app.command()
def history(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The jobId (or an execution ARN).")],
    events: Annotated[bool, typer.Option("--events", help="Also list every history event.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The execution as a timeline: states entered and exited, durations, retries, errors with cause."""
    target = _target(ctx)
    _, arn = jobs.resolve_execution(target, job_id)
    raw = jobs.execution_history(target, arn)
    if not raw:
        raise OperatorError(f"no execution history for {arn}", exit_code=3)
    timeline = build_timeline(raw)
    if as_json:
        _print_json(
            {
                "executionArn": arn,
                "states": [run.to_json() for run in timeline.runs],
                "events": timeline.events,
            }
        )
        return
    out.print(f"[bold]{arn}[/]")
    _print_runs(timeline)
    if events:
        _print_events(timeline.events)
    if timeline.execution_error:
        out.print(
            f"\n[red bold]{timeline.execution_error}[/]: {timeline.execution_cause or ''}",
            markup=True,
            highlight=False,
        )


def _print_runs(timeline: Any) -> None:
    table = Table(title="states")
    for column in ("state", "type", "status", "entered", "duration", "retries", "error"):
        table.add_column(column)
    for run in timeline.runs:
        error = f"{run.error}: {(run.cause or '')[:200]}" if run.error else ""
        table.add_row(
            run.name,
            run.type,
            _styled(run.status),
            run.entered_at.strftime("%H:%M:%S.%f")[:-3],
            _ms(run.duration_ms),
            str(run.retries) if run.retries else "",
            error,
        )
    out.print(table)


def _print_events(rows: list[dict[str, Any]]) -> None:
    table = Table(title="events")
    for column in ("id", "elapsed", "type", "state", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]), _ms(row["elapsed_ms"]), row["type"], row["state"] or "", event_summary(row)
        )
    out.print(table)


@app.command()
def follow(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The jobId (or an execution ARN).")],
    deadline: Annotated[
        float, typer.Option(help="Give up after this many seconds (exit 4).")
    ] = DEFAULT_TIMEOUT_SECONDS,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
) -> None:
    """Print the execution's events as they happen until it ends."""
    _follow(_target(ctx), job_id, deadline, interval)


def _follow(target: Target, job_id: str, deadline: float, interval: float) -> None:
    ends_at = time.monotonic() + deadline
    shown = 0
    arn: str | None = None
    while True:
        if arn is None:
            try:
                _, arn = jobs.resolve_execution(target, job_id)
            except OperatorError as error:
                if error.exit_code != 3:
                    raise  # not found yet is expected just after submit; keep polling until the deadline
        execution = jobs.describe_execution(target, arn) if arn else None
        if arn and execution:
            for row in build_timeline(jobs.execution_history(target, arn)).events[shown:]:
                shown += 1
                out.print(
                    f"{row['timestamp']:%H:%M:%S.%f}"[:-3],
                    row["type"],
                    row["state"] or "",
                    event_summary(row),
                    highlight=False,
                )
            if execution["status"] in FINAL_EXECUTION_STATUSES:
                out.print(f"execution {_styled(execution['status'])}")
                if execution["status"] != "SUCCEEDED":
                    raise typer.Exit(1)
                return
        if time.monotonic() >= ends_at:
            state = execution["status"] if execution else "not started"
            raise OperatorError(f"deadline of {deadline:.0f}s passed; execution is {state}", exit_code=4)
        time.sleep(interval)


@app.command()
def executions(
    ctx: typer.Context,
    status_: Annotated[str | None, typer.Option("--status", help="|".join(EXECUTION_STATUSES))] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List executions of the job state machine, newest first."""
    if status_ and status_.upper() not in EXECUTION_STATUSES:
        raise OperatorError(f"unknown status {status_!r}: one of {', '.join(EXECUTION_STATUSES)}", 2)
    found = jobs.list_executions(_target(ctx), status_.upper() if status_ else None, limit)
    if as_json:
        _print_json(found)
        return
    table = Table()
    for column in ("name", "status", "started", "stopped"):
        table.add_column(column)
    for execution in found:
        stop = execution.get("stopDate")
        table.add_row(
            execution["name"],
            _styled(execution["status"]),
            f"{execution['startDate']:%Y-%m-%d %H:%M:%S}",
            f"{stop:%H:%M:%S}" if stop else "",
        )
    out.print(table)


@app.command("redrive-execution")
def redrive_execution(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The jobId (or an execution ARN).")],
) -> None:
    """Rerun a failed, aborted or timed-out execution from where it stopped (Step Functions redrive).

    Use it for executions that ended outside the workflow's own paths; jobs that failed through the
    workflow are in the DLQ: `dlq redrive` re-submits those as new jobs.
    """
    target = _target(ctx)
    _, arn = jobs.resolve_execution(target, job_id)
    execution = jobs.describe_execution(target, arn)
    if execution is None:
        raise OperatorError(f"no execution {arn}", exit_code=3)
    if execution.get("redriveStatus") == "NOT_REDRIVABLE":
        raise OperatorError(f"not redrivable: {execution.get('redriveStatusReason', 'no reason given')}")
    if execution["status"] not in ("FAILED", "TIMED_OUT", "ABORTED"):
        raise OperatorError(
            f"execution is {execution['status']}: only FAILED, TIMED_OUT or ABORTED ones can be redriven"
        )
    try:
        answer = target.client("stepfunctions").redrive_execution(executionArn=arn)
    except ClientError as error:
        detail = error.response["Error"].get("Message") or str(error)
        if target.is_local and error.response["Error"]["Code"] in ("500", "InternalFailure"):
            detail = "the local stack does not implement RedriveExecution"
        raise OperatorError(f"RedriveExecution failed: {detail[:300]}") from error
    out.print(f"redriven at {answer['redriveDate']:%H:%M:%S}: {arn}")


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Messages in the DLQ with why each job failed (the messages stay in the queue)."""
    letters = dlq.list_dead_letters(_target(ctx))
    if as_json:
        _print_json([letter.to_json() for letter in letters])
        return
    table = Table(title=f"{len(letters)} message(s) in the DLQ")
    for column in ("message", "job", "status", "error", "cause", "failed at"):
        table.add_column(column)
    for letter in letters:
        body = letter.to_json()
        error = body["error"] or {}
        table.add_row(
            letter.message_id,
            body["jobId"] or "[red]no jobId[/]",
            body["status"] or "",
            str(error.get("Error", "")),
            str(error.get("Cause", ""))[:200],
            body["failedAt"] or "",
        )
    out.print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    ctx: typer.Context,
    message_id: Annotated[str | None, typer.Argument(help="The message to redrive.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Redrive every message.")] = False,
    start_deadline: Annotated[float, typer.Option(help="Seconds to wait for each new execution.")] = 60,
    intake: Annotated[
        bool, typer.Option("--intake", help="Redrive the intake DLQ instead (SQS message move task).")
    ] = False,
    rate: Annotated[int | None, typer.Option(help="--intake: messages per second at most.")] = None,
    wait: Annotated[
        float | None, typer.Option(help="--intake: follow the move task for up to this many seconds.")
    ] = None,
) -> None:
    """Re-submit failed jobs as <jobId>-r<n>; a message is deleted only once its new execution started.

    With --intake: invoke intake with the failed asynchronous events, then move the queue messages back to
    IntakeQueue with an SQS message move task (`dlq moves` shows it, `dlq cancel-move` stops it)."""
    if intake:
        _redrive_intake(_target(ctx), rate, wait)
        return
    if bool(message_id) == all_:
        raise OperatorError("give a MESSAGE_ID or --all", exit_code=2)
    results = dlq.redrive(_target(ctx), message_id, start_deadline)
    for result in results:
        if result.error:
            err.print(f"[red]✗[/] {result.message_id} ({result.job_id}): {result.error}", highlight=False)
        else:
            out.print(
                f"[green]✓[/] {result.message_id}: {result.job_id} → [bold]{result.new_job_id}[/] "
                f"{result.execution_arn}",
                highlight=False,
            )
    if not results:
        out.print("the DLQ is empty")
    if any(result.error for result in results):
        raise typer.Exit(1)


def _redrive_intake(target: Target, rate: int | None, wait: float | None) -> None:
    def say(line: str) -> None:
        out.print(line, highlight=False)

    outcome = intake_dlq.redrive(target, rate, say)
    if outcome.task_handle is None:
        out.print(f"no queue message in the intake DLQ ({len(outcome.invoked)} event(s) invoked on intake)")
        return
    out.print(f"moving {outcome.queued} message(s) back to IntakeQueue; task handle:", highlight=False)
    out.print(outcome.task_handle, highlight=False, soft_wrap=True)
    if wait is not None:
        task = intake_dlq.wait_for_move(target, wait, say)
        if task.get("Status") != "COMPLETED":
            raise OperatorError(f"the move task ended {task.get('Status')}: {task.get('FailureReason', '')}")


@dlq_app.command("moves")
def dlq_moves(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The intake DLQ's recent message move tasks (newest first) and how far each got."""
    tasks = intake_dlq.move_tasks(_target(ctx))
    if as_json:
        _print_json(tasks)
        return
    table = Table(title=f"{len(tasks)} move task(s) from the intake DLQ")
    for column in ("status", "moved", "to move", "started", "handle (while running)", "failure"):
        table.add_column(column)
    for task in tasks:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(task.get("StartedTimestamp", 0) / 1000))
        table.add_row(
            _styled({"COMPLETED": "SUCCEEDED", "RUNNING": "RUNNING"}.get(task["Status"], "FAILED")),
            str(task.get("ApproximateNumberOfMessagesMoved", 0)),
            str(task.get("ApproximateNumberOfMessagesToMove", "?")),
            started,
            task.get("TaskHandle", "-"),
            task.get("FailureReason", ""),
        )
    out.print(table)


@dlq_app.command("cancel-move")
def dlq_cancel_move(
    ctx: typer.Context,
    task_handle: Annotated[str, typer.Argument(help="The running task's handle (`dlq moves`).")],
) -> None:
    """Stop a running move task from the intake DLQ; what it moved stays in IntakeQueue."""
    moved = intake_dlq.cancel(_target(ctx), task_handle)
    out.print(f"cancelling: {moved} message(s) moved so far")


@locks_app.command("purge-expired")
def locks_purge_expired(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the expired leases.")] = False,
) -> None:
    """End the jobs whose lease expired and release their locks and slots (the cleanup sweep)."""
    target = _target(ctx)
    if dry_run:
        holders = locks.expired_lease_holders(target)
        for job_id, lock_key in sorted(holders.items()):
            out.print(f"would end {job_id} (lock {lock_key or '-'})", highlight=False)
        out.print(f"{len(holders)} job(s) hold an expired lease")
        return
    swept = locks.sweep(target)
    for result in swept:
        released = (["its lock"] if result.get("releasedLock") else []) + [
            f"slot {n}" for n in result.get("releasedSlots", [])
        ]
        out.print(
            f"{result['jobId']}: {'ended TIMED_OUT' if result['ended'] else 'had already ended'}, "
            f"released {', '.join(released) or 'nothing'}",
            highlight=False,
        )
    out.print(f"swept {len(swept)} job(s) with an expired lease")


@breakers_app.command("list")
def breakers_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every site's breaker: OPEN (its jobs wait), HALF_OPEN (one probe job may try) or CLOSED."""
    found = breakers.list_breakers(_target(ctx))
    if as_json:
        _print_json(found)
        return
    table = Table(title="circuit breakers")
    for column in ("site", "state", "failures", "open since", "open until", "probe", "last failure"):
        table.add_column(column)
    for breaker in found:
        table.add_row(
            breaker["siteKey"],
            breaker["state"],
            str(breaker["failures"]),
            breaker["openSince"] or "",
            breaker["openUntil"] or "",
            breaker["probeJobId"] or "",
            breaker["lastFailureAt"] or "",
        )
    out.print(table)
    out.print(f"{sum(b['state'] != 'CLOSED' for b in found)} open of {len(found)}")


@breakers_app.command("reset")
def breakers_reset(
    ctx: typer.Context,
    site_key: Annotated[str, typer.Argument(help="The site's key (see `breakers list`).")],
) -> None:
    """Close a site's breaker now (e.g. the site is back and you do not want to wait for the probe)."""
    if not breakers.reset(_target(ctx), site_key):
        raise OperatorError(f"no breaker for {site_key!r}", exit_code=3)
    out.print(f"breaker of {site_key} reset: its jobs claim on their next look", highlight=False)


@pool_app.command("status")
def pool_status_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The pool service's task counts and bounds, its dispatch queue, and each task with the jobs it holds."""
    found = pool.pool_status(_target(ctx))
    if as_json:
        _print_json(found)
        return
    out.print(
        f"{found['service']}: desired {found['desired']}, running {found['running']}, pending "
        f"{found['pending']} (min {found['min']}, max {found['max']}); queue: {found['queue']['waiting']} "
        f"waiting, {found['queue']['taken']} being taken",
        highlight=False,
    )
    table = Table(title="pool tasks")
    for column in ("task", "status", "health", "capacity", "started", "protected", "jobs"):
        table.add_column(column)
    for task in found["tasks"]:
        table.add_row(
            task["taskArn"].rsplit("/", 1)[-1],
            task["status"] or "",
            task["health"],
            task["capacityProvider"] or "",
            task["startedAt"] or "",
            "yes" if task["protected"] else "no",
            ", ".join(task["jobs"]) or "-",
        )
    out.print(table)


@sessions_app.command("upload")
def sessions_upload(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="The account the session belongs to (a job's `session`).")],
    cookies: Annotated[Path, typer.Option(help="A cookie list or a Playwright storage state (JSON).")],
) -> None:
    """Store an account's cookies, encrypted with the project's KMS key, where the worker loads them."""
    target = _target(ctx)
    outputs = target.outputs
    store = SessionStore(
        s3=target.client("s3"),
        ddb=target.client("dynamodb"),
        bucket=outputs["ArtifactsBucketName"],
        table=outputs["SessionsTableName"],
        kms_key_id=outputs["KmsKeyArn"],
    )
    try:
        uri = store.upload_cookies(account, json.loads(_read_text(cookies)), f"cli:{getpass.getuser()}")
    except ValueError as error:  # not JSON, not cookies, a bad account name
        raise OperatorError(f"{cookies}: {error}", exit_code=2) from error
    out.print(f"stored the session of {account!r} at {uri}", highlight=False)


@app.command("doctor")
def doctor_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Launch readiness: checks of the deployed stack that change nothing (exit 1 when one is NOK)."""
    results = doctor.run_checks(_target(ctx))
    if as_json:
        _print_json([result.to_json() for result in results])
    else:
        style = {doctor.OK: "green", doctor.NOK: "red", doctor.TODO: "dark_orange"}
        table = Table(title=f"launch readiness of {_target(ctx).stack_name}")
        for column in ("check", "status", "evidence", "fix"):
            table.add_column(column)
        for result in results:
            table.add_row(
                result.check,
                f"[{style[result.status]}]{result.status}[/]",
                escape(result.evidence),
                escape(result.fix) if result.status != doctor.OK else "",
            )
        out.print(table)
    if any(result.status == doctor.NOK for result in results):
        raise typer.Exit(1)


@app.command("artifacts")
def artifacts_command(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job whose files to list.")],
    download: Annotated[Path | None, typer.Option(help="Download them all into this folder.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite files --download finds in place.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with the presigned URLs).")] = False,
    expires: Annotated[
        int, typer.Option(min=1, max=604800, help="Seconds the presigned URLs stay valid.")
    ] = artifact_store.DEFAULT_EXPIRES,
) -> None:
    """List a job's artifacts (trace, failure screenshot, console, network, files) with presigned URLs."""
    target = _target(ctx)
    found = artifact_store.job_artifacts(target, job_id)
    urls = [artifact_store.presigned_url(target, artifact, expires) for artifact in found]
    saved = artifact_store.download(target, found, download, force) if download else []
    if as_json:
        rows = [{**a.to_json(), "url": url} for a, url in zip(found, urls, strict=True)]
        _print_json({"jobId": job_id, "artifacts": rows, "downloaded": [str(path) for path in saved]})
        return
    table = Table(title=f"artifacts of {escape(job_id)}")
    for column in ("kind", "name", "bytes", "type", "last modified"):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    for artifact in found:
        table.add_row(
            artifact.kind,
            escape(artifact.name),
            str(artifact.size),
            escape(artifact.content_type),
            artifact.last_modified[:19],
        )
    out.print(table)
    for artifact, url in zip(found, urls, strict=True):
        out.print(f"{escape(artifact.name)}: {url}", highlight=False, soft_wrap=True)
    for path in saved:
        out.print(f"saved {escape(str(path))}")
    if any(artifact.kind == "trace" for artifact in found):
        out.print("view the trace: [bold]playwright show-trace trace.zip[/] (--download it first)")


@app.command()
def inspect(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8765,
) -> None:
    """Serve the execution inspector (graph, history, job record, artifacts, DLQ)."""
    from browserjobs.ops.inspector.server import serve

    target = _target(ctx)
    target.outputs["StateMachineArn"]  # fail now, with the clear error, if the stack is missing
    serve(target, host, port, announce=lambda url: out.print(f"inspector on [bold]{url}[/] (Ctrl-C stops)"))


def _add_plugin_commands() -> None:
    """Commands other parts of the package register (entry points `browserjobs.commands`): the local stack's
    `local` and `invoke`. This module imports none of them, so the CLI installs without the local stack."""
    for entry_point in entry_points(group="browserjobs.commands"):
        entry_point.load()(app)


_add_plugin_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
