"""A forward proxy on 127.0.0.1 that Chromium must use: the egress policy applied to every connection.

Context routing never sees redirect hops, WebSockets or the browser's own requests; the proxy does,
because Chromium opens every TCP connection through it (loopback and link-local too: the launch's
<-loopback> bypass rule, worker/browser.py). It connects to the very addresses the policy checked, as
numbers, so DNS answers that change between the check and the connection (rebinding) do not get
through either. HTTPS and WebSockets pass as CONNECT
tunnels; plain HTTP requests are forwarded one per connection (Connection: close).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from urllib.parse import urlsplit

from browserjobs.worker.egress import EgressPolicy

logger = logging.getLogger(__name__)

# On the proxy's own answers: `blocked` (403, the policy refused the host) or `error` (502, the site could
# not be resolved or connected to), so that the worker tells them from the site's own statuses.
EGRESS_GUARD_HEADER = "X-Egress-Guard"
HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 15.0
CHUNK = 64 * 1024
HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "trailer", "upgrade"}
)


class EgressProxy:
    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EgressProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=HEAD_LIMIT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
        ) as error:
            logger.debug("proxy connection ended: %r", error)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        if method.upper() == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = await self._open(writer, host, int(port), target)
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await _respond(writer, 400, f"not a proxy request: {request_line[:200]}")
                return
            upstream = await self._open(writer, url.hostname, url.port or 80, target)
            if upstream is None:
                return
            path = url.path or "/"
            headers = [h for h in header_lines if h and h.split(":", 1)[0].strip().lower() not in HOP_BY_HOP]
            forwarded = [
                f"{method} {path}{'?' + url.query if url.query else ''} {version}",
                *headers,
                "Connection: close",
                "",
                "",
            ]
            upstream[1].write("\r\n".join(forwarded).encode("latin-1"))
        await _relay(reader, writer, *upstream)

    async def _open(
        self, writer: asyncio.StreamWriter, host: str, port: int, target: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        decision = self._policy.record(await self._policy.check_host(host), target)
        if decision.blocked:
            await _respond(writer, 403, f"blocked by egress guard: {decision.blocked}")
            return None
        decision = await self._policy.pin(decision)  # an allow-listed name: resolved once, kept
        if decision.unresolved:
            await _respond(writer, 502, f"cannot resolve {host}")
            return None
        last_error: Exception | None = None
        for address in decision.addresses:
            try:
                # Exactly the checked address: AI_NUMERICHOST forbids any further resolution.
                return await asyncio.wait_for(
                    asyncio.open_connection(address, port, flags=socket.AI_NUMERICHOST),
                    CONNECT_TIMEOUT_SECONDS,
                )
            except (OSError, TimeoutError) as error:
                last_error = error
        await _respond(writer, 502, f"cannot connect to {host}:{port}: {last_error}")
        return None


async def _respond(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = message.encode()
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        f"{EGRESS_GUARD_HEADER}: {'blocked' if status == 403 else 'error'}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until either side closes, then close both."""
    copies = {
        asyncio.ensure_future(_copy(client_reader, upstream_writer)),
        asyncio.ensure_future(_copy(upstream_reader, client_writer)),
    }
    try:
        await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for copy in copies:
            copy.cancel()
        upstream_writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
