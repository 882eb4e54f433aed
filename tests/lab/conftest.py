"""End-to-end fixtures: the running lab (Asterisk + PostgreSQL + cc_ari), SIPp callers/agents."""

from __future__ import annotations

import json
import random
import shlex
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from sipp import AgentPhone, Sipp, start_call

REPO = Path(__file__).resolve().parents[2]
ENV_FILE = REPO / ".lab" / "env"


def load_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            k, _, v = line[7:].partition("=")
            env[k] = shlex.split(v)[0] if v else ""
    return env


@pytest.fixture(scope="session")
def lab() -> dict[str, str]:
    if not ENV_FILE.exists():
        pytest.fail("the lab is not set up: run `make run` (or `make test`)")
    env = load_env()
    try:
        urllib.request.urlopen(env["CC_API_URL"] + "/healthz", timeout=3)
    except (urllib.error.URLError, OSError) as exc:
        pytest.fail(f"cc_ari does not answer at {env['CC_API_URL']}: {exc}; run `make run`")
    return env


class Api:
    def __init__(self, base: str, token: str | None) -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             token: str | None = "default") -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        tok = self.token if token == "default" else token
        if tok:
            req.add_header("Authorization", f"Bearer {tok}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                return exc.code, json.loads(payload)
            except ValueError:
                return exc.code, payload.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.call(method, path, body)
        assert status == 200, (status, data)
        return data

    def agent(self, name: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/agents/{name}")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def api(lab: dict[str, str]) -> Api:
    return Api(lab["CC_API_URL"], lab["CC_API_TOKEN"])


@pytest.fixture(autouse=True)
def all_agents_logged_out(api: Api) -> Iterator[None]:
    """Every lab test starts and ends with nobody logged in (tests never see each other's agents)."""
    for a in api.ok("GET", "/api/agents")["agents"]:
        if a["state"] != "logged_out":
            api.ok("POST", f"/api/agents/{a['agent']}/logout")
    yield
    for a in api.ok("GET", "/api/agents")["agents"]:
        if a["state"] != "logged_out":
            api.call("POST", f"/api/agents/{a['agent']}/logout")


@pytest_asyncio.fixture
async def db(lab: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(lab["CC_DATABASE_URL"], timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def caller_number() -> str:
    """A caller number no other test uses, to find this test's calls in report.calls."""
    return "0155" + "".join(random.choice("0123456789") for _ in range(8))


@pytest.fixture
def phones(lab: dict[str, str], api: Api) -> Iterator[Callable[..., AgentPhone]]:
    made: list[AgentPhone] = []
    target = f"127.0.0.1:{lab['CC_SIP_PORT']}"

    def make(name: str, *, queues: list[str] | None = None, login: bool = True, **kw: Any) -> AgentPhone:
        phone = AgentPhone(name, lab["CC_AGENT_PASSWORD"], sip_target=target, **kw)
        made.append(phone)
        res = phone.register()
        assert res.returncode == 0, f"REGISTER of {name} failed: {res.errors or res.stderr}"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not api.agent(name)["registered"]:
            time.sleep(0.1)
        assert api.agent(name)["registered"], f"{name} registered but cc_ari does not see it online"
        if login:
            api.ok("POST", f"/api/agents/{name}/login", {"queues": queues or ["support"]})
        return phone

    yield make
    for p in made:
        p.stop()


@pytest.fixture
def call(lab: dict[str, str]) -> Iterator[Callable[..., Sipp]]:
    started: list[Sipp] = []
    target = f"127.0.0.1:{lab['CC_SIP_PORT']}"

    def make(dnis: str, caller: str, **kw: Any) -> Sipp:
        kw.setdefault("carrier_ip", lab["CC_CARRIER_HOST"])
        s = start_call(dnis, caller, sip_target=target, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


async def wait_call_row(db: asyncpg.Connection, caller: str, *, timeout: float = 10.0,
                        count: int = 1) -> list[asyncpg.Record]:
    """The finished call rows of `caller` (ended_at and outcome set), waiting up to `timeout`."""
    import asyncio

    deadline = time.monotonic() + timeout
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await db.fetch(
            "SELECT * FROM report.calls WHERE caller = $1 AND ended_at IS NOT NULL AND outcome IS NOT NULL "
            "ORDER BY started_at", caller)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.25)
    return rows


async def legs_of(db: asyncpg.Connection, call_id: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM report.legs WHERE call_id = $1 ORDER BY started_at", call_id)


def csv_post(lab: dict[str, str], path: str, text: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(lab["CC_API_URL"] + path, data=text.encode(), method="POST")
    req.add_header("Authorization", f"Bearer {token or lab['CC_API_TOKEN']}")
    req.add_header("Content-Type", "text/csv")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def kill_service() -> None:
    """A crash: SIGKILL cc_ari's process group (no chance to hand anything over), and wait for it to die."""
    import os
    import signal

    pid = int((REPO / ".lab" / "run" / "cc_ari.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)


def lab_cmd(*args: str) -> None:
    """Drive the lab (service-stop/start, pg-stop/start) for failure tests."""
    import subprocess
    import sys

    subprocess.run([sys.executable, str(REPO / "scripts" / "lab.py"), *args], check=True, timeout=60)
