"""Names and defaults the local stack shares with its clients (the CLI, tests, the demo)."""

from __future__ import annotations

import os
from pathlib import Path

import browserjobs
from browserjobs.core.contract import (
    LOCAL_ACCOUNT_ID,
    LOCAL_CREDENTIALS,
    LOCAL_HOST,
    LOCAL_PORT,
    LOCAL_REGION,
)

# The folder this process imports browserjobs from: functions and workers the stack starts run the same code.
IMPORT_ROOT = Path(browserjobs.__file__).resolve().parents[1]
REGION = LOCAL_REGION
ACCOUNT_ID = LOCAL_ACCOUNT_ID
HOST = LOCAL_HOST
DEFAULT_PORT = LOCAL_PORT
# Debian's chromium-headless-shell is the same build as its chromium, and what Playwright runs headless
# in the worker image; local workers use it when it is installed (make setup installs it).
HEADLESS_SHELL = Path("/usr/lib/chromium/chromium-headless-shell")
FULL_CHROMIUM = Path("/usr/bin/chromium")
DUMMY_CREDENTIALS = LOCAL_CREDENTIALS


def configured_port() -> int:
    """LOCAL_PORT, or 4566 (the port local AWS endpoints conventionally use); 0 picks a free one."""
    return int(os.environ.get("LOCAL_PORT", DEFAULT_PORT))


def iam_enforced() -> bool:
    """LOCAL_IAM=off lets every role do anything (to tell a permission problem from another); default on."""
    value = os.environ.get("LOCAL_IAM", "enforce").strip().lower()
    if value not in ("enforce", "off"):
        raise ValueError(f"LOCAL_IAM must be 'enforce' or 'off', not {value!r}")
    return value == "enforce"


def client_environment(endpoint_url: str) -> dict[str, str]:
    """What a process needs so that every AWS SDK and the AWS CLI talk to the local endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **DUMMY_CREDENTIALS,
    }


def worker_chromium() -> str:
    """The browser local workers launch: CHROMIUM_PATH, else the headless shell, else the full chromium."""
    if configured := os.environ.get("CHROMIUM_PATH"):
        return configured
    return str(HEADLESS_SHELL if HEADLESS_SHELL.is_file() else FULL_CHROMIUM)


def seconds_setting(name: str, default: float, *, positive: bool = False) -> float:
    """A LOCAL_* number of seconds from the environment, else `default`; negative (or, when `positive`,
    zero) values are refused with the variable's name."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"{name}={raw!r} is negative")
    if positive and seconds == 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return seconds
