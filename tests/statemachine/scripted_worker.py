"""A worker whose behaviour is scripted by the job, so that each path of the state machine can be driven.

Started by the local stack's ECS runner exactly like the real worker (same environment: TASK_TOKEN,
JOB_ID, HEARTBEAT_SECONDS, the tables, TASK_ARN), it reads the job record and follows `meta.script`:

  succeed           register the task (on lock and record), heartbeat once, SendTaskSuccess
  fail:<Error>      register the task, SendTaskFailure with that error
  fail-nocause:<E>  register the task, SendTaskFailure with that error and no cause at all
  fail-first:<N>:<E>  the first N attempts of the task (STATE_RETRY_COUNT < N) fail with that error, then
                    SendTaskSuccess
  ratelimited:<N>:<S>  the first N runs of the job (counted on its record) answer as a 429 with
                    `Retry-After: S`: recorded on the job's rate key as the real worker records it, then
                    SendTaskFailure Site.RateLimited; later runs SendTaskSuccess
  ratelimited-bare:<N>  the same, without recording anything on the rate key
  late:<seconds>    register the task, send the first heartbeat only after that long (a slow Fargate start
                    and image pull), then SendTaskSuccess
  work:<seconds>    register the task, heartbeat for that long (stopping early, as Job.Interrupted, if an
                    interruption is recorded for the job), then SendTaskSuccess
  hang              register the task, never heartbeat, wait for SIGTERM
  crash             register the task, exit 3 without a callback

With WORKER_MODE=pool (a task of the pool service) it takes its jobs from DISPATCH_QUEUE_URL instead, each
on a thread of its own, after writing the job's token into the task's registry as the real pool worker
does, and keeps its health file fresh for the container's health check; `crash` then ends the whole task
(every job it holds), `hang` leaves that job's thread waiting (the task stays healthy).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import boto3

from browserjobs.core import pool_registry, site_health
from browserjobs.worker.pool_config import health_file


def main() -> int:
    if os.environ.get("WORKER_MODE") == "pool":
        return pool()
    return run(
        os.environ["TASK_TOKEN"],
        os.environ["JOB_ID"],
        float(os.environ.get("HEARTBEAT_SECONDS", "60")),
        int(os.environ.get("STATE_RETRY_COUNT", "0")),
        os.environ.get("STATE_ENTERED_TIME"),
    )


def pool() -> int:
    sqs, ddb = boto3.client("sqs"), boto3.client("dynamodb")
    queue, task_arn = os.environ["DISPATCH_QUEUE_URL"], os.environ["TASK_ARN"]
    threading.Thread(target=healthy, daemon=True).start()
    print(f"scripted pool worker on {queue}", flush=True)
    while True:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            pool_registry.add_job(
                ddb, os.environ["LOCKS_TABLE"], task_arn, body["jobId"], body["taskToken"], int(time.time())
            )
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            args = (
                body["taskToken"],
                body["jobId"],
                float(body["heartbeatSeconds"]),
                int(body["retryCount"]),
            )
            threading.Thread(target=pooled, args=(*args, body["stateEnteredTime"]), daemon=True).start()


def healthy() -> None:
    """The health file the container's health check reads, as the real pool worker writes it."""
    path = Path(health_file(os.environ))
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path.write_text(str(time.time()))
        time.sleep(1)  # the file's refresh interval, not a wait for a condition


def pooled(token: str, job_id: str, heartbeat: float, retry_count: int, entered: str) -> None:
    code = run(token, job_id, heartbeat, retry_count, entered)
    if code == 3:  # `crash`: the task goes, with every job it holds
        os._exit(3)
    pool_registry.remove_job(
        boto3.client("dynamodb"), os.environ["LOCKS_TABLE"], os.environ["TASK_ARN"], job_id
    )


def run(token: str, job_id: str, heartbeat: float, retry_count: int, entered: str | None) -> int:
    ddb, sfn = boto3.client("dynamodb"), boto3.client("stepfunctions")
    job = ddb.get_item(TableName=os.environ["JOBS_TABLE"], Key={"jobId": {"S": job_id}}, ConsistentRead=True)[
        "Item"
    ]
    script = job.get("meta", {}).get("M", {}).get("script", {}).get("S", "succeed")
    ddb.update_item(
        TableName=os.environ["LOCKS_TABLE"],
        Key={"pk": {"S": f"lock#{job['lockKey']['S']}"}},
        UpdateExpression="SET taskArn = :task",
        ConditionExpression="jobId = :job",
        ExpressionAttributeValues={":task": {"S": os.environ["TASK_ARN"]}, ":job": {"S": job_id}},
    )
    ddb.update_item(  # as the real worker's registration does (browserjobs.worker.jobs.register_task)
        TableName=os.environ["JOBS_TABLE"],
        Key={"jobId": {"S": job_id}},
        UpdateExpression="SET taskArn = :task",
        ExpressionAttributeValues={":task": {"S": os.environ["TASK_ARN"]}},
    )
    print(f"scripted worker: job {job_id} runs {script!r}", flush=True)
    name, _, argument = script.partition(":")
    output = {"status": "SUCCEEDED", "script": script}
    if name == "succeed":
        sfn.send_task_heartbeat(taskToken=token)
    elif name == "fail":
        sfn.send_task_failure(taskToken=token, error=argument, cause=f"scripted failure {argument}")
        return 0
    elif name == "fail-first":
        failures, _, error = argument.partition(":")
        attempt = retry_count
        if attempt < int(failures):
            sfn.send_task_failure(taskToken=token, error=error, cause=f"scripted failure {attempt + 1}")
            return 0
        output["attempt"] = attempt
    elif name in ("ratelimited", "ratelimited-bare"):
        times, _, retry_after = argument.partition(":")
        runs = ddb.update_item(
            TableName=os.environ["JOBS_TABLE"],
            Key={"jobId": {"S": job_id}},
            UpdateExpression="ADD scriptRuns :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )["Attributes"]["scriptRuns"]["N"]
        if int(runs) <= int(times):
            if name == "ratelimited":
                rate_key = job.get("rateKey", job["lockKey"])["S"]
                now_ms = time.time_ns() // 1_000_000
                site_health.record_rate_limited(
                    ddb, os.environ["LOCKS_TABLE"], rate_key, int(retry_after), now_ms
                )
            sfn.send_task_failure(
                taskToken=token, error="Site.RateLimited", cause=f"scripted 429, run {runs}"
            )
            return 0
        site_health.record_success(ddb, os.environ["LOCKS_TABLE"], job.get("rateKey", job["lockKey"])["S"])
        output["runs"] = int(runs)
    elif name == "fail-nocause":
        sfn.send_task_failure(taskToken=token, error=argument)
        return 0
    elif name == "late":
        time.sleep(float(argument))
        sfn.send_task_heartbeat(taskToken=token)
        output["stateEnteredTime"] = entered
        output["stateRetryCount"] = str(retry_count)
    elif name == "work":
        deadline = time.monotonic() + float(argument)
        while time.monotonic() < deadline:
            sfn.send_task_heartbeat(taskToken=token)
            interrupted = ddb.get_item(
                TableName=os.environ["INTERRUPTIONS_TABLE"], Key={"jobId": {"S": job_id}}, ConsistentRead=True
            ).get("Item")
            if interrupted:
                cause = json.dumps({"requestedBy": interrupted["requestedBy"]["S"]})
                sfn.send_task_failure(taskToken=token, error="Job.Interrupted", cause=cause)
                return 0
            time.sleep(min(heartbeat / 3, 0.5))
    elif name == "hang" and os.environ.get("WORKER_MODE") == "pool":
        threading.Event().wait()
    elif name == "hang":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        signal.sigwait({signal.SIGTERM})
        print("scripted worker: SIGTERM", flush=True)
        return 143
    elif name == "crash":
        return 3
    sfn.send_task_success(taskToken=token, output=json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
