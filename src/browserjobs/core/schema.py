"""Validation of jobs against schemas/job.schema.json and of params against the action's schema.

An action is registered when schemas/actions/<action>.schema.json exists. jsonschema is imported
lazily: only intake validates, and the import costs cold-start time everywhere else.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from browserjobs.core.config import Settings
from browserjobs.core.ids import canonical_json
from browserjobs.core.model import JobRejected, RejectionCode, with_defaults

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

logger = logging.getLogger(__name__)

JOB_SCHEMA = "job.schema.json"
ACTIONS_DIR = "actions"
MAX_JOB_BYTES = 64 * 1024
MAX_ERRORS = 20


def schemas_dir() -> Path:
    """SCHEMAS_DIR, else the schemas this package ships (package data; schemas/ links to them)."""
    candidates = []
    if os.environ.get("SCHEMAS_DIR"):
        candidates.append(Path(os.environ["SCHEMAS_DIR"]))
    candidates.append(Path(__file__).resolve().parent / "schemas")
    for candidate in candidates:
        if (candidate / JOB_SCHEMA).is_file():
            return candidate
    raise FileNotFoundError(f"{JOB_SCHEMA} not found in any of: {', '.join(map(str, candidates))}")


def action_schema_path(action: str) -> Path | None:
    path = schemas_dir() / ACTIONS_DIR / f"{action}.schema.json"
    return path if path.is_file() else None


def registered_actions() -> list[str] | None:
    """Names of the registered actions; None while no action schema exists at all (no registry yet)."""
    folder = schemas_dir() / ACTIONS_DIR
    names = sorted(p.name.removesuffix(".schema.json") for p in folder.glob("*.schema.json"))
    return names or None


@lru_cache(maxsize=32)
def _validator(path: Path) -> Validator:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def schema_errors(instance: Any, path: Path, prefix: str = "") -> list[dict[str, str]]:
    """Every violation as {path (JSON pointer), message}, deepest-first order made stable by path."""
    errors = sorted(_validator(path).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [
        {
            "path": prefix + "".join(f"/{p}" for p in error.absolute_path) or "/",
            "message": error.message,
        }
        for error in errors[:MAX_ERRORS]
    ]


def check_job(candidate: Any, settings: Settings) -> dict[str, Any]:
    """The job with defaults applied, or JobRejected saying exactly what is wrong."""
    if not isinstance(candidate, dict):
        raise JobRejected(
            RejectionCode.INVALID_JOB,
            f"a job must be a JSON object, got {type(candidate).__name__}",
            [{"path": "/", "message": "not an object"}],
        )
    errors = schema_errors(candidate, schemas_dir() / JOB_SCHEMA)
    if errors:
        raise JobRejected(RejectionCode.INVALID_JOB, "the job does not match job.schema.json", errors)
    job = with_defaults(candidate, settings)
    if job["heartbeatSeconds"] >= job["timeoutSeconds"]:
        raise JobRejected(
            RejectionCode.INVALID_JOB,
            "heartbeatSeconds must be less than timeoutSeconds",
            [
                {
                    "path": "/heartbeatSeconds",
                    "message": f"{job['heartbeatSeconds']} is not less than "
                    f"timeoutSeconds {job['timeoutSeconds']}",
                }
            ],
        )
    if job["dispatch"] == "pool" and not settings.pool_enabled:
        raise JobRejected(
            RejectionCode.INVALID_JOB,
            "this stack has no worker pool (PoolMaxTasks is 0): dispatch must be task",
            [{"path": "/dispatch", "message": "pool is not available; omit dispatch or set it to task"}],
        )
    _check_action(job)
    unpaired = list(_unpaired_surrogates(job))
    if unpaired:
        raise JobRejected(
            RejectionCode.INVALID_JOB,
            "the job holds text that is not valid Unicode: DynamoDB, S3 and Step Functions take UTF-8 only",
            [{"path": path, "message": "unpaired UTF-16 surrogate"} for path in unpaired[:MAX_ERRORS]],
        )
    size = len(canonical_json(job).encode("utf-8"))
    if size > MAX_JOB_BYTES:
        raise JobRejected(
            RejectionCode.JOB_TOO_LARGE,
            f"the job is {size} bytes; the limit is {MAX_JOB_BYTES}",
            [{"path": "/", "message": "keep params small; put large inputs in S3 and pass their URIs"}],
        )
    return job


def _unpaired_surrogates(value: Any, path: str = "") -> Iterator[str]:
    """JSON pointers of the strings (or of the objects whose keys) JSON escapes such as "\\ud800" made
    into text no UTF-8 encoder takes."""
    if isinstance(value, str):
        if not _is_unicode(value):
            yield path or "/"
    elif isinstance(value, dict):
        if not all(_is_unicode(key) for key in value):
            yield path or "/"
        for key, inner in value.items():
            yield from _unpaired_surrogates(inner, f"{path}/{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _unpaired_surrogates(inner, f"{path}/{index}")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_action(job: dict[str, Any]) -> None:
    action = job["action"]
    path = action_schema_path(action)
    if path is None:
        known = registered_actions()
        if known is None:
            logger.warning(
                "no action registry (schemas/%s/): params of %r are not validated", ACTIONS_DIR, action
            )
            return
        raise JobRejected(
            RejectionCode.UNKNOWN_ACTION,
            f"unknown action {action!r}",
            [{"path": "/action", "message": f"registered actions: {', '.join(known) or 'none'}"}],
        )
    errors = schema_errors(job["params"], path, prefix="/params")
    if errors:
        raise JobRejected(RejectionCode.INVALID_PARAMS, f"params do not match the {action!r} schema", errors)
