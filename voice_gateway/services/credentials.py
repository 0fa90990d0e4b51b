"""SIP passwords at rest: encrypted (Fernet), because LiveKit needs them back in clear whenever a
trunk is re-created, so a one-way hash cannot serve. They are never returned by the API."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from voice_gateway.config import GatewaySettings


class CredentialsUnreadable(Exception):
    """The key changed since the password was stored."""


class CredentialBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> CredentialBox:
        if settings.phone_credentials_key is not None:
            return cls(settings.phone_credentials_key.get_secret_value().encode())
        secret = settings.livekit_api_secret.get_secret_value().encode()
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"voicegw sip credentials"
        ).derive(secret)
        return cls(base64.urlsafe_b64encode(derived))

    def seal(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise CredentialsUnreadable() from None
