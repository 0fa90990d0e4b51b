"""structlog set up once per process: JSON lines on stderr, so every field stays machine-readable.

Shared by the gateway and the worker (whose job processes call it again, being new processes)."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_structlog(level: str = "INFO") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def configure_logging(level: str = "INFO") -> None:
    """The gateway's: its stdlib loggers (aiohttp, SQLAlchemy) too."""
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    # aiohttp's access log would print query strings and headers we do not control.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    configure_structlog(level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
