"""The operations pages (docs/operations.md): the dashboard at `/`, the agent desktop at `/agent`,
and their static files under `/static/`.

The HTML holds no data, so it needs no token: the page asks for one, keeps it in sessionStorage,
learns its role from `GET /api/whoami` and gets everything else over the `/api/live` WebSocket.
All JavaScript is in static files, so the Content-Security-Policy allows no inline script.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from aiohttp import web

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def content_security_policy(host: str | None) -> str:
    """Scripts, styles, images and fetches from this origin only; the WebSocket to this host
    (CSP3 lets 'self' match ws:, but it is named explicitly for older engines)."""
    connect = "'self'"
    if host and _HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Pages:
    """Route group: `Pages().routes(app)` adds `GET /`, `GET /agent` and `/static/`."""

    def __init__(self, *, title: str = "cc_ari", templates_dir: Path = TEMPLATES_DIR,
                 static_dir: Path = STATIC_DIR) -> None:
        self._title = title
        self._static_dir = static_dir
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        # Rendered once: the pages are the same for everyone (no data, no token in them).
        self._html = {name: self._env.get_template(name).render(title=title)
                      for name in ("dashboard.html", "agent.html")}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.dashboard)
        app.router.add_get("/agent", self.agent)
        app.router.add_static("/static/", self._static_dir, name="static")
        app.on_response_prepare.append(self._static_headers)

    async def dashboard(self, request: web.Request) -> web.Response:
        return self._page(request, "dashboard.html")

    async def agent(self, request: web.Request) -> web.Response:
        return self._page(request, "agent.html")

    def _page(self, request: web.Request, name: str) -> web.Response:
        resp = web.Response(text=self._html[name], content_type="text/html", charset="utf-8")
        resp.headers.update(COMMON_HEADERS)
        resp.headers["Content-Security-Policy"] = content_security_policy(request.host)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @staticmethod
    async def _static_headers(request: web.Request, response: web.StreamResponse) -> None:
        """Static files: the same nosniff/referrer/frame headers, revalidated on each load (ETag /
        Last-Modified), so an upgraded service never runs a page against stale scripts."""
        if request.path.startswith("/static/"):
            for key, value in COMMON_HEADERS.items():
                response.headers.setdefault(key, value)
            response.headers.setdefault("Cache-Control", "no-cache")
