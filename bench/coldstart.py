"""Lambda cold starts here, and the deployment package.

Each handler (functions/<name>/app.py) is imported and called once in a fresh process, with the
environment the template gives it (read from the function deployed on the local stack) plus what the
Lambda runtime sets (function name, task root, a trace header: Tracing is Active, so the X-Ray SDK loads
and patches botocore on the first traced call, as on AWS). The first call goes to the local stack and
takes the handler's main path.

Two interpreters: "Lambda-like" is what the deployed function loads, as close as this machine gets:
Python 3.13, the layer built by functions/shared/Makefile (with this CPU's wheels instead of arm64 ones),
the runtime's boto3/botocore in a folder of its own, site-packages off, nothing written to a bytecode
cache (Lambda cannot write under /opt). "Local venv" is what the local stack's execution environments
load: .venv's Python with functions/<name> on PYTHONPATH and browserjobs.core installed.
The package size comes from `sam build` in a temporary copy of the project: function zip + layer zip.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import OUT, ROOT, Section, Spread, Table, Target, progress, say
from bench.stack import BenchStack

PROBE = Path(__file__).with_name("coldstart_probe.py")
HANDLERS = {
    "intake": ("IntakeFunctionName", "IntakeFunction"),
    "claim": ("ClaimFunctionName", "ClaimFunction"),
    "cleanup": ("CleanupFunctionName", "CleanupFunction"),
    "crash_hook": ("CrashHookFunctionName", "CrashHookFunction"),
}
TARGET_IMPORT_MS = 150
LAMBDA_PYTHON = "3.13"
TRACE_HEADER = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1"


@dataclass(frozen=True)
class Interpreter:
    name: str
    python: str
    flags: list[str]
    paths: list[str]  # after the function's code folder

    def describe(self) -> str:
        version = subprocess.run(
            [self.python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return f"{self.name}: Python {version} {' '.join(self.flags)}"


def _python313() -> str | None:
    """A Python 3.13 that runs (a pyenv shim may exist for a version that is not selected)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{LAMBDA_PYTHON}")]
    candidates += [str(p) for p in sorted(pyenv.glob(f"{LAMBDA_PYTHON}.*/bin/python{LAMBDA_PYTHON}"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import pip"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def _installed(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _host_platforms() -> str:
    arch = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine()]
    tags = ("manylinux2014", "manylinux_2_17", "manylinux_2_28")
    return " ".join(f"--platform {tag}_{arch}" for tag in tags)


def lambda_like() -> Interpreter | None:
    """The layer as functions/shared/Makefile builds it (wheels for this CPU instead of arm64), and the
    runtime's boto3/botocore (compiled, as an installed runtime is); None without a Python 3.13 here."""
    python = _python313()
    if python is None:
        return None
    home = OUT / "lambda-python"
    runtime, layer = home / "runtime", home / "layer"
    versions = f"boto3=={_installed('boto3')} botocore=={_installed('botocore')}"
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    if not (home / "runtime.txt").is_file() or (home / "runtime.txt").read_text() != f"{python} {versions}":
        say(f"   installing the runtime's {versions} for {python} ...")
        shutil.rmtree(runtime, ignore_errors=True)
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"]
        subprocess.run([*pip, str(runtime), *versions.split()], check=True, env=env)
        (home / "runtime.txt").write_text(f"{python} {versions}")
    say("   building the layer with functions/shared/Makefile (for this CPU) ...")
    shutil.rmtree(layer, ignore_errors=True)
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT / "functions" / "shared"),
            "build-SharedLayer",
            f"ARTIFACTS_DIR={layer}",
            f"PLATFORMS={_host_platforms()}",
            f"LAMBDA_PYTHON={python}",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return Interpreter("Lambda-like", python, ["-P", "-s", "-S", "-B"], [str(layer / "python"), str(runtime)])


def local_venv() -> Interpreter:
    return Interpreter("local venv", sys.executable, ["-P", "-s", "-B"], [])


# --- events that take each handler's main path on the local stack ---------------------------------------


def _iso(seconds_from_now: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Events:
    """Per call: an event, and what to undo after it so that every call finds the same state."""

    def __init__(self, bs: BenchStack):
        self.bs = bs
        self.ddb = bs.harness.client("dynamodb")
        self.locks = bs.harness.outputs["LocksTableName"]
        self.jobs = bs.harness.outputs["JobsTableName"]
        self.held_key = f"bench-coldstart-held-{time.time_ns()}"
        self._hold(self.held_key)

    def _hold(self, lock_key: str) -> None:
        expires = time.time() + 3600
        self.ddb.put_item(
            TableName=self.locks,
            Item={
                "pk": {"S": f"lock#{lock_key}"},
                "jobId": {"S": "bench-coldstart-holder"},
                "leaseExpiresAt": {"S": _iso(3600)},
                "leaseExpiresAtEpoch": {"N": str(int(expires))},
                "expiresAt": {"N": str(int(expires))},
            },
        )

    def close(self) -> None:
        self.ddb.delete_item(TableName=self.locks, Key={"pk": {"S": f"lock#{self.held_key}"}})

    def event(self, handler: str, index: int) -> dict[str, Any]:
        unique = f"bench-coldstart-{handler}-{index}-{time.time_ns()}"
        if handler == "intake":  # a valid job on a held lock with onConflict reject: no worker starts
            return {
                "jobId": unique,
                "lockKey": self.held_key,
                "action": "browse",
                "params": {"steps": [{"goto": {"url": f"{self.bs.site_url}/"}}]},
                "onConflict": "reject",
            }
        if handler == "claim":
            now = _iso(0)
            self.ddb.put_item(
                TableName=self.jobs,
                Item={
                    "jobId": {"S": unique},
                    "status": {"S": "SUBMITTED"},
                    "lockKey": {"S": unique},
                    "rateKey": {"S": unique},
                    "action": {"S": "browse"},
                    "timeoutSeconds": {"N": "60"},
                    "heartbeatSeconds": {"N": "10"},
                    "createdAt": {"S": now},
                    "updatedAt": {"S": now},
                },
            )
            return {
                "jobId": unique,
                "lockKey": unique,
                "rateKey": unique,
                "timeoutSeconds": 60,
                "executionArn": f"{self.bs.harness.outputs['StateMachineArn']}:{unique}".replace(
                    ":stateMachine:", ":execution:"
                ),
            }
        name = {"cleanup": "cleanup-sweep.json", "crash_hook": "crash-hook-task-stopped.json"}[handler]
        return json.loads((ROOT / "events" / name).read_text())

    def undo(self, handler: str, event: dict[str, Any], outcome: str) -> None:
        if handler != "claim":
            return
        keys = [f"lock#{event['lockKey']}", f"bucket#{event['rateKey']}"]
        with contextlib.suppress(ValueError, KeyError, TypeError):
            keys.append(json.loads(outcome)["slot"])
        for key in keys:
            self.ddb.delete_item(TableName=self.locks, Key={"pk": {"S": key}})
        # The claim left the record RUNNING with no execution behind it: the sweep must not find it.
        self.ddb.delete_item(TableName=self.jobs, Key={"jobId": {"S": event["jobId"]}})


def _environment(bs: BenchStack, output: str, code_dir: Path) -> dict[str, str]:
    name = bs.harness.outputs[output]
    config = bs.harness.client("lambda").get_function_configuration(FunctionName=name)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{LAMBDA_PYTHON}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 128)),
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_BENCH_FUNCTION_ARN": config["FunctionArn"],
        **bs.stack.environment(),
        **{key: str(value) for key, value in config.get("Environment", {}).get("Variables", {}).items()},
    }


def probe(interpreter: Interpreter, code_dir: Path, env: dict[str, str], event: dict) -> dict[str, Any]:
    read_fd, write_fd = os.pipe()
    request = {"handler": "app.lambda_handler", "event": event}
    # The code folder, then the layer, as Lambda orders /var/task and /opt/python (-P: not this folder).
    paths = os.pathsep.join([str(code_dir), *interpreter.paths])
    started = time.perf_counter()
    process = subprocess.run(
        [interpreter.python, *interpreter.flags, str(PROBE)],
        input=json.dumps(request).encode(),
        env={**env, "PYTHONPATH": paths, "_BENCH_RESULT_FD": str(write_fd)},
        cwd=code_dir,
        capture_output=True,
        pass_fds=(write_fd,),
        timeout=120,
        check=False,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    os.close(write_fd)
    with os.fdopen(read_fd) as results:
        line = results.readline()
    if process.returncode or not line:
        raise RuntimeError(f"probe failed ({process.returncode}): {process.stderr.decode()[-2000:]}")
    return {**json.loads(line), "process_ms": wall_ms}


def measure(bs: BenchStack, interpreters: list[Interpreter], runs: int) -> dict[tuple[str, str], list[dict]]:
    events = Events(bs)
    samples: dict[tuple[str, str], list[dict]] = {}
    try:
        for handler, (output, _) in HANDLERS.items():
            code_dir = ROOT / "functions" / handler
            env = _environment(bs, output, code_dir)
            for interpreter in interpreters:
                runs_of = samples.setdefault((interpreter.name, handler), [])
                for index in range(runs):
                    event = events.event(handler, index)
                    result = probe(interpreter, code_dir, env, event)
                    events.undo(handler, event, result["outcome"])
                    runs_of.append(result)
                progress(
                    f"{handler} ({interpreter.name})",
                    runs,
                    runs,
                    f"import {Spread.of([r['import_ms'] for r in runs_of]).median:.0f} ms, "
                    f"first call {Spread.of([r['first_call_ms'] for r in runs_of]).median:.0f} ms; "
                    f"{runs_of[-1]['outcome'][:80]}",
                )
    finally:
        events.close()
    return samples


# --- the deployment package -------------------------------------------------------------------------------


def _zip_size(folder: Path) -> tuple[int, int]:
    """(zip bytes, unzipped bytes) of a folder, zipped as sam deploy zips it (deflate)."""
    raw = 0
    with tempfile.TemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    raw += path.stat().st_size
                    archive.write(path, path.relative_to(folder))
        return buffer.tell(), raw


def package_sizes() -> Table:
    with tempfile.TemporaryDirectory(prefix="bench-sam-") as temp:
        copy = Path(temp) / "project"
        copy.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("template.yaml", "samconfig.toml"):
            shutil.copy2(ROOT / name, copy / name)
        for name in ("functions", "schemas", "statemachines"):
            shutil.copytree(ROOT / name, copy / name, ignore=ignore)
        sam = ROOT / ".venv" / "bin" / "sam"
        started = time.monotonic()
        build = subprocess.run(
            [str(sam if sam.exists() else "sam"), "build", "--build-dir", str(copy / "build")],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
        seconds = time.monotonic() - started
        if build.returncode:
            raise RuntimeError(f"sam build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
        layer_zip, layer_raw = _zip_size(copy / "build" / "SharedLayer")
        table = Table(
            f"Deployment packages (`sam build`, {seconds:.0f} s; zipped with deflate as sam deploy uploads)",
            ["function", "function zip", "+ layer zip", "unzipped (function + layer)", "of Lambda's 250 MB"],
        )
        for handler, (_, logical) in HANDLERS.items():
            code_zip, code_raw = _zip_size(copy / "build" / logical)
            total = code_raw + layer_raw
            table.rows.append(
                [
                    handler,
                    f"{code_zip / 1024:.1f} KiB",
                    f"{(code_zip + layer_zip) / 1024 / 1024:.2f} MiB",
                    f"{total / 1024 / 1024:.1f} MiB",
                    f"{total / 250e6:.1%}",
                ]
            )
        return table


def _cell(results: list[dict], key: str) -> str:
    spread = Spread.of([r[key] for r in results])
    return f"**{spread.median:.0f}** ({spread.p10:.0f}-{spread.p90:.0f})"


def run(bs: BenchStack, quick: bool) -> Section:
    runs = 5 if quick else 10
    section = Section(
        "coldstart",
        "Lambda cold start (fresh process per run) and deployment package",
        ".venv/bin/python -m bench --only coldstart" + (" --quick" if quick else ""),
    )
    try:
        reference = lambda_like()
    except subprocess.CalledProcessError as error:  # e.g. no package index reachable
        say(f"   the Lambda-like closure could not be built: {error}")
        reference = None
    if reference is None:
        section.notes.append(
            "No Python 3.13 here, or its closure could not be installed: the Lambda-like runs were skipped "
            "and the targets are judged on the local venv (install python3.13 for the runtime's numbers)."
        )
    interpreters = [i for i in (reference, local_venv()) if i is not None]
    samples = measure(bs, interpreters, runs)
    for interpreter in interpreters:
        table = Table(
            f"{interpreter.describe()}: milliseconds, median (p10-p90) of {runs} fresh processes",
            [
                "handler",
                "import",
                "import, CPU",
                "first call",
                "first call, CPU",
                "import + first call",
                "whole process",
                "first call's outcome",
            ],
        )
        for handler in HANDLERS:
            results = samples[(interpreter.name, handler)]
            for r in results:
                r["cold_ms"] = r["import_ms"] + r["first_call_ms"]
            table.rows.append(
                [
                    handler,
                    *(
                        _cell(results, key)
                        for key in (
                            "import_ms",
                            "import_cpu_ms",
                            "first_call_ms",
                            "first_call_cpu_ms",
                            "cold_ms",
                            "process_ms",
                        )
                    ),
                    results[-1]["outcome"][:60].replace("|", "/"),
                ]
            )
        section.tables.append(table)
    say("   sam build (temporary copy) for the package sizes ...")
    try:
        section.tables.append(package_sizes())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        say(f"   no package sizes: {error}")
        section.notes.append(f"Package sizes not measured: sam build failed ({str(error)[:300]}).")
    judged = interpreters[0].name
    for handler in HANDLERS:
        spread = Spread.of([r["import_ms"] for r in samples[(judged, handler)]])
        cpu = Spread.of([r["import_cpu_ms"] for r in samples[(judged, handler)]])
        section.targets.append(
            Target(
                f"{handler}: import under {TARGET_IMPORT_MS} ms ({judged})",
                f"median {spread.median:.0f} ms wall, {cpu.median:.0f} ms CPU",
                spread.median < TARGET_IMPORT_MS,
            )
        )
    section.notes += [
        "import = importing app.py: module-level Logger/Tracer/Metrics and settings; the X-Ray SDK (Tracing "
        "is Active), boto3 and its clients, and intake's batch utility load on the first call that needs "
        "them (bench/OPTIMIZATIONS.md, section 5), so first call includes them. first call "
        "= the first invocation against the local stack (intake: a valid job on a held lock with onConflict "
        "reject, so no worker starts; claim: a fresh SUBMITTED job; cleanup: the lease sweep; crash hook: a "
        "task-stopped event whose token is no longer open). CPU = this process's CPU time, which other "
        "load on the machine disturbs far less than wall time. whole process = interpreter start to exit.",
    ]
    section.data = {f"{name}/{handler}": results for (name, handler), results in samples.items()}
    return section
