"""A month of jobs in dollars, from the counts the benchmarks measured and the calls the code makes.

The prices are us-east-1 list prices as published when this was written (free tiers left out); they
change, so check them (docs/COST.md says where) before relying on a total. Per-job counts that the
benchmarks measure (transitions, Lambda invocations and durations) come from the orchestration section;
the DynamoDB, S3 and SQS requests per job are counted from the code's calls (docs/COST.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.common import Section, Table

JOBS_PER_MONTH = 100_000

PRICES = {
    "transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    "fargate_arm64_vcpu_hour": 0.03238,  # Linux/ARM on demand
    "fargate_arm64_gb_hour": 0.00356,
    "fargate_x86_vcpu_hour": 0.04048,  # Linux/x86 on demand
    "fargate_x86_gb_hour": 0.004445,
    "fargate_spot_vcpu_hour": 0.01334,  # Linux/x86 Spot: varies by hour and zone (~67-70 % off)
    "fargate_spot_gb_hour": 0.00146,
    "ddb_write_unit": 0.625 / 1e6,  # on-demand write request unit
    "ddb_read_unit": 0.125 / 1e6,  # on-demand read request unit
    "ddb_gb_month": 0.25,
    "s3_put": 0.005 / 1000,
    "s3_gb_month": 0.023,
    "sqs_request": 0.40 / 1e6,
    "logs_gb_ingested": 0.50,
}

# The default task size (template WorkerCpu 1024 / WorkerMemory 2048) and Lambda memory (Globals).
TASK_VCPU, TASK_GB, LAMBDA_GB = 1.0, 2.0, 0.25
# Assumed per task: Fargate bills from the image pull to the task's end, one minute at least. A Playwright
# image takes 30-60 s to pull and start; the browsing itself is the job's own (the trivial job here: s).
ASSUMED_START_SECONDS = 45
ASSUMED_BROWSING_SECONDS = 60
# Per successful job, from the code's calls (docs/COST.md, "DynamoDB, S3, SQS per job").
DDB_WRITE_UNITS = 24  # JobsTable 13 (with the byStatus index), LocksTable 11; transactions count double
DDB_READ_UNITS_FIXED = 14  # CheckLock 1, the claim's BatchGetItem of 10 slots + lock + bucket 12, job 1
INTERRUPT_POLL_SECONDS = 2  # the worker reads InterruptionsTable and long-polls its queue every 2 s
S3_PUTS = 2  # result.json and one artifact (a screenshot)
S3_MB_STORED = 0.3  # result.json + a screenshot, kept ArtifactRetentionDays (30)
SQS_REQUESTS_FIXED = 3  # SendMessage, the event source's ReceiveMessage and DeleteMessageBatch
LOG_KB = 40  # state machine log (Level ALL with execution data) + Lambda and worker logs


@dataclass(frozen=True)
class PerJob:
    transitions: float
    lambda_requests: float
    lambda_gb_seconds: float
    task_seconds: float
    ddb_writes: float
    ddb_reads: float
    sqs_requests: float


def per_job(orchestration: dict[str, Any]) -> PerJob:
    success = orchestration["rows"][0]
    requests = success["lambda_inside"] + sum(success["outside"].values())
    durations = orchestration.get("lambda_ms", {})
    # One invocation of each function the job caused, at its measured median duration (1 ms granularity).
    gb_seconds = sum(
        count * durations.get(name, {}).get("median", 100.0) / 1000 * LAMBDA_GB
        for name, count in {"claim": success["lambda_inside"], **success["outside"]}.items()
    )
    task = max(60.0, ASSUMED_START_SECONDS + ASSUMED_BROWSING_SECONDS)
    polls = ASSUMED_BROWSING_SECONDS / INTERRUPT_POLL_SECONDS
    return PerJob(
        transitions=success["transitions"],
        lambda_requests=requests,
        lambda_gb_seconds=gb_seconds,
        task_seconds=task,
        ddb_writes=DDB_WRITE_UNITS,
        ddb_reads=DDB_READ_UNITS_FIXED + polls,
        sqs_requests=SQS_REQUESTS_FIXED + polls,
    )


def monthly_lines(job: PerJob, jobs: int = JOBS_PER_MONTH) -> list[tuple[str, str, float, float]]:
    """(item, how it is counted, dollars with ARM64 on demand, dollars with x86 Spot)."""
    p = PRICES
    hours = job.task_seconds / 3600 * jobs

    def fargate(vcpu_hour: float, gb_hour: float) -> float:
        return hours * (TASK_VCPU * vcpu_hour + TASK_GB * gb_hour)

    same = [
        (
            "Step Functions",
            f"{job.transitions:.0f} transitions a job",
            jobs * job.transitions * p["transition"],
        ),
        (
            "Lambda requests",
            f"{job.lambda_requests:.0f} a job (claim, intake, crash hook)",
            jobs * job.lambda_requests * p["lambda_request"],
        ),
        (
            "Lambda duration",
            f"{job.lambda_gb_seconds:.3f} GB-s a job (256 MB arm64, measured durations)",
            jobs * job.lambda_gb_seconds * p["lambda_gb_second_arm64"],
        ),
        (
            "DynamoDB writes",
            f"{job.ddb_writes:.0f} write units a job",
            jobs * job.ddb_writes * p["ddb_write_unit"],
        ),
        (
            "DynamoDB reads",
            f"{job.ddb_reads:.0f} read units a job (incl. interrupt checks)",
            jobs * job.ddb_reads * p["ddb_read_unit"],
        ),
        (
            "DynamoDB storage",
            "2 KB a job record (with its index) kept 90 days",
            jobs * 3 * 2 / 1e6 * p["ddb_gb_month"],
        ),
        ("S3 requests", f"{S3_PUTS} PUTs a job", jobs * S3_PUTS * p["s3_put"]),
        (
            "S3 storage",
            f"{S3_MB_STORED} MB a job kept 30 days",
            jobs * S3_MB_STORED / 1024 * p["s3_gb_month"],
        ),
        (
            "SQS",
            f"{job.sqs_requests:.0f} requests a job (incl. the worker's interrupt polls)",
            jobs * job.sqs_requests * p["sqs_request"],
        ),
        (
            "CloudWatch Logs",
            f"{LOG_KB} KB ingested a job",
            jobs * LOG_KB / 1024 / 1024 * p["logs_gb_ingested"],
        ),
    ]
    lines = [(name, how, dollars, dollars) for name, how, dollars in same]
    lines.insert(
        0,
        (
            "Fargate (1 vCPU, 2 GB)",
            f"{job.task_seconds:.0f} s billed a task (assumed: {ASSUMED_START_SECONDS} s pull and start "
            f"+ {ASSUMED_BROWSING_SECONDS} s browsing)",
            fargate(p["fargate_arm64_vcpu_hour"], p["fargate_arm64_gb_hour"]),
            fargate(p["fargate_spot_vcpu_hour"], p["fargate_spot_gb_hour"]),
        ),
    )
    return lines


def run(orchestration: dict[str, Any]) -> Section:
    section = Section(
        "cost",
        f"Cost model: a month of {JOBS_PER_MONTH:,} successful jobs (us-east-1 list prices; check them)",
        ".venv/bin/python -m bench --only orchestration (the model runs on its counts)",
    )
    job = per_job(orchestration)
    table = Table(
        "Dollars per month",
        ["item", "counted as", "ARM64 on demand", "x86 Fargate Spot"],
    )
    lines = monthly_lines(job)
    for name, how, arm, spot in lines:
        table.rows.append([name, how, f"{arm:,.2f}", f"{spot:,.2f}"])
    arm_total = sum(line[2] for line in lines)
    spot_total = sum(line[3] for line in lines)
    table.rows.append(["**total**", "", f"**{arm_total:,.2f}**", f"**{spot_total:,.2f}**"])
    table.rows.append(
        [
            "per 1,000 jobs",
            "",
            f"{arm_total / JOBS_PER_MONTH * 1000:.2f}",
            f"{spot_total / JOBS_PER_MONTH * 1000:.2f}",
        ]
    )
    section.tables.append(table)
    section.notes += [
        "Not in the table: the VPC's NAT gateway (hourly, and per GB: every task pulls its image and "
        "browses through it unless VPC endpoints serve ECR and S3), ECR storage, KMS keys, X-Ray traces, "
        "alarms. docs/COST.md has the model, the prices and these.",
    ]
    section.data = {"per_job": job.__dict__, "arm64": arm_total, "spot": spot_total}
    return section
