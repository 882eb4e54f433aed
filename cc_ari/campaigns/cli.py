"""`cc-ari campaign ...`: a command-line client of the running service's campaign API (LAB.md,
"Outbound campaigns"): create, list, show, import leads, start / pause / stop, do-not-call lists,
and an agent's hangup / disposition / preview dial.

The service is `--url` (else $CC_API_URL, else http://127.0.0.1:8080); the API token is read from
$CC_API_TOKEN only (a command-line argument would show in `ps`) and is never printed.
Exit codes: 0 done, 1 refused by the service (its message on stderr), 2 usage, 3 service unreachable."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import stat
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import aiohttp
from yarl import URL

PROG = "cc-ari campaign"
DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = 30.0  # seconds, every request
IMPORT_TIMEOUT = 300.0  # seconds, a lead file upload
MAX_LEADS_BYTES = 64 << 20  # the service's limit of a lead file
CHUNK = 1 << 16
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
LEAD_STATUSES = ("pending", "scheduled", "done", "dnc", "exhausted")

EPILOG = """\
environment:
  CC_API_TOKEN  the API token (required; never given on the command line)
  CC_API_URL    the service's URL when --url is not given (default http://127.0.0.1:8080)
exit codes: 0 done, 1 refused by the service, 2 usage, 3 service unreachable"""


class Failure(Exception):
    """The command cannot be done: the message (stderr), further lines, and the exit code."""

    def __init__(self, code: int, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.details = list(details)


# --- arguments ---------------------------------------------------------------------------------
def window(text: str) -> dict[str, str]:
    start, sep, end = text.partition("-")
    if not sep or not start or not end:
        raise argparse.ArgumentTypeError(f"expected HH:MM-HH:MM, got {text!r}")
    return {"start": start.strip(), "end": end.strip()}


def retry(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            out[key.strip()] = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected OUTCOME=SECONDS[,...] (e.g. busy=600,no_answer=3600), got {item!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("expected OUTCOME=SECONDS[,...]")
    return out


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options and subcommands of `cc-ari campaign`."""
    parser.description = __doc__
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    url_help, json_help = f"the service (default $CC_API_URL, else {DEFAULT_URL})", "print the service's JSON reply"
    parser.add_argument("--url", default=None, help=url_help)
    parser.add_argument("--json", action="store_true", default=False, help=json_help)
    # The same options after the subcommand; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
    sub = parser.add_subparsers(dest="campaign_cmd", required=True, metavar="COMMAND")

    def command(group: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text, parents=[common],
                                                      epilog=EPILOG,
                                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        return p

    create = command(sub, "create", "create a campaign (only the options given are sent; the service validates)")
    create.add_argument("name")
    create.add_argument("--mode", choices=("predictive", "progressive", "preview"))
    create.add_argument("--caller-id", metavar="NUMBER", help="the caller ID shown to leads, e.g. +15550100")
    create.add_argument("--abandon-target", type=finite, metavar="RATE", help="drops / live answers allowed (0.03)")
    create.add_argument("--abandon-period", choices=("30d", "24h"), help="period of the abandon rate (30d)")
    create.add_argument("--no-amd", dest="amd", action="store_false", default=None,
                        help="no answering-machine detection")
    create.add_argument("--machine-action", choices=("hangup", "message"), help="on an answering machine (hangup)")
    create.add_argument("--window", type=window, metavar="HH:MM-HH:MM",
                        help="dialing hours, the lead's local time (08:00-21:00)")
    create.add_argument("--ring-timeout", type=int, metavar="SECONDS", help="seconds a call rings, >= 15 (20)")
    create.add_argument("--max-attempts", type=int, metavar="N", help="attempts per lead (3)")
    create.add_argument("--retry", type=retry, action="append", metavar="OUTCOME=SECONDS,...",
                        help="seconds before a retry after busy, no_answer, machine, failed "
                             "(busy=600,no_answer=3600,machine=7200,failed=900)")
    create.add_argument("--no-redial-after-drop", type=int, metavar="HOURS", help="no redial after a drop (72)")
    create.add_argument("--wrapup", type=int, metavar="SECONDS", help="wrap-up after a call at most (120)")
    create.add_argument("--connect-rule", choices=("us", "uk"), help="the 2-second rule counts from (us)")
    create.add_argument("--json-settings", type=Path, metavar="FILE",
                        help="a JSON object of settings (any field of the API); the options above win over it")

    command(sub, "list", "list the campaigns")
    show = command(sub, "show", "a campaign: settings, state, leads by status, live figures")
    show.add_argument("name")
    imp = command(sub, "import", f"import a CSV lead file (header row, a phone column; at most "
                                 f"{MAX_LEADS_BYTES >> 20} MB): all rows or none")
    imp.add_argument("name")
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    for action, text in (("start", "start (or resume) dialing"), ("pause", "stop new dials; calls in progress finish"),
                         ("stop", "stop the campaign for good")):
        command(sub, action, text).add_argument("name")

    dnc = sub.add_parser("dnc", help="do-not-call lists (global, or a campaign's)", description="do-not-call lists")
    dnc_sub = dnc.add_subparsers(dest="dnc_cmd", required=True, metavar="COMMAND")
    add = command(dnc_sub, "add", "add numbers to a do-not-call list")
    add.add_argument("numbers", nargs="+", metavar="NUMBER")
    command(dnc_sub, "list", "the numbers on a do-not-call list")
    remove = command(dnc_sub, "remove", "remove a number from a do-not-call list")
    remove.add_argument("number")
    for p in (add, dnc_sub.choices["list"], remove):
        p.add_argument("--campaign", metavar="NAME", help="the campaign's list (default the global list)")

    dispose = command(sub, "dispose", "close an agent's wrap-up with a disposition code")
    dispose.add_argument("agent")
    dispose.add_argument("code", help="e.g. sale; callback (needs --callback-at), dnc, retry")
    dispose.add_argument("--callback-at", metavar="ISO", help="callback time with its UTC offset, "
                                                              "e.g. 2026-12-01T15:00:00+01:00")
    command(sub, "hangup", "end an agent's current customer call (the agent stays in the session)"
            ).add_argument("agent")
    command(sub, "dial", "preview mode: dial the lead on the agent's screen").add_argument("agent")


# --- the service -------------------------------------------------------------------------------
def base_url(given: str | None) -> URL:
    text = (given or os.environ.get("CC_API_URL") or DEFAULT_URL).strip()
    try:
        url = URL(text)
    except ValueError:
        raise Failure(EXIT_USAGE, f"not a URL: {text!r}") from None
    if url.user is not None or url.password is not None:
        raise Failure(EXIT_USAGE, "the service URL must not hold credentials; the token comes from CC_API_TOKEN")
    if url.scheme not in ("http", "https") or not url.host:
        raise Failure(EXIT_USAGE, f"the service URL must be http(s)://HOST[:PORT], got {text!r}")
    return url.with_query(None).with_fragment(None)


def api_token() -> str:
    token = os.environ.get("CC_API_TOKEN", "").strip()
    if not token:
        raise Failure(EXIT_USAGE, "CC_API_TOKEN is not set: export an API token first "
                                  "(for the lab: set -a; . .lab/env; set +a)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in token):
        raise Failure(EXIT_USAGE, "CC_API_TOKEN holds a control character")
    return token


class Api:
    """JSON requests to the service; a reply of 4xx/5xx is a Failure with the service's message."""

    def __init__(self, session: aiohttp.ClientSession, base: URL) -> None:
        self._session = session
        self._base = base
        self.shown = str(base)  # what the messages name (a URL with no credentials)

    def url(self, *segments: str) -> URL:
        path = self._base.raw_path.rstrip("/") + "/" + "/".join(quote(s, safe="") for s in segments)
        return self._base.with_path(path, encoded=True)

    async def call(self, method: str, *segments: str, body: Any = None, data: Any = None,
                   headers: Mapping[str, str] | None = None, timeout: float | None = None) -> Any:
        url = self.url(*segments)
        timeout = TIMEOUT if timeout is None else timeout
        try:
            async with self._session.request(method, url, json=body, data=data, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.read()
                status, reason = resp.status, resp.reason or ""
        except TimeoutError:
            raise Failure(EXIT_UNREACHABLE, f"no reply from the service at {self.shown} within {timeout:g} s") from None
        except aiohttp.InvalidURL:
            raise Failure(EXIT_USAGE, f"not a usable URL: {self.shown}") from None
        except aiohttp.ClientConnectionError as exc:
            raise Failure(EXIT_UNREACHABLE, f"cannot reach the service at {self.shown}: {_reason(exc)}") from None
        except aiohttp.ClientError as exc:
            raise Failure(EXIT_UNREACHABLE, f"no usable reply from the service at {self.shown}: "
                                            f"{_reason(exc)}") from None
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        if status >= 400:
            raise refused(status, reason, payload, raw)
        if raw and payload is None:
            raise Failure(EXIT_REFUSED, f"the reply of {self.shown} to {method} {url.path} is not JSON "
                                        f"(is that the cc_ari service?)")
        return payload


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def refused(status: int, reason: str, payload: Any, raw: bytes) -> Failure:
    """A Failure from an error reply: the service's message, and the bad rows of a lead file."""
    message = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(message, str) or not message:
        text = raw.decode("utf-8", "replace").strip()
        message = reason + (f": {text[:200]}" if text and len(text) < 200 and "<" not in text else "")
    details: list[str] = []
    if status == 401:
        details.append("check CC_API_TOKEN (the service does not accept it)")
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if isinstance(rows, list):
        for row in rows:
            if isinstance(row, dict):
                details.append(f"line {row.get('row', '?')}: {row.get('error', '?')}")
    return Failure(EXIT_REFUSED, f"refused ({status}): {message}", details)


# --- subcommands -------------------------------------------------------------------------------
Command = Callable[[Api, argparse.Namespace], Awaitable[Any]]


def create_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.json_settings is not None:
        try:
            loaded = json.loads(args.json_settings.read_text(encoding="utf-8"))
        except OSError as exc:
            raise Failure(EXIT_USAGE, f"cannot read {args.json_settings}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise Failure(EXIT_USAGE, f"{args.json_settings} is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise Failure(EXIT_USAGE, f"{args.json_settings} must hold a JSON object of settings")
        body.update(loaded)
    body["name"] = args.name
    retries: dict[str, int] | None = None
    if args.retry:
        retries = {}
        for r in args.retry:
            retries.update(r)
    for key, value in (("mode", args.mode), ("caller_id", args.caller_id), ("abandon_target", args.abandon_target),
                       ("abandon_period", args.abandon_period), ("amd", args.amd),
                       ("machine_action", args.machine_action), ("window", args.window),
                       ("ring_timeout", args.ring_timeout), ("max_attempts", args.max_attempts), ("retry", retries),
                       ("no_redial_after_drop", args.no_redial_after_drop), ("wrapup", args.wrapup),
                       ("connect_rule", args.connect_rule)):
        if value is not None:
            body[key] = value
    missing = [opt for key, opt in (("mode", "--mode"), ("caller_id", "--caller-id")) if key not in body]
    if missing:
        raise Failure(EXIT_USAGE, f"create needs {' and '.join(missing)} (or them in --json-settings)")
    return body


async def do_create(api: Api, args: argparse.Namespace) -> Any:
    out = await api.call("POST", "api", "campaigns", body=create_body(args))
    return out, f"created campaign {out.get('name')} ({out.get('mode')}, caller ID {out.get('caller_id')}), " \
                f"state {out.get('state')}"


async def do_list(api: Api, args: argparse.Namespace) -> Any:
    out = await api.call("GET", "api", "campaigns")
    campaigns = out.get("campaigns", []) if isinstance(out, dict) else []
    if not campaigns:
        return out, "no campaigns"
    rows = [(str(c.get("name")), str(c.get("state")), str(c.get("mode")), str(c.get("caller_id")),
             _pct(c.get("abandon_target")), _window(c.get("window"))) for c in campaigns]
    return out, table(("NAME", "STATE", "MODE", "CALLER ID", "ABANDON TARGET", "WINDOW"), rows)


async def do_show(api: Api, args: argparse.Namespace) -> Any:
    out = await api.call("GET", "api", "campaigns", args.name)
    return out, render_campaign(out)


async def do_import(api: Api, args: argparse.Namespace) -> Any:
    with _open_leads(args.file) as f:
        body: Any = f  # a file: streamed, with its Content-Length
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            body = await _read_limited(f)  # a pipe: read whole first, so that a file too big sends nothing
        out = await api.call("POST", "api", "campaigns", args.name, "leads", data=body,
                             headers={"Content-Type": "text/csv; charset=utf-8"}, timeout=IMPORT_TIMEOUT)
    duplicates = out.get("duplicates") or []
    lines = [f"imported {out.get('imported')} lead(s) into {args.name}; {len(duplicates)} duplicate(s) left out"
             + (":" if duplicates else "")]
    lines += [f"  line {d.get('line')}: {d.get('phone')}" for d in duplicates if isinstance(d, dict)]
    return out, "\n".join(lines)


def _open_leads(path: Path) -> BinaryIO:
    try:
        f = path.open("rb")
        info = os.fstat(f.fileno())
    except OSError as exc:
        raise Failure(EXIT_USAGE, f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        f.close()
        raise Failure(EXIT_USAGE, f"{path} is a directory")
    if stat.S_ISREG(info.st_mode) and info.st_size > MAX_LEADS_BYTES:
        f.close()
        raise Failure(EXIT_REFUSED, f"{path} is {info.st_size / (1 << 20):.1f} MB; a lead file is at most "
                                    f"{MAX_LEADS_BYTES >> 20} MB")
    return f


async def _read_limited(f: BinaryIO) -> bytes:
    data = bytearray()
    while chunk := await asyncio.to_thread(f.read, CHUNK):
        data += chunk
        if len(data) > MAX_LEADS_BYTES:
            raise Failure(EXIT_REFUSED, f"the lead file is over {MAX_LEADS_BYTES >> 20} MB: nothing sent")
    return bytes(data)


def transition(action: str) -> Command:
    async def do(api: Api, args: argparse.Namespace) -> Any:
        out = await api.call("POST", "api", "campaigns", args.name, action)
        leads = out.get("leads") if isinstance(out, dict) else None
        counts = ", ".join(f"{leads.get(s, 0)} {s}" for s in LEAD_STATUSES) if isinstance(leads, dict) else ""
        return out, f"{out.get('name', args.name)}: {out.get('state')}" + (f" (leads: {counts})" if counts else "")
    return do


def _dnc_path(args: argparse.Namespace) -> tuple[tuple[str, ...], str]:
    if args.campaign:
        return ("api", "campaigns", args.campaign, "dnc"), f"the do-not-call list of {args.campaign}"
    return ("api", "dnc"), "the global do-not-call list"


async def do_dnc_add(api: Api, args: argparse.Namespace) -> Any:
    path, which = _dnc_path(args)
    out = await api.call("POST", *path, body={"numbers": list(args.numbers)})
    added = out.get("added", [])
    return out, f"added {len(added)} number(s) to {which}" + ("".join(f"\n  {n}" for n in added))


async def do_dnc_list(api: Api, args: argparse.Namespace) -> Any:
    path, which = _dnc_path(args)
    out = await api.call("GET", *path)
    numbers = out.get("numbers", [])
    if not numbers:
        print(f"{which} is empty", file=sys.stderr)
    return out, "\n".join(str(n) for n in numbers) if numbers else None


async def do_dnc_remove(api: Api, args: argparse.Namespace) -> Any:
    path, which = _dnc_path(args)
    out = await api.call("DELETE", *path, args.number)
    return out, f"removed {out.get('removed', args.number)} from {which}"


async def do_dispose(api: Api, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"code": args.code}
    if args.callback_at is not None:
        body["callback_at"] = args.callback_at
    out = await api.call("POST", "api", "agents", args.agent, "disposition", body=body)
    text = (f"{args.agent}: {out.get('code')} for lead {out.get('lead_id')} of {out.get('campaign')}; "
            f"lead {out.get('status')}")
    if out.get("next_attempt_at"):
        text += f", next attempt at {out['next_attempt_at']}"
    return out, text


async def do_hangup(api: Api, args: argparse.Namespace) -> Any:
    out = await api.call("POST", "api", "agents", args.agent, "hangup")
    return out, f"{args.agent}: hung up call {out.get('call_id')} (the agent is in wrap-up)"


async def do_dial(api: Api, args: argparse.Namespace) -> Any:
    out = await api.call("POST", "api", "agents", args.agent, "dial")
    lead = out.get("lead") or {}
    return out, (f"{args.agent}: dialing {lead.get('phone')} (lead {lead.get('lead_id')} of {lead.get('campaign')}), "
                 f"call {out.get('call_id')}")


COMMANDS: Mapping[str, Command] = {
    "create": do_create, "list": do_list, "show": do_show, "import": do_import,
    "start": transition("start"), "pause": transition("pause"), "stop": transition("stop"),
    "dnc add": do_dnc_add, "dnc list": do_dnc_list, "dnc remove": do_dnc_remove,
    "dispose": do_dispose, "hangup": do_hangup, "dial": do_dial,
}


# --- output ------------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in (headers, *rows)]
    return "\n".join(lines)


def _pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _window(value: Any) -> str:
    return f"{value.get('start')}-{value.get('end')}" if isinstance(value, dict) else "-"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def render_campaign(c: Mapping[str, Any]) -> str:
    """`show`: the campaign as key / value sections."""
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    sections.append((f"campaign {c.get('name')}", [
        ("state", _value(c.get("state"))), ("mode", _value(c.get("mode"))),
        ("caller ID", _value(c.get("caller_id"))),
        ("abandon target", f"{_pct(c.get('abandon_target'))} over {_value(c.get('abandon_period'))}"),
        ("AMD", _value(c.get("amd")) + (f" (machine: {c.get('machine_action')})" if c.get("amd") else "")),
        ("window", _window(c.get("window")) + " (lead's local time)"),
        ("ring timeout", f"{_value(c.get('ring_timeout'))} s"), ("max attempts", _value(c.get("max_attempts"))),
        ("retry after (s)", _value(c.get("retry"))),
        ("no redial after drop", f"{_value(c.get('no_redial_after_drop'))} h"),
        ("wrap-up", f"{_value(c.get('wrapup'))} s"), ("connect rule", _value(c.get("connect_rule"))),
        ("country", _value(c.get("country"))),
    ]))
    leads = c.get("leads")
    if isinstance(leads, dict):
        rows = [(s, str(leads.get(s, 0))) for s in (*LEAD_STATUSES, *(k for k in leads if k not in LEAD_STATUSES))]
        total = sum(v for v in leads.values() if isinstance(v, int))
        sections.append(("leads", [*rows, ("total", str(total))]))
    live = c.get("live")
    if isinstance(live, dict):
        cap = live.get("abandon_cap")
        if cap is None:
            cap = c.get("abandon_target")  # not dialing now: the campaign's target is the cap
        period = live.get("abandon_period") or c.get("abandon_period")
        rate = _pct(live.get("abandon_rate")) + (f" (cap {_pct(cap)} over {period})" if cap is not None else "")
        if live.get("live_answers") is not None:
            rate += f"; {live.get('drops', 0)} drop(s) / {live.get('live_answers')} live answer(s)"
        level = live.get("dial_level")
        rows = [("dialing", _value(live.get("dialing"))), ("ringing", _value(live.get("ringing"))),
                ("waiting for an agent", _value(live.get("waiting_for_agent"))),
                ("agents logged in", _value(live.get("agents_logged_in"))),
                ("agents ready", _value(live.get("agents_ready"))),
                ("agents on call", _value(live.get("agents_on_call"))),
                ("agents in wrap-up", _value(live.get("agents_wrapup"))),
                ("agents paused", _value(live.get("agents_paused"))),
                ("dial level", f"{level:.2f}" if isinstance(level, int | float) else _value(level)),
                ("abandon rate", rate), ("leads left", _value(live.get("leads_left"))),
                ("forecast finish", "in " + duration(live["forecast_finish_seconds"])
                 if live.get("forecast_finish_seconds") is not None else "-")]
        sections.append(("live", rows))
    out: list[str] = []
    for title, rows in sections:
        width = max(len(k) for k, _ in rows)
        out.append(title)
        out += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(out)


# --- entry -------------------------------------------------------------------------------------
def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Do the subcommand; its output on stdout, errors on stderr; the exit code."""
    name = args.campaign_cmd + (f" {args.dnc_cmd}" if args.campaign_cmd == "dnc" else "")
    try:
        base = base_url(args.url)
        token = api_token()
        out, text = asyncio.run(_call(COMMANDS[name], base, token, args))
    except Failure as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        for line in exc.details:
            print(f"  {line}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif text is not None:
        print(text)
    return EXIT_OK


async def _call(command: Command, base: URL, token: str, args: argparse.Namespace) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "cc-ari-cli"}
    async with aiohttp.ClientSession(headers=headers) as session:  # each request has its timeout
        return await command(Api(session, base), args)
