"""The outbox's vocabulary: statuses, items, outcomes, the deliverer protocol, backoff."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

QUEUED, DELIVERING, DELIVERED, FAILED, DUPLICATE = (
    "queued",
    "delivering",
    "delivered",
    "failed",
    "duplicate",
)
STATUSES = (QUEUED, DELIVERING, DELIVERED, FAILED, DUPLICATE)

KEY_PREFIX = "ats-gateway:outbox:"


# ---------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class PutResult:
    """What :meth:`Outbox.put` did: ``accepted``, ``replay``, ``idempotency_conflict`` or
    ``duplicate``; ``id`` is the new item, or the item that the key or unique key points at."""

    outcome: str
    id: str

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"


class NotDurable(Exception):
    """Stored, but Redis did not confirm in time that it is in the append-only file of the
    primary and of enough replicas (``WAITAOF``): the caller must not answer ``202``. A retry
    with the same idempotency key returns the same item (and waits again); ``results`` are
    what the store did (one :class:`PutResult` per entry)."""

    def __init__(self, results: list[PutResult], local: int, replicas: int, wanted: int) -> None:
        super().__init__(
            f"WAITAOF confirmed {local} local and {replicas} of {wanted} replica fsyncs"
        )
        self.results = results
        self.local = local
        self.replicas = replicas
        self.wanted = wanted


@dataclass
class Item:
    """A claimed item, as a :class:`Deliverer` sees it.

    ``attachments`` maps names to bytes; a claimed item's attachments are
    :class:`Attachments`, read from Redis only when asked for (a batch of a thousand 5 MB
    resumes must not sit in a worker's memory at once), with ``attachments.size(name)``.
    """

    id: str
    payload: dict[str, Any]
    attachments: Mapping[str, bytes]
    attempts: int
    progress: dict[str, Any]
    created_at: float


class Attachments(Mapping[str, bytes]):
    """An item's binary attachments, loaded lazily from its Redis hash."""

    def __init__(self, redis_client: redis.Redis, key: str, sizes: Mapping[str, int]) -> None:
        self._redis = redis_client
        self._key = key
        self._sizes = dict(sizes)

    def size(self, name: str) -> int:
        return self._sizes[name]

    def __getitem__(self, name: str) -> bytes:
        if name not in self._sizes:
            raise KeyError(name)
        data = self._redis.hget(self._key, "att:" + name)
        if data is None:
            raise KeyError(name)
        return data

    def __iter__(self):
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)


@dataclass(frozen=True)
class Outcome:
    """What became of one item. Build with the class methods."""

    kind: str  # delivered | duplicate | retry | failed | defer
    body: dict[str, Any] = field(default_factory=dict)
    delay: float | None = None  # defer: how long to wait (retry computes its own backoff)

    @classmethod
    def delivered(cls, **result: Any) -> Outcome:
        return cls(DELIVERED, result)

    @classmethod
    def duplicate(cls, **result: Any) -> Outcome:
        return cls(DUPLICATE, result)

    @classmethod
    def retry(cls, **error: Any) -> Outcome:
        return cls("retry", error)

    @classmethod
    def failed(cls, **error: Any) -> Outcome:
        return cls(FAILED, error)

    @classmethod
    def defer(cls, delay: float, **why: Any) -> Outcome:
        """Not an attempt (e.g. the API budget reserve is reached): come back after ``delay``."""
        return cls("defer", why, delay)


class Deliverer(Protocol):
    """Delivers a micro-batch; one :class:`Outcome` per item, in the same order."""

    def deliver(self, items: Sequence[Item], progress: ProgressRecorder) -> list[Outcome]: ...


class ProgressRecorder(Protocol):
    """Lets a deliverer note what it already did for an item (fenced by the claim's lease).

    ``progress(item, **changes)`` for one item; ``progress.many([(item, changes), ...])`` for
    a whole batch in one round trip.
    """

    def __call__(self, item: Item, **changes: Any) -> bool: ...

    def many(self, changes: Sequence[tuple[Item, dict[str, Any]]]) -> list[bool]: ...


def backoff_delay(
    attempts: int,
    *,
    base: float = 1.0,
    cap: float = 600.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with jitter: ``min(cap, base * 2**attempts)`` scaled into [50%, 100%].

    The jitter spreads the retries of a whole batch that failed together (org down) so they
    do not return as one thundering herd; the floor keeps the growth exponential.
    """
    ceiling = min(cap, base * (2 ** min(attempts, 30)))
    return ceiling * (0.5 + 0.5 * rng())


# ---------------------------------------------------------------------------------- outbox


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
