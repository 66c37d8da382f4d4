"""Where job seekers are: JSON-LD for Google for Jobs, the sitemap, Indeed and LinkedIn feeds.

    GET /v1/jobs/{id}/jobposting   schema.org JobPosting (application/ld+json); key: jobs:read
    GET /sitemap.xml               public; a sitemap index above `sitemap_max_urls` URLs
    GET /sitemap-{n}.xml           public; the parts of the index
    GET /jobs/sitemap.xml          301 to /sitemap.xml (its first address; see below)
    GET /feeds/indeed.xml?token=K  Indeed XML feed; K = Settings.feed_key_indeed
    GET /feeds/linkedin.xml?token=K  LinkedIn XML feed; K = Settings.feed_key_linkedin

Feed access: job boards fetch a URL and cannot send an `Authorization` header, so each board
has its own secret key, given in the URL as `?token=` (a name the log redaction already
scrubs). An empty key turns the feed off (404); a wrong or missing token is 401. Rotate a key
by changing the setting and the URL registered with the board.

Everything is built by :class:`ats_gateway.services.feeds.FeedsService` at most every
`feeds_rebuild_seconds` per process (in the background; the previous build is served
meanwhile, so no request waits for a rebuild but the very first) and served with a strong
`ETag` (the digest of the bytes) and `Last-Modified` (the catalogue's time);
`If-None-Match` / `If-Modified-Since` get 304.
A closed job answers 410 here and on `GET /v1/jobs/{id}` (with `valid_through` in the past).

Sitemap scope (https://www.sitemaps.org/protocol.html#location): a sitemap may list only URLs
under its own directory on its own host, so it lives at the root, where the demo job pages
(`/demo/jobs/{id}`) are in scope; `/robots.txt` (api/meta.py) names it. Job pages on another
host (the career site) need that host's robots.txt to name this sitemap (cross-submission, see
the README).
"""

from __future__ import annotations

import datetime as dt
import hmac

from flask import Blueprint, Flask, Response, current_app, redirect, request

from ats_gateway.errors import Gone, NotFound, ServiceUnavailable, Unauthorized
from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import public, require_scope
from ats_gateway.services.feeds import (
    Artifact,
    FeedNotFound,
    FeedsService,
    JobGone,
)
from ats_gateway.services.feeds.jobposting import expired_jobposting
from ats_gateway.services.jobs import JobNotFound, SnapshotUnavailable

bp = Blueprint("feeds", __name__)

LD_JSON = "application/ld+json"
FEED_KEYS = {"indeed.xml": "feed_key_indeed", "linkedin.xml": "feed_key_linkedin"}
FEED_MAX_AGE = 300
SITEMAP_MAX_AGE = 3600


def feeds(app: Flask | None = None) -> FeedsService:
    """This process's feeds service (``Services.feeds``, built by the composition root)."""
    return services(app).feeds


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(str(exc), headers={"Retry-After": "5"})


def _send(artifact: Artifact, max_age: int, *, shared: bool = True) -> Response:
    """The file, gzip-compressed when the client accepts it (a separate strong ETag per
    encoding, RFC 9110 8.8.3), with ETag / Last-Modified / Cache-Control; 304 when fresh."""
    etag = artifact.etag.strip('"')
    if artifact.gzipped and request.accept_encodings["gzip"]:
        response = Response(artifact.gzipped, mimetype=artifact.media_type)
        response.headers["Content-Encoding"] = "gzip"
        etag += "-gz"
    else:
        response = Response(artifact.body, mimetype=artifact.media_type)
    response.vary.add("Accept-Encoding")
    response.set_etag(etag)
    response.last_modified = dt.datetime.fromtimestamp(artifact.last_modified, dt.UTC)
    # A token-protected feed is for the one board holding the token: no shared cache ([21]).
    if shared:
        response.cache_control.public = True
    else:
        response.cache_control.private = True
    response.cache_control.max_age = max_age
    return response.make_conditional(request)


def _artifact(name: str) -> Artifact:
    try:
        return feeds().artifact(name)
    except FeedNotFound:
        raise NotFound(f"No {name} (the sitemap has fewer parts).") from None
    except SnapshotUnavailable as exc:
        raise _unavailable(exc) from None


def raise_if_gone(job_id: str) -> None:
    """410 for a job that was public and is closed now (for `GET /v1/jobs/{id}` too)."""
    try:
        info = feeds().gone_job(job_id)
    except SnapshotUnavailable:
        return
    if info is not None:
        posting = expired_jobposting(info, feeds().org)
        raise Gone(f"Job {info['id']} is closed.", valid_through=posting["validThrough"])


def script_safe_json(text: str) -> str:
    """JSON that can be pasted into `<script type="application/ld+json">` as it is: an org
    title `</script><script>...` cannot close the element ([21]). `<`, `>` and `&` become
    `\\u003c`, `\\u003e`, `\\u0026` (the same JSON value)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@bp.get("/v1/jobs/<job_id>/jobposting")
@require_scope("jobs:read")
def jobposting(job_id: str):
    """The job as schema.org JobPosting JSON-LD; a closed job is 410 with the expired posting."""
    try:
        posting, etag, snapshot_at = feeds().jobposting(job_id)
    except JobGone as exc:
        raise Gone(
            str(exc),
            valid_through=exc.posting["validThrough"],
            jobposting=exc.posting,
        ) from None
    except JobNotFound as exc:
        raise NotFound(str(exc)) from None
    except SnapshotUnavailable as exc:
        raise _unavailable(exc) from None
    response = Response(script_safe_json(current_app.json.dumps(posting)), mimetype=LD_JSON)
    response.set_etag(etag.removeprefix("W/").strip('"'), weak=True)
    response.last_modified = dt.datetime.fromtimestamp(snapshot_at, dt.UTC)
    settings = current_app.config["SETTINGS"]
    response.cache_control.public = True
    response.cache_control.max_age = settings.jobs_cache_max_age
    response.vary.add("Authorization")
    response.vary.add("Origin")
    return response.make_conditional(request)


@bp.get("/sitemap.xml")
@public()
def sitemap_index():
    """Every public job's page URL with `lastmod` (or the index of the parts)."""
    return _send(_artifact("sitemap.xml"), SITEMAP_MAX_AGE)


@bp.get("/sitemap-<int:part>.xml")
@public()
def sitemap_part(part: int):
    return _send(_artifact(f"sitemap-{part}.xml"), SITEMAP_MAX_AGE)


@bp.get("/jobs/sitemap.xml")
@public()
def moved_sitemap():
    """The sitemap's first address, from where the job pages were out of its scope: moved."""
    return redirect("/sitemap.xml", code=301)


def _board_feed(name: str) -> Response:
    key = getattr(current_app.config["SETTINGS"], FEED_KEYS[name])
    if not key:
        raise NotFound(f"The {name} feed is not enabled on this gateway.")
    token = request.args.get("token", "")
    if not hmac.compare_digest(token.encode(), key.encode()):
        raise Unauthorized("Add ?token=<this board's feed key> to the feed URL.")
    if name == "linkedin.xml":
        missing = feeds().linkedin.missing()
        if missing:
            # Not a feed LinkedIn could use (it requires both on every job); a 503 keeps what
            # LinkedIn already has, where a 404 or an empty feed could expire every job.
            raise ServiceUnavailable(
                "The LinkedIn feed needs " + " and ".join(missing) + " (LinkedIn requires "
                "companyId, the numeric id of the company's LinkedIn Page, and posterEmail on "
                "every job); set them and restart the gateway.",
                missing_settings=missing,
                headers={"Retry-After": "3600"},
            )
    return _send(_artifact(name), FEED_MAX_AGE, shared=False)


@bp.get("/feeds/indeed.xml")
@public()
def indeed_xml():
    """Every public job in Indeed's XML feed format (with Indeed Apply data when set up)."""
    return _board_feed("indeed.xml")


@bp.get("/feeds/linkedin.xml")
@public()
def linkedin_xml():
    """Every public job in LinkedIn's XML feed format."""
    return _board_feed("linkedin.xml")


_XML = {"application/xml": {"schema": {"type": "string"}}}
_TOKEN = {
    "in": "query",
    "name": "token",
    "required": True,
    "description": "The board's feed key (Settings feed_key_indeed / feed_key_linkedin).",
    "schema": {"type": "string"},
}
OPERATIONS = [
    Operation(
        "GET",
        "/v1/jobs/{job_id}/jobposting",
        "One open job as schema.org JobPosting (JSON-LD)",
        tag="jobs",
        description="For the career site's job page: embed it in "
        '`<script type="application/ld+json">`. Google for Jobs\' required properties, and '
        "the recommended ones the org has. A closed job is 410 with `valid_through`.",
        path_params={"job_id": "The job's 15- or 18-character Salesforce id."},
        responses={200: Documented("The JobPosting", schema={"type": "object"})},
        errors=(401, 403, 404, 410, 429, 503),
        security=True,
    ),
    Operation(
        "GET",
        "/sitemap.xml",
        "Sitemap of the public job pages",
        tag="feeds",
        description="sitemaps.org 0.9; a sitemap index of `/sitemap-{n}.xml` above "
        "50,000 jobs. ETag / Last-Modified; 304. Named by `/robots.txt`.",
        responses={200: Documented("The sitemap")},
        errors=(429, 503),
    ),
    Operation(
        "GET",
        "/jobs/sitemap.xml",
        "The sitemap's former address",
        tag="feeds",
        description="301 to `/sitemap.xml` (a sitemap under `/jobs/` may not list the "
        "job pages under `/demo/jobs/`).",
        responses={301: Documented("Moved to /sitemap.xml")},
        errors=(429,),
    ),
    Operation(
        "GET",
        "/sitemap-{part}.xml",
        "One part of the sitemap index",
        tag="feeds",
        description="Listed by the index at `/sitemap.xml` when there are more than "
        "50,000 public jobs; 404 for a part the index does not list.",
        path_params={"part": "the part's number, from 1"},
        responses={200: Documented("The part")},
        errors=(404, 429, 503),
    ),
    Operation(
        "GET",
        "/feeds/indeed.xml",
        "Indeed XML job feed",
        tag="feeds",
        responses={200: Documented("The feed")},
        errors=(401, 404, 429, 503),
        extra={"parameters": [_TOKEN]},
    ),
    Operation(
        "GET",
        "/feeds/linkedin.xml",
        "LinkedIn XML job feed",
        tag="feeds",
        description="503 with `missing_settings` while ATS_GATEWAY_LINKEDIN_COMPANY_ID or "
        "ATS_GATEWAY_LINKEDIN_POSTER_EMAIL is unset (LinkedIn requires both on every job).",
        responses={200: Documented("The feed")},
        errors=(401, 404, 429, 503),
        extra={"parameters": [_TOKEN]},
    ),
]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    services(app).metadata.add_operations(OPERATIONS)
