"""`cc-ari export queue-log`: cc_ari's queue calls and agent events as Asterisk queue_log lines
(`epoch|callid|queue|agent|EVENT|data...`, see cc_ari/reporting/queue_log.py), for tools made for
app_queue's log (QueueMetrics and the like).

The database is $CC_DATABASE_URL (never an argument: it holds the password). A time is ISO 8601
(`2026-11-30T14:00`, `2026-11-30 14:00:00+01:00`) or a date (`2026-11-30`: its midnight); one
without an offset is read in --tz (default: this machine's local time). Lines are those whose
time is in [--since, --until); --until defaults to now.
Exit codes: 0 done, 1 database or output error, 2 usage, 3 database unreachable."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import TextIO
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from cc_ari.reporting.queue_log import AGENT_STYLES, AgentStyle, count_by_event, export

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
CONNECT_TIMEOUT = 10.0

EPILOG = """\
environment:
  CC_DATABASE_URL  the PostgreSQL database (required)
exit codes: 0 done, 1 database or output error, 2 usage, 3 database unreachable"""


class Usage(Exception):
    """A bad argument: the message, exit code 2."""


def zone(text: str) -> tzinfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r} (an IANA name, e.g. Europe/Paris)") from None


def when(text: str) -> datetime:
    """A time or a date, as given (naive until --tz is applied)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time.min)
        return datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO time (2026-11-30T14:00[:00][+01:00]) or a date (2026-11-30), got {text!r}") from None


def _aware(value: datetime, tz: tzinfo | None) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    if tz is not None:
        return value.replace(tzinfo=tz).astimezone(UTC)
    return value.astimezone().astimezone(UTC)  # the machine's local time, with its DST rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommands of `cc-ari export`."""
    parser.description = "export reports from the database"
    sub = parser.add_subparsers(dest="export_cmd", required=True, metavar="COMMAND")
    ql: argparse.ArgumentParser = sub.add_parser(
        "queue-log", help="queue calls and agent events as Asterisk queue_log lines",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ql.add_argument("--since", type=when, required=True, metavar="TIME",
                    help="first time exported: ISO time or YYYY-MM-DD")
    ql.add_argument("--until", type=when, default=None, metavar="TIME",
                    help="end of the export, excluded (default now)")
    ql.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                    help="write the lines to FILE (created 0600, replaced) instead of stdout")
    ql.add_argument("--tz", type=zone, default=None, metavar="ZONE",
                    help="time zone of times given without an offset (default: the machine's)")
    ql.add_argument("--agent-style", choices=AGENT_STYLES, default="agent",
                    help="agent field: Agent/agent1 (QueueMetrics' convention, default) or the interface PJSIP/agent1")


def _database_url() -> str:
    url = os.environ.get("CC_DATABASE_URL", "").strip()
    if not url:
        raise Usage("CC_DATABASE_URL is required (the PostgreSQL database to read)")
    if urlparse(url).scheme not in ("postgres", "postgresql"):
        raise Usage("CC_DATABASE_URL must be a postgresql:// URL")
    return url


async def _lines(dsn: str, since: datetime, until: datetime, style: AgentStyle) -> list[str]:
    from cc_ari.db import reports

    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
    try:
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            calls, events = await reports.queue_log_rows(conn, since, until)
    finally:
        await conn.close(timeout=CONNECT_TIMEOUT)
    return export(calls, events, since=since, until=until, agent_style=style)


def _write(lines: Sequence[str], output: Path | None, stdout: TextIO) -> None:
    text = "".join(f"{line}\n" for line in lines)
    if output is None:
        stdout.write(text)
        stdout.flush()
        return
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run(parser: argparse.ArgumentParser, args: argparse.Namespace, *, stdout: TextIO | None = None,
        stderr: TextIO | None = None) -> int:
    """Run `cc-ari export ...` (parsed by the parser `add_arguments` filled); the exit code."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    if args.export_cmd != "queue-log":  # pragma: no cover - argparse allows nothing else
        parser.error(f"unknown export {args.export_cmd!r}")
    since = _aware(args.since, args.tz)
    until = _aware(args.until, args.tz) if args.until is not None else datetime.now(UTC)
    try:
        if until <= since:
            raise Usage(f"--until ({until.isoformat()}) must be after --since ({since.isoformat()})")
        if args.output is not None and not args.output.parent.is_dir():
            raise Usage(f"--output: folder {args.output.parent} does not exist")
        dsn = _database_url()
    except Usage as exc:
        print(f"cc-ari export queue-log: error: {exc}", file=err)
        return EXIT_USAGE
    try:
        lines = asyncio.run(_lines(dsn, since, until, args.agent_style))
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
            asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError,
            asyncpg.InvalidCatalogNameError) as exc:
        print(f"cc-ari export queue-log: database unreachable: {exc}", file=err)
        return EXIT_UNREACHABLE
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"cc-ari export queue-log: database error: {exc}", file=err)
        return EXIT_ERROR
    try:
        _write(lines, args.output, out)
    except OSError as exc:
        print(f"cc-ari export queue-log: cannot write {args.output}: {exc}", file=err)
        return EXIT_ERROR
    counts = ", ".join(f"{n} {event}" for event, n in sorted(count_by_event(lines).items()))
    print(f"cc-ari export queue-log: {len(lines)} lines from {since.isoformat()} to {until.isoformat()}"
          + (f" ({counts})" if counts else ""), file=err)
    return EXIT_OK
