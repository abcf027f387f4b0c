"""The action registry: one module per action in this package, named like the job's `action` field.

A module defines `async def run(ctx: ActionContext, params: dict) -> None`; its params are validated
against schemas/actions/<name>.schema.json before it runs. `browse` is the generic declarative action;
the others are site-specific (see form_login for an example).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from browserjobs.worker.errors import ErrorName, JobFailure

if TYPE_CHECKING:
    from browserjobs.worker.action_context import ActionContext

Action = Callable[["ActionContext", dict[str, Any]], Awaitable[None]]
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def registered() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load_action(name: str) -> Action:
    if not NAME.fullmatch(name) or name not in registered():
        raise JobFailure(
            ErrorName.INVALID_PARAMS, f"unknown action {name!r}; registered: {', '.join(registered())}"
        )
    return importlib.import_module(f"{__name__}.{name}").run
