"""The egress policy: the browser reaches public addresses only, unless EGRESS_ALLOW says otherwise.

A host is allowed when EGRESS_ALLOW names it, or when every address it resolves to is public (or inside
an allowed CIDR): one private answer is enough to refuse it, since the browser could pick any of them.
Two enforcement points share this policy: context routing (every request Playwright can see, decided
before Chromium opens a connection) and the egress proxy (every connection Chromium opens, including
redirect hops and WebSockets, which routing cannot see). See container/README.md, "Egress guard".
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from browserjobs.core.config import ConfigError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss"})
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})  # never leave the browser
RESOLVE_TIMEOUT_SECONDS = 5.0
CACHE_SECONDS = 60.0
MAX_RECORDED_BLOCKS = 100
NAT64 = ipaddress.ip_network("64:ff9b::/96")
HOST_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# WHATWG URL "ends in a number checker": a host whose last label is a number is parsed as IPv4.
NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


@dataclass(frozen=True)
class Decision:
    host: str
    addresses: tuple[str, ...] = ()  # what the host resolved to; empty for allow-listed names and IPs
    blocked: str | None = None  # why the host is refused
    unresolved: bool = False  # DNS had no answer: not a guard decision, the request fails as it would anyway

    @property
    def allowed(self) -> bool:
        return self.blocked is None and not self.unresolved


def non_public_reason(ip: IPAddress) -> str | None:
    """Why an address is not public, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(ip.packed[-4:])
        if embedded is not None:
            return non_public_reason(embedded)
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return label
    return None if ip.is_global else "not globally routable"


class EgressPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._hosts: set[str] = set()
        for entry in allow:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _is_hostname(entry):
                    raise ConfigError(
                        f"EGRESS_ALLOW entry {entry!r} is neither a CIDR nor a host name"
                    ) from None
                self._hosts.add(entry.lower().rstrip("."))
        self._cache: dict[str, tuple[float, Decision]] = {}
        self.blocks: list[dict[str, str]] = []  # what was refused, for result.json (bounded)
        self._blocked_hosts: dict[str, Decision] = {}

    def address_reason(self, ip: IPAddress) -> str | None:
        if any(ip in network for network in self._networks if network.version == ip.version):
            return None
        return non_public_reason(ip)

    async def check_host(self, host: str) -> Decision:
        host = _normal(host)
        cached = self._cache.get(host)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        decision = await self._decide(host)
        if not decision.unresolved:
            self._cache[host] = (time.monotonic() + CACHE_SECONDS, decision)
        return decision

    async def check_url(self, url: str) -> Decision | None:
        """None for URLs that never leave the browser (data:, blob:, about:)."""
        try:
            parts = urlsplit(url)
        except ValueError as error:  # e.g. an unbalanced [ in the host
            return Decision(host="", blocked=f"the URL is ambiguous: {error}")
        scheme = parts.scheme.lower()
        if scheme in LOCAL_SCHEMES:
            return None
        if scheme not in NETWORK_SCHEMES or not parts.hostname:
            return Decision(host=parts.hostname or "", blocked=f"scheme {scheme!r} is not allowed")
        doubt = ambiguity(url)
        if doubt is not None:
            return Decision(host="", blocked=f"the URL is ambiguous: {doubt}")
        return await self.check_host(parts.hostname)

    async def pin(self, decision: Decision) -> Decision:
        """The decision with the addresses to connect to: the very ones that were checked. An allow-listed
        name is allowed without resolving it (routing needs no answer); the proxy resolves it here, once,
        and keeps that answer as long as a checked one, so no connection resolves the name again."""
        if decision.addresses or not decision.allowed:
            return decision
        addresses = await _resolve(decision.host)
        if addresses is None:
            return Decision(host=decision.host, unresolved=True)
        pinned = Decision(host=decision.host, addresses=addresses)
        self._cache[decision.host] = (time.monotonic() + CACHE_SECONDS, pinned)
        return pinned

    def record(self, decision: Decision, target: str) -> Decision:
        """Remember a refusal: the job's result lists it, and a failed navigation is explained by it."""
        if decision.blocked:
            if decision.host:
                self._blocked_hosts[decision.host] = decision
            logger.warning("egress guard blocked %s: %s", target, decision.blocked)
            if len(self.blocks) < MAX_RECORDED_BLOCKS:
                self.blocks.append({"target": target[:2048], "reason": decision.blocked})
        return decision

    def blocked_host(self, host: str | None) -> Decision | None:
        return self._blocked_hosts.get(_normal(host or ""))

    async def _decide(self, host: str) -> Decision:
        if host in self._hosts:
            return Decision(host=host)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            reason = self.address_reason(literal)
            # The proxy connects to the parsed address, never to the text it came as ("127.0.0.1." would
            # otherwise go to DNS once more).
            return Decision(host=host, addresses=(str(literal),), blocked=reason and f"{host} is {reason}")
        addresses = await _resolve(host)
        if addresses is None:
            return Decision(host=host, unresolved=True)
        for address in addresses:
            reason = self.address_reason(ipaddress.ip_address(address))
            if reason:
                return Decision(
                    host=host, addresses=addresses, blocked=f"{host} resolves to {address} ({reason})"
                )
        return Decision(host=host, addresses=addresses)


async def _resolve(host: str) -> tuple[str, ...] | None:
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
            RESOLVE_TIMEOUT_SECONDS,
        )
    except (OSError, TimeoutError) as error:
        logger.info("cannot resolve %s: %s", host, error)
        return None
    return tuple(dict.fromkeys(_address(info) for info in infos)) or None


def ambiguity(url: str) -> str | None:
    """Why the browser might read this URL's host differently from Python's urlsplit, or None.

    Chromium and Playwright's request client parse URLs by the WHATWG URL Standard (url.spec.whatwg.org):
    for http(s)/ws(s) a backslash ends the authority like "/", tabs and newlines are dropped anywhere,
    the host is percent-decoded and IDNA-mapped (UTS 46), and a host ending in a number is an IPv4
    address in any of its forms (0x7f.1, 2130706433, 127.1, octal). urlsplit (RFC 3986) does none of this:
    "http://127.0.0.2\\@127.0.0.1/" is 127.0.0.1 to Python and 127.0.0.2 to the browser. Only a URL that
    both read alike is judged; the browser itself only ever sends such canonical URLs.
    """
    if any(ord(c) < 0x20 or c == "\x7f" for c in url) or url != url.strip():
        return "control characters or surrounding spaces"
    _, _, rest = url.partition(":")
    if not rest.startswith("//"):
        return "no // before its host"
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    if "\\" in authority:
        return "a backslash in its authority"
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        host, bracket, port = host_port[1:].partition("]")
        port = port.removeprefix(":") if bracket and port.startswith(":") else port
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"an IPv6 host it cannot read ({host_port[:100]!r})"
        if "%" in host:
            return "a zone index in its IPv6 host"
    else:
        host, _, port = host_port.partition(":")
        if "%" in host:
            return "a percent-encoded host"
        if not host.isascii():
            return "a non-ASCII host (give its xn-- form)"
        labels = host.lower().removesuffix(".").split(".")
        if not all(HOST_LABEL.fullmatch(label) for label in labels):
            return f"characters a host name cannot have ({host[:100]!r})"
        if NUMERIC_LABEL.fullmatch(labels[-1]):
            try:
                ipaddress.IPv4Address(host.removesuffix("."))
            except ValueError:
                return f"a non-canonical IPv4 host ({host[:100]!r})"
    if port and not port.isdigit():
        return f"a port that is not a number ({port[:20]!r})"
    return None


def _normal(host: str) -> str:
    return host.lower().rstrip(".").strip("[]")


def _address(info: tuple[Any, ...]) -> str:
    return str(info[4][0]).split("%")[0]  # drop an IPv6 zone index


def _is_hostname(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return bool(entry) and all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels
    )
