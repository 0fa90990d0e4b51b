"""Gateway settings: read once from the environment (prefix VOICEGW_), then passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice_gateway.sip_destinations import parse_destination

DEFAULT_CATALOGUE = Path(__file__).with_name("agents.yaml")
# Where `npm run build` (scripts/setup.sh) puts the browser client of this checkout.
DEFAULT_WEB_DIR = Path(__file__).resolve().parent.parent / "web" / "dist"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEGW_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite+aiosqlite:///./voicegw.db"
    # Connections kept open per replica (store/database.py): at least the concurrent starts a
    # replica serves, or connections are opened and closed under load. A connection is checked
    # with a round trip before each use only when pool_pre_ping is on; off, a connection the
    # server dropped fails one transaction (503 store_unavailable) and the pool is refilled.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    database_pool_pre_ping: bool = False

    # LiveKit's own names, so one .env serves the server, the worker and the gateway.
    livekit_url: str = Field(
        default="ws://127.0.0.1:7880",
        validation_alias=AliasChoices("LIVEKIT_URL", "VOICEGW_LIVEKIT_URL"),
    )
    livekit_api_key: str = Field(
        default="devkey",
        validation_alias=AliasChoices("LIVEKIT_API_KEY", "VOICEGW_LIVEKIT_API_KEY"),
    )
    livekit_api_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("LIVEKIT_API_SECRET", "VOICEGW_LIVEKIT_API_SECRET"),
    )
    # What clients are told to connect to; differs from livekit_url behind a proxy or NAT.
    livekit_public_url: str | None = None
    livekit_timeout_seconds: float = Field(default=5.0, gt=0)

    agent_name: str = "voice-agent"
    agents_file: Path = DEFAULT_CATALOGUE

    token_ttl_seconds: int = Field(default=600, ge=30, le=86400)
    room_empty_timeout_seconds: int = Field(default=60, ge=1)
    room_departure_timeout_seconds: int = Field(default=10, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # The first owner key of a fresh install; stored as a hash, never kept or logged in clear.
    bootstrap_api_key: SecretStr | None = None

    # Limits of a key whose creator names none (services/limits.py); the bootstrap key has none.
    key_rate_limit_per_minute: int = Field(default=60, ge=1)
    key_rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    key_max_concurrent_sessions: int = Field(default=10, ge=1)
    # How long a replica trusts a key it has read (issue 13: no store read per request). A
    # revocation or rotation through this replica applies at once, through another within this.
    key_cache_seconds: float = Field(default=2.0, ge=0, le=60)

    # The reaper (services/reaper.py): how often it looks, and what it allows.
    reaper_enabled: bool = True
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    user_join_timeout_seconds: int = Field(default=120, ge=5)
    room_grace_seconds: int = Field(default=15, ge=0)
    # A dispatch no worker took (none registered, all full) must not leave the caller waiting.
    agent_join_timeout_seconds: int = Field(default=30, ge=5)
    stuck_start_seconds: int = Field(default=60, ge=5)
    # How often the reaper asks each live room's LiveKit node whether it still hosts the room; a
    # room unanswered this long (two probes) is ended as livekit_node_lost.
    room_probe_interval_seconds: float = Field(default=10.0, gt=0)
    # Rooms in LiveKit with no session record are flagged in /v1/ops/rooms; deleting them on
    # sight is opt-in, since other applications may share the LiveKit server.
    reap_orphan_rooms: bool = False

    # Start that guarantees an agent. Workers report their free capacity to the internal API;
    # with none fresh and free, /start answers 503 no_agent_available and creates no room. Turn
    # the check off only when the agents serving `agent_name` do not report to this gateway.
    agent_capacity_check: bool = True
    # Workers report every 2 s and at once when draining; a report older than this is ignored.
    worker_report_ttl_seconds: float = Field(default=6.0, gt=0)
    # How long a replica reuses a pre-flight that found a free slot (a report on this replica, a
    # drain for one, drops it at once); 0 reads the reports on every start.
    capacity_cache_seconds: float = Field(default=0.5, ge=0, le=5)
    no_agent_retry_after_seconds: int = Field(default=5, ge=1)
    # A dispatch whose job no worker claimed within this time is re-dispatched once; the second
    # unclaimed dispatch fails the session (agent_never_joined) and deletes its room. A claimed
    # job's agent must be in the room within agent_join_timeout_seconds of the dispatch. Longer
    # than livekit-server's own wait for a worker to accept a job (10 s), so LiveKit has tried
    # every worker it knows before the gateway steps in.
    dispatch_assign_timeout_seconds: float = Field(default=12.0, gt=0)
    # "waitForAgent": true bounds /start by this (a request may ask for less), then 504
    # agent_timeout with nothing left behind.
    wait_for_agent_timeout_seconds: float = Field(default=20.0, gt=0)
    # An Idempotency-Key answers the same session for this long.
    idempotency_window_seconds: int = Field(default=24 * 3600, ge=60)

    # Text with the same agent (services/chat.py). A chat session nobody wrote in for
    # chat_idle_timeout_seconds is ended by the reaper (idle_timeout). A reply streams with a
    # comment heartbeat every chat_heartbeat_seconds while the model is silent; a reply whose
    # gateway died is given up after chat_turn_timeout_seconds, so the session takes messages
    # again.
    chat_idle_timeout_seconds: int = Field(default=900, ge=10)
    chat_heartbeat_seconds: float = Field(default=15.0, gt=0)
    chat_turn_timeout_seconds: float = Field(default=120.0, ge=5)
    # The key for agents whose `llm` is `openai:<model>` (at their llmBaseUrl, any
    # OpenAI-compatible server) when the gateway answers typed messages itself.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "VOICEGW_OPENAI_API_KEY")
    )

    # Outgoing webhooks (services/outgoing_webhooks.py): where session.started/ended go.
    webhook_urls: list[str] = Field(default_factory=list)
    webhook_secret: SecretStr | None = None
    webhook_ended_delay_seconds: float = Field(default=2.0, ge=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    # A session started or ended this long ago without its event enqueued (its replica died
    # between the two writes) gets the event from the reaper's leader.
    webhook_sweep_grace_seconds: float = Field(default=30.0, gt=0)

    # The browser client (web/), served at `/`. Its page reads the publishable key below from
    # /config.json: a key the gateway stores at start (like the bootstrap key) when it does not
    # know it yet, bound to every agent of the catalogue and to web_origins (empty: the gateway's
    # own address). Never a secret key: anyone can read what a page holds.
    web_dir: Path = DEFAULT_WEB_DIR
    web_publishable_key: SecretStr | None = None
    web_origins: list[str] = Field(default_factory=list)
    web_default_agent: str | None = None
    # GET /metrics: on the API's own port by default; with a port set, on that port alone
    # (bound to metrics_host, loopback unless changed), so the API port does not expose it.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    # Phone calls (services/phone_lines.py, services/calls.py). SIP passwords are kept encrypted
    # with this key (a Fernet key: 32 url-safe base64 bytes); unset, one is derived from the
    # LiveKit API secret, so rotating that secret then means re-entering the passwords.
    phone_credentials_key: SecretStr | None = None
    # How often LiveKit's SIP state (trunks, dispatch rules, ready rooms: Redis only) is checked
    # against the database and rebuilt where it went missing.
    phone_reconcile_interval_seconds: float = Field(default=10.0, gt=0)
    # A number's ready room waits this long for its call before LiveKit may drop it (it is
    # replaced by the reconciler well before).
    phone_ready_room_ttl_seconds: int = Field(default=86400, ge=60)
    # Outbound calls: how long a phone may ring, and the trunk used when a request names none.
    phone_ringing_timeout_seconds: int = Field(default=30, ge=5, le=600)
    default_outbound_trunk: str | None = None
    # Transfers: how long the transfer target may ring before the transfer fails.
    transfer_timeout_seconds: int = Field(default=30, ge=5, le=300)
    # Where LiveKit's SIP service may be told to send a call (sip_destinations.py):
    # an outbound trunk's address and a sip: transfer target's host must match an entry (an IP
    # address or CIDR network, a host name, or *.domain; names are matched as written, never
    # looked up); the entry `tel` allows tel: transfer targets. Empty, the default: no outbound
    # trunk and no transfer until the operator names its carriers and PBXs. The test and dev
    # stacks allow loopback only.
    sip_allowed_destinations: list[str] = Field(default_factory=list)

    log_level: str = "INFO"

    @field_validator("sip_allowed_destinations")
    @classmethod
    def _destinations(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_destination(entry)  # a typo fails the start, not a call
        return value

    @field_validator("web_publishable_key")
    @classmethod
    def _publishable_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("vgw_pk_"):
            raise ValueError("the web page's key must be a publishable key (vgw_pk_...)")
        return value

    @property
    def page_origins(self) -> list[str]:
        """Where the served page runs: the configured origins, or this gateway's own address."""
        if self.web_origins:
            return self.web_origins
        local = self.host in ("127.0.0.1", "localhost", "0.0.0.0")
        hosts = ["127.0.0.1", "localhost"] if local else [self.host]
        return [f"http://{h}:{self.port}" for h in hosts]

    @property
    def client_livekit_url(self) -> str:
        return self.livekit_public_url or self.livekit_url

    @property
    def livekit_http_url(self) -> str:
        return self.livekit_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
