"""The local task metadata endpoint: a task that goes away mid-request is not reported as an error."""

from __future__ import annotations

import pytest

from browserjobs.emulator.ecs_runner import _EndpointServer


def _fail_with(server: _EndpointServer, error: Exception) -> None:
    try:
        raise error
    except Exception:
        server.handle_error(None, ("127.0.0.1", 1))


def test_a_task_gone_mid_request_prints_nothing_and_a_defect_is_still_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = object.__new__(_EndpointServer)  # no socket: only its error handling is under test
    _fail_with(server, BrokenPipeError(32, "Broken pipe"))
    _fail_with(server, ConnectionResetError(104, "Connection reset by peer"))
    assert capsys.readouterr().err == ""
    _fail_with(server, ValueError("a defect"))
    assert "ValueError: a defect" in capsys.readouterr().err
