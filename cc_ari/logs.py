"""structlog set-up: JSON lines to a file (and warnings to stderr; everything to stderr when there
is no file), stdlib loggers routed through it."""

from __future__ import annotations

import logging
import os
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
        # The file has every line; stderr (a terminal, journald) only what needs attention, so
        # each line is not rendered and written twice (a cost per call).
        err.setLevel(logging.WARNING)
        # Logs hold caller numbers: not readable by every local user.
        log_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        os.chmod(log_dir, 0o750)
        path = log_dir / "cc_ari.jsonl"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640))
        os.chmod(path, 0o640)
        fh = logging.FileHandler(path)
        fh.setFormatter(json_formatter)
        root.addHandler(fh)
    root.setLevel(level.upper())
    # Quiet, but still routed through the same processors.
    for name in ("aiohttp.access", "panoramisk", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
