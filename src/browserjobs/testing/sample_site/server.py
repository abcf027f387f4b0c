"""Serves pages/ on loopback, plus paths that behave badly on purpose.

/slow?seconds=N[&name=X[&then=M]]
                   the index page after N seconds (a named one is counted under /hits/X; with then=M,
                   the name's later requests wait M seconds: a first attempt that cannot end early)
/hang              never answers (until the client goes away or the site stops)
/status/<code>     an empty page with that HTTP status (429, 503, ...)
/flaky/<name>?fail=N&status=503[&retryAfter=S]
                   a site in trouble: the first N requests for <name> answer that status (with
                   `Retry-After: S` when given), later ones the index page; fail=always: every request
                   until /recover/<name>
/recover/<name>    <name> answers with the index page from now on
/hits/<name>       the times (epoch seconds) <name> was asked for under /flaky or /slow, as JSON
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGES = Path(__file__).resolve().parent / "pages"
MAX_SLOW_SECONDS = 60


class _Flaky:
    """Requests per /flaky name, shared by the server's threads."""

    def __init__(self) -> None:
        self.hits: dict[str, list[float]] = {}
        self.recovered: set[str] = set()
        self.lock = threading.Lock()

    def hit(self, name: str) -> int:
        """Record a request; how many came before it."""
        with self.lock:
            times = self.hits.setdefault(name, [])
            times.append(time.time())
            return len(times) - 1

    def fails(self, name: str, before: int, fail: str) -> bool:
        with self.lock:
            if name in self.recovered:
                return False
        return fail == "always" or before < int(fail)

    def times(self, name: str) -> list[float]:
        with self.lock:
            return list(self.hits.get(name, []))


class _Handler(SimpleHTTPRequestHandler):
    stopping: threading.Event
    flaky: _Flaky

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/flaky/"):
            self._flaky(url.path.removeprefix("/flaky/"), parse_qs(url.query))
            return
        if url.path.startswith("/recover/"):
            with self.flaky.lock:
                self.flaky.recovered.add(url.path.removeprefix("/recover/"))
            self._send(HTTPStatus.OK, "recovered")
            return
        if url.path.startswith("/hits/"):
            self._send(
                HTTPStatus.OK,
                json.dumps(self.flaky.times(url.path.removeprefix("/hits/"))),
                "application/json",
            )
            return
        if url.path == "/slow":
            query = parse_qs(url.query)
            before = self.flaky.hit(query["name"][0]) if "name" in query else 0
            wait = query["then"] if before and "then" in query else query.get("seconds", ["2"])
            seconds = min(float(wait[0]), MAX_SLOW_SECONDS)
            time.sleep(seconds)
            self.path = "/index.html"
        elif url.path == "/hang":
            self.stopping.wait()
            return
        elif url.path.startswith("/status/"):
            code = HTTPStatus(int(url.path.rsplit("/", 1)[-1]))
            self._send(code, f"<h1>{code.value} {code.phrase}</h1>")
            return
        super().do_GET()

    def _flaky(self, name: str, query: dict[str, list[str]]) -> None:
        if not self.flaky.fails(name, self.flaky.hit(name), query.get("fail", ["1"])[0]):
            self.path = "/index.html"
            super().do_GET()
            return
        code = HTTPStatus(int(query.get("status", ["503"])[0]))
        retry_after = query.get("retryAfter", [None])[0]
        self._send(code, f"<h1>{code.value} {code.phrase}</h1>", headers={"Retry-After": retry_after})

    def _send(
        self,
        code: HTTPStatus,
        body: str,
        content_type: str = "text/html",
        headers: dict[str, str | None] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            if value is not None:
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:  # the demo prints its own progress
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        # A browser killed mid-page (crash and Spot tests do it on purpose) is no error of the site.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class SampleSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        stopping = threading.Event()
        self._flaky = _Flaky()
        handler = type("Handler", (_Handler,), {"stopping": stopping, "flaky": self._flaky})
        self._stopping = stopping
        self._server = _Server((host, port), partial(handler, directory=str(PAGES)))
        self._thread = threading.Thread(target=self._server.serve_forever, name="sample-site", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address: typeshed allows bytes for AF_UNIX
        return f"http://{host}:{port}"

    def loads(self, name: str) -> list[float]:
        """When /flaky/<name> was asked for (epoch seconds), as /hits/<name> answers."""
        return self._flaky.times(name)

    def __enter__(self) -> SampleSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
