"""Composes the aiohttp application; resources are opened and closed in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from importlib.metadata import PackageNotFoundError, version

import aiohttp
from aiohttp import web

from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.cors import apply_cors_headers, cors_middleware
from voice_gateway.middlewares import error_middleware, request_middleware, stamp_request_id
from voice_gateway.openapi import build_document
from voice_gateway.routes import (
    agents,
    audit,
    chat,
    health,
    internal,
    keys,
    livekit_token,
    meta,
    openai_compat,
    ops,
    phone,
    reads,
    sessions,
    web_page,
    webhooks,
)
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.calls import OutboundCalls
from voice_gateway.services.capacity import AgentCapacity
from voice_gateway.services.chat import ChatService
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
from voice_gateway.services.web_page import prepare_web_page
from voice_gateway.sip_destinations import SipDestinations
from voice_gateway.state import (
    AUDIT_STORE,
    CALLS,
    CAPACITY,
    CATALOGUE,
    CHAT,
    CHAT_STORE,
    DATABASE,
    HANDOFF,
    KEYS,
    LIVEKIT,
    PHONE_LINES,
    REAPER,
    SESSION_STORE,
    SESSIONS,
    SETTINGS,
    WEB_PAGE,
)
from voice_gateway.store.audit import AuditStore
from voice_gateway.store.chat import ChatStore
from voice_gateway.store.database import Database, PoolSettings
from voice_gateway.store.keys import KeyStore
from voice_gateway.store.limits import RateCounterStore
from voice_gateway.store.outbox import Outbox
from voice_gateway.store.phone import OutboundTrunkStore, PhoneNumberStore
from voice_gateway.store.sessions import SessionStore
from voice_gateway.store.workers import WorkerStore

try:
    VERSION = version("voice-orchestrator")
except PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0.0.0"


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(
        middlewares=[request_middleware, error_middleware, cors_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app.on_response_prepare.append(stamp_request_id)
    app.on_response_prepare.append(apply_cors_headers)
    app[SETTINGS] = settings
    # Loaded here, not lazily: a broken catalogue fails the start, not a request.
    catalogue = AgentCatalogue.load(settings.agents_file)
    app[CATALOGUE] = catalogue

    async def resources(app: web.Application) -> AsyncIterator[None]:
        db = Database(
            settings.database_url,
            PoolSettings(
                size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                pre_ping=settings.database_pool_pre_ping,
            ),
        )
        await db.migrate()
        http = aiohttp.ClientSession()
        livekit = LiveKitRooms(settings, http)
        keys = KeyService(
            KeyStore(db),
            defaults=default_limits(settings),
            known_agents=catalogue.ids(),
            cache_seconds=settings.key_cache_seconds,
        )
        if settings.bootstrap_api_key is not None:
            await keys.ensure_bootstrap_key(settings.bootstrap_api_key.get_secret_value())
        app[WEB_PAGE] = await prepare_web_page(settings, keys, catalogue)
        store = SessionStore(db)
        audit_store = AuditStore(db)
        app[AUDIT_STORE] = audit_store
        app[DATABASE] = db
        app[KEYS] = keys
        app[LIVEKIT] = livekit
        app[SESSION_STORE] = store
        events = WebhookSender(settings, Outbox(db), store, http)
        limiter = StartLimiter(RateCounterStore(db))
        capacity = AgentCapacity(settings, WorkerStore(db))
        session_audit = SessionAudit(audit_store)
        app[CAPACITY] = capacity
        session_service = SessionService(
            settings=settings,
            catalogue=catalogue,
            store=store,
            livekit=livekit,
            events=events,
            limiter=limiter,
            audit=session_audit,
            capacity=capacity,
        )
        app[SESSIONS] = session_service
        chat_store = ChatStore(db)
        app[CHAT_STORE] = chat_store
        app[CHAT] = ChatService(
            settings=settings,
            catalogue=catalogue,
            sessions=session_service,
            store=store,
            chat_store=chat_store,
            http=http,
            limiter=limiter,
        )
        sip = LiveKitSip(settings, http)
        box = CredentialBox.from_settings(settings)
        destinations = SipDestinations(settings.sip_allowed_destinations)
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
            audit=session_audit,
        )
        calls = OutboundCalls(
            settings=settings,
            trunks=OutboundTrunkStore(db),
            numbers=numbers,
            sessions=session_service,
            sip=sip,
            box=box,
            destinations=destinations,
            audit=session_audit,
        )
        app[PHONE_LINES] = lines
        app[CALLS] = calls
        app[HANDOFF] = Handoff(
            settings=settings,
            sessions=session_service,
            store=store,
            sip=sip,
            events=events,
            destinations=destinations,
            audit=session_audit,
        )
        reaper = Reaper(
            settings=settings,
            db=db,
            store=store,
            sessions=session_service,
            livekit=livekit,
            capacity=capacity,
            events=events,
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
        await app[CHAT].aclose()
        await session_service.aclose()
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
    app.add_routes(agents.routes)
    app.add_routes(livekit_token.routes)
    app.add_routes(audit.routes)
    app.add_routes(chat.routes)
    app.add_routes(openai_compat.routes)
    app.add_routes(meta.openapi_routes)
    if settings.metrics_port is None:
        app.add_routes(meta.metrics_routes)
    else:
        app.cleanup_ctx.append(_metrics_listener(settings))
    app.add_routes(web_page.routes)  # last: its catch-all serves the page's own paths
    # Built once the routes are all there: the document describes exactly what is served.
    app[meta.OPENAPI_DOCUMENT] = build_document(app, title="Voice gateway", version=VERSION)
    return app


def _metrics_listener(
    settings: GatewaySettings,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def listen(app: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(meta.metrics_app(app), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
        yield
        await runner.cleanup()

    return listen
