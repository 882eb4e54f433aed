"""structlog set-up: JSON lines to a file (and stderr), stdlib loggers routed through it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog


def configure(log_dir: Path | None, level: str = "info") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    json_formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()],
    )
    console = (
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.dev.ConsoleRenderer(colors=True)],
        )
        if sys.stderr.isatty()
        else json_formatter
    )
    root = logging.getLogger()
    root.handlers.clear()
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(console)
    root.addHandler(err)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_dir / "cc_ari.jsonl")
        fh.setFormatter(json_formatter)
        root.addHandler(fh)
    root.setLevel(level.upper())
    # Quiet, but still routed through the same processors.
    for name in ("aiohttp.access", "panoramisk", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
