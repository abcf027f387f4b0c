"""A Playwright trace made safe to keep: no cookies, credentials or redacted secrets.

A trace (https://playwright.dev/python/docs/trace-viewer) is a zip of JSON-lines files (`trace.trace`:
actions with their parameters, e.g. the value a `fill` typed, and DOM snapshots, which keep input values,
password fields' too; `trace.network`: HAR entries with headers, cookies and post data) next to
`resources/` (bodies, by SHA-1) and screencast frames. Lines that parse as JSON are rewritten value by
value, so the result still parses: header values of SENSITIVE_HEADERS and every cookie value are replaced,
and each secret in any string. Other text members are rewritten as text; binary members are kept.
"""

from __future__ import annotations

import contextlib
import html
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

SENSITIVE_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})
REDACTED = "[redacted]"
# What replaces a secret (not one itself).
SECRET_MASK = "***"  # noqa: S105  # nosec B105
JSON_LINES = (".trace", ".network")


def redact_trace(source: Path, target: Path, secrets: Iterable[str]) -> None:
    """Copies the trace at `source` to `target`, redacted."""
    redactor = _Redactor(secrets)
    with zipfile.ZipFile(source) as read, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as write:
        for member in read.infolist():
            data = read.read(member)
            if member.filename.endswith(JSON_LINES):
                data = redactor.json_lines(data.decode()).encode()
            else:
                with contextlib.suppress(UnicodeDecodeError):  # an image or another binary resource
                    data = redactor.text(data.decode()).encode()
            write.writestr(member.filename, data)


def redact_headers(headers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A HAR header list ({name, value}) with the values of SENSITIVE_HEADERS replaced."""
    return [
        {**h, "value": REDACTED} if str(h.get("name", "")).lower() in SENSITIVE_HEADERS else h
        for h in headers
    ]


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first: a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def json_lines(self, text: str) -> str:
        lines = []
        for line in text.split("\n"):
            try:
                lines.append(
                    json.dumps(self.value(json.loads(line)), separators=(",", ":"), ensure_ascii=False)
                    if line
                    else line
                )
            except ValueError:  # not JSON after all: still no secret in it
                lines.append(self.text(line))
        return "\n".join(lines)

    def value(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            if key.lower() == "cookies":  # HAR cookies, storage state: every value is a credential
                return [
                    {**c, "value": REDACTED} if isinstance(c, dict) and "value" in c else c for c in value
                ]
            if key.lower().endswith("headers") and all(isinstance(h, dict) for h in value):
                value = redact_headers(value)
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.plain(value)
        return value

    def plain(self, text: str) -> str:
        """A decoded string: the secret as typed, or URL-encoded (a form's post data)."""
        for secret in self._secrets:
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, SECRET_MASK)
        return text

    def text(self, text: str) -> str:
        """Raw text (an HTML or JSON body): the secret in any of the encodings such a file holds."""
        for secret in self._secrets:
            for form in (json.dumps(secret)[1:-1], html.escape(secret)):
                text = text.replace(form, SECRET_MASK)
        return self.plain(text)
