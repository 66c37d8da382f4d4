"""Distribution: the public jobs as job boards and search engines read them.

    feeds = build_feeds(settings, jobs_service, redis_client)
    feeds.artifact("indeed.xml")     -> Artifact(body, etag, last_modified, media_type)
    feeds.artifact("linkedin.xml")   -> Artifact
    feeds.artifact("sitemap.xml")    -> Artifact (a sitemap index above `sitemap_max_urls`)
    feeds.artifact("sitemap-2.xml")  -> Artifact (a part of the index), or FeedNotFound
    feeds.jobposting("a0M...")       -> (JSON-LD dict, etag, snapshot_at); JobNotFound / JobGone
    feeds.gone_job("a0M...")         -> what we kept of a closed job, or None

Feeds and the sitemap are built from a *generation*: a copy of the catalogue's record list
(``JobsService.index().records()``, the records themselves are shared, never mutated) taken
at one version. A new generation is taken when the catalogue has changed **and** the current
one is ``rebuild_seconds`` old (``ATS_GATEWAY_FEEDS_REBUILD_SECONDS``, default 5 minutes),
in a background thread that also rebuilds the files the old generation had served; requests
keep getting the previous files meanwhile. So a change never rebuilds a 100 MB feed, and
nothing a listing does waits for a feed (it takes no lock of this module). With
``rebuild_seconds=0`` the first request after a change builds (tests). Serving a built file
costs one Redis GET (the catalogue pointer) and no org call. The job's own JSON-LD is read
from the live catalogue.

Closed jobs (410): :mod:`.gone` diffs the versions it sees. ``FeedsService.gone`` is the one
callable to re-point at issue [12]'s gone set when it lands in ``services/jobs``.
No Flask here.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ats_gateway.services.feeds import indeed_feed, linkedin_feed, sitemap
from ats_gateway.services.feeds.gone import GoneJobs
from ats_gateway.services.feeds.indeed_feed import IndeedApply
from ats_gateway.services.feeds.jobposting import (
    Organization,
    expired_jobposting,
    to_jobposting,
)
from ats_gateway.services.feeds.linkedin_feed import LinkedInAccount
from ats_gateway.services.jobs.errors import JobNotFound

__all__ = [
    "Artifact",
    "FeedNotFound",
    "FeedsService",
    "GoneJobs",
    "IndeedApply",
    "JobGone",
    "LinkedInAccount",
    "Organization",
    "build_feeds",
]

log = logging.getLogger(__name__)

XML = "application/xml"
FEEDS = ("indeed.xml", "linkedin.xml")


class FeedNotFound(Exception):
    """No such feed file (e.g. a sitemap part beyond the last one)."""


class JobGone(Exception):
    """The job was public and is closed now: answer 410 with :attr:`posting`."""

    def __init__(self, info: dict[str, Any], posting: dict[str, Any]) -> None:
        super().__init__(f"Job {info['id']} is closed.")
        self.info = info
        self.posting = posting


@dataclass(frozen=True)
class Artifact:
    body: bytes
    etag: str  # strong validator (quoted), the digest of the bytes
    last_modified: float  # the snapshot's time
    media_type: str = XML
    #: the same bytes gzip-compressed (once per version), for clients that accept gzip:
    #: a 10,000-job feed is tens of MB of XML, a few MB compressed
    gzipped: bytes = b""


def _artifact(body: bytes, snapshot_at: float, media_type: str = XML) -> Artifact:
    digest = hashlib.sha1(body, usedforsecurity=False).hexdigest()[:24]
    packed = gzip.compress(body, compresslevel=6, mtime=0)
    return Artifact(body, f'"{digest}"', snapshot_at, media_type, packed)


class _Version:
    """One generation: the catalogue's records at one version, and the files built from it."""

    def __init__(self, index: Any, taken_at: float) -> None:
        with index.lock:  # a consistent copy (records are replaced, never mutated)
            self.version = index.version
            self.snapshot_at = index.snapshot_at
            self.docs = list(index.docs)
        self.taken_at = taken_at
        self.files: dict[str, Artifact] = {}
        self.lock = threading.Lock()


class FeedsService:
    def __init__(
        self,
        jobs: Any,
        *,
        org: Organization,
        gone: GoneJobs,
        indeed_apply: IndeedApply | None = None,
        linkedin: LinkedInAccount | None = None,
        sitemap_part_url: str = "/sitemap-{n}.xml",
        sitemap_max_urls: int = sitemap.MAX_URLS,
        rebuild_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.org = org
        self.history = gone
        #: job id -> what we kept of it if it was public and is closed now, else None.
        #: Re-point at issue [12]'s gone set when it lands.
        self.gone: Callable[[str], dict[str, Any] | None] = gone.lookup
        self.indeed_apply = indeed_apply
        self.linkedin = linkedin or LinkedInAccount()
        self.sitemap_part_url = sitemap_part_url
        self.sitemap_max_urls = sitemap_max_urls
        self.rebuild_seconds = float(rebuild_seconds)
        self.clock = clock
        self._current: _Version | None = None
        self._lock = threading.Lock()
        self._background: threading.Thread | None = None
        self.builds = 0  # files built by this process (tests, bench)
        self.build_seconds: dict[str, float] = {}  # the last build's duration per file

    # -- per version -------------------------------------------------------------------

    def _version(self) -> _Version:
        index = self.jobs.index()  # SnapshotUnavailable -> 503 at the edge
        current = self._current
        if current is None or (current.version != index.version and self.rebuild_seconds <= 0):
            with self._lock:
                current = self._current
                if current is None or current.version != index.version:
                    current = self._take(index)
                    self._current = current
            return current
        if (
            current.version != index.version
            and self.clock() - current.taken_at >= self.rebuild_seconds
        ):
            self._rebuild_soon(current)
        return current

    def _take(self, index: Any) -> _Version:
        version = _Version(index, self.clock())
        self._observe(version)
        return version

    def _rebuild_soon(self, old: _Version) -> None:
        """A new generation in the background, with the files ``old`` had served built before
        it replaces ``old`` (a board's next fetch does not wait for a 100 MB build)."""
        with self._lock:
            running = self._background
            if (running is not None and running.is_alive()) or self._current is not old:
                return

            def run() -> None:
                try:
                    new = self._take(self.jobs.index())
                    for name in list(old.files):
                        if name in FEEDS or name == "sitemap.xml":
                            self._build(new, name)
                    self._current = new
                except Exception:  # the previous files keep being served; next request retries
                    log.exception("feeds rebuild failed")

            self._background = threading.Thread(target=run, name="feeds-rebuild", daemon=True)
            self._background.start()

    def wait_rebuilt(self, timeout: float = 60.0) -> None:
        """Wait for a background rebuild (tests, bench)."""
        running = self._background
        if running is not None:
            running.join(timeout)

    def _observe(self, version: _Version) -> None:
        """Diff this generation against the last one diffed (shared by every process, see
        :mod:`.gone`), so a job that left answers 410."""
        self.history.observe(version.version, version.docs)

    def _build(self, version: _Version, name: str) -> None:
        started = time.perf_counter()
        try:
            self._build_file(version, name)
        finally:
            self.build_seconds[name] = time.perf_counter() - started

    def _build_file(self, version: _Version, name: str) -> None:
        at = version.snapshot_at
        self.builds += 1
        if name == "indeed.xml":
            body = indeed_feed.build(version.docs, self.org, built_at=at, apply=self.indeed_apply)
            version.files[name] = _artifact(body, at)
        elif name == "linkedin.xml":
            body = linkedin_feed.build(version.docs, self.org, built_at=at, account=self.linkedin)
            version.files[name] = _artifact(body, at)
        else:
            changed = self.history.changed_at()
            fallback = sitemap.w3c_datetime(at)[:10]
            entries = []
            for doc in version.docs:
                when = changed.get(str(doc["id"])[:15])
                if when is not None:
                    lastmod = sitemap.w3c_datetime(when)
                else:
                    lastmod = str(doc.get("posted_at") or "")[:10] or fallback
                entries.append(sitemap.Entry(self.org.job_url(str(doc["id"])), lastmod))
            files = sitemap.build(
                entries,
                part_url=self.sitemap_part_url,
                lastmod=sitemap.w3c_datetime(at),
                max_urls=self.sitemap_max_urls,
            )
            for file_name, body in files.items():
                version.files[file_name] = _artifact(body, at)

    def artifact(self, name: str) -> Artifact:
        """A feed or sitemap file of the current generation (built on first use)."""
        version = self._version()
        found = version.files.get(name)
        if found is not None:
            return found
        is_sitemap = name == "sitemap.xml" or (
            name.startswith("sitemap-") and name.endswith(".xml")
        )
        if name not in FEEDS and not is_sitemap:
            raise FeedNotFound(name)
        with version.lock:
            if name not in version.files and (name in FEEDS or "sitemap.xml" not in version.files):
                self._build(version, name if name in FEEDS else "sitemap.xml")
        found = version.files.get(name)
        if found is None:
            raise FeedNotFound(name)
        return found

    # -- one job -----------------------------------------------------------------------

    def gone_job(self, job_id: str) -> dict[str, Any] | None:
        """What we kept of ``job_id`` if it was public and is closed now, else None."""
        self._version()  # the generation diffed (the first one: everything is live)
        index = self.jobs.index()
        if index.get(job_id) is not None:
            return None
        return self.gone(job_id)

    def jobposting(self, job_id: str) -> tuple[dict[str, Any], str, float]:
        """The job's JSON-LD (from the live catalogue), an ETag and the catalogue's time;
        JobGone or JobNotFound."""
        self._version()
        index = self.jobs.index()
        doc = index.get(job_id)
        if doc is None:
            info = self.gone(job_id)
            if info is not None:
                raise JobGone(info, expired_jobposting(info, self.org))
            raise JobNotFound(f"No open job with id {job_id!r}.")
        fallback = sitemap.w3c_datetime(index.snapshot_at)[:10]
        posting = to_jobposting(doc, self.org, posted_fallback=fallback)
        etag = f'W/"jp{index.version}-{doc["id"]!s}"'
        return posting, etag, index.snapshot_at


def build_feeds(settings: Any, jobs: Any, redis_client: Any) -> FeedsService:
    """The feeds service for these settings over the jobs service (one per process)."""
    public = settings.public_url.rstrip("/")
    if not settings.job_page_url_template and settings.env == "production":
        log.warning(
            "ATS_GATEWAY_JOB_PAGE_URL_TEMPLATE is not set: the sitemap and the job feeds "
            "point at the demo job pages (%s/demo/jobs/{id})",
            public,
        )
    org = Organization(
        name=settings.hiring_org_name,
        url=settings.hiring_org_url or public,
        logo=settings.hiring_org_logo,
        job_url_template=settings.job_page_url_template or public + "/demo/jobs/{id}",
    )
    apply = None
    if settings.indeed_apply_api_token and settings.indeed_apply_secret:
        post_url = public + "/v1/boards/indeed/applications"
        apply = IndeedApply(settings.indeed_apply_api_token, post_url)
    return FeedsService(
        jobs,
        org=org,
        gone=GoneJobs(redis_client),
        indeed_apply=apply,
        linkedin=LinkedInAccount(settings.linkedin_company_id, settings.linkedin_poster_email),
        sitemap_part_url=public + "/sitemap-{n}.xml",  # at the root: see api/feeds.py
        sitemap_max_urls=settings.sitemap_max_urls,
        rebuild_seconds=settings.feeds_rebuild_seconds,
    )
