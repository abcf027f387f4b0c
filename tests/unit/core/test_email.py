"""Jobs from raw emails: attachments or bodies, in the encodings mail clients actually send."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from browserjobs.core.emailjob import parse_email
from tests.conftest import EVENTS

pytestmark = pytest.mark.unit

JOB = {
    "lockKey": "acct#1",
    "action": "browse",
    "params": {"steps": [{"goto": {"url": "https://a.example/"}}]},
}


def raw(headers: str, body: str) -> bytes:
    return (headers.strip() + "\r\n\r\n" + body).replace("\r\n", "\n").replace("\n", "\r\n").encode("latin-1")


def test_the_sample_ses_email_gives_its_attachment_and_decoded_headers():
    email = parse_email((EVENTS / "objects/email/o3vq1example0ses0message0id").read_bytes())

    assert email.rejection is None
    assert email.body["meta"] == {"ticket": "OPS-1234"}
    assert email.sender == "ops@customer.example"  # lower-cased, display name dropped
    assert email.subject == "Sync \u2013 compte n\u00b042"  # RFC 2047 base64, UTF-8
    assert email.message_id == "<CAF=example-7d1f@mail.customer.example>"
    assert email.defaults()["lockKey"] == "email#ops@customer.example"


def test_a_quoted_printable_latin1_body_with_no_break_spaces_is_parsed():
    text = json.dumps(JOB, indent=2).replace("  ", "\u00a0\u00a0")
    message = MIMEText(f"Bonjour Ren\u00e9e,\n\n{text}\n\n-- \nRen\u00e9e\n", "plain", "iso-8859-1")
    message["From"] = "Ren\u00e9e <renee@example.com>"
    message["Subject"] = "caf\u00e9"

    email = parse_email(message.as_bytes())

    assert email.body == JOB
    assert email.subject == "caf\u00e9"


def test_a_base64_utf8_body_is_parsed():
    body = base64.encodebytes(json.dumps({**JOB, "meta": {"note": "\u65e5\u672c"}}).encode()).decode()
    data = raw(
        "From: a@example.com\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: base64",
        body,
    )

    assert parse_email(data).body["meta"] == {"note": "\u65e5\u672c"}


def test_an_unknown_charset_falls_back_to_utf8():
    data = raw("From: a@example.com\nContent-Type: text/plain; charset=x-no-such-charset", json.dumps(JOB))

    assert parse_email(data).body == JOB


def test_a_json_attachment_wins_over_the_body_and_a_bom_is_ignored():
    message = MIMEMultipart()
    message["From"] = "a@example.com"
    message.attach(MIMEText('{"not": "this one"}'))
    attachment = MIMEApplication(b"\xef\xbb\xbf" + json.dumps(JOB).encode(), "octet-stream")
    attachment.add_header("Content-Disposition", "attachment", filename="Job.JSON")
    message.attach(attachment)

    assert parse_email(message.as_bytes()).body == JOB


def test_an_html_only_email_has_no_job():
    message = EmailMessage()
    message["From"] = "a@example.com"
    message.set_content("<p>please run it</p>", subtype="html")

    email = parse_email(message.as_bytes())

    assert email.body is None
    assert email.rejection.code == "NO_JOB_IN_EMAIL"


def test_broken_json_is_invalid_json_with_its_position():
    message = EmailMessage()
    message["From"] = "a@example.com"
    message.set_content('Here it is:\n{"lockKey": "a", "action": }\n')

    email = parse_email(message.as_bytes())

    assert email.rejection.code == "INVALID_JSON"
    assert email.rejection.errors[0]["message"].startswith("line 1 column")


def test_a_sender_without_an_address_gives_no_lock_key_default():
    email = parse_email(raw("From: undisclosed-recipients:;\nSubject: x", json.dumps(JOB)))

    assert email.sender is None
    assert "lockKey" not in email.defaults()
    assert email.defaults()["onConflict"] == "interrupt"


def test_long_header_values_are_cut_to_the_meta_limit():
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["Subject"] = "s" * 3000
    message.set_content(json.dumps(JOB))

    assert len(parse_email(message.as_bytes()).defaults()["meta"]["subject"]) == 1024
