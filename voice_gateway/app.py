"""Composes the aiohttp application; resources are opened and closed in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.cors import cors_middleware
from voice_gateway.middlewares import error_middleware
from voice_gateway.routes import health, internal, keys, ops, phone, reads, sessions, webhooks
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.calls import OutboundCalls
from voice_gateway.services.credentials import CredentialBox
from voice_gateway.services.handoff import Handoff
from voice_gateway.services.keys import KeyService, default_limits
from voice_gateway.services.limits import StartLimiter
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.services.livekit_sip import LiveKitSip
from voice_gateway.services.outgoing_webhooks import WebhookSender
from voice_gateway.services.phone_lines import PhoneLines
from voice_gateway.services.reaper import Reaper
from voice_gateway.services.sessions import SessionService
from voice_gateway.state import (
    CALLS,
    DATABASE,
    HANDOFF,
    KEYS,
    LIVEKIT,
    PHONE_LINES,
    REAPER,
    SESSION_STORE,
    SESSIONS,
    SETTINGS,
)
from voice_gateway.store.audit import AuditStore
from voice_gateway.store.database import Database
from voice_gateway.store.keys import KeyStore
from voice_gateway.store.limits import RateCounterStore
from voice_gateway.store.outbox import Outbox
from voice_gateway.store.phone import OutboundTrunkStore, PhoneNumberStore
from voice_gateway.store.sessions import SessionStore


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, cors_middleware], client_max_size=settings.max_body_bytes
    )
    app[SETTINGS] = settings
    # Loaded here, not lazily: a broken catalogue fails the start, not a request.
    catalogue = AgentCatalogue.load(settings.agents_file)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        await db.migrate()
        http = aiohttp.ClientSession()
        livekit = LiveKitRooms(settings, http)
        keys = KeyService(
            KeyStore(db), defaults=default_limits(settings), known_agents=catalogue.ids()
        )
        if settings.bootstrap_api_key is not None:
            await keys.ensure_bootstrap_key(settings.bootstrap_api_key.get_secret_value())
        store = SessionStore(db)
        app[DATABASE] = db
        app[KEYS] = keys
        app[LIVEKIT] = livekit
        app[SESSION_STORE] = store
        events = WebhookSender(settings, Outbox(db), store, http)
        session_service = SessionService(
            settings=settings,
            catalogue=catalogue,
            store=store,
            livekit=livekit,
            events=events,
            limiter=StartLimiter(RateCounterStore(db)),
            audit=SessionAudit(AuditStore(db)),
        )
        app[SESSIONS] = session_service
        sip = LiveKitSip(settings, http)
        box = CredentialBox.from_settings(settings)
        numbers = PhoneNumberStore(db)
        lines = PhoneLines(
            settings=settings,
            catalogue=catalogue,
            store=numbers,
            session_store=store,
            sessions=session_service,
            livekit=livekit,
            sip=sip,
            box=box,
        )
        calls = OutboundCalls(
            settings=settings,
            trunks=OutboundTrunkStore(db),
            numbers=numbers,
            sessions=session_service,
            sip=sip,
            box=box,
        )
        app[PHONE_LINES] = lines
        app[CALLS] = calls
        app[HANDOFF] = Handoff(
            settings=settings, sessions=session_service, store=store, sip=sip, events=events
        )
        reaper = Reaper(
            settings=settings,
            db=db,
            store=store,
            sessions=session_service,
            livekit=livekit,
            phone=(lines, calls),
        )
        app[REAPER] = reaper
        tasks = []
        if settings.reaper_enabled:
            tasks.append(asyncio.create_task(reaper.run_forever(), name="reaper"))
        if settings.webhook_urls:
            tasks.append(asyncio.create_task(events.run_forever(), name="outgoing-webhooks"))
        yield
        await calls.aclose()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await http.close()
        await db.close()

    app.cleanup_ctx.append(resources)
    app.add_routes(health.routes)
    app.add_routes(sessions.routes)
    app.add_routes(reads.routes)
    app.add_routes(ops.routes)
    app.add_routes(internal.routes)
    app.add_routes(webhooks.routes)
    app.add_routes(keys.routes)
    app.add_routes(phone.routes)
    return app
