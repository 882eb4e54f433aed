"""Apply the numbered migrations in sql/, each once, in one transaction each."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger("cc_ari.db")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS public.cc_schema_migrations (
    name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
"""


def sql_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "sql"


async def migrate(dsn: str, directory: Path | None = None, *, timeout: float = 30.0) -> list[str]:
    directory = directory or sql_dir()
    conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=timeout)
    applied: list[str] = []
    try:
        await conn.execute(CREATE_TABLE, timeout=timeout)
        # One migrator at a time.
        await conn.execute("SELECT pg_advisory_lock(774411)", timeout=timeout)
        done = {r["name"] for r in await conn.fetch("SELECT name FROM public.cc_schema_migrations")}
        for path in sorted(directory.glob("[0-9][0-9][0-9]_*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(), timeout=timeout)
                await conn.execute("INSERT INTO public.cc_schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
            log.info("migration_applied", name=path.name)
    finally:
        await conn.close(timeout=timeout)
    return applied
