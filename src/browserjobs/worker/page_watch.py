"""What happened to the page's main frame during a step: an HTTP error status, or a refused navigation."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from playwright.async_api import Page, Request, Response

from browserjobs.core.site_health import retry_after_seconds
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.egress_proxy import EGRESS_GUARD_HEADER
from browserjobs.worker.errors import ErrorName, JobFailure


def http_failure(
    status: int, url: str, guard: str | None = None, retry_after: str | None = None
) -> JobFailure | None:
    """HTTP 429 → Site.RateLimited, other 4xx → Site.ClientError, 5xx → Site.ServerError; the egress
    guard's own 502 (`X-Egress-Guard: error`: the site could not be resolved or connected to) →
    Site.Unreachable."""
    if guard == "error":
        return JobFailure(ErrorName.SITE_UNREACHABLE, f"{url} could not be reached", url=url)
    if status == 429:
        wait = retry_after_seconds(retry_after, datetime.now(UTC))
        error, details = ErrorName.SITE_RATE_LIMITED, {"retryAfterSeconds": wait}
        return JobFailure(error, f"HTTP 429 from {url}", status=status, url=url, **details)
    if 400 <= status < 500:
        error = ErrorName.SITE_CLIENT_ERROR
    elif status >= 500:
        error = ErrorName.SITE_SERVER_ERROR
    else:
        return None
    return JobFailure(error, f"HTTP {status} from {url}", status=status, url=url)


class MainFrameWatch:
    def __init__(self, page: Page, policy: EgressPolicy) -> None:
        self._page = page
        self._policy = policy
        self.http_error: JobFailure | None = None
        self.blocked: JobFailure | None = None
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_request_failed)

    def take(self, check_http: bool = True) -> JobFailure | None:
        """What went wrong since the last look (a refused navigation first: it explains any status the
        proxy answered with), and forget it: a navigation that ends between steps fails the next one."""
        failure = self.blocked or (self.http_error if check_http else None)
        self.http_error = self.blocked = None
        return failure

    def _main_frame_navigation(self, request: Request) -> bool:
        return request.is_navigation_request() and request.frame == self._page.main_frame

    def _on_response(self, response: Response) -> None:
        # A blocked host is never connected to: its "response" is the proxy's refusal.
        if self._main_frame_navigation(response.request) and not self._refused(response.url):
            headers = response.headers  # Playwright lower-cases the names
            failure = http_failure(
                response.status,
                response.url,
                headers.get(EGRESS_GUARD_HEADER.lower()),
                headers.get("retry-after"),
            )
            self.http_error = self.http_error or failure

    def _on_request_failed(self, request: Request) -> None:
        if self._main_frame_navigation(request):
            self._refused(request.url)

    def _refused(self, url: str) -> bool:
        block = self._policy.blocked_host(urlsplit(url).hostname)
        if block is not None:
            self.blocked = self.blocked or JobFailure(
                ErrorName.SITE_CLIENT_ERROR,
                f"navigation to {url} blocked by egress guard: {block.blocked}",
                url=url,
            )
        return block is not None
