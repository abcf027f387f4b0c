"""moto's server: how it routes each request, where its per-request work does not depend on the request.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing. These change no
answer, only what each request costs the stack's one process (every AWS call of the workers, the Lambda
handlers and the interpreter passes through it).
"""

from __future__ import annotations

import functools
from typing import Any

# --- the backend for a host, found once per host -----------------------------------------------------------
# For every request moto lists its own package directory (a stat per service) and tries the URL patterns of
# every service, twice (the endpoint's host, then the service named by the signature), under one lock that
# all requests share. The answer for a host never changes.


def shim_backend_lookup_once_per_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    if getattr(original, "once_per_host", False):
        return
    found: dict[str | None, Any] = {}

    @functools.wraps(original)
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        if host not in found:
            found[host] = original(self, host)
        return found[host]

    get_backend_for_host.once_per_host = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


# --- a response class's method names, listed once ----------------------------------------------------------
# moto lists a response class's methods (inspect.getmembers) on every request to check that the action is
# one of them. The classes do not change once the shims are installed.


def shim_action_names_once_per_class() -> None:
    from moto.core import responses

    if hasattr(responses.method_names_from_class, "cache_info"):
        return
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
