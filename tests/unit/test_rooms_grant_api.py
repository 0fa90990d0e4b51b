"""The room-level token is signed once and reused until half its lifetime has passed; it grants
creating and listing rooms, nothing in a particular room."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import jwt
import pytest

from voice_gateway.config import GatewaySettings
from voice_gateway.services import livekit as livekit_module
from voice_gateway.services.livekit import RoomsGrantApi

pytestmark = pytest.mark.unit

SECRET = "a-livekit-secret-of-at-least-32-characters"


async def test_the_token_is_signed_once_per_half_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = GatewaySettings(livekit_api_key="devkey", livekit_api_secret=SECRET)
    clock = [1000.0]
    monkeypatch.setattr(livekit_module.time, "monotonic", lambda: clock[0])
    async with aiohttp.ClientSession() as http:
        rooms = RoomsGrantApi(settings, http, ttl=timedelta(minutes=10))
        first = rooms.room
        clock[0] += 299
        assert rooms.room is first  # the same signed token
        clock[0] += 2  # past half its lifetime: signed afresh
        assert rooms.room is not first
    token = first._auth_header(None)["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["iss"] == "devkey"
    assert claims["exp"] - claims["nbf"] == 600
    video = claims["video"]
    assert video["roomCreate"] and video["roomList"]
    assert not video.get("roomAdmin") and not video.get("roomJoin") and not video.get("room")
