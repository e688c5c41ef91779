"""Watching a page in the real Chromium for what a user would see go wrong in its console:
an error logged, an exception thrown, a request answered 4xx/5xx or failed (issue 17:
"no 404 in the browser console on any page"). Shared by the box's and the centre's tests.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConsoleWatch"]


class ConsoleWatch:
    """Collects a page's console errors, uncaught exceptions and failed requests.

    A request the browser itself aborts when the page goes away (an event stream, a
    pending fetch at navigation: ``net::ERR_ABORTED``) is not a failure.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"exception: {exc}"))
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.problems.append(f"console error at {self.page.url}: {msg.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def _failed(self, request: Any) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure:
            self.problems.append(f"failed {request.method} {request.url}: {failure}")

    def visit(self, url: str, settle_ms: int = 800) -> None:
        """Open ``url`` and let its scripts run their first requests."""
        self.page.goto(url)
        self.page.wait_for_timeout(settle_ms)  # (an event stream never lets the network idle)
