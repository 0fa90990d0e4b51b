"""Per-key limits on starting sessions: a fixed-window rate and a cap on live sessions.

Both are counted in the database (store/limits.py), never in process memory, so N replicas
enforce one limit rather than N. A key whose limit is None is not limited (the bootstrap owner key).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from voice_gateway.errors import RateLimited
from voice_gateway.metrics import RATE_LIMITED
from voice_gateway.services.keys import Principal
from voice_gateway.store.limits import RateCounterStore, RateWindow

START_BUCKET = "sessions.start"
MESSAGE_BUCKET = "chat.message"
# What a bucket counts, for the 429's message and the metric's label.
_COUNTED = {
    START_BUCKET: ("start", "session(s)", "rate"),
    MESSAGE_BUCKET: ("send", "message(s)", "message_rate"),
}
DEFAULT_WINDOW_SECONDS = 60
# A live session frees its slot when it ends; how soon is unknown, so clients retry after this.
LIVE_CAP_RETRY_AFTER_SECONDS = 5


def window_start(at: float, window_seconds: int) -> int:
    return int(at // window_seconds) * window_seconds


def retry_after(at: float, window_seconds: int) -> int:
    """Whole seconds until the current window closes, at least 1 (Retry-After has no fractions)."""
    return max(1, math.ceil(window_start(at, window_seconds) + window_seconds - at))


def allowance(per_minute: int, window_seconds: int) -> int:
    """Requests allowed in one window: the per-minute rate scaled to the window, at least 1."""
    return max(1, per_minute * window_seconds // 60)


def live_cap_error(cap: int) -> RateLimited:
    RATE_LIMITED.labels(limit="concurrency").inc()
    return RateLimited(
        f"this key already has {cap} live session(s), its maximum; end one first",
        retry_after_seconds=LIVE_CAP_RETRY_AFTER_SECONDS,
    )


@dataclass
class RateTicket:
    """One start request's place in its key's rate window, taken when the request arrives.

    A start that reaches its transaction counts there (store.SessionStore.open), at no extra
    write; a request refused before it (bad body, unknown agent, no capacity, live cap) is
    counted by StartLimiter.settle on its way out, so every request counts, refused ones too.
    """

    window: RateWindow | None  # None: the key is not rate-limited
    at: float
    window_seconds: int
    counted: bool = False

    def refusal(self) -> RateLimited:
        verb, what, label = _COUNTED[self.window.bucket if self.window else START_BUCKET]
        RATE_LIMITED.labels(limit=label).inc()
        allowed = self.window.allowance if self.window else 0
        return RateLimited(
            f"this key may {verb} {allowed} {what} per {self.window_seconds} s; retry later",
            retry_after_seconds=retry_after(self.at, self.window_seconds),
        )


class StartLimiter:
    def __init__(self, store: RateCounterStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def ticket(self, principal: Principal, bucket: str = START_BUCKET) -> RateTicket:
        at = self._clock()
        per_minute = principal.limits.rate_limit_per_minute
        window = principal.limits.rate_limit_window_seconds or DEFAULT_WINDOW_SECONDS
        if per_minute is None:
            return RateTicket(None, at, window, counted=True)
        return RateTicket(
            RateWindow(
                principal.key_id,
                bucket,
                window_start(at, window),
                allowance(per_minute, window),
            ),
            at,
            window,
        )

    async def settle(self, ticket: RateTicket) -> None:
        """Counts a request that did not count in a start's transaction; RateLimited when the
        key is over its rate (that answer then replaces the request's own error)."""
        if ticket.counted or ticket.window is None:
            return
        ticket.counted = True
        w = ticket.window
        if await self._store.hit(w.key_id, w.bucket, w.window_start) > w.allowance:
            raise ticket.refusal()

    async def check_rate(self, principal: Principal, bucket: str = START_BUCKET) -> None:
        """Counts one request in `bucket` now (a separate write): session starts outside the
        start path, or chat messages and completions, each with the key's own rate."""
        await self.settle(self.ticket(principal, bucket))
