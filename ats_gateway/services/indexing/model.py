"""What a search engine is told, and what it answered (shared by the engines' clients)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

URL_UPDATED = "URL_UPDATED"
URL_DELETED = "URL_DELETED"

SENT, REJECTED, RETRY = "sent", "rejected", "retry"


@dataclass(frozen=True)
class Notification:
    """One job page to announce: ``version`` is the digest of the job's public fields (or
    ``closed``), so one version of a job is announced once."""

    job_id: str
    url: str
    type: str  # URL_UPDATED | URL_DELETED
    version: str
    at: float  # when the change happened (epoch seconds): newest first beyond a quota

    @property
    def marker(self) -> str:
        return f"{self.type}|{self.version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Notification:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class Result:
    outcome: str  # sent | rejected (permanent, dropped) | retry (kept, backoff)
    status: int = 0


class RetryLater(Exception):
    """The whole request failed in a way worth retrying (429, 5xx, network, token refused)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` given in seconds (the HTTP-date form is ignored: backoff applies)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
