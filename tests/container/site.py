"""Pages for the worker's tests, served on 127.0.0.1 by a threaded http.server."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CONSOLE_MESSAGE = "fixture page ready"
PAGE = """<!doctype html><html><head><title>Fixture page</title>
<script>console.log("fixture page ready")</script></head><body>
<h1 id="title">Hello fixture</h1>
<a class="item" href="/a">Alpha</a><a class="item" href="/b">Beta</a><a class="item" href="/c">Gamma</a>
<input id="name"><button id="greet" onclick="document.getElementById('greeting').textContent =
  'Hi ' + document.getElementById('name').value">Greet</button><p id="greeting"></p>
<input id="search" onkeydown="if (event.key === 'Enter') document.getElementById('searched').textContent =
  'searched ' + this.value"><span id="searched"></span>
<button id="later" onclick="setTimeout(() => { const d = document.createElement('div'); d.id = 'late';
  d.textContent = 'arrived'; document.body.appendChild(d) }, 300)">Later</button>
<a id="csv" href="/file.csv">CSV</a> <a id="broken" href="/status/500">broken</a>
<p style="margin-top: 3000px" id="bottom">bottom</p>
</body></html>"""

LOGIN = """<!doctype html><html><body><form method="post" action="/do-login">
<input id="username" name="username"><input id="password" name="password" type="password">
<button id="submit" type="submit">Log in</button></form></body></html>"""

WEBSOCKET = """<!doctype html><html><body><p id="state">connecting</p><script>
const ws = new WebSocket('ws://10.1.2.3:80/socket');
ws.onopen = () => document.getElementById('state').textContent = 'open';
ws.onerror = () => document.getElementById('state').textContent = 'failed';
</script></body></html>"""

CSV = b"id,name\n1,alpha\n2,beta\n"
USERNAME, PASSWORD = "alice", "s3cret-pa55"


class Site:
    """Serves the fixture pages; records every path asked for and every login made."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.logins = 0
        self.sessions: set[str] = set()
        self.release = threading.Event()  # ends /hang at teardown
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Site:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                site.requests.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if (
                    self.path == "/do-login"
                    and form.get("username") == [USERNAME]
                    and form.get("password") == [PASSWORD]
                ):
                    site.logins += 1
                    sid = uuid.uuid4().hex
                    site.sessions.add(sid)
                    self._send(302, b"", headers={"Location": "/account", "Set-Cookie": f"sid={sid}; Path=/"})
                else:
                    self._send(200, LOGIN.replace("<form", "<p id='error'>wrong</p><form").encode())

            def do_GET(self) -> None:
                site.requests.append(self.path)
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                path = url.path
                if path in ("/page", "/a", "/b", "/c"):
                    self._send(200, PAGE.encode())
                elif path.startswith("/status/"):
                    code = int(path.rsplit("/", 1)[1])
                    self._send(code, f"<html><body><h1>status {code}</h1></body></html>".encode())
                elif path.startswith("/retry-after/"):
                    retry_after = path.removeprefix("/retry-after/")
                    self._send(
                        429, b"<html><body>slow down</body></html>", headers={"Retry-After": retry_after}
                    )
                elif path.startswith("/slow/"):
                    # The server takes this long to answer: what the page under test does, not a test wait.
                    time.sleep(int(path.rsplit("/", 1)[1]) / 1000)
                    self._send(200, PAGE.encode())
                elif path == "/hang":
                    site.release.wait(120)
                    self._send(200, b"late")
                elif path == "/redirect":
                    self._send(302, b"", headers={"Location": query["to"][0]})
                elif path == "/file.csv":
                    self._send(
                        200, CSV, "text/csv", {"Content-Disposition": 'attachment; filename="report.csv"'}
                    )
                elif path == "/websocket":
                    self._send(200, WEBSOCKET.encode())
                elif path == "/login":
                    self._send(200, LOGIN.encode())
                elif path == "/account":
                    cookie = SimpleCookie(self.headers.get("Cookie") or "")
                    if "sid" in cookie and cookie["sid"].value in site.sessions:
                        self._send(
                            200, f"<html><body><div id='account-name'>{USERNAME}</div></body></html>".encode()
                        )
                    else:
                        self._send(302, b"", headers={"Location": "/login"})
                else:
                    self._send(404, b"<html><body>not found</body></html>")

            def _send(
                self,
                status: int,
                body: bytes,
                content_type: str = "text/html",
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the browser went away first (a stopped job)
                    self.wfile.write(body)

        return Handler
