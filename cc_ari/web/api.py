"""HTTP API: agent control and live state, bearer-token auth with roles, JSON errors.

Bad input gets a 4xx with a JSON body saying what is wrong; nothing is half-applied because
requests are fully validated before the (synchronous) change is made.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from cc_ari.agents.errors import InvalidTransition, UnknownAgent, UnknownQueue
from cc_ari.agents.models import Agent
from cc_ari.agents.reachability import Reachability
from cc_ari.agents.service import AgentService
from cc_ari.ari.client import AriEvents
from cc_ari.calls.models import Phase, waiting_by_queue
from cc_ari.calls.service import CallService
from cc_ari.db.store import is_outage

log = structlog.get_logger("cc_ari.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024
REASON_MAX = 64
CONTROL_ROLES = frozenset({"admin", "supervisor"})


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token is: its role, and for a token bound to one agent (`token:agent:agent7`) that agent."""

    role: str
    agent: str | None = None

    @property
    def controls_all(self) -> bool:
        return self.role in CONTROL_ROLES


class Tokens:
    """The API tokens (token -> role, "agent:<name>" for a bound token), compared in constant time."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        # Compared as bytes; surrogateescape so a token with any (non-ASCII) character compares
        # unequal instead of raising.
        self._items = [(known.encode("utf-8", "surrogateescape"), _principal(role)) for known, role in tokens.items()]

    def principal(self, token: str) -> Principal | None:
        raw = token.strip().encode("utf-8", "surrogateescape")
        found = None
        for known, who in self._items:  # no early exit: the time does not tell which token matched
            if hmac.compare_digest(known, raw) and found is None:
                found = who
        return found if raw else None


def _principal(role: str) -> Principal:
    kind, _, agent = role.partition(":")
    return Principal(kind, agent or None)


def make_auth(tokens: Tokens, *, open_paths: frozenset[str] = frozenset({"/api/live"})) -> Middleware:
    """Bearer-token auth for /api/; `open_paths` authenticate themselves (the WebSocket takes its
    token in the URL or its first message)."""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or request.path in open_paths:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        who = tokens.principal(token) if scheme.lower() == "bearer" and token else None
        if who is None:
            return error(401, "missing or invalid bearer token",
                         hint="send Authorization: Bearer <token>")
        request["role"] = who.role
        request["principal"] = who
        return await handler(request)

    return auth


def may_control(request: web.Request, agent: str) -> None:
    """403 unless the token may act on `agent`: supervisors and admins on anyone, a token bound to
    an agent on that agent only."""
    who: Principal = request["principal"]
    if who.controls_all or (who.agent is not None and who.agent == agent):
        return
    if who.agent is not None:
        raise ApiError(403, f"this token controls {who.agent} only")
    raise ApiError(403, "this token's role may not control agents")


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error(exc.status, str(exc))
    except UnknownAgent as exc:
        return error(404, str(exc))
    except UnknownQueue as exc:
        return error(422, str(exc))
    except InvalidTransition as exc:
        return error(409, str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error(exc.status, exc.reason or "error")
        raise
    except Exception as exc:
        if is_outage(exc):  # nothing was changed: the request can be sent again
            log.warning("api_database_unavailable", path=request.path, error=type(exc).__name__)
            return error(503, "the database is unavailable; nothing was changed, try again")
        log.exception("api_error", path=request.path)
        return error(500, "internal error")


async def json_body(request: web.Request, *, required: bool) -> dict[str, Any]:
    """The request's JSON object body ({} when absent and not required). Every way a body can be
    wrong is a 4xx ApiError, never an exception that would become a 500."""
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError(413, "body too large")
    raw = await request.read()  # a chunked body past MAX_BODY: aiohttp's 413, made JSON by errors_as_json
    if not raw.strip():
        if required:
            raise ApiError(400, "a JSON object body is required")
        return {}
    try:
        data = json.loads(raw)
    except RecursionError:  # e.g. 32 KB of nested "[": valid size, absurd depth
        raise ApiError(400, "body is nested too deeply") from None
    except MemoryError:
        raise ApiError(400, "body is too complex to parse") from None
    except ValueError:  # invalid JSON, bad UTF-8 (UnicodeDecodeError), integers of absurd length
        raise ApiError(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    return data


def agent_json(a: Agent, online: bool, now: float) -> dict[str, Any]:
    return {
        "agent": a.name,
        "state": str(a.state),
        "queues": sorted(a.queues),
        "campaigns": sorted(a.campaigns),
        "skills": dict(a.skills),
        "pause_reason": a.pause_reason,
        "call_id": a.call_id,
        "state_seconds": round(max(0.0, now - a.since), 1) if a.since else None,
        "registered": online,
        "pending": a.pending,
    }


class Routes(Protocol):
    def routes(self, app: web.Application) -> None: ...


class Api:
    def __init__(self, agents: AgentService, calls: CallService, reach: Reachability, *,
                 health: Callable[[], dict[str, Any]],
                 ami_events: Callable[[int | None], list[dict[str, Any]]] = lambda _n: [],
                 faults: AriEvents | None = None, more: Sequence[Routes] = (),
                 unknown_campaigns: Callable[[list[str]], Awaitable[list[str]]] | None = None,
                 agent_extra: Callable[[str], dict[str, Any]] = lambda _name: {}) -> None:
        self._agents = agents
        self._unknown_campaigns = unknown_campaigns
        self._agent_extra = agent_extra  # e.g. the session and the current call with its lead
        self._more = tuple(more)  # other route groups (campaigns)
        self._calls = calls
        self._reach = reach
        self._health = health
        self._ami_events = ami_events
        self._faults = faults

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/whoami", self.whoami)
        app.router.add_get("/api/agents", self.list_agents)
        app.router.add_get("/api/agents/{agent}", self.get_agent)
        app.router.add_post("/api/agents/{agent}/login", self.login)
        app.router.add_post("/api/agents/{agent}/pause", self.pause)
        app.router.add_post("/api/agents/{agent}/ready", self.ready)
        app.router.add_post("/api/agents/{agent}/logout", self.logout)
        app.router.add_get("/api/queues", self.list_queues)
        app.router.add_get("/api/calls", self.list_calls)
        app.router.add_get("/api/ami/events", self.ami_events)
        if self._faults is not None:
            app.router.add_post("/api/debug/faults", self.inject_fault)
        for group in self._more:
            group.routes(app)

    @staticmethod
    def _control(request: web.Request) -> None:
        may_control(request, request.match_info["agent"])

    def _one(self, name: str) -> dict[str, Any]:
        online = self._reach.states()
        return {**agent_json(self._agents.get(name), online.get(name, False), time.monotonic()),
                **self._agent_extra(name)}

    async def whoami(self, request: web.Request) -> web.Response:
        who: Principal = request["principal"]
        return web.json_response({"role": who.role, "agent": who.agent})

    async def healthz(self, request: web.Request) -> web.Response:
        h = self._health()
        return web.json_response(h, status=200 if h.get("ari") else 503)

    async def list_agents(self, request: web.Request) -> web.Response:
        online = self._reach.states()
        now = time.monotonic()
        return web.json_response({"agents": [agent_json(a, online.get(a.name, False), now)
                                             for a in sorted(self._agents.all(), key=_natural)]})

    async def get_agent(self, request: web.Request) -> web.Response:
        return web.json_response(self._one(request.match_info["agent"]))

    async def login(self, request: web.Request) -> web.Response:
        self._control(request)
        name = request.match_info["agent"]
        self._agents.get(name)  # 404 before looking at the body
        body = await json_body(request, required=True)
        unknown = set(body) - {"queues", "skills", "campaigns"}
        if unknown:
            raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
        campaigns = body.get("campaigns", [])
        if not isinstance(campaigns, list) or not all(isinstance(c, str) and c for c in campaigns):
            raise ApiError(422, "campaigns must be a list of campaign names")
        queues = body.get("queues", [] if campaigns else None)
        if not isinstance(queues, list) or not all(isinstance(q, str) and q for q in queues):
            raise ApiError(422, "queues must be a list of queue names")
        if not queues and not campaigns:
            raise ApiError(422, "log in to at least one queue or campaign (queues, campaigns)")
        if campaigns:
            if self._unknown_campaigns is None:
                raise ApiError(422, "this service has no campaigns")
            missing = await self._unknown_campaigns(list(dict.fromkeys(campaigns)))
            if missing:
                raise ApiError(422, f"unknown campaign(s): {', '.join(missing)}")
        skills = body.get("skills", {})
        if not isinstance(skills, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100
            for k, v in skills.items()
        ):
            raise ApiError(422, "skills must map skill names to integer levels 0..100")
        self._agents.login(name, list(dict.fromkeys(queues)), skills, list(dict.fromkeys(campaigns)))
        return web.json_response(self._one(name))

    async def pause(self, request: web.Request) -> web.Response:
        self._control(request)
        name = request.match_info["agent"]
        self._agents.get(name)
        body = await json_body(request, required=False)
        unknown = set(body) - {"reason"}
        if unknown:
            raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
        reason = body.get("reason", "paused")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX:
            raise ApiError(422, f"reason must be a non-empty string of at most {REASON_MAX} characters")
        self._agents.pause(name, reason.strip())
        return web.json_response(self._one(name))

    async def ready(self, request: web.Request) -> web.Response:
        self._control(request)
        name = request.match_info["agent"]
        self._agents.get(name)
        await json_body(request, required=False)
        self._agents.ready(name)
        return web.json_response(self._one(name))

    async def logout(self, request: web.Request) -> web.Response:
        self._control(request)
        name = request.match_info["agent"]
        self._agents.get(name)
        await json_body(request, required=False)
        self._agents.logout(name)
        return web.json_response(self._one(name))

    async def list_queues(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        calls = self._calls.calls()
        agents = self._agents.all()
        by_queue = waiting_by_queue(calls)
        out = []
        for q in sorted(self._agents.queue_names):
            waiting = by_queue.get(q, [])
            logged = [a for a in agents if q in a.queues]
            out.append({
                "queue": q,
                "waiting": len(waiting),
                "longest_wait_seconds": round(max((now - c.queued_mono for c in waiting), default=0.0), 1),
                "agents_logged_in": len(logged),
                "agents_ready": sum(1 for a in logged if a.available_for(q)),
                "agents_on_call": sum(1 for a in logged if a.state in ("on_call", "ringing")),
                "talking": sum(1 for c in calls if c.queue == q and c.phase is Phase.TALKING),
            })
        return web.json_response({"queues": out})

    async def ami_events(self, request: web.Request) -> web.Response:
        """Recent AMI events, for ops (supervisors and admins only)."""
        if request["role"] not in CONTROL_ROLES:
            raise ApiError(403, "the AMI event stream is for supervisors and admins")
        raw = request.query.get("limit", "100")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 500:
            raise ApiError(422, "limit must be 1..500")
        return web.json_response({"events": self._ami_events(int(raw))})

    async def inject_fault(self, request: web.Request) -> web.Response:
        """Tests only (CC_FAULT_INJECTION=1, admin token): lose ARI events, or the ARI socket."""
        if request["role"] != "admin":
            raise ApiError(403, "fault injection needs an admin token")
        body = await json_body(request, required=True)
        unknown = set(body) - {"drop_ari_events_seconds", "drop_ari_socket_seconds"}
        if unknown or not body:
            raise ApiError(422, "give drop_ari_events_seconds or drop_ari_socket_seconds")
        for key, value in body.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 60:
                raise ApiError(422, f"{key} must be a number of seconds in (0, 60]")
        assert self._faults is not None
        if "drop_ari_events_seconds" in body:
            self._faults.drop_events(float(body["drop_ari_events_seconds"]))
        if "drop_ari_socket_seconds" in body:
            await self._faults.disconnect(float(body["drop_ari_socket_seconds"]))
        return web.json_response({"ok": True})

    async def list_calls(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": [
            {"call_id": c.call_id, "phase": str(c.phase), "dnis": c.dnis, "queue": c.queue, "agent": c.agent,
             "started_at": c.started_at.isoformat()}
            for c in self._calls.calls()
        ]})


def _natural(a: Agent) -> tuple[str, int]:
    head = a.name.rstrip("0123456789")
    tail = a.name[len(head):]
    return head, int(tail) if tail else -1


def build_app(api: Api, tokens: Mapping[str, str] | Tokens) -> web.Application:
    known = tokens if isinstance(tokens, Tokens) else Tokens(tokens)
    app = web.Application(middlewares=[errors_as_json, make_auth(known)], client_max_size=MAX_BODY)
    api.routes(app)
    return app
