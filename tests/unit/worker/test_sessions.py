"""Sessions per account (storage state in S3 under KMS, indexed in SessionsTable) and cookie imports,
without a browser (tests/container/test_worker_sessions.py has form_login)."""

from __future__ import annotations

import pytest

from browserjobs.core.sessions import normalise_cookies

pytestmark = pytest.mark.unit


def test_a_session_round_trips_through_s3_under_the_project_key(stack):
    state = {
        "cookies": [
            {
                "name": "sid",
                "value": "abc",
                "domain": "example.com",
                "path": "/",
                "expires": -1,
                "httpOnly": True,
                "secure": True,
                "sameSite": "Lax",
            }
        ],
        "origins": [{"origin": "https://example.com", "localStorage": [{"name": "k", "value": "v"}]}],
    }
    store = stack.session_store()

    uri = store.save("acme-ops", state, updated_by="job-1")

    assert uri == f"s3://{stack.names['bucket']}/sessions/acme-ops/state.json"
    head = stack.client("s3").head_object(Bucket=stack.names["bucket"], Key="sessions/acme-ops/state.json")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == stack.names["kms"]
    item = stack.client("dynamodb").get_item(
        TableName=stack.names["sessions"], Key={"account": {"S": "acme-ops"}}
    )
    assert item["Item"]["s3Key"]["S"] == "sessions/acme-ops/state.json"
    assert item["Item"]["updatedBy"]["S"] == "job-1" and item["Item"]["updatedAt"]["S"].endswith("Z")
    assert store.load("acme-ops") == state
    assert store.load("nobody-yet") is None


def test_an_account_name_cannot_escape_its_prefix(stack):
    with pytest.raises(ValueError, match="invalid account"):
        stack.session_store().save("../jobs", {"cookies": [], "origins": []}, updated_by="x")


def test_cookies_from_a_browser_extension_export_become_playwright_cookies():
    exported = [
        {
            "name": "sid",
            "value": "1",
            "domain": ".example.com",
            "expirationDate": 1893456000.5,
            "hostOnly": False,
            "httpOnly": True,
            "sameSite": "no_restriction",
            "secure": True,
            "session": False,
        },
        {
            "name": "pref",
            "value": "dark",
            "domain": "example.com",
            "session": True,
            "sameSite": "unspecified",
        },
    ]

    assert normalise_cookies(exported) == [
        {
            "name": "sid",
            "value": "1",
            "domain": ".example.com",
            "path": "/",
            "expires": 1893456000.5,
            "httpOnly": True,
            "secure": True,
            "sameSite": "None",
        },
        {
            "name": "pref",
            "value": "dark",
            "domain": "example.com",
            "path": "/",
            "expires": -1,
            "httpOnly": False,
            "secure": False,
            "sameSite": "Lax",
        },
    ]
    assert normalise_cookies({"cookies": exported[:1], "origins": []})[0]["name"] == "sid"
    with pytest.raises(ValueError, match="cookie 0: needs string name and value, and a domain"):
        normalise_cookies([{"name": "x", "value": "y"}])
    with pytest.raises(ValueError, match="unknown sameSite"):
        normalise_cookies([{"name": "x", "value": "y", "domain": "d", "sameSite": "sometimes"}])
