"""The CLI's local-stack commands, `browserjobs local` and `browserjobs invoke`, added through the entry point
`browserjobs.commands` (pyproject.toml): the operator CLI imports nothing of the local stack itself.

Both need the extra `browserjobs[local]` (moto, the SAM translator, Playwright); without it they say so.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.console import Console

from browserjobs.ops.outputs import OperatorError, Target

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
NEEDS_LOCAL_EXTRA = "the local stack is not installed: pip install 'browserjobs[local]'"


def _local_module(name: str) -> ModuleType:
    """A module that needs the local stack's dependencies, or the one-line error saying how to get them."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "browserjobs":
            raise
        raise OperatorError(f"{NEEDS_LOCAL_EXTRA} (missing: {error.name})", exit_code=2) from error


def invoke(
    ctx: typer.Context,
    function: Annotated[str, typer.Argument(help="Logical id or folder name under functions/.")],
    event: Annotated[Path, typer.Option("--event", "-e", help="Event JSON file (see events/).")],
    env_vars: Annotated[Path | None, typer.Option("--env-vars", "-n", help="sam env-vars JSON.")] = None,
) -> None:
    """Run a function's handler with an event, like `sam local invoke -e`, without Docker."""
    invoker = _local_module("browserjobs.testing.invoke")
    payload = invoker.read_json_file(event, "event")
    overrides = invoker.read_json_file(env_vars, "env-vars file") if env_vars else {}
    template = invoker.load_template()
    spec = invoker.find_function(template, function)
    target: Target = ctx.obj
    name, variables, warnings = invoker.function_environment(spec, template, target, overrides)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    layers = invoker.layer_dirs(template, spec.logical_id)
    outcome = invoker.run_handler(
        spec,
        layers,
        name,
        variables,
        payload,
        target.endpoint_url,
        echo=lambda line: err.out(line, highlight=False),
    )
    if outcome.error:
        err.print_json(json.dumps(outcome.error))
        raise typer.Exit(1)
    out.print_json(json.dumps(outcome.result, default=str))


def local(ctx: typer.Context) -> None:
    """The local stack in the foreground (--port N, --echo-logs): `python -m browserjobs.testing serve`."""
    for needed in ("browserjobs.emulator.stack", "playwright"):  # moto, the SAM translator; the worker's
        _local_module(needed)
    local_stack = _local_module("browserjobs.testing.__main__")
    raise typer.Exit(local_stack.main(["serve", *ctx.args]))


def register(app: typer.Typer) -> None:
    app.command()(invoke)
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(local)
