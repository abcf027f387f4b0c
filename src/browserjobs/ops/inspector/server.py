"""The inspector's web server: a static page and a JSON API, on loopback by default.

Hardening, because job data is untrusted: the page builds its DOM with textContent only and a strict
Content-Security-Policy forbids inline script; artifacts other than raster images are served as
downloads; a Host check stops DNS rebinding; POSTs need a JSON body and a custom header, which a
cross-site form cannot send. Artifacts are served from their job's prefix only. Playwright's trace viewer
(/trace-viewer/, its own code from the installed package) gets a looser policy of its own: it needs an
inline script, inline styles and same-origin frames for its snapshots.
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from browserjobs.ops.inspector import api
from browserjobs.ops.inspector.api import INLINE_IMAGE_TYPES, NotFound
from browserjobs.ops.outputs import OperatorError, Target

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/graph.js": ("graph.js", "text/javascript; charset=utf-8"),
    "/static/vendor/elk.bundled.js": ("vendor/elk.bundled.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TRACE_VIEWER_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'none'"
)
MAX_BODY = 16 * 1024
POST_HEADER = "X-Inspector"


class InspectorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], target: Target):
        super().__init__(address, InspectorHandler)
        self.target = target
        host, port = self._host_port()
        self.allowed_hosts = {f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"}

    @property
    def url(self) -> str:
        host, port = self._host_port()
        return f"http://{host}:{port}/"

    def _host_port(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # an AF_INET(6) server's address: typeshed allows bytes for AF_UNIX
        return host, port


Route = Callable[["InspectorHandler", re.Match[str]], Any]


class InspectorHandler(BaseHTTPRequestHandler):
    server: InspectorServer
    server_version = "browserjobs-inspector"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the console stays readable; errors are answered as JSON

    # -- plumbing ---------------------------------------------------------------------------------
    def _headers(
        self, status: int, content_type: str, length: int, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(length),
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            **(extra or {}),
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, value: Any, status: int = HTTPStatus.OK) -> None:
        body = json.dumps(value, default=str).encode()
        self._headers(status, "application/json", len(body))
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send_json({"error": message}, status)

    def _host_ok(self) -> bool:
        return self.headers.get("Host", "") in self.server.allowed_hosts

    def _dispatch(self, routes: list[tuple[re.Pattern[str], Route]]) -> None:
        if not self._host_ok():
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")
            return
        path = urlsplit(self.path).path
        for pattern, route in routes:
            match = pattern.fullmatch(path)
            if match:
                try:
                    route(self, match)
                except NotFound as error:
                    self._error(HTTPStatus.NOT_FOUND, str(error))
                except OperatorError as error:
                    self._error(HTTPStatus.BAD_GATEWAY, str(error))
                return
        self._error(HTTPStatus.NOT_FOUND, f"no route {path}")

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}

    # -- routes -----------------------------------------------------------------------------------
    def _static(self, match: re.Match[str]) -> None:
        name, content_type = STATIC_FILES[match.group(0)]
        body = (STATIC / name).read_bytes()
        self._headers(HTTPStatus.OK, content_type, len(body))
        self.wfile.write(body)

    def _config(self, _: re.Match[str]) -> None:
        target = self.server.target
        self._send_json(
            {
                "stack": target.stack_name,
                "endpoint": target.endpoint_url or "AWS",
                "region": target.session.region_name,
                "stateMachineArn": target.outputs["StateMachineArn"],
            }
        )

    def _executions(self, _: re.Match[str]) -> None:
        status = self.query.get("status") or None
        self._send_json(api.executions(self.server.target, status))

    def _execution(self, match: re.Match[str]) -> None:
        self._send_json(api.execution_detail(self.server.target, unquote(match.group(1))))

    def _job(self, match: re.Match[str]) -> None:
        self._send_json(api.job_detail(self.server.target, unquote(match.group(1))))

    def _artifacts(self, match: re.Match[str]) -> None:
        job_id = unquote(match.group(1))
        self._send_json(
            {"artifacts": api.job_artifacts(self.server.target, job_id), "traceViewer": api.trace_viewer()}
        )

    def _file(self, match: re.Match[str]) -> None:
        """An artifact's bytes, streamed: raster images inline, anything else a sandboxed download."""
        body, length, content_type = api.open_artifact(
            self.server.target, unquote(match.group(1)), unquote(match.group(2))
        )
        extra = {"Content-Security-Policy": "sandbox; default-src 'none'"}
        if content_type not in INLINE_IMAGE_TYPES:
            content_type = "application/octet-stream"
            extra["Content-Disposition"] = "attachment"
        self._headers(HTTPStatus.OK, content_type, length, extra)
        for chunk in body.iter_chunks(64 * 1024):
            self.wfile.write(chunk)

    def _trace_viewer(self, match: re.Match[str]) -> None:
        """Playwright's trace viewer, from the installed playwright package, on this origin: its service
        worker needs the same origin as the trace it loads, and loopback is a secure context."""
        root = api.trace_viewer_root()
        if root is None:
            raise NotFound(f"the trace viewer needs Playwright here: {api.trace_viewer()['howTo']}")
        path = (root / (match.group(1) or "index.html")).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            raise NotFound(f"no {match.group(0)}")
        body = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "json", "+xml")):
            content_type += "; charset=utf-8"
        # the viewer is Playwright's own code (an inline script, inline styles, snapshot frames)
        extra = {"Content-Security-Policy": TRACE_VIEWER_CSP, "X-Frame-Options": "SAMEORIGIN"}
        self._headers(HTTPStatus.OK, content_type, len(body), extra)
        self.wfile.write(body)

    def _dlq(self, _: re.Match[str]) -> None:
        self._send_json(api.dead_letters(self.server.target))

    def _redrive(self, _: re.Match[str]) -> None:
        if self.headers.get(POST_HEADER) != "1" or not self.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            self._error(HTTPStatus.FORBIDDEN, f"a POST needs JSON and the header {POST_HEADER}: 1")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
            return
        try:
            message_id = json.loads(self.rfile.read(length))["messageId"]
        except (json.JSONDecodeError, KeyError, TypeError):
            self._error(HTTPStatus.BAD_REQUEST, 'body must be {"messageId": "..."}')
            return
        result = api.redrive(self.server.target, str(message_id))
        self._send_json(result, HTTPStatus.OK if not result["error"] else HTTPStatus.CONFLICT)

    GET_ROUTES: list[tuple[re.Pattern[str], Route]] = [
        (re.compile(r"/|/static/(app\.js|graph\.js|app\.css|vendor/elk\.bundled\.js)"), _static),
        (re.compile(r"/api/config"), _config),
        (re.compile(r"/api/executions"), _executions),
        (re.compile(r"/api/executions/(.+)"), _execution),
        (re.compile(r"/api/jobs/([^/]+)"), _job),
        (re.compile(r"/api/jobs/([^/]+)/artifacts"), _artifacts),
        (re.compile(r"/api/jobs/([^/]+)/files/(.+)"), _file),
        (re.compile(r"/trace-viewer/(.*)"), _trace_viewer),
        (re.compile(r"/api/dlq"), _dlq),
    ]
    POST_ROUTES: list[tuple[re.Pattern[str], Route]] = [
        (re.compile(r"/api/dlq/redrive"), _redrive),
    ]

    def do_GET(self) -> None:
        self._dispatch(self.GET_ROUTES)

    def do_POST(self) -> None:
        self._dispatch(self.POST_ROUTES)


@contextmanager
def running(target: Target, host: str = "127.0.0.1", port: int = 0) -> Iterator[InspectorServer]:
    """Serve on a background thread while the block runs (tests, the demo)."""
    server = InspectorServer((host, port), target)
    thread = threading.Thread(target=server.serve_forever, name="inspector", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def serve(target: Target, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve in the foreground until interrupted."""
    server = InspectorServer((host, port), target)
    announce(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
