"""IndexNow (Bing, Yandex, Seznam, Naver, ...): one POST tells every participating engine.

Wire shape (https://www.indexnow.org/documentation, "Submitting set of URLs"):
``POST https://api.indexnow.org/indexnow`` with ``Content-Type: application/json;
charset=utf-8`` and ``{"host", "key", "keyLocation"?, "urlList": [...]}``, up to 10,000 URLs a
post, all on ``host``. The engine checks ownership by fetching the key file,
``https://{host}/{key}.txt`` (or ``keyLocation``, on the same host), whose content is the key.
Answers: 200 (received), 202 (received, key not yet validated), 400 (bad request), 403 (key
not valid), 422 (URLs not on the host, or key not matching), 429 (too many requests).
IndexNow has one notion for added, updated and deleted URLs: the engine recrawls the page,
and a closed job's page answers 410.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import requests

from ats_gateway.services.indexing.model import (
    REJECTED,
    SENT,
    Notification,
    Result,
    RetryLater,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

MAX_URLS = 10_000


class IndexNow:
    name = "indexnow"

    def __init__(
        self,
        key: str,
        host: str,
        *,
        endpoint: str,
        key_location: str = "",
        batch_size: int = MAX_URLS,
        timeout: tuple[float, float] = (5.0, 20.0),
    ) -> None:
        self.key = key
        self.host = host
        self.endpoint = endpoint
        self.key_location = key_location
        self.batch_size = max(1, min(batch_size, MAX_URLS))
        self.timeout = timeout
        self.http = requests.Session()

    def send(self, notes: Sequence[Notification]) -> list[Result]:
        body: dict = {"host": self.host, "key": self.key}
        if self.key_location:
            body["keyLocation"] = self.key_location
        body["urlList"] = list(dict.fromkeys(n.url for n in notes))
        try:
            response = self.http.post(
                self.endpoint,
                json=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise RetryLater(f"transport: {type(exc).__name__}") from None
        status = response.status_code
        if status in (200, 202):
            return [Result(SENT, status) for _ in notes]
        if status == 429 or status >= 500:
            raise RetryLater(
                f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After"))
            )
        # 400/403/422: the key, its file or the host is wrong: no retry fixes that.
        log.warning("indexnow refused %d urls: HTTP %d", len(notes), status)
        return [Result(REJECTED, status) for _ in notes]
