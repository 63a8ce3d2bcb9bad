"""GET / — the web console: one page and its static files, shipped inside the package.

No CDN and no build step: ``a2a_server/static`` holds the page, its script and its stylesheet as they
are served (ES modules: ``console.js`` imports its siblings). The page talks only to this server's own
endpoints (the agent card, ``/v1/models`` when a skill serves models, ``POST /a2a`` in the 1.0 dialect and
the ``GET /a2a/events`` firehose when the server has one), and the Content-Security-Policy below keeps it
that way: a change that pulls a script or a style from elsewhere fails in the browser, loudly.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # the page is tiny; revalidating it keeps a browser from pairing an old page with a new script
    "Cache-Control": "no-cache",
}


async def console_page(request: Request) -> Response:
    return FileResponse(STATIC / "console.html", headers=_PAGE_HEADERS)


async def favicon(request: Request) -> Response:
    # browsers ask for /favicon.ico whatever the page links; a 404 here is noise in every access log
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


ROUTES: list[BaseRoute] = [
    Route("/", console_page, methods=["GET", "HEAD"]),
    Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
]

__all__ = ["ROUTES", "STATIC"]
