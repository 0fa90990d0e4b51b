"""Typed application state keys: the services a handler may reach."""

from __future__ import annotations

from aiohttp import web

from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.services.calls import OutboundCalls
from voice_gateway.services.capacity import AgentCapacity
from voice_gateway.services.chat import ChatService
from voice_gateway.services.handoff import Handoff
from voice_gateway.services.keys import KeyService
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.services.phone_lines import PhoneLines
from voice_gateway.services.reaper import Reaper
from voice_gateway.services.sessions import SessionService
from voice_gateway.services.web_page import WebPage
from voice_gateway.store.audit import AuditStore
from voice_gateway.store.chat import ChatStore
from voice_gateway.store.database import Database
from voice_gateway.store.sessions import SessionStore

SETTINGS = web.AppKey("settings", GatewaySettings)
DATABASE = web.AppKey("database", Database)
KEYS = web.AppKey("keys", KeyService)
LIVEKIT = web.AppKey("livekit", LiveKitRooms)
SESSIONS = web.AppKey("sessions", SessionService)
SESSION_STORE = web.AppKey("session_store", SessionStore)
REAPER = web.AppKey("reaper", Reaper)
CATALOGUE = web.AppKey("catalogue", AgentCatalogue)
WEB_PAGE = web.AppKey("web_page", WebPage)
AUDIT_STORE = web.AppKey("audit_store", AuditStore)
CAPACITY = web.AppKey("capacity", AgentCapacity)
CHAT = web.AppKey("chat", ChatService)
CHAT_STORE = web.AppKey("chat_store", ChatStore)
PHONE_LINES = web.AppKey("phone_lines", PhoneLines)
CALLS = web.AppKey("calls", OutboundCalls)
HANDOFF = web.AppKey("handoff", Handoff)
