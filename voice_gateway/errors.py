"""Domain errors with their stable wire code and HTTP status; rendered in one middleware."""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class RetryLater(ApiError):
    """An error a client may retry after `Retry-After` seconds, which the answer carries."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_seconds))})


class InvalidJson(ApiError):
    status, code = 400, "invalid_json"


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class MissingApiKey(ApiError):
    status, code = 401, "missing_api_key"


class InvalidApiKey(ApiError):
    status, code = 401, "invalid_api_key"


class InvalidWebhookSignature(ApiError):
    status, code = 401, "invalid_signature"


class InsufficientScope(ApiError):
    status, code = 403, "insufficient_scope"


class OriginNotAllowed(ApiError):
    status, code = 403, "origin_not_allowed"


class WrongKeyType(ApiError):
    status, code = 403, "wrong_key_type"


class DestinationNotAllowed(ApiError):
    """A trunk address or transfer target outside VOICEGW_SIP_ALLOWED_DESTINATIONS."""

    status, code = 403, "destination_not_allowed"


class SecretKeyInBrowser(ApiError):
    status, code = 403, "secret_key_in_browser"


class AgentNotFound(ApiError):
    status, code = 404, "agent_not_found"


class SessionNotFound(ApiError):
    status, code = 404, "session_not_found"


class ModelNotFound(ApiError):
    """OpenAI's code for an unknown `model`: on the OpenAI-compatible API a model is an agent."""

    status, code = 404, "model_not_found"


class KeyNotFound(ApiError):
    status, code = 404, "key_not_found"


class NotFound(ApiError):
    status, code = 404, "not_found"


class PhoneNumberNotFound(NotFound):
    code = "phone_number_not_found"


class OutboundTrunkNotFound(NotFound):
    code = "outbound_trunk_not_found"


class WebClientNotBuilt(ApiError):
    status, code = 404, "web_client_not_built"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class KeyRevoked(ApiError):
    status, code = 409, "key_revoked"


class IdempotencyConflict(ApiError):
    status, code = 409, "idempotency_conflict"


class IdempotencyInProgress(RetryLater):
    status, code = 409, "idempotency_in_progress"


class SessionEnded(ApiError):
    """A message for a chat session that is over: start a new one."""

    status, code = 409, "session_ended"


class ReplyInProgress(RetryLater):
    """The agent is still answering this chat session's previous message: one turn at a time."""

    status, code = 409, "reply_in_progress"


class PhoneNumberExists(ApiError):
    status, code = 409, "phone_number_exists"


class NotAPhoneCall(ApiError):
    status, code = 409, "not_a_phone_call"


class CallNotActive(ApiError):
    status, code = 409, "call_not_active"


class JobNotWanted(ApiError):
    """Told to a worker whose job may not join: the session is over, or another job has it."""

    status, code = 409, "job_not_wanted"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class RateLimited(RetryLater):
    status, code = 429, "rate_limited"


class TransferFailed(ApiError):
    """LiveKit's SIP service tried the transfer (REFER) and it did not complete."""

    status, code = 502, "transfer_failed"


class LiveKitUnavailable(ApiError):
    status, code = 503, "livekit_unavailable"


class StoreUnavailable(ApiError):
    status, code = 503, "store_unavailable"


class LlmUnavailable(ApiError):
    """The agent's language model could not answer (unreachable, refused, or not configured)."""

    status, code = 503, "llm_unavailable"


class NoAgentAvailable(RetryLater):
    status, code = 503, "no_agent_available"


class AgentTimeout(ApiError):
    status, code = 504, "agent_timeout"
