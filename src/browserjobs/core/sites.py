"""Which site a job works on: the key its circuit breaker is kept under (browserjobs.core.site_health)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

URL_FIELDS = ("url", "loginUrl")  # where the actions' schemas take the pages a job opens


def first_url(params: Any) -> str | None:
    """The first page the job's params name (depth first, in their order): a browse job's first goto, a
    form login's loginUrl."""
    if isinstance(params, dict):
        for key, value in params.items():
            if key in URL_FIELDS and isinstance(value, str):
                return value
            found = first_url(value)
            if found:
                return found
    elif isinstance(params, list):
        for value in params:
            found = first_url(value)
            if found:
                return found
    return None


def site_key_of(params: Any) -> str:
    """host[:port] of the first URL, lower-cased, without credentials; "" (no breaker) when there is none."""
    url = first_url(params)
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return ""
    if not host:
        return ""
    return f"{host}:{port}" if port else host
