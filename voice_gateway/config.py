"""Gateway settings: read once from the environment (prefix VOICEGW_), then passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOGUE = Path(__file__).with_name("agents.yaml")


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEGW_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite+aiosqlite:///./voicegw.db"

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

    # The reaper (services/reaper.py): how often it looks, and what it allows.
    reaper_enabled: bool = True
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    user_join_timeout_seconds: int = Field(default=120, ge=5)
    room_grace_seconds: int = Field(default=15, ge=0)
    # A dispatch no worker took (none registered, all full) must not leave the caller waiting.
    agent_join_timeout_seconds: int = Field(default=30, ge=5)
    stuck_start_seconds: int = Field(default=60, ge=5)
    # Rooms in LiveKit with no session record are flagged in /v1/ops/rooms; deleting them on
    # sight is opt-in, since other applications may share the LiveKit server.
    reap_orphan_rooms: bool = False

    # Outgoing webhooks (services/outgoing_webhooks.py): where session.started/ended go.
    webhook_urls: list[str] = Field(default_factory=list)
    webhook_secret: SecretStr | None = None
    webhook_ended_delay_seconds: float = Field(default=2.0, ge=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_poll_seconds: float = Field(default=0.5, gt=0)

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

    log_level: str = "INFO"

    @property
    def client_livekit_url(self) -> str:
        return self.livekit_public_url or self.livekit_url

    @property
    def livekit_http_url(self) -> str:
        return self.livekit_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
