"""python -m browserjobs.testing serve | demo: the local stack in the foreground, or the scripted demo.

Both read the local stack's switches from the environment (browserjobs/emulator/README.md): LOCAL_PARAMETERS
(template parameter overrides, `Key=Value Key2=Value2`), LOCAL_IAM, LOCAL_TASK_START_SECONDS, LOCAL_FAULTS,
LOCAL_FAULTS_SEED, and check them before anything starts: a wrong one is a clear error and exit status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from browserjobs.emulator.settings import configured_port


def _stop_on_signals() -> threading.Event:
    """Ctrl-C and SIGTERM set the returned event (the caller then stops everything it started)."""
    stopping = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            return
        print("\nstopping the local stack ...", file=sys.stderr, flush=True)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    return stopping


def _configured() -> tuple[dict[str, str], float, str, bool]:
    """The switches from the environment, checked (ValueError with the reason when one is wrong)."""
    from browserjobs.emulator.deploy import check_overrides, configured_parameters, template_parameters
    from browserjobs.emulator.ecs_runner import configured_task_start_seconds
    from browserjobs.emulator.faults import Faults
    from browserjobs.emulator.settings import iam_enforced

    parameters = configured_parameters()
    check_overrides(parameters, template_parameters())
    faults = Faults.from_environment().describe()
    return parameters, configured_task_start_seconds(), faults, iam_enforced()


def serve(port: int, echo: bool, parameters: dict[str, str] | None = None) -> int:
    from browserjobs.emulator.stack import LocalStack
    from browserjobs.testing.sample_site.server import SampleSite
    from browserjobs.testing.usage import describe

    stopping = _stop_on_signals()
    print(f"starting the local stack on 127.0.0.1:{port} ...", file=sys.stderr, flush=True)
    stack = LocalStack(
        port=port,
        parameter_overrides=parameters,
        echo=(lambda line: print(line, flush=True)) if echo else None,
    )
    try:
        with SampleSite() as site:
            stack.up()
            print(describe(stack, site.url), flush=True)
            stopping.wait()
    finally:
        stack.down()
    print("stopped: no process of the stack is left running", file=sys.stderr)
    return 0


def demo(port: int, parameters: dict[str, str] | None = None) -> int:
    from browserjobs.testing.demo import run

    return run(port=port, parameters=parameters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m browserjobs.testing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="start the local stack in the foreground (Ctrl-C stops it)"
    )
    serve_parser.add_argument(
        "--port", type=int, default=configured_port(), help="default: $LOCAL_PORT or 4566"
    )
    serve_parser.add_argument("--echo-logs", action="store_true", help="also print function and worker logs")
    demo_parser = commands.add_parser("demo", help="run the demo scenarios on a fresh local stack")
    demo_parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args(argv)
    try:
        parameters, start_seconds, faults, enforced = _configured()
    except ValueError as error:
        print(f"python -m browserjobs.testing {args.command}: {error}", file=sys.stderr)
        return 2
    print(
        f"IAM and KMS {'enforced' if enforced else 'not checked'} (LOCAL_IAM); "
        f"task start {start_seconds:g}s (LOCAL_TASK_START_SECONDS); AWS faults: {faults} (LOCAL_FAULTS)"
        + (f"; parameters: {' '.join(f'{k}={v}' for k, v in parameters.items())}" if parameters else ""),
        file=sys.stderr,
        flush=True,
    )
    if args.command == "serve":
        return serve(args.port, args.echo_logs, parameters)
    return demo(args.port, parameters)


if __name__ == "__main__":
    sys.exit(main())
