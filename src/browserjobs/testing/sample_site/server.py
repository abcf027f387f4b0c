"""Serves pages/ on loopback, plus paths that behave badly on purpose.

/slow?seconds=N    the index page after N seconds
/hang              never answers (until the client goes away or the site stops)
/status/<code>     an empty page with that HTTP status (429, 503, ...)
"""

from __future__ import annotations

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


class _Handler(SimpleHTTPRequestHandler):
    stopping: threading.Event

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/slow":
            seconds = min(float(parse_qs(url.query).get("seconds", ["2"])[0]), MAX_SLOW_SECONDS)
            time.sleep(seconds)
            self.path = "/index.html"
        elif url.path == "/hang":
            self.stopping.wait()
            return
        elif url.path.startswith("/status/"):
            code = HTTPStatus(int(url.path.rsplit("/", 1)[-1]))
            self.send_response(code)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(f"<h1>{code.value} {code.phrase}</h1>".encode())
            return
        super().do_GET()

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
        handler = type("Handler", (_Handler,), {"stopping": stopping})
        self._stopping = stopping
        self._server = _Server((host, port), partial(handler, directory=str(PAGES)))
        self._thread = threading.Thread(target=self._server.serve_forever, name="sample-site", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address: typeshed allows bytes for AF_UNIX
        return f"http://{host}:{port}"

    def __enter__(self) -> SampleSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
