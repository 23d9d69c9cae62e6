"""GET /ui: the playground, a page where a person tries every served task in a browser.

Static files (service/ui/: index.html, app.js, style.css, hand-written, no framework and
no build step) served by the entry service itself. The page calls this server's own REST
API from the browser, with the API key it asks for when the server has keys, so it shows
exactly what a client gets, errors included. Static files rather than a Gradio app: the
three files weigh 65 KB (18 KB gzipped), where Gradio 6.31 is 76 MB unpacked before its
dependencies (pandas, FastAPI, ...; it would also move Pillow back from the 13.0 pinned
here) in every image; they need no second web framework in the entry process, and cannot
drift from the API because they only use it.

Nothing is fetched from elsewhere at run time: the page's Content-Security-Policy allows
this origin only (plus blob: URLs for the user's own images, videos and audio).

Caching: the page is revalidated on each visit (ETag, 304); it names its script and style
with a content hash (`ui/app.js?v=<hash>`), and those versioned URLs may be cached for a
year. A hash that does not match (an old page) is answered with the current file, not
cached. Each file is also kept gzip-compressed for clients that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers

log = logging.getLogger("pais.playground")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UI_DIR = Path(__file__).with_name("ui")
PAGE = "index.html"
# asset file -> media type; index.html names them as `ui/<file>` (relative to /ui)
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
PATH = "/ui"
# every path the playground answers: open without an API key (service/middleware.py)
PATHS = frozenset({PATH, PATH + "/", *(f"{PATH}/{name}" for name in ASSETS)})

# This origin only: the page's script, style, API calls and the user's own media (blob:).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' blob: data:; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_CACHE = b"no-cache"  # revalidate each visit: a new server version shows at once
VERSIONED_CACHE = b"public, max-age=31536000, immutable"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes
    media: str
    etag: bytes  # quoted, as sent

    @classmethod
    def of(cls, body: bytes, media: str) -> StaticFile:
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, 9, mtime=0), media, f'"{digest}"'.encode())

    @property
    def version(self) -> str:
        return self.etag.decode().strip('"')[:12]


class StaticRoute:
    """GET/HEAD of one file: ETag revalidation (304), gzip when accepted, cache headers.
    `version`: the query a versioned URL carries (`v=<hash>`); such a request may be cached
    for good, any other one is revalidated."""

    def __init__(self, file: StaticFile, version: str | None = None, extra: list[tuple[bytes, bytes]] = ()):
        self.file = file
        self.versioned_query = f"v={version}".encode() if version else None
        self.extra = list(extra)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        file = self.file
        versioned = self.versioned_query is not None and scope.get("query_string") == self.versioned_query
        common = [
            (b"etag", file.etag),
            (b"cache-control", VERSIONED_CACHE if versioned else PAGE_CACHE),
            (b"vary", b"accept-encoding"),
            *SECURITY_HEADERS,
            *self.extra,
        ]
        if file.etag in _etags(headers.get("if-none-match", "")):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        body, encoding = file.body, []
        if "gzip" in headers.get("accept-encoding", "") and len(file.gzipped) < len(body):
            body, encoding = file.gzipped, [(b"content-encoding", b"gzip")]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", file.media.encode()),
                    (b"content-length", str(len(body)).encode()),
                    *encoding,
                    *common,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


class Redirect:
    """/ui/ -> /ui (relative, so that it also holds behind a proxy's path prefix)."""

    def __init__(self, location: bytes):
        self.location = location

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [(b"location", self.location), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class Missing:
    """The playground's files are not in this build (a bento without service/ui/**)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from .errors import RequestError
        from .http_io import send_error

        await send_error(
            send,
            RequestError(404, "the playground is not part of this build: service/ui/ is missing"),
        )


def _etags(header: str) -> set[bytes]:
    return {tag.strip().removeprefix("W/").encode() for tag in header.split(",") if tag.strip()}


def load(directory: Path = UI_DIR) -> tuple[StaticFile, dict[str, StaticFile]]:
    """The page (with its assets' URLs versioned) and the assets."""
    assets = {name: StaticFile.of((directory / name).read_bytes(), media) for name, media in ASSETS.items()}
    html = (directory / PAGE).read_text(encoding="utf-8")
    for name, file in assets.items():
        reference = f'"ui/{name}"'
        if reference not in html:
            raise ValueError(f"{directory / PAGE} does not reference {reference}")
        html = html.replace(reference, f'"ui/{name}?v={file.version}"')
    return StaticFile.of(html.encode(), "text/html; charset=utf-8"), assets


def playground_routes(directory: Path = UI_DIR) -> dict[tuple[str, str], Any]:
    """GET /ui (the page), /ui/app.js, /ui/style.css; /ui/ redirects to /ui."""
    try:
        page, assets = load(directory)
    except FileNotFoundError as error:
        log.warning("GET /ui is off: %s", error)
        return {("GET", PATH): Missing()}
    csp = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()), (b"x-frame-options", b"DENY")]
    routes: dict[tuple[str, str], Any] = {
        ("GET", PATH): StaticRoute(page, extra=csp),
        ("GET", PATH + "/"): Redirect(b"../ui"),
    }
    for name, file in assets.items():
        routes[("GET", f"{PATH}/{name}")] = StaticRoute(file, file.version)
    assert {path for _, path in routes} == PATHS
    return routes
