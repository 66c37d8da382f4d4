"""The demo career site at `/demo`: plain HTML, CSS and JavaScript that use the public API
exactly as a customer's career site would (a publishable key, cross-origin requests, the
published JSON Schema for the form). Served only when `Settings.env == "dev"` (what
`ats-gateway dev` runs) or `Settings.demo_enabled` is set; otherwise `/demo` does not exist.

What the gateway adds for the page, and nothing more:

* `GET /demo/` and the static files under `ats_gateway/static/demo/` (no build step, nothing
  loaded from a CDN);
* `GET /demo/config.json`: `{api_base, publishable_key, docs_url}`, the two values a customer
  would paste into their own site's configuration. The key is `Settings.demo_publishable_key`
  or, when that is empty, the demo key derived from the signing secret
  (`ats_gateway.security.ensure_demo_keys`), bound to the origins of `demo_origins()`;
* nothing for statuses: the page follows the `receipt_url` of the 202 (the candidate's own
  capability URL, `GET /v1/receipts/{token}`), so a career site needs no server-side relay.

For `ats-gateway dev`: `demo_feed_settings` turns the board feeds on (demo tokens derived from
the signing secret, a placeholder LinkedIn account); `announce_demo(settings, data_dir)`
creates the demo keys, writes `<data_dir>/demo.env` (ATS_URL, ATS_PK, ATS_SK,
ATS_FEEDBACK_URL, ATS_SITEMAP_URL, ATS_INDEED_FEED_URL, ATS_LINKEDIN_FEED_URL, for the
README's tour) and returns the lines to print, the feed URLs next to the keys.
"""

from __future__ import annotations

import hmac
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, redirect, send_from_directory

from ats_gateway.errors import NotFound
from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "demo"

#: The demo keys of each app's key store, created once (they are derived, so never stale).
_DEMO_KEYS: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()

bp = Blueprint("demo", __name__)


def enabled(settings: Any) -> bool:
    """Whether this gateway serves `/demo` (dev mode, or explicitly enabled)."""
    return settings.env == "dev" or bool(getattr(settings, "demo_enabled", False))


def demo_origins(public_url: str) -> list[str]:
    """The origins the demo publishable key is bound to: the gateway's public origin, plus its
    `localhost` / `127.0.0.1` twin, so the page works whichever of the two a browser opened."""
    parts = urlsplit(public_url)
    scheme, host, port = parts.scheme or "http", parts.hostname or "127.0.0.1", parts.port
    suffix = f":{port}" if port else ""
    origins = [f"{scheme}://{host}{suffix}"]
    twin = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(host)
    if twin:
        origins.append(f"{scheme}://{twin}{suffix}")
    return origins


def demo_keys(app: Flask) -> dict[str, str]:
    """The demo keys' plaintexts ({"publishable": ..., "secret": ...}), created if missing.

    Deterministic (derived from the signing secret), so every gateway process, the dev command
    and the tests agree on them without storing a plaintext anywhere.
    """
    from ats_gateway.security import ensure_demo_keys

    found = services(app)
    cached = _DEMO_KEYS.get(found.key_store)
    if cached is None:
        cached = ensure_demo_keys(
            found.key_store,
            signing_secret=found.settings.secret_key,
            origins=demo_origins(found.settings.public_url),
        )
        _DEMO_KEYS[found.key_store] = cached
    return cached


def ensure_dev_demo_keys(settings: Any) -> dict[str, str]:
    """`demo_keys` without an app, for `ats-gateway dev` (the parent process): the same keys,
    created in the Redis of `settings` and bound to `demo_origins(settings.public_url)`."""
    from ats_gateway.redis_clients import build_redis
    from ats_gateway.security import KeyStore, ensure_demo_keys

    client = build_redis(settings)
    try:
        return ensure_demo_keys(
            KeyStore(client),
            signing_secret=settings.secret_key,
            origins=demo_origins(settings.public_url),
        )
    finally:
        client.close()


#: The LinkedIn account the dev stack's feed names when none is configured: LinkedIn requires
#: both on every job (its feed answers 503 without them), and the dev feed is never sent to
#: LinkedIn. The values are clearly not real ones.
DEMO_LINKEDIN = {"linkedin_company_id": "1000001", "linkedin_poster_email": "jobs@example.com"}


def demo_feed_settings(settings: Any, environ: Any) -> dict[str, str]:
    """The settings `ats-gateway dev` adds so the board feeds are on: each board's feed key
    derived from the signing secret (stable across restarts, like the demo API keys) and the
    demo LinkedIn account; a variable set in the environment (`ATS_GATEWAY_*`) wins, even
    empty (an empty feed key turns that feed off)."""
    out: dict[str, str] = {}
    for board in ("indeed", "linkedin"):
        name = f"feed_key_{board}"
        if not getattr(settings, name) and f"ATS_GATEWAY_{name.upper()}" not in environ:
            digest = hmac.new(settings.secret_key.encode(), f"feed:{board}".encode(), "sha256")
            out[name] = f"feed_{board}_" + digest.hexdigest()[:32]
    for name, value in DEMO_LINKEDIN.items():
        if not getattr(settings, name) and f"ATS_GATEWAY_{name.upper()}" not in environ:
            out[name] = value
    return out


def feed_urls(settings: Any) -> dict[str, str]:
    """The working URLs of the sitemap and of each board feed that is on."""
    url = settings.public_url.rstrip("/")
    urls = {"sitemap": f"{url}/sitemap.xml"}
    for board in ("indeed", "linkedin"):
        key = getattr(settings, f"feed_key_{board}")
        if key:
            urls[board] = f"{url}/feeds/{board}.xml?token={key}"
    return urls


def write_demo_env(
    path: Path,
    *,
    url: str,
    keys: dict[str, str],
    feedback_url: str | None = None,
    feeds: dict[str, str] | None = None,
) -> Path:
    """Write the shell file the README's tour sources (`source .ats-gateway/demo.env`):
    ATS_URL, ATS_PK, ATS_SK and, when given, ATS_FEEDBACK_URL, ATS_SITEMAP_URL and
    ATS_<BOARD>_FEED_URL (`feeds`, from `feed_urls`). Readable by its owner only."""
    lines = [
        "# written by `ats-gateway dev`; `source` it to follow the README's tour",
        f"export ATS_URL={url.rstrip('/')}",
        f"export ATS_PK={keys['publishable']}",
        f"export ATS_SK={keys['secret']}",
    ]
    if feedback_url:
        lines.append(f"export ATS_FEEDBACK_URL='{feedback_url}'")
    for name, feed_url in (feeds or {}).items():
        variable = "ATS_SITEMAP_URL" if name == "sitemap" else f"ATS_{name.upper()}_FEED_URL"
        lines.append(f"export {variable}='{feed_url}'")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def announce_demo(settings: Any, data_dir: Path, *, feedback_url: str | None = None) -> list[str]:
    """For `ats-gateway dev`, once the gateway answers: create the demo keys, write
    `<data_dir>/demo.env` (see `write_demo_env`) and return the lines to print."""
    url = settings.public_url.rstrip("/")
    keys = ensure_dev_demo_keys(settings)
    feeds = feed_urls(settings)
    env_path = write_demo_env(
        Path(data_dir) / "demo.env", url=url, keys=keys, feedback_url=feedback_url, feeds=feeds
    )
    lines = [
        f"  docs       {url}/docs",
        f"  demo site  {url}/demo/",
        f"  keys       publishable {keys['publishable']}",
        f"             secret      {keys['secret']}",
        f"  feeds      sitemap  {feeds['sitemap']}",
    ]
    boards = [board for board in ("indeed", "linkedin") if board in feeds]
    lines += [f"             {board:<8} {feeds[board]}" for board in boards]
    if feedback_url:
        lines.append(f"  interviewer link  {feedback_url}")
    lines.append(f"  tour       source {env_path}   (then the README's curl tour)")
    return lines


def _publishable_key(app: Flask) -> str:
    settings = app.config["SETTINGS"]
    return settings.demo_publishable_key or demo_keys(app)["publishable"]


def _page_headers(response: Response) -> Response:
    """A strict policy: the page runs only its own script and talks only to the gateway."""
    api = _api_base()
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {api}; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _api_base() -> str:
    return current_app.config["SETTINGS"].public_url.rstrip("/")


@bp.get("/demo")
def root():
    return redirect("/demo/", code=302)


@bp.get("/demo/")
def index():
    response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
    return _page_headers(response)


@bp.get("/demo/config.json")
def config():
    """What a customer would configure in their own site: the gateway URL and their key."""
    body = {
        "api_base": _api_base(),
        "publishable_key": _publishable_key(current_app),
        "docs_url": _api_base() + "/docs",
    }
    return body, 200, {"Cache-Control": "no-store"}


@bp.get("/demo/jobs/<job_id>")
def job_page(job_id: str):
    """The crawlable page of one job (what the sitemap lists by default): the demo page with
    the job's schema.org JobPosting JSON-LD in `<head>`, rendered here so a crawler sees it
    without running the script. A closed job is 410 with its expired posting (validThrough in
    the past); an unknown one 404."""
    from ats_gateway.api.feeds import feeds
    from ats_gateway.services.feeds import JobGone
    from ats_gateway.services.jobs import JobNotFound, SnapshotUnavailable

    status, posting = 200, None
    try:
        posting = feeds().jobposting(job_id)[0]
    except JobGone as exc:
        status, posting = 410, exc.posting
    except JobNotFound:
        status = 404
    except SnapshotUnavailable:
        status = 503
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    html = html.replace('href="style.css"', 'href="/demo/style.css"')
    html = html.replace('src="app.js"', 'src="/demo/app.js"')
    if posting is not None:
        data = current_app.json.dumps(posting).replace("<", "\\u003c")
        html = html.replace(
            "</head>", f'  <script type="application/ld+json">{data}</script>\n</head>', 1
        )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return _page_headers(response)


@bp.get("/demo/<path:filename>")
def asset(filename: str):
    if filename.endswith(".html"):
        raise NotFound("No such page; the demo is one page at /demo/.")
    response = send_from_directory(STATIC_DIR, filename, max_age=0)
    return _page_headers(response)


_HTML = "text/html"
#: Documented here because `/demo` and `/demo/` would otherwise get the same generated
#: operationId (`get_demo`), which OpenAPI forbids (operationIds are unique in a document).
OPERATIONS = [
    Operation(
        "GET",
        "/demo",
        "The demo career site (redirect)",
        tag="demo",
        description="302 to `/demo/`.",
        responses={302: Documented("To /demo/")},
        extra={"operationId": "get_demo_redirect"},
    ),
    Operation(
        "GET",
        "/demo/",
        "The demo career site",
        tag="demo",
        description="Dev mode or `ATS_GATEWAY_DEMO_ENABLED` only.",
        responses={200: Documented("The page", schema={"type": "string"}, media_type=_HTML)},
    ),
    Operation(
        "GET",
        "/demo/jobs/{job_id}",
        "One job's crawlable page, with its JobPosting JSON-LD",
        tag="demo",
        description="What the sitemap lists by default; 410 for a closed job, 404 unknown.",
        path_params={"job_id": "The job's Salesforce id."},
        responses={200: Documented("The page", schema={"type": "string"}, media_type=_HTML)},
    ),
]


def init_app(app: Flask) -> None:
    """Register `/demo` when the settings allow it (dev mode or `demo_enabled`)."""
    if enabled(app.config["SETTINGS"]):
        app.register_blueprint(bp)
        services(app).metadata.add_operations(OPERATIONS)
