"""`cc-ari campaign ...` against a fake service that records each request: method, path, body,
headers; the service's refusals, the bad rows of a lead file, exit codes, the token kept out of
every output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cc_ari import cli
from cc_ari.campaigns import cli as campaign_cli

TOKEN = "s3cret-token-XYZ"
CAMPAIGN = {"name": "spring", "mode": "predictive", "caller_id": "+15550100", "state": "created",
            "abandon_target": 0.03, "abandon_period": "30d", "amd": True, "machine_action": "hangup",
            "window": {"start": "08:00", "end": "21:00"}, "ring_timeout": 20, "max_attempts": 3,
            "retry": {"busy": 600, "no_answer": 3600, "machine": 7200, "failed": 900},
            "no_redial_after_drop": 72, "country": "US", "wrapup": 120, "connect_rule": "us"}
LEADS = {"pending": 120, "scheduled": 4, "done": 30, "dnc": 2, "exhausted": 1}
LIVE = {"dialing": 5, "ringing": 3, "waiting_for_agent": 0, "agents_logged_in": 6, "agents_ready": 1,
        "agents_on_call": 4, "agents_wrapup": 1, "agents_paused": 0, "dial_level": 1.6, "abandon_rate": 0.0123,
        "abandon_cap": 0.03, "abandon_period": "30d", "live_answers": 81, "drops": 1, "leads_left": 124,
        "forecast_finish_seconds": 5000}


@dataclass
class Seen:
    method: str
    path: str
    raw_path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, Any]


@dataclass
class FakeService:
    """A fake cc_ari API on 127.0.0.1:<port 0>, in its own thread and event loop."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    replies: dict[tuple[str, str], Reply | Callable[[Seen], Reply]] = field(default_factory=dict)
    delay: float = 0.0

    def reply(self, method: str, path: str, status: int, body: Any) -> None:
        self.replies[(method, path)] = (status, body)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path, request.raw_path, dict(request.headers), await request.read())
        self.seen.append(seen)
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self.replies.get((request.method, request.path), (404, {"error": "no such route"}))
        status, body = reply(seen) if callable(reply) else reply
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="text/html")
        return web.json_response(body, status=status)

    @property
    def last(self) -> Seen:
        assert self.seen, "no request reached the fake service"
        return self.seen[-1]


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeService]:
    fake = FakeService()
    loop = asyncio.new_event_loop()
    app = web.Application(client_max_size=100 << 20)
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake.url = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    monkeypatch.setenv("CC_API_TOKEN", TOKEN)
    monkeypatch.setenv("CC_API_URL", fake.url)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["campaign", *args])
    out, err = capsys.readouterr()
    assert TOKEN not in out and TOKEN not in err
    return code, out, err


def assert_authorised(seen: Seen) -> None:
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


# --- create ------------------------------------------------------------------------------------
def test_create_sends_only_the_options_given(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("POST", "/api/campaigns", 201, {**CAMPAIGN, "leads": {}})
    code, out, _ = run(capsys, "create", "spring", "--mode", "predictive", "--caller-id", "+15550100")
    assert code == 0
    assert service.last.method == "POST" and service.last.path == "/api/campaigns"
    assert service.last.json() == {"name": "spring", "mode": "predictive", "caller_id": "+15550100"}
    assert service.last.headers["Content-Type"].startswith("application/json")
    assert_authorised(service.last)
    assert "created campaign spring" in out and "state created" in out


def test_create_with_every_option(service: FakeService, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    service.reply("POST", "/api/campaigns", 201, CAMPAIGN)
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"notsure": "machine", "wrapup": 1, "country": "GB"}))
    code, _, _ = run(capsys, "create", "spring", "--mode", "progressive", "--caller-id", "+15550100",
                     "--abandon-target", "0.02", "--abandon-period", "24h", "--no-amd", "--machine-action", "message",
                     "--window", "09:00-20:30", "--ring-timeout", "25", "--max-attempts", "5",
                     "--retry", "busy=900,no_answer=1800", "--retry", "failed=120", "--no-redial-after-drop", "96",
                     "--wrapup", "60", "--connect-rule", "uk", "--json-settings", str(settings))
    assert code == 0
    assert service.last.json() == {
        "name": "spring", "mode": "progressive", "caller_id": "+15550100", "abandon_target": 0.02,
        "abandon_period": "24h", "amd": False, "machine_action": "message",
        "window": {"start": "09:00", "end": "20:30"}, "ring_timeout": 25, "max_attempts": 5,
        "retry": {"busy": 900, "no_answer": 1800, "failed": 120}, "no_redial_after_drop": 96, "wrapup": 60,
        "connect_rule": "uk", "notsure": "machine", "country": "GB"}


def test_create_shows_the_services_422(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("POST", "/api/campaigns", 422, {"error": "ring_timeout must be between 15 and 120, got 5"})
    code, out, err = run(capsys, "create", "x", "--mode", "preview", "--caller-id", "+1555", "--ring-timeout", "5")
    assert code == 1 and out == ""
    assert "422" in err and "ring_timeout must be between 15 and 120, got 5" in err


@pytest.mark.parametrize("bad", [["--window", "0800"], ["--retry", "busy"], ["--retry", "busy=soon"],
                                 ["--abandon-target", "nan"], ["--mode", "robo"], ["--ring-timeout", "1.5"]])
def test_create_usage_errors_send_nothing(service: FakeService, capsys: pytest.CaptureFixture[str],
                                          bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["campaign", "create", "x", "--mode", "preview", "--caller-id", "+1555", *bad])
    assert exc.value.code == 2
    assert service.seen == []


def test_create_needs_mode_and_caller_id(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "create", "x", "--mode", "preview")
    assert code == 2 and "--caller-id" in err
    assert service.seen == []


def test_create_bad_settings_file(service: FakeService, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[1, 2]")
    code, _, err = run(capsys, "create", "x", "--mode", "preview", "--caller-id", "1", "--json-settings",
                       str(tmp_path / "bad.json"))
    assert code == 2 and "JSON object" in err
    code, _, err = run(capsys, "create", "x", "--json-settings", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    assert service.seen == []


# --- list, show --------------------------------------------------------------------------------
def test_list_table_and_json(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("GET", "/api/campaigns", 200, {"campaigns": [CAMPAIGN, {**CAMPAIGN, "name": "autumn",
                                                                           "state": "running"}]})
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert service.last.method == "GET" and service.last.path == "/api/campaigns"
    assert_authorised(service.last)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATE", "MODE"]
    assert lines[1].split()[:3] == ["spring", "created", "predictive"]
    assert lines[2].split()[:2] == ["autumn", "running"]
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0 and json.loads(out)["campaigns"][1]["name"] == "autumn"
    code, out, _ = run(capsys, "--json", "list")  # --json before the subcommand too
    assert code == 0 and json.loads(out)["campaigns"][0]["name"] == "spring"


def test_show_is_a_readable_table(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("GET", "/api/campaigns/spring", 200, {**CAMPAIGN, "state": "running", "leads": LEADS, "live": LIVE})
    code, out, _ = run(capsys, "show", "spring")
    assert code == 0 and service.last.path == "/api/campaigns/spring"
    rows = {line.strip().rsplit("  ", 1)[0].strip(): line.strip().rsplit("  ", 1)[-1].strip()
            for line in out.splitlines() if line.startswith("  ")}
    assert rows["state"] == "running"
    assert rows["pending"] == "120" and rows["exhausted"] == "1" and rows["total"] == "157"
    assert rows["dialing"] == "5" and rows["ringing"] == "3"
    assert rows["agents ready"] == "1" and rows["agents on call"] == "4"
    assert rows["dial level"] == "1.60"
    assert "1.23% (cap 3.00% over 30d)" in out
    assert rows["leads left"] == "124"
    assert rows["forecast finish"] == "in 1h 23m"
    code, out, _ = run(capsys, "show", "spring", "--json")
    assert json.loads(out)["live"] == LIVE


def test_show_names_are_one_path_segment(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "a/b c")
    assert code == 1 and "no such route" in err
    assert service.last.raw_path == "/api/campaigns/a%2Fb%20c"


def test_unknown_campaign(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("GET", "/api/campaigns/nope", 404, {"error": "no campaign 'nope'"})
    code, out, err = run(capsys, "show", "nope")
    assert (code, out) == (1, "")
    assert "404" in err and "no campaign 'nope'" in err


# --- import ------------------------------------------------------------------------------------
def test_import_posts_the_file_as_csv(service: FakeService, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    content = "phone,id,name\n+15550102001,a1,Zoë\n5550102002,a2,Bob\n+15550102001,a3,Dup\n".encode()
    (tmp_path / "leads.csv").write_bytes(content)
    service.reply("POST", "/api/campaigns/spring/leads", 200,
                  {"imported": 2, "duplicates": [{"line": 4, "phone": "+15550102001"}]})
    code, out, _ = run(capsys, "import", "spring", str(tmp_path / "leads.csv"))
    assert code == 0
    seen = service.last
    assert (seen.method, seen.path) == ("POST", "/api/campaigns/spring/leads")
    assert seen.body == content
    assert seen.headers["Content-Type"].startswith("text/csv")
    assert seen.headers["Content-Length"] == str(len(content))
    assert_authorised(seen)
    assert "imported 2 lead(s)" in out and "1 duplicate(s)" in out and "line 4: +15550102001" in out


def test_import_422_prints_each_bad_row(service: FakeService, capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("phone\nnope\n\n")
    service.reply("POST", "/api/campaigns/spring/leads", 422, {
        "error": "2 bad row(s): nothing imported",
        "rows": [{"row": 2, "error": "phone 'nope' is not a phone number"}, {"row": 7, "error": "phone is empty"}]})
    code, out, err = run(capsys, "import", "spring", str(tmp_path / "bad.csv"))
    assert code == 1 and out == ""
    assert "2 bad row(s): nothing imported" in err
    assert "line 2: phone 'nope' is not a phone number" in err
    assert "line 7: phone is empty" in err


def test_import_refuses_a_file_over_64_mb(service: FakeService, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(campaign_cli.MAX_LEADS_BYTES + 1)  # sparse
    code, _, err = run(capsys, "import", "spring", str(big))
    assert code == 1 and "at most 64 MB" in err
    assert service.seen == []


def fifo_with(path: Path, content: bytes) -> Path:
    os.mkfifo(path)

    def write() -> None:
        with path.open("wb") as f, contextlib.suppress(BrokenPipeError):
            f.write(content)

    threading.Thread(target=write, daemon=True).start()
    return path


def test_import_from_a_pipe(service: FakeService, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaign_cli, "MAX_LEADS_BYTES", 100)
    service.reply("POST", "/api/campaigns/spring/leads", 200, {"imported": 1, "duplicates": []})
    content = b"phone\n+15550102001\n"
    code, _, _ = run(capsys, "import", "spring", str(fifo_with(tmp_path / "ok", content)))
    assert code == 0 and service.last.body == content
    code, _, err = run(capsys, "import", "spring", str(fifo_with(tmp_path / "big", b"phone\n" + b"5" * 200)))
    assert code == 1 and "nothing sent" in err
    assert len(service.seen) == 1  # a file over the limit is never sent, not even a part of it


def test_import_missing_file(service: FakeService, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "import", "spring", str(tmp_path / "none.csv"))
    assert code == 2 and "cannot read" in err
    assert service.seen == []


def test_import_uses_the_long_timeout(service: FakeService, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaign_cli, "TIMEOUT", 0.2)
    monkeypatch.setattr(campaign_cli, "IMPORT_TIMEOUT", 5.0)
    service.delay = 0.5
    (tmp_path / "l.csv").write_text("phone\n+15550102001\n")
    service.reply("POST", "/api/campaigns/spring/leads", 200, {"imported": 1, "duplicates": []})
    code, _, _ = run(capsys, "import", "spring", str(tmp_path / "l.csv"))
    assert code == 0


# --- start / pause / stop ----------------------------------------------------------------------
@pytest.mark.parametrize(("action", "state"), [("start", "running"), ("pause", "paused"), ("stop", "stopped")])
def test_transitions(service: FakeService, capsys: pytest.CaptureFixture[str], action: str, state: str) -> None:
    service.reply("POST", f"/api/campaigns/spring/{action}", 200, {**CAMPAIGN, "state": state, "leads": LEADS})
    code, out, _ = run(capsys, action, "spring")
    assert code == 0
    assert (service.last.method, service.last.path, service.last.body) == (
        "POST", f"/api/campaigns/spring/{action}", b"")
    assert_authorised(service.last)
    assert out.startswith(f"spring: {state}") and "120 pending" in out


def test_transition_refused(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("POST", "/api/campaigns/spring/pause", 409, {"error": "a created campaign cannot pause"})
    code, _, err = run(capsys, "pause", "spring")
    assert code == 1 and "409" in err and "a created campaign cannot pause" in err


# --- do-not-call -------------------------------------------------------------------------------
def test_dnc_global_and_per_campaign(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("POST", "/api/dnc", 200, {"added": ["+15550102001", "+15550102002"]})
    code, out, _ = run(capsys, "dnc", "add", "+15550102001", "555-010-2002")
    assert code == 0 and "added 2 number(s) to the global do-not-call list" in out
    assert (service.last.method, service.last.path) == ("POST", "/api/dnc")
    assert service.last.json() == {"numbers": ["+15550102001", "555-010-2002"]}

    service.reply("POST", "/api/campaigns/spring/dnc", 200, {"added": ["+15550102003"]})
    code, out, _ = run(capsys, "dnc", "add", "--campaign", "spring", "+15550102003")
    assert code == 0 and "spring" in out
    assert service.last.path == "/api/campaigns/spring/dnc"
    assert service.last.json() == {"numbers": ["+15550102003"]}

    service.reply("GET", "/api/campaigns/spring/dnc", 200, {"numbers": ["+15550102003", "+15550102004"]})
    code, out, _ = run(capsys, "dnc", "list", "--campaign", "spring")
    assert code == 0 and out.split() == ["+15550102003", "+15550102004"]
    assert (service.last.method, service.last.path) == ("GET", "/api/campaigns/spring/dnc")

    service.reply("GET", "/api/dnc", 200, {"numbers": []})
    code, out, err = run(capsys, "dnc", "list")
    assert code == 0 and out == "" and "empty" in err

    service.reply("DELETE", "/api/dnc/+15550102001", 200, {"removed": "+15550102001"})
    code, out, _ = run(capsys, "dnc", "remove", "+15550102001")
    assert code == 0 and "removed +15550102001 from the global do-not-call list" in out
    assert (service.last.method, service.last.path) == ("DELETE", "/api/dnc/+15550102001")

    service.reply("DELETE", "/api/campaigns/spring/dnc/+15550102003", 404, {"error": "+15550102003 is not on the list"})
    code, _, err = run(capsys, "dnc", "remove", "--campaign", "spring", "+15550102003")
    assert code == 1 and "is not on the list" in err
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in service.seen)


# --- agents ------------------------------------------------------------------------------------
def test_dispose(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("POST", "/api/agents/agent3/disposition", 200,
                  {"agent": "agent3", "code": "callback", "campaign": "spring", "lead_id": "a1",
                   "status": "scheduled", "next_attempt_at": "2026-12-01T14:00:00+00:00"})
    code, out, _ = run(capsys, "dispose", "agent3", "callback", "--callback-at", "2026-12-01T15:00:00+01:00")
    assert code == 0
    assert service.last.path == "/api/agents/agent3/disposition"
    assert service.last.json() == {"code": "callback", "callback_at": "2026-12-01T15:00:00+01:00"}
    assert "lead a1 of spring" in out and "2026-12-01T14:00:00+00:00" in out
    service.reply("POST", "/api/agents/agent3/disposition", 200,
                  {"agent": "agent3", "code": "sale", "campaign": "spring", "lead_id": "a1", "status": "done",
                   "next_attempt_at": None})
    code, _, _ = run(capsys, "dispose", "agent3", "sale")
    assert code == 0 and service.last.json() == {"code": "sale"}


def test_hangup_and_dial(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("POST", "/api/agents/agent3/hangup", 200, {"agent": "agent3", "call_id": "c-1", "hung_up": True})
    code, out, _ = run(capsys, "hangup", "agent3")
    assert code == 0 and "hung up call c-1" in out
    assert (service.last.method, service.last.path, service.last.body) == ("POST", "/api/agents/agent3/hangup", b"")
    service.reply("POST", "/api/agents/agent3/dial", 200, {
        "agent": "agent3", "call_id": "c-2", "lead": {"campaign": "spring", "lead_id": "a9", "phone": "+15550102009",
                                                      "fields": {}}})
    code, out, _ = run(capsys, "dial", "agent3")
    assert code == 0 and "dialing +15550102009" in out and "a9" in out
    assert (service.last.method, service.last.path) == ("POST", "/api/agents/agent3/dial")
    service.reply("POST", "/api/agents/agent3/dial", 409, {"error": "agent3 is not logged in to a running preview "
                                                                    "campaign"})
    code, _, err = run(capsys, "dial", "agent3")
    assert code == 1 and "preview campaign" in err


# --- connection, token, errors -----------------------------------------------------------------
def test_url_option_wins_over_the_environment(service: FakeService, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_API_URL", "http://127.0.0.1:1")
    service.reply("GET", "/api/campaigns", 200, {"campaigns": []})
    code, out, _ = run(capsys, "list", "--url", service.url)
    assert code == 0 and out.strip() == "no campaigns"
    code, _, _ = run(capsys, "--url", service.url + "/", "list")
    assert code == 0 and service.last.path == "/api/campaigns"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_service_exits_3(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_API_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CC_API_URL", url)
    code, out, err = run(capsys, "list")
    assert (code, out) == (3, "")
    assert f"cannot reach the service at {url}" in err


def test_a_silent_service_times_out_with_3(service: FakeService, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaign_cli, "TIMEOUT", 0.2)
    service.delay = 2.0
    code, _, err = run(capsys, "show", "spring")
    assert code == 3 and f"no reply from the service at {service.url} within 0.2 s" in err


def test_missing_token_is_a_clear_error(service: FakeService, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC_API_TOKEN")
    code, out, err = run(capsys, "list")
    assert (code, out) == (2, "")
    assert "CC_API_TOKEN is not set" in err
    assert service.seen == []


def test_there_is_no_token_option(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["campaign", "list", "--token", TOKEN])
    assert exc.value.code == 2
    assert service.seen == []


def test_rejected_token_is_not_echoed(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("GET", "/api/campaigns", 401, {"error": "missing or invalid bearer token",
                                                 "hint": "send Authorization: Bearer <token>"})
    code, out, err = run(capsys, "list")  # run() checks the token is in neither output
    assert (code, out) == (1, "")
    assert "401" in err and "CC_API_TOKEN" in err


def test_server_error_and_non_json(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    service.reply("GET", "/api/campaigns", 500, {"error": "internal error"})
    code, _, err = run(capsys, "list")
    assert code == 1 and "500" in err and "internal error" in err
    service.reply("GET", "/api/campaigns", 200, "<html>not the api</html>")
    code, _, err = run(capsys, "list")
    assert code == 1 and "not JSON" in err


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8080", "http://user:pw@127.0.0.1:8080",
                                 "ftp://user:pw@127.0.0.1"])
def test_bad_url_is_a_usage_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  url: str) -> None:
    monkeypatch.setenv("CC_API_TOKEN", TOKEN)
    code, _, err = run(capsys, "--url", url, "list")
    assert code == 2 and "URL" in err and "pw" not in err


def test_durations() -> None:
    assert campaign_cli.duration(None) == "-"
    assert campaign_cli.duration(45) == "45s"
    assert campaign_cli.duration(250) == "4m 10s"
    assert campaign_cli.duration(5000) == "1h 23m"
