"""The ASGI application: the engine behind AXP's HTTP API and tether's extensions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..engine import Engine
from ..settings import Settings
from . import admin, agents, errors, inbox, inbox_web, intents, mesh, webhooks, work
from .auth import KeyCache
from .changes import ChangeFeed
from .limits import BodyLimit, RateLimiter
from .metrics import Metrics, MetricsMiddleware

logger = logging.getLogger("tether.server")

TICK_SECONDS = 1.0


class TraceId:
    """Echo ``X-Trace-Id`` (or make one: 32 random hex digits, a W3C trace id's shape) on
    every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = dict(scope.get("headers") or []).get(b"x-trace-id") or os.urandom(16).hex().encode()

        async def with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-trace-id", trace[:128])]
            await send(message)

        await self.app(scope, receive, with_trace)


async def _tick(engine: Engine) -> None:
    """Fire due timers, so deadlines and time waits fire with no agent process alive."""
    while True:
        try:
            await run_in_threadpool(engine.fire_due_timers)
        except Exception:
            logger.exception("firing timers failed; retrying")
        await asyncio.sleep(TICK_SECONDS)


def create_app(engine: Engine, settings: Settings | None = None, *, tick: bool = True) -> FastAPI:
    """The tether server over ``engine``. Run it with any ASGI server (``tether serve``)."""
    settings = settings or Settings()
    feed = ChangeFeed(engine.store)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed.start()
        tasks = [asyncio.create_task(_tick(engine))] if tick else []
        tasks.append(asyncio.create_task(webhooks.dispatch(engine, settings, feed)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            feed.stop()
            provider = getattr(app.state, "tracer_provider", None)
            if provider is not None:
                provider.shutdown()  # flush the spans still buffered

    app = FastAPI(
        title="tether",
        version=__version__,
        summary="Durable execution for AI agents: AXP's intent API, self-hosted.",
        lifespan=lifespan,
    )
    metrics = Metrics(engine)
    app.state.engine = engine
    app.state.keys = KeyCache(engine)
    app.state.settings = settings
    app.state.changes = feed
    app.state.registry = metrics.registry
    app.state.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    errors.install(app)
    app.include_router(intents.router)
    app.include_router(work.router)
    app.include_router(agents.router)
    app.include_router(mesh.router)
    app.include_router(webhooks.router)
    app.include_router(inbox.router)
    app.include_router(inbox_web.router)
    app.include_router(admin.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TraceId)
    _otel(app)
    return app


def _otel(app: FastAPI) -> None:
    """OpenTelemetry spans when an exporter is configured: ``OTEL_TRACES_EXPORTER=console``,
    or ``otlp`` / an ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over HTTP). Needs the ``otel`` extra."""
    import os

    kind = os.environ.get("OTEL_TRACES_EXPORTER", "").lower()
    if not kind and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        kind = "otlp"
    if kind in ("", "none"):
        return
    try:
        from opentelemetry.instrumentation.fastapi import (
            FastAPIInstrumentor,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        logger.warning("OpenTelemetry is configured but not installed: pip install 'tether[otel]'")
        return
    exporter: SpanExporter
    if kind == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tether"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    app.state.tracer_provider = provider
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
