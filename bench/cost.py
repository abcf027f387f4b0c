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

# Task mode vs pool mode (docs/COST.md, "Task or pool"). Assumptions, each a template default or stated:
HOURS_PER_MONTH = 730
IMAGE_GB = 0.7  # the worker image, compressed: what each task start pulls
NAT_PER_GB = 0.045  # NAT gateway data processing; ECR interface endpoints charge $0.01 instead
POOL_JOBS_PER_TASK = 4  # template PoolJobsPerTask
POOL_TARGET_UTILIZATION = 0.8  # the scaling policy's target: (waiting + running) / (tasks x jobs per task)
POOL_MIN_TASKS = 1  # template PoolMinTasks: one warm task on FARGATE around the clock
POOL_SPOT_SHARE = 0.8  # beyond the base task: FARGATE_SPOT weight 4, FARGATE weight 1
POOL_TASK_STARTS = 300  # a month: scale-outs, Spot replacements, deploys (10 a day, assumed)
POOL_EXTRA_SQS_REQUESTS = 3  # SendMessage (the workflow), ReceiveMessage, DeleteMessage (the pool worker)
POOL_EXTRA_DDB_WRITES = 2  # the task registry's entry, written and removed (core/pool_registry.py)


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


def _task_rate(spot_share: float, *, arm: bool) -> float:
    """Dollars per task-hour of the default task size."""
    p = PRICES
    if arm:
        return TASK_VCPU * p["fargate_arm64_vcpu_hour"] + TASK_GB * p["fargate_arm64_gb_hour"]
    on_demand = TASK_VCPU * p["fargate_x86_vcpu_hour"] + TASK_GB * p["fargate_x86_gb_hour"]
    spot = TASK_VCPU * p["fargate_spot_vcpu_hour"] + TASK_GB * p["fargate_spot_gb_hour"]
    return spot_share * spot + (1 - spot_share) * on_demand


def dispatch_modes(job: PerJob, browsing_seconds: float, jobs: int = JOBS_PER_MONTH) -> list[dict[str, Any]]:
    """A month of jobs of `browsing_seconds` in each mode: Fargate, image pulls through a NAT gateway, and
    everything else (the rest of monthly_lines), in dollars."""
    rest = sum(line[2] for line in monthly_lines(job, jobs)[1:])
    pool_rest = (
        rest
        + jobs * POOL_EXTRA_SQS_REQUESTS * PRICES["sqs_request"]
        + jobs * POOL_EXTRA_DDB_WRITES * PRICES["ddb_write_unit"]
        - jobs * PRICES["lambda_request"]  # no crash hook invocation per job: pool tasks rarely stop
    )
    task_hours = jobs * max(60.0, ASSUMED_START_SECONDS + browsing_seconds) / 3600
    busy_hours = jobs * browsing_seconds / 3600 / (POOL_JOBS_PER_TASK * POOL_TARGET_UTILIZATION)
    base_hours = POOL_MIN_TASKS * HOURS_PER_MONTH
    extra_hours = max(0.0, busy_hours - base_hours)
    pulls = {"task": jobs * IMAGE_GB * NAT_PER_GB, "pool": POOL_TASK_STARTS * IMAGE_GB * NAT_PER_GB}
    modes = [
        ("task", "ARM64 on demand", task_hours * _task_rate(0, arm=True), pulls["task"], rest),
        ("task", "x86 Fargate Spot", task_hours * _task_rate(1, arm=False), pulls["task"], rest),
        (
            "pool",
            "ARM64 on demand",
            (base_hours + extra_hours) * _task_rate(0, arm=True),
            pulls["pool"],
            pool_rest,
        ),
        (
            "pool",
            "x86: base on demand, then Spot 4 : 1",
            base_hours * _task_rate(0, arm=False) + extra_hours * _task_rate(POOL_SPOT_SHARE, arm=False),
            pulls["pool"],
            pool_rest,
        ),
    ]
    return [
        {
            "seconds": browsing_seconds,
            "mode": mode,
            "capacity": capacity,
            "fargate": fargate,
            "pulls": pull,
            "rest": other,
            "total": fargate + pull + other,
            "per_1000": (fargate + pull + other) / jobs * 1000,
        }
        for mode, capacity, fargate, pull, other in modes
    ]


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
    comparison = Table(
        "Task or pool: a month of 100,000 jobs (Fargate, image pulls through a NAT gateway, the rest)",
        ["job", "mode", "capacity", "Fargate", "image pulls", "the rest", "total", "per 1,000 jobs"],
    )
    modes = [row for seconds in (10, 60) for row in dispatch_modes(job, seconds)]
    for row in modes:
        comparison.rows.append(
            [
                f"{row['seconds']:.0f} s",
                row["mode"],
                row["capacity"],
                *(f"{row[key]:,.2f}" for key in ("fargate", "pulls", "rest", "total", "per_1000")),
            ]
        )
    section.tables.append(comparison)
    ten = {row["mode"]: row for row in modes if row["seconds"] == 10 and row["capacity"] == "ARM64 on demand"}
    ratio = ten["pool"]["per_1000"] / ten["task"]["per_1000"]
    without_pulls = (ten["pool"]["total"] - ten["pool"]["pulls"]) / (
        ten["task"]["total"] - ten["task"]["pulls"]
    )
    section.notes.append(
        f"Pool mode costs {ratio:.2f} of task mode per 1,000 jobs of 10 s (ARM64 on demand), "
        f"{without_pulls:.2f} without the image pulls (ECR and S3 served through VPC endpoints). Assumed: "
        f"{POOL_JOBS_PER_TASK} jobs per pool task at {POOL_TARGET_UTILIZATION:.0%} utilization, "
        f"{POOL_MIN_TASKS} task always on, {POOL_TASK_STARTS} pool task starts a month, {IMAGE_GB} GB image."
    )
    section.data = {
        "per_job": job.__dict__,
        "arm64": arm_total,
        "spot": spot_total,
        "modes": modes,
        "pool_to_task_10s": ratio,
    }
    return section
