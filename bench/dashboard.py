"""`python -m bench.dashboard`: what the operations dashboard costs in a real browser.

An in-process aiohttp server serves the real pages (cc_ari.web.pages.Pages) next to a fake
`/api/live` (docs/operations.md) holding a synthetic contact center — by default 200 agents,
20 queues, 100 live calls, 4 campaigns, today's intervals and AMI events — which, after the
snapshot, sends updates at each rate given (agent states, call phases, queue figures, AMI
events). Headless Chromium (Debian's, through Playwright) loads the dashboard and the figures
come from the page itself (window.ccLive.stats, performance marks) and from Chrome's own
counters (CDP Performance.getMetrics):

* initial render: navigation start -> every row built (mark cc-synced-rendered), and -> the frame
  after it was painted (cc-synced-painted);
* per update: JavaScript ms per rendered frame (apply + render; renders are batched in animation
  frames, at most one per 100 ms),
  the main thread's busy share (Chrome's TaskDuration: script, style, layout, paint), and per
  message;
* latency: the server's send (`sent_at` stamped on each message) -> the DOM updated, p50/p95/max.

`--serve PORT` only runs the fake server (for developing the pages): tokens `bench-supervisor`,
`bench-agent-agentN` (bound to agentN); `POST /bench/offer/agentN?direction=inbound|outbound`
puts a call on that agent (rings 2 s, then talks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from cc_ari.web.pages import Pages

CHROMIUM = os.environ.get("CC_CHROMIUM", "/usr/bin/chromium")
SUPERVISOR_TOKEN = "bench-supervisor"
QUEUE_NAMES = ("support", "sales", "billing", "retention", "vip", "tech", "orders", "returns", "claims", "fr",
               "de", "es", "it", "nl", "pl", "pt", "callback", "premium", "b2b", "outage")
STATES = ("ready", "ready", "on_call", "on_call", "on_call", "wrapup", "paused", "ringing", "logged_out")
CODES = ["sale", "no_sale", "callback", "dnc", "retry", "wrong_number"]


@dataclass
class Client:
    ws: web.WebSocketResponse
    role: str
    agent: str | None


@dataclass
class FakeCenter:
    """A synthetic contact center speaking the /api/live protocol."""

    n_agents: int = 200
    n_queues: int = 20
    n_calls: int = 100
    n_campaigns: int = 4
    seed: int = 1
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    ami: list[dict[str, Any]] = field(default_factory=list)
    intervals: list[dict[str, Any]] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    sent: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.ids = itertools.count(1)
        self.tasks: set[asyncio.Task[None]] = set()
        now = time.time()
        qnames = [QUEUE_NAMES[i] if i < len(QUEUE_NAMES) else f"queue{i + 1}" for i in range(self.n_queues)]
        for i in range(self.n_campaigns):
            name = ("spring", "renewals", "winback", "survey")[i] if i < 4 else f"campaign{i + 1}"
            self.campaigns[name] = {"type": "campaign", "campaign": name, "status": "running",
                                    "mode": ("predictive", "progressive", "preview")[i % 3],
                                    "live": self._campaign_live()}
        for i in range(self.n_agents):
            name = f"agent{i + 1}"
            state = self.rng.choice(STATES)
            self.agents[name] = {
                "type": "agent", "agent": name, "state": state,
                "since": None if state == "logged_out" else now - self.rng.uniform(0, 3000),
                "pause_reason": "break" if state == "paused" else None, "pending": None,
                "queues": [] if state == "logged_out" else sorted(self.rng.sample(qnames, self.rng.choice((1, 2, 3)))),
                "campaigns": [], "registered": state != "logged_out", "call": None, "disposition_pending": None,
            }
        for q in qnames:
            offered = self.rng.randint(50, 400)
            abandoned = self.rng.randint(0, offered // 10)
            self.queues[q] = {"type": "queue", "queue": q, "waiting": 0, "oldest_waiting_since": None,
                              "agents": {}, "service_level_seconds": 20,
                              "today": {"offered": offered, "answered": offered - abandoned, "abandoned": abandoned,
                                        "short_abandoned": abandoned // 3,
                                        "service_level": self.rng.uniform(0.55, 0.98),
                                        "asa_seconds": self.rng.uniform(3, 60),
                                        "aht_seconds": self.rng.uniform(120, 400),
                                        "abandon_rate": abandoned / offered,
                                        "longest_wait_seconds": self.rng.uniform(30, 600)}}
        talkers = [a for a in self.agents.values() if a["state"] == "on_call"]
        for i in range(self.n_calls):
            call = self._new_call(now)
            if i < len(talkers):
                agent = talkers[i]
                call.update(phase="talking", agent=agent["agent"], queued_at=call["started_at"] + 5,
                            answered_at=call["started_at"] + self.rng.uniform(8, 60),
                            queue=(agent["queues"] or qnames)[0])
                agent["call"] = self._agent_call(call)
            self.calls[call["call_id"]] = call
        self._recount()
        day = time.localtime(now)
        midnight = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, -1))
        start = midnight + 8 * 3600
        for q in qnames:
            t = start
            while t < now:
                offered = self.rng.randint(0, 25)
                ab = self.rng.randint(0, max(offered // 6, 0))
                self.intervals.append({"queue": q, "interval_start": t, "offered": offered, "answered": offered - ab,
                                       "abandoned": ab, "short_abandoned": ab // 2,
                                       "service_level": self.rng.uniform(0.5, 1.0) if offered else None,
                                       "asa_seconds": self.rng.uniform(2, 50),
                                       "aht_seconds": self.rng.uniform(100, 400),
                                       "longest_wait_seconds": self.rng.uniform(5, 300)})
                t += 900
        for _ in range(200):
            self.ami.append(self._ami_event(now))

    # ---------------------------------------------------------------- synthetic entities

    def _campaign_live(self) -> dict[str, Any]:
        return {"dialing": self.rng.randint(0, 20), "ringing": self.rng.randint(0, 10),
                "agents_ready": self.rng.randint(0, 5), "agents_on_call": self.rng.randint(0, 20),
                "dial_level": self.rng.uniform(1, 3), "abandon_rate": self.rng.uniform(0, 0.04),
                "abandon_cap": 0.03, "leads_left": self.rng.randint(0, 5000)}

    def _new_call(self, now: float) -> dict[str, Any]:
        n = next(self.ids)
        q = self.rng.choice(list(self.queues) or list(QUEUE_NAMES[: self.n_queues]))
        phase = self.rng.choice(("ivr", "queued", "queued", "ringing"))
        started = now - self.rng.uniform(0, 120)
        return {"type": "call", "call_id": f"{int(now)}.{n}", "direction": "inbound", "phase": phase,
                "caller": f"+3315{self.rng.randint(1000000, 9999999)}", "dnis": "5001", "queue": q, "agent": None,
                "campaign": None, "started_at": started,
                "queued_at": None if phase == "ivr" else started + self.rng.uniform(3, 15), "answered_at": None}

    @staticmethod
    def _agent_call(call: dict[str, Any], lead: dict[str, Any] | None = None) -> dict[str, Any]:
        keys = ("call_id", "direction", "phase", "caller", "dnis", "queue", "campaign", "started_at", "answered_at")
        return {**{k: call.get(k) for k in keys}, "ivr_path": ["menu", "2"], "lead": lead}

    def _ami_event(self, now: float) -> dict[str, Any]:
        name = self.rng.choice(("Newchannel", "Newstate", "Hangup", "DialBegin", "DialEnd", "BridgeEnter",
                                "BridgeLeave", "VarSet", "QueueMemberStatus", "PeerStatus"))
        agent = self.rng.randint(1, self.n_agents)
        return {"type": "ami", "ts": now, "event": name,
                "fields": {"Channel": f"PJSIP/agent{agent}-{self.rng.randint(0, 0xFFFFFF):08x}",
                           "Uniqueid": f"{now:.0f}.{self.rng.randint(1, 9999)}", "ChannelState": "6",
                           "CallerIDNum": str(self.rng.randint(1000, 9999))}}

    def _recount(self) -> None:
        for q in self.queues.values():
            counts = dict.fromkeys(("logged_in", "ready", "ringing", "on_call", "wrapup", "paused"), 0)
            for a in self.agents.values():
                if q["queue"] in a["queues"] and a["state"] != "logged_out":
                    counts["logged_in"] += 1
                    if a["state"] in counts:
                        counts[a["state"]] += 1
            waiting = [c for c in self.calls.values()
                       if c["queue"] == q["queue"] and c["phase"] in ("queued", "ringing")]
            q["agents"] = counts
            q["waiting"] = len(waiting)
            q["oldest_waiting_since"] = min((c["queued_at"] or c["started_at"] for c in waiting), default=None)

    def snapshot(self, client: Client) -> list[dict[str, Any]]:
        if client.agent:
            a = self.agents.get(client.agent)
            return [a] if a else []
        out: list[dict[str, Any]] = [*self.agents.values(), *self.queues.values(), *self.calls.values(),
                                     *self.campaigns.values(), *self.monitors.values()]
        out.append({"type": "intervals", "date": time.strftime("%Y-%m-%d"), "minutes": 15, "rows": self.intervals})
        out.extend(self.ami[-200:])
        return out

    # ---------------------------------------------------------------- sending

    async def broadcast(self, msg: dict[str, Any]) -> None:
        for client in list(self.clients):
            if client.agent and not (msg.get("type") == "agent" and msg.get("agent") == client.agent):
                continue
            if msg.get("type") == "ami" and client.role not in ("admin", "supervisor"):
                continue
            msg["sent_at"] = time.time()
            try:
                await client.ws.send_str(json.dumps(msg))
                self.sent += 1
            except (ConnectionError, RuntimeError):
                with contextlib.suppress(ValueError):
                    self.clients.remove(client)

    async def random_update(self) -> None:
        now = time.time()
        r = self.rng.random()
        if r < 0.5:
            a = self.agents[f"agent{self.rng.randint(1, self.n_agents)}"]
            state = self.rng.choice(STATES[:-1])
            a.update(state=state, since=now, pause_reason="break" if state == "paused" else None,
                     queues=a["queues"] or [self.rng.choice(list(self.queues))], registered=True)
            await self.broadcast(dict(a))
        elif r < 0.7 and self.calls:
            call = self.calls[self.rng.choice(list(self.calls))]
            nxt = {"ivr": "queued", "queued": "ringing", "ringing": "talking", "talking": "gone"}.get(call["phase"])
            if nxt == "gone":
                del self.calls[call["call_id"]]
                await self.broadcast({"type": "call", "call_id": call["call_id"], "gone": True})
                fresh = self._new_call(now)
                self.calls[fresh["call_id"]] = fresh
                await self.broadcast(dict(fresh))
            else:
                call["phase"] = nxt or "queued"
                if nxt == "queued":
                    call["queued_at"] = now
                if nxt == "talking":
                    call["answered_at"] = now
                    call["agent"] = f"agent{self.rng.randint(1, self.n_agents)}"
                await self.broadcast(dict(call))
        elif r < 0.85:
            q = self.queues[self.rng.choice(list(self.queues))]
            q["waiting"] = max(0, q["waiting"] + self.rng.choice((-1, 1)))
            q["today"]["offered"] += 1
            await self.broadcast(dict(q))
        else:
            event = self._ami_event(now)
            self.ami.append(event)
            del self.ami[:-500]
            await self.broadcast(dict(event))

    async def feed(self, rate: float, seconds: float) -> int:
        """`rate` updates a second, evenly spaced, for `seconds`; returns the messages sent."""
        before = self.sent
        start = time.perf_counter()
        n = 0
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(elapsed * rate) + 1 if rate > 0 else 0
            while n < due:
                await self.random_update()
                n += 1
            wake = min(n / rate, seconds) if rate > 0 else seconds
            await asyncio.sleep(max(0.0, wake - (time.perf_counter() - start)))
        return self.sent - before

    # ---------------------------------------------------------------- HTTP (fakes of the real API)

    def token_role(self, token: str) -> tuple[str, str | None] | None:
        if token == SUPERVISOR_TOKEN:
            return "supervisor", None
        if token.startswith("bench-agent-") and token[12:] in self.agents:
            return "agent", token[12:]
        return None

    def _auth(self, request: web.Request) -> tuple[str, str | None]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        who = self.token_role(token.strip()) if scheme.lower() == "bearer" else None
        if who is None:
            raise web.HTTPUnauthorized(text=json.dumps({"error": "missing or invalid bearer token"}),
                                       content_type="application/json")
        return who

    async def whoami(self, request: web.Request) -> web.Response:
        role, agent = self._auth(request)
        return web.json_response({"role": role, "agent": agent})

    async def live(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        who = self.token_role(request.query.get("token", ""))
        if who is None:
            await ws.send_json({"type": "error", "error": "invalid token"})
            await ws.close(code=4401)
            return ws
        client = Client(ws, *who)
        await ws.send_json({"type": "hello", "role": client.role, "agent": client.agent, "server_time": time.time()})
        for msg in self.snapshot(client):
            await ws.send_str(json.dumps(msg))
        await ws.send_json({"type": "synced"})
        self.clients.append(client)
        try:
            async for m in ws:
                if m.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            with contextlib.suppress(ValueError):
                self.clients.remove(client)
        return ws

    def _agent_for(self, request: web.Request) -> dict[str, Any]:
        role, bound = self._auth(request)
        name = request.match_info["agent"]
        if name not in self.agents:
            raise web.HTTPNotFound(text=json.dumps({"error": f"no agent {name!r}"}), content_type="application/json")
        if role == "agent" and bound != name:
            raise web.HTTPForbidden(text=json.dumps({"error": "this token controls another agent"}),
                                    content_type="application/json")
        return self.agents[name]

    async def agent_action(self, request: web.Request) -> web.Response:
        a = self._agent_for(request)
        action = request.match_info["action"]
        body: dict[str, Any] = {}
        if request.can_read_body:
            body = await request.json()
        now = time.time()
        if action == "login":
            a.update(state="ready", since=now, queues=body.get("queues", []), campaigns=body.get("campaigns", []))
        elif action == "ready":
            a.update(state="ready", since=now, pause_reason=None)
        elif action == "pause":
            if a["state"] == "logged_out":
                return web.json_response({"error": "agent is logged out"}, status=409)
            a.update(state="paused", since=now, pause_reason=body.get("reason", "paused"))
        elif action == "logout":
            a.update(state="logged_out", since=now, queues=[], campaigns=[], call=None)
        elif action == "hangup":
            if not a["call"]:
                return web.json_response({"error": "no call to hang up"}, status=409)
            call = a["call"]
            codes = CODES if call["direction"] == "outbound" else ["resolved", "escalated", "callback"]
            a.update(state="wrapup", since=now, call=None,
                     disposition_pending={"call_id": call["call_id"], "direction": call["direction"], "codes": codes})
        elif action == "disposition":
            if not a["disposition_pending"]:
                return web.json_response({"error": "no disposition pending"}, status=409)
            a.update(state="ready", since=now, disposition_pending=None)
        else:
            raise web.HTTPNotFound()
        self._recount()
        await self.broadcast(dict(a))
        return web.json_response({"agent": a["agent"], "state": a["state"]})

    async def offer(self, request: web.Request) -> web.Response:
        """Dev helper: a call rings the agent for 2 s, then they talk."""
        a = self._agent_for(request)
        outbound = request.query.get("direction") == "outbound"
        call = self._new_call(time.time())
        lead = {"id": "L-1042", "name": "Ada Lovelace", "phone": "+33155512345", "plan": "gold"} if outbound else None
        call.update(direction="outbound" if outbound else "inbound", phase="ringing", agent=a["agent"],
                    campaign="spring" if outbound else None, queue=None if outbound else call["queue"],
                    caller="+3312345678" if outbound else call["caller"], dnis="+33155512345" if outbound else "5001")
        a.update(state="ringing", since=time.time(), call=self._agent_call(call, lead))
        await self.broadcast(dict(a))

        async def answer() -> None:
            await asyncio.sleep(2)
            call.update(phase="talking", answered_at=time.time())
            a.update(state="on_call", since=time.time(), call=self._agent_call(call, lead))
            await self.broadcast(dict(a))

        task = asyncio.create_task(answer())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"call_id": call["call_id"]})

    async def monitor(self, request: web.Request) -> web.Response:
        self._auth(request)
        call_id = request.match_info["call_id"]
        body = await request.json()
        mid = f"m{next(self.ids)}"
        m = {"type": "monitor", "monitor_id": mid, "call_id": call_id, "supervisor": body.get("supervisor"),
             "agent": self.calls.get(call_id, {}).get("agent"), "mode": body.get("mode"), "state": "ringing"}
        self.monitors[mid] = m
        await self.broadcast(dict(m))
        return web.json_response({k: v for k, v in m.items() if k != "type"})

    async def monitor_change(self, request: web.Request) -> web.Response:
        self._auth(request)
        m = self.monitors.get(request.match_info["monitor_id"])
        if m is None:
            return web.json_response({"error": "no such monitor"}, status=404)
        if request.method == "DELETE":
            m["state"] = "ended"
            del self.monitors[m["monitor_id"]]
        else:
            m.update(mode=(await request.json()).get("mode"), state="active")
        await self.broadcast(dict(m))
        return web.json_response({k: v for k, v in m.items() if k != "type"})

    async def campaign_action(self, request: web.Request) -> web.Response:
        self._auth(request)
        c = self.campaigns[request.match_info["name"]]
        c["status"] = {"start": "running", "pause": "paused", "stop": "stopped"}[request.match_info["action"]]
        await self.broadcast(dict(c))
        return web.json_response({"name": c["campaign"], "state": c["status"]})

    def app(self) -> web.Application:
        app = web.Application()
        Pages().routes(app)
        app.router.add_get("/api/whoami", self.whoami)
        app.router.add_get("/api/live", self.live)
        app.router.add_post("/api/agents/{agent}/{action}", self.agent_action)
        app.router.add_post("/api/calls/{call_id}/monitor", self.monitor)
        app.router.add_post("/api/monitors/{monitor_id}", self.monitor_change)
        app.router.add_delete("/api/monitors/{monitor_id}", self.monitor_change)
        app.router.add_post("/api/campaigns/{name}/{action:start|pause|stop}", self.campaign_action)
        app.router.add_post("/bench/offer/{agent}", self.offer)
        return app


async def serve(center: FakeCenter, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(center.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    real_port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{real_port}"


# ---------------------------------------------------------------- the measurement

INIT = """
sessionStorage.setItem("cc.token", %s);
window.__longTasks = [];
try {
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longTasks.push(e.duration); })
    .observe({ type: "longtask", buffered: true });
} catch (e) {}
"""

RESET = """() => { const s = window.ccLive.stats;
  Object.assign(s, {messages: 0, frames: 0, applyMs: 0, renderMs: 0, maxFrameMs: 0, ticks: 0, tickMs: 0});
  s.latencies = []; window.__longTasks = []; }"""

READ = """() => { const s = window.ccLive.stats;
  return {messages: s.messages, frames: s.frames, applyMs: s.applyMs, renderMs: s.renderMs,
          maxFrameMs: s.maxFrameMs, ticks: s.ticks, tickMs: s.tickMs, latencies: s.latencies.slice(),
          longTasks: window.__longTasks.slice()}; }"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def metrics(cdp: Any) -> dict[str, float]:
    got = await cdp.send("Performance.getMetrics")
    return {m["name"]: float(m["value"]) for m in got["metrics"]}


async def measure(args: argparse.Namespace) -> int:
    from playwright.async_api import async_playwright

    center = FakeCenter(args.agents, args.queues, args.calls, args.campaigns, seed=args.seed)
    runner, base = await serve(center, 0)
    print(f"cc_ari dashboard benchmark: Chromium (headless) via Playwright, {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs; synthetic state: {args.agents} agents, {args.queues} queues, "
          f"{args.calls} calls, {args.campaigns} campaigns, {len(center.intervals)} interval rows, "
          f"{len(center.ami)} AMI events")
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            context = await browser.new_context(viewport={"width": 1600, "height": 1000})
            await context.add_init_script(INIT % json.dumps(SUPERVISOR_TOKEN))
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            cdp = await context.new_cdp_session(page)
            await cdp.send("Performance.enable")

            loads: list[tuple[float, float, float]] = []
            for _ in range(args.loads):
                t0 = time.perf_counter()
                await page.goto(base + "/", wait_until="commit")
                await page.wait_for_function("() => performance.getEntriesByName('cc-synced-painted').length > 0",
                                             timeout=30000)
                wall = (time.perf_counter() - t0) * 1000
                marks = await page.evaluate("""() => [
                    performance.getEntriesByName('cc-synced-rendered')[0].startTime,
                    performance.getEntriesByName('cc-synced-painted')[0].startTime]""")
                loads.append((marks[0], marks[1], wall))
            rows = await page.evaluate("""() => ({
                agents: document.querySelectorAll('[data-testid^="agent-row-"]').length,
                queues: document.querySelectorAll('[data-testid^="queue-card-"]').length,
                calls: document.querySelectorAll('[data-testid^="call-row-"]').length,
                dom: document.getElementsByTagName('*').length})""")
            print(f"\nrows shown: {rows['agents']} agents, {rows['queues']} queues, {rows['calls']} calls "
                  f"({rows['dom']} DOM elements)")
            ok = rows["agents"] == args.agents and rows["queues"] == args.queues and rows["calls"] == args.calls
            print(f"initial render ({args.loads} loads; ms from navigation start, median [min-max]):")
            for label, i in (("all rows built", 0), ("painted", 1), ("wall, goto -> painted", 2)):
                vals = [x[i] for x in loads]
                print(f"  {label:<24} {statistics.median(vals):7.1f}  [{min(vals):.1f}-{max(vals):.1f}]")
            await page.screenshot(path=str(args.screenshot), full_page=False)

            print(f"\nupdates ({args.seconds:g} s per rate; at most one render per 100 ms, in an animation frame):")
            print(f"  {'rate/s':>7} {'msgs':>6} {'frames':>6} {'JS ms/frame':>11} {'max':>6} {'JS µs/msg':>9} "
                  f"{'main thread':>11} {'lat p50':>7} {'p95':>6} {'max':>6} {'long tasks':>10}")
            for rate in args.rates:
                await page.evaluate(RESET)
                m0 = await metrics(cdp)
                sent = await center.feed(rate, args.seconds)
                await asyncio.sleep(0.3)
                m1 = await metrics(cdp)
                s = await page.evaluate(READ)
                frames = max(s["frames"], 1)
                js = s["applyMs"] + s["renderMs"]
                busy = (m1["TaskDuration"] - m0["TaskDuration"]) / (args.seconds + 0.3)
                if args.verbose:
                    print("   ", {k: round(m1[k] - m0[k], 3) for k in (
                        "TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration",
                        "TaskOtherDuration", "LayoutCount", "RecalcStyleCount") if k in m1})
                lat = s["latencies"]
                print(f"  {rate:>7g} {sent:>6} {s['frames']:>6} {js / frames:>11.2f} {s['maxFrameMs']:>6.1f} "
                      f"{1000 * js / max(s['messages'], 1):>9.1f} {100 * busy:>10.1f}% {pct(lat, 0.5):>6.1f}  "
                      f"{pct(lat, 0.95):>5.1f} {max(lat, default=float('nan')):>6.1f} {len(s['longTasks']):>10}")
            tick = await page.evaluate("() => [window.ccLive.stats.ticks, window.ccLive.stats.tickMs]")
            if tick[0]:
                print(f"\n1-s timer tick (time in state, wait, talk cells): {tick[1] / tick[0]:.2f} ms per tick")
            print("  main thread = Chrome's TaskDuration (script + style + layout + paint) / wall time; "
                  "latency = server send -> DOM updated (ms)")
            if errors:
                print(f"\nconsole errors: {errors[:5]}")
            await browser.close()
            return 0 if ok and not errors else 1
    finally:
        await runner.cleanup()


async def serve_forever(args: argparse.Namespace) -> None:
    center = FakeCenter(args.agents, args.queues, args.calls, args.campaigns, seed=args.seed)
    runner, base = await serve(center, args.serve)
    print(f"fake cc_ari at {base}/ (token {SUPERVISOR_TOKEN}) and {base}/agent (token bench-agent-agent1); "
          f"{args.rate:g} updates/s", flush=True)
    try:
        while True:
            if args.rate > 0:
                await center.feed(args.rate, 5)
            else:
                await asyncio.sleep(5)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--campaigns", type=int, default=4)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")],
                        default=[0.0, 10.0, 50.0, 200.0, 1000.0],
                        help="updates per second, comma-separated (default 0,10,50,200,1000; 0: idle, the 1-s timers)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per rate (default 5)")
    parser.add_argument("--loads", type=int, default=5, help="page loads for the initial render (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print Chrome's time by kind per rate")
    parser.add_argument("--screenshot", type=Path, default=Path(".lab") / "bench-dashboard.png")
    parser.add_argument("--serve", type=int, metavar="PORT", help="only run the fake server on PORT")
    parser.add_argument("--rate", type=float, default=2.0, help="with --serve: updates per second (default 2)")
    args = parser.parse_args(argv)
    if args.serve is not None:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_forever(args))
        return 0
    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(measure(args))


if __name__ == "__main__":
    sys.exit(main())
