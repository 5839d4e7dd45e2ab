"""Slowing down password guessing: too many failed sign-ins from one client for one name
within a minute are answered 429 until the minute has passed."""

from __future__ import annotations

import time
from collections import deque

from dockyard.core.errors import TooManyRequests

WINDOW = 60.0


class Throttle:
    def __init__(self, limit: int = 10, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def check(self, client: str, name: str) -> None:
        """Raise TooManyRequests while this client is locked out for this name."""
        now = time.monotonic()
        failures = self._recent((client, name.lower()), now)
        if len(failures) >= self.limit:
            retry = max(1, int(failures[0] + self.window - now) + 1)
            error = TooManyRequests(
                f"too many failed sign-ins for {name[:60]!r}; retry in {retry} seconds", detail={"retryAfter": retry}
            )
            error.retry_after = retry
            raise error

    def failed(self, client: str, name: str) -> None:
        if len(self._failures) > 100_000:
            self._failures.clear()
        self._failures.setdefault((client, name.lower()), deque()).append(time.monotonic())
