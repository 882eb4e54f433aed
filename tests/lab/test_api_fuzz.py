"""The HTTP API under generated malformed requests (Hypothesis), against the running service.

Whatever comes in (bad or missing tokens, traversal and unicode in path segments, wrong JSON
types, deep nesting, bodies up to a few MB, wrong methods): never a 5xx, a JSON body with an
"error" string for every 4xx, an answer within 2 s. Derandomized, so a run is reproducible.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.lab

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])
ANSWER_WITHIN = 2.0

# Every route of cc_ari/web/api.py (kept by hand: a new route belongs here too).
READ_ROUTES = ["/healthz", "/api/agents", "/api/agents/{agent}", "/api/queues", "/api/calls", "/api/ami/events"]
CONTROL_ROUTES = [f"/api/agents/{{agent}}/{action}" for action in ("login", "pause", "ready", "logout")]
FAULTS_ROUTE = "/api/debug/faults"  # only with CC_FAULT_INJECTION=1; never sent a body it would accept
ALL_ROUTES = [*READ_ROUTES, *CONTROL_ROUTES, FAULTS_ROUTE]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
REAL_AGENTS = ["agent19", "agent20"]  # real names reach body validation; the autouse fixture logs them out

# --- strategies ---------------------------------------------------------------------------------
def weighted(share: float, first: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`first` about `share` of the time, else `other` (st.one_of picks its branches evenly)."""
    return st.integers(0, 999).flatmap(lambda n: first if n < share * 1000 else other)


PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
TRAVERSAL = ["..", "../..", "../../etc/passwd", "%2e%2e", "%2e%2e%2f%2e%2e", "..%2f..%2fhealthz", "%2F", "%00",
             "agent1%00", ".", "", "%", "%zz", "agent1/../agent2", "%C0%AE%C0%AE", "%FF%FE", "~root", "*"]


@st.composite
def agent_segment(draw: st.DrawFn) -> str:
    """A path segment as sent on the wire (already percent-encoded where needed)."""
    return draw(st.one_of(
        st.sampled_from(REAL_AGENTS),
        st.sampled_from(TRAVERSAL),
        st.text(max_size=40).map(lambda s: quote(s, safe="")),  # any unicode, percent-encoded UTF-8
        st.text(PRINTABLE, max_size=30).map(lambda s: s.replace("?", "").replace("#", "")),
        st.integers(1, 4000).map(lambda n: "a" * n),
        st.sampled_from(["agent0", "agent21", "AGENT1", "agent01", "%20agent1", "agent1%20"]),
    ))


def route_path(route: str, agent: str) -> str:
    return route.replace("{agent}", agent)


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=80))
ANY_JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=20)
# Right keys, wrong types or values (what a confused client sends).
FIELDS = st.fixed_dictionaries({}, optional={
    "queues": st.one_of(ANY_JSON, st.lists(st.one_of(st.text(max_size=20), ANY_JSON), max_size=4)),
    "skills": st.one_of(ANY_JSON, st.dictionaries(st.text(max_size=10), st.one_of(
        st.integers(-10**20, 10**20), st.floats(), st.booleans(), st.text(max_size=5)), max_size=4)),
    "reason": st.one_of(st.text(max_size=100), ANY_JSON),
    "drop_ari_events_seconds": ANY_JSON,
    "colour": ANY_JSON,
})


@st.composite
def body(draw: st.DrawFn) -> bytes | None:
    kind = draw(st.sampled_from(["none", "json", "fields", "deep", "garbage", "huge_number", "oversized",
                                 "bad_utf8", "empty"]))
    if kind == "none":
        return None
    if kind == "empty":
        return draw(st.sampled_from([b"", b"   ", b"\n"]))
    if kind == "json":
        return json.dumps(draw(ANY_JSON), allow_nan=True).encode()
    if kind == "fields":
        return json.dumps(draw(FIELDS)).encode()
    if kind == "deep":
        depth = draw(st.integers(1, 60_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"queues":[', b"]}")]))
        closed = draw(st.booleans())
        return opener * depth + ((b"1" + closer * depth) if closed else b"")
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=2000))
    if kind == "huge_number":
        return b'{"queues": ' + b"9" * draw(st.integers(4000, 60_000)) + b"}"
    if kind == "bad_utf8":
        return b'{"reason": "' + draw(st.binary(min_size=1, max_size=50)).replace(b'"', b"") + b'\xff\xfe"}'
    size = draw(st.sampled_from([64 * 1024 + 1, 200_000, 1 << 20, 3 << 20]))
    return draw(st.sampled_from([b" ", b"[", b"a"])) * size


class Tokens:
    def __init__(self, lab: dict[str, str]) -> None:
        self.admin = lab["CC_API_TOKEN"]
        self.supervisor = lab.get("CC_SUPERVISOR_TOKEN", self.admin)
        self.agent = lab.get("CC_AGENT_TOKEN", "")

    def strategy(self, *, valid_share: float = 0.1) -> st.SearchStrategy[str | None]:
        """Authorization headers: a valid one (any role) `valid_share` of the time, else a bad one."""
        good = [self.admin, self.supervisor, self.agent]
        valid = st.sampled_from(good).map(lambda t: f"Bearer {t}")
        return weighted(valid_share, valid, st.one_of(
            st.none(),
            st.sampled_from(good).map(lambda t: f"bearer   {t}  "),
            st.sampled_from(good),  # no scheme
            st.sampled_from(good).map(lambda t: f"Basic {t}"),
            st.sampled_from(good).map(lambda t: f"Bearer {t[:-1]}"),
            st.sampled_from(good).map(lambda t: f"Bearer {t}x"),
            st.sampled_from(["Bearer", "Bearer ", "", "Bearer \t", "Bearer " + "x" * 8000, "Bearer \x80",
                             "Bearer caf\xe9", "B\xe9arer x"]),
            st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                    max_size=200).map(lambda s: "Bearer " + s),
        ))


# --- the client ---------------------------------------------------------------------------------
class Answer:
    def __init__(self, status: int, content_type: str, payload: bytes, elapsed: float) -> None:
        self.status, self.content_type, self.payload, self.elapsed = status, content_type, payload, elapsed


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def send(base: str, method: str, path: str, *, authorization: str | None = None, data: bytes | None = None,
         content_type: str | None = "application/json", chunked: bool = False) -> Answer:
    if accepted_by_faults(data):  # whatever the path (traversal...), never make the lab lose ARI events
        data = b'{"drop_ari_events_seconds": "not a number"}'
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=10)
    headers = {"Connection": "close"}
    if authorization is not None:
        headers["Authorization"] = authorization
    if data is not None and content_type is not None:
        headers["Content-Type"] = content_type
    started = time.monotonic()
    try:
        if data is not None and chunked:
            conn.request(method, path, body=_chunks(data), headers=headers, encode_chunked=True)
        else:
            conn.request(method, path, body=data, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the service answered (413) and stopped reading: its answer is still there to read
    resp = conn.getresponse()
    payload = resp.read()
    elapsed = time.monotonic() - started
    conn.close()
    return Answer(resp.status, resp.getheader("Content-Type", ""), payload, elapsed)


def check(answer: Answer, method: str, *, say: Callable[[str], None] = note) -> None:
    say(f"→ {answer.status} {answer.content_type} {answer.payload[:300]!r} in {answer.elapsed:.3f}s")
    if say is note:
        event(f"status {answer.status}")  # --hypothesis-show-statistics: what the run reached
    assert answer.status < 500, "a malformed request must never be a server error"
    assert answer.elapsed < ANSWER_WITHIN
    if method == "HEAD":
        return  # no body by definition
    if 400 <= answer.status < 500:
        assert answer.content_type.startswith("application/json")
        err = json.loads(answer.payload)
        assert isinstance(err, dict) and isinstance(err.get("error"), str) and err["error"]
    elif answer.status < 300:
        json.loads(answer.payload)


def accepted_by_faults(data: bytes | None) -> bool:
    """Whether /api/debug/faults would act on this body (dropping ARI events: never sent)."""
    try:
        obj = json.loads(data or b"")
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and bool(obj) and set(obj) <= {"drop_ari_events_seconds",
                                                                "drop_ari_socket_seconds"}


@pytest.fixture(scope="module")
def tokens(lab: dict[str, str]) -> Tokens:
    return Tokens(lab)


# --- the properties -----------------------------------------------------------------------------
@SETTINGS
@given(route=st.sampled_from(READ_ROUTES), agent=agent_segment(),
       method=weighted(0.7, st.just("GET"), st.sampled_from(METHODS)),
       query=st.one_of(st.just(""), st.text(max_size=30).map(lambda s: "?limit=" + quote(s, safe="")),
                       st.sampled_from(["?limit=0", "?limit=501", "?limit=-1", "?limit=1e3", "?limit=%00",
                                        "?limit=" + "9" * 5000, "?limit=1&limit=2", "?%zz=1"])),
       auth=st.data())
def test_reads_answer_every_malformed_request_with_a_4xx_json_error(api: Any, tokens: Tokens, route: str,
                                                                      agent: str, method: str, query: str,
                                                                      auth: st.DataObject) -> None:
    authorization = auth.draw(tokens.strategy(valid_share=0.6))
    path = route_path(route, agent) + query
    note(f"{method} {path[:200]} auth={str(authorization)[:60]!r}")
    check(send(api.base, method, path, authorization=authorization), method)


@SETTINGS
@given(route=st.sampled_from(CONTROL_ROUTES), agent=agent_segment(), data=body(),
       method=weighted(0.8, st.just("POST"), st.sampled_from(METHODS)), chunked=st.booleans(),
       content_type=st.sampled_from(["application/json", None, "text/plain", "application/json; charset=latin-1",
                                     "multipart/form-data; boundary=x"]),
       auth=st.data())
def test_agent_control_answers_every_malformed_request_with_a_4xx_json_error(
        api: Any, tokens: Tokens, route: str, agent: str, data: bytes | None, method: str, chunked: bool,
        content_type: str | None, auth: st.DataObject) -> None:
    # Mostly an admin and a real agent: the body is validated only past auth and the agent's 404.
    authorization = auth.draw(weighted(0.8, st.just(f"Bearer {tokens.admin}"), tokens.strategy()))
    agent = auth.draw(weighted(0.75, st.sampled_from(REAL_AGENTS), st.just(agent)))
    path = route_path(route, agent)
    note(f"{method} {path[:200]} auth={str(authorization)[:60]!r} body={(data or b'')[:80]!r}"
         f"…({len(data or b'')} bytes) chunked={chunked}")
    check(send(api.base, method, path, authorization=authorization, data=data, content_type=content_type,
               chunked=chunked and data is not None), method)


@SETTINGS
@given(route=st.sampled_from(ALL_ROUTES), agent=agent_segment(), data=body(), method=st.sampled_from(METHODS),
       prefix=st.sampled_from(["", "", "/api", "//", "/api/../", "/%2e%2e/", "/API"]), auth=st.data())
def test_any_route_any_method_any_body_is_never_a_server_error(
        api: Any, tokens: Tokens, route: str, agent: str, data: bytes | None, method: str, prefix: str,
        auth: st.DataObject) -> None:
    authorization = auth.draw(tokens.strategy(valid_share=0.6))
    path = prefix.rstrip("/") + route_path(route, agent) if prefix else route_path(route, agent)
    note(f"{method} {path[:200]} auth={str(authorization)[:60]!r} body={(data or b'')[:80]!r}"
         f"…({len(data or b'')} bytes)")
    check(send(api.base, method, path, authorization=authorization, data=data), method)


def test_deep_nesting_on_every_control_route_is_a_400_naming_the_depth(api: Any) -> None:
    for route in CONTROL_ROUTES:
        for data in (b"[" * 32_000, b'{"a":' * 6_000 + b"1" + b"}" * 6_000):
            answer = send(api.base, "POST", route_path(route, "agent20"),
                          authorization=f"Bearer {api.token}", data=data)
            check(answer, "POST", say=print)
            assert answer.status == 400 and "nested too deeply" in json.loads(answer.payload)["error"]
    assert api.agent("agent20")["state"] == "logged_out"


@pytest.mark.parametrize("authorization", ["Bearer \x80", "Bearer caf\xe9", "Bearer \xff\xfe"])
def test_a_token_that_is_not_ascii_is_a_401_not_a_server_error(api: Any, authorization: str) -> None:
    # Found by the properties above: the token's bytes must be compared, whatever they are.
    for path in ("/api/agents", "/api/agents/agent20/login"):
        answer = send(api.base, "POST" if path.endswith("login") else "GET", path, authorization=authorization,
                      data=b'{"queues": ["support"]}' if path.endswith("login") else None)
        check(answer, "GET", say=print)
        assert answer.status == 401


def test_an_oversized_chunked_body_is_a_413_json_error(api: Any) -> None:
    answer = send(api.base, "POST", "/api/agents/agent20/login", authorization=f"Bearer {api.token}",
                  data=b'{"queues": ["support"], "x": "' + b"a" * (2 << 20) + b'"}', chunked=True)
    check(answer, "POST", say=print)
    assert answer.status == 413
    assert api.agent("agent20")["state"] == "logged_out"
