"""The brain's errors, converted at each caller's edge (livekit-agents' APIError in the worker,
an HTTP error in the gateway). Messages never repeat a vendor's text, which may echo a key."""

from __future__ import annotations


class BrainError(Exception):
    """The model could not answer: unreachable, timed out, or refused the request."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class BrainConfigError(Exception):
    """The agent's `llm` engine cannot be built here (unknown provider, no API key)."""
