"""Google's Indexing API: ``URL_UPDATED`` / ``URL_DELETED`` for job pages.

Wire shapes (https://developers.google.com/search/apis/indexing-api/v3/using-api):

* ``POST https://indexing.googleapis.com/v3/urlNotifications:publish`` with
  ``Content-Type: application/json`` and ``{"url": ..., "type": "URL_UPDATED"|"URL_DELETED"}``;
  200 means Google may recrawl soon.
* Batches of up to 100 (same page, "Send batch indexing requests"): ``POST
  https://indexing.googleapis.com/batch``, ``multipart/mixed``; each part is
  ``Content-Type: application/http`` holding ``POST /v3/urlNotifications:publish`` with its JSON
  body; the answer is ``multipart/mixed`` with one HTTP response per part, matched by
  ``Content-ID: <response-item-N>``. Every URL in a batch counts against the quota.
* Auth: an OAuth 2.0 access token for a service account with the scope
  ``https://www.googleapis.com/auth/indexing`` (the JWT-bearer grant to the key file's
  ``token_uri``), made and refreshed by ``google-auth``
  (https://developers.google.com/search/apis/indexing-api/v3/prereqs,
  https://googleapis.dev/python/google-auth/latest/reference/google.oauth2.service_account.html).
* Quota (https://developers.google.com/search/apis/indexing-api/v3/quota-pricing): 200
  publish requests a day per project by default (``URL_UPDATED`` and ``URL_DELETED`` alike),
  reset at midnight Pacific time; 380 requests a minute for all endpoints.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from ats_gateway.services.indexing.model import (
    REJECTED,
    RETRY,
    SENT,
    Notification,
    Result,
    RetryLater,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/indexing"
MAX_BATCH = 100


def _outcome(status: int) -> str:
    if 200 <= status < 300:
        return SENT
    if status == 429 or status >= 500 or status in (401, 408):
        return RETRY
    return REJECTED  # 400 (bad URL), 403 (ownership not verified), 404: retrying won't help


class GoogleIndexing:
    name = "google"

    def __init__(
        self,
        key_file: str,
        *,
        token_uri: str = "",
        endpoint: str,
        batch_endpoint: str,
        batch_size: int = MAX_BATCH,
        timeout: tuple[float, float] = (5.0, 20.0),
    ) -> None:
        self.key_file = key_file
        self.token_uri = token_uri
        self.endpoint = endpoint
        self.batch_endpoint = batch_endpoint
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.timeout = timeout
        self._session = None

    def session(self):
        """One authorized session per process: google-auth keeps its token and refreshes it
        (a JWT-bearer grant signed with the key) before it expires or on a 401."""
        if self._session is None:
            from google.auth.transport.requests import AuthorizedSession
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_file(
                self.key_file, scopes=[SCOPE]
            )
            if self.token_uri:
                credentials = credentials.with_token_uri(self.token_uri)
            self._session = AuthorizedSession(credentials, refresh_timeout=sum(self.timeout))
        return self._session

    def send(self, notes: Sequence[Notification]) -> list[Result]:
        """Tell Google of ``notes`` (one request; a batch when more than one)."""
        import google.auth.exceptions
        import requests

        try:
            if len(notes) == 1:
                return [self._one(notes[0])]
            return self._batch(notes)
        except google.auth.exceptions.GoogleAuthError as exc:
            # The token endpoint refused or could not be reached: no secret in the message
            # (google-auth reports the error code and description only).
            raise RetryLater(f"token: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise RetryLater(f"transport: {type(exc).__name__}") from None

    def _one(self, note: Notification) -> Result:
        response = self.session().post(
            self.endpoint,
            json={"url": note.url, "type": note.type},
            timeout=self.timeout,
        )
        outcome = _outcome(response.status_code)
        if outcome == RETRY:
            raise RetryLater(
                f"HTTP {response.status_code}",
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        if outcome == REJECTED:
            log.warning("google indexing refused %s: HTTP %d", note.url, response.status_code)
        return Result(outcome, response.status_code)

    def _batch(self, notes: Sequence[Notification]) -> list[Result]:
        boundary = "batch_" + uuid.uuid4().hex
        path = urlsplit(self.endpoint).path or "/v3/urlNotifications:publish"
        parts = []
        for n, note in enumerate(notes):
            body = json.dumps({"url": note.url, "type": note.type})
            parts.append(
                f"--{boundary}\r\n"
                "Content-Type: application/http\r\n"
                "Content-Transfer-Encoding: binary\r\n"
                f"Content-ID: <item-{n}>\r\n\r\n"
                f"POST {path}\r\n"
                "Content-Type: application/json\r\n"
                "accept: application/json\r\n"
                f"content-length: {len(body.encode())}\r\n\r\n"
                f"{body}\r\n"
            )
        payload = "".join(parts) + f"--{boundary}--\r\n"
        response = self.session().post(
            self.batch_endpoint,
            data=payload.encode(),
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
            timeout=self.timeout,
        )
        if response.status_code != 200:
            if _outcome(response.status_code) == RETRY:
                raise RetryLater(
                    f"HTTP {response.status_code}",
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
            log.warning("google indexing refused a batch: HTTP %d", response.status_code)
            return [Result(REJECTED, response.status_code) for _ in notes]
        statuses = parse_batch(response.headers.get("Content-Type", ""), response.content)
        results = []
        for n, note in enumerate(notes):
            status = statuses.get(n, 0)
            outcome = _outcome(status) if status else RETRY  # no answer for it: ask again
            if outcome == REJECTED:
                log.warning("google indexing refused %s: HTTP %d", note.url, status)
            results.append(Result(outcome, status))
        return results


_STATUS = re.compile(rb"^HTTP/\d(?:\.\d)? (\d{3})", re.MULTILINE)
_CONTENT_ID = re.compile(rb"^Content-ID:\s*<response-item-(\d+)>", re.MULTILINE | re.IGNORECASE)


def parse_batch(content_type: str, body: bytes) -> dict[int, int]:
    """``{part number: HTTP status}`` of a ``multipart/mixed`` batch answer."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return {}
    found: dict[int, int] = {}
    for part in body.split(b"--" + match.group(1).encode()):
        ident, status = _CONTENT_ID.search(part), _STATUS.search(part)
        if ident and status:
            found[int(ident.group(1))] = int(status.group(1))
    return found
