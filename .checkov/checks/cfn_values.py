"""Reading CloudFormation property values in the custom checks (checkov puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a mapping; anything else (absent, an intrinsic's list) reads as empty."""
    return value if isinstance(value, dict) else {}


def is_true(value: Any) -> bool:
    """CloudFormation takes a boolean or its string form."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
