"""The gateway's Prometheus series: named metric objects, one line at each call site.

Labels are low-cardinality by rule: an agent id from the catalogue, a channel, a status, an end
reason, a route pattern, a LiveKit call name, an error code. Never a room, session, identity or key.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

# Request latency from ~1 ms to ~10 s; /start with its LiveKit round trips sits in the middle.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

HTTP_REQUESTS = Counter(
    "voicegw_http_requests_total",
    "HTTP requests answered, by method, route pattern and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "voicegw_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by method and route pattern.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)

SESSIONS_STARTED = Counter(
    "voicegw_sessions_started_total",
    "Sessions started (room created, agent dispatched, token minted).",
    ["agent", "channel"],
)
SESSIONS_ENDED = Counter(
    "voicegw_sessions_ended_total",
    "Sessions ended or failed, by final status and end reason.",
    ["agent", "channel", "status", "reason"],
)
LIVE_SESSIONS = Gauge(
    "voicegw_live_sessions",
    "Sessions starting or active, read from the store at scrape time (the whole deployment's "
    "count, the same on every replica: aggregate with max, not sum).",
    ["agent", "channel"],
)
START_DURATION = Histogram(
    "voicegw_session_start_duration_seconds",
    "Setup time of a successful session start, from the first store write to the token.",
    buckets=LATENCY_BUCKETS,
)
START_STAGE_DURATION = Histogram(
    "voicegw_session_start_stage_duration_seconds",
    "Setup time of one stage of a session start (reserve: its one store write, create_room, "
    "dispatch, activate: in memory since issue 13).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)

LIVEKIT_DURATION = Histogram(
    "voicegw_livekit_api_request_duration_seconds",
    "LiveKit server API calls, by call (Twirp service and method), whatever their outcome.",
    ["call"],
    buckets=LATENCY_BUCKETS,
)
LIVEKIT_ERRORS = Counter(
    "voicegw_livekit_api_errors_total",
    "LiveKit server API calls that failed, by call and error (timeout, connection or Twirp code).",
    ["call", "error"],
)

LIVEKIT_WEBHOOKS = Counter(
    "voicegw_livekit_webhooks_total",
    "Webhooks received from LiveKit, by event and outcome (ok, invalid_signature).",
    ["event", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "voicegw_webhook_deliveries_total",
    "Outgoing webhook delivery attempts, by event type and outcome (delivered, failed).",
    ["event", "outcome"],
)

REAPER_ACTIONS = Counter(
    "voicegw_reaper_actions_total",
    "Rooms and sessions the reaper ended, by the rule that matched and the outcome.",
    ["rule", "outcome"],
)
REAPER_FLAGGED = Gauge(
    "voicegw_reaper_flagged_rooms",
    "Rooms the last reaper pass reported and left alone (orphans, when not reaped), by rule.",
    ["rule"],
)

AUTH_FAILURES = Counter(
    "voicegw_auth_failures_total",
    "Requests refused by key authentication or authorization, by error code.",
    ["reason"],
)
RATE_LIMITED = Counter(
    "voicegw_rate_limited_total",
    "Requests refused with 429 by a key's limits, by limit (rate: session starts, "
    "concurrency: live sessions, message_rate: chat messages and completions).",
    ["limit"],
)

CHAT_MESSAGES = Counter(
    "voicegw_chat_messages_total",
    "Typed messages the gateway answered itself, by agent, API (session: a chat session's "
    "message, completions: /v1/chat/completions) and outcome (answered, failed).",
    ["agent", "api", "outcome"],
)
CHAT_FIRST_PIECE = Histogram(
    "voicegw_chat_first_piece_seconds",
    "Time from a typed message's arrival to the first piece of the agent's reply, by API.",
    ["api"],
    buckets=LATENCY_BUCKETS,
)


class StartTimer:
    """Times the stages of one session start: `lap(stage)` after each, `done(stage)` after the
    last, which also observes the whole."""

    def __init__(self) -> None:
        self._started = self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        at = time.perf_counter()
        START_STAGE_DURATION.labels(stage=stage).observe(at - self._last)
        self._last = at

    def done(self, stage: str) -> None:
        self.lap(stage)
        START_DURATION.observe(self._last - self._started)
