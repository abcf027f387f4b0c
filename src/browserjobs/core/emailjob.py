"""A job from a raw email (as an SES receipt rule saves it to S3).

The job is a JSON attachment (application/json or a *.json file name) or, failing that, the first
JSON object in the plain-text body (text before it and a signature after it are ignored). Headers
in RFC 2047 encodings, quoted-printable or base64 bodies and any declared charset are decoded by the
stdlib `email` package; an unknown charset falls back to UTF-8 with replacement characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any

from browserjobs.core.model import JobRejected, RejectionCode, parse_json

META_VALUE_LIMIT = 1024
# The stdlib parses a folded header in time quadratic in its length (a 1 MB Subject takes minutes
# at Lambda's CPU share): only this much of a header is parsed. RFC 5322 lines are at most 998.
MAX_HEADER_CHARS = 16 * 1024


class _BoundedHeaders(EmailPolicy):
    """The default policy, parsing at most MAX_HEADER_CHARS of each header value."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_HEADER_CHARS:
            value = value[:MAX_HEADER_CHARS]
        return super().header_fetch_parse(name, value)


POLICY = _BoundedHeaders()


@dataclass(frozen=True)
class EmailJob:
    """The job an email carries (`body`), or why it carries none (`rejection`), and its headers."""

    body: Any
    message_id: str | None
    sender: str | None
    subject: str
    rejection: JobRejected | None = None

    def defaults(self) -> dict[str, Any]:
        """What an email job gets unless it says otherwise (CONTRACTS: email intake)."""
        meta = {"subject": self.subject}
        if self.message_id:
            meta["messageId"] = self.message_id
        if self.sender:
            meta["from"] = self.sender
        defaults: dict[str, Any] = {
            "onConflict": "interrupt",
            "meta": {k: v[:META_VALUE_LIMIT] for k, v in meta.items()},
        }
        if self.sender:
            defaults["lockKey"] = f"email#{self.sender}"
        return defaults


def parse_email(data: bytes) -> EmailJob:
    message = BytesParser(policy=POLICY).parsebytes(data)
    if not isinstance(message, EmailMessage):
        raise TypeError("the default policy parses into EmailMessage")
    message_id = _header(message, "Message-ID") or None
    sender = _sender(message)
    subject = _header(message, "Subject")
    try:
        return EmailJob(body=_job_from(message), message_id=message_id, sender=sender, subject=subject)
    except JobRejected as rejection:
        return EmailJob(body=None, message_id=message_id, sender=sender, subject=subject, rejection=rejection)


def _header(message: EmailMessage, name: str) -> str:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _sender(message: EmailMessage) -> str | None:
    header = message.get("From")
    addresses = getattr(header, "addresses", ())
    address = addresses[0].addr_spec if addresses else ""
    return address.lower() if "@" in address else None


def _job_from(message: EmailMessage) -> Any:
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = (part.get_filename() or "").lower()
        if part.get_content_type() == "application/json" or filename.endswith(".json"):
            return parse_json(_text_of(part), "the JSON attachment")
    body = message.get_body(preferencelist=("plain",))
    text = _text_of(body) if body is not None else ""
    start = text.find("{")
    if start < 0:
        raise JobRejected(
            RejectionCode.NO_JOB_IN_EMAIL,
            "the email has no JSON attachment and no JSON object in its plain-text body",
            [{"path": "/", "message": "attach job.json or put the job JSON in the message body"}],
        )
    return parse_json(text[start:], "the message body", whole=False)


def _text_of(part: MIMEPart) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):
        content = part.get_payload(decode=True) or b""
    if isinstance(content, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            content = content.decode(charset)
        except (LookupError, UnicodeError):
            content = content.decode("utf-8", errors="replace")
    # Mail clients indent with no-break spaces, which JSON does not accept as whitespace.
    return str(content).lstrip("\ufeff").replace("\u00a0", " ")
