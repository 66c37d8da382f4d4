"""A durable outbox in Redis: accept work now, deliver it to the org later, exactly once.

Every write the gateway accepts with a 202 (an application, interview feedback) becomes an
*item* of an :class:`Outbox` of its ``kind``. An item moves through::

    queued ──claim──▶ delivering ──▶ delivered | duplicate          (payload removed, status kept)
       ▲                  │
       └──retry/defer─────┤  (retryable failure: back to queued with backoff + jitter, no limit)
                          └──▶ failed ──▶ dead-letter queue ──replay──▶ queued
                                                          └──drop──▶ failed (payload removed)

Redis keys (``{p}`` = ``ats-gateway:outbox:<kind>:``)::

    {p}item:<id>    hash: status, created_at, updated_at, attempts, next_attempt_at, payload (JSON),
                    att:<name> (binary attachments), progress (JSON), result (JSON), error (JSON),
                    lease (token of the claim that holds it)
    {p}ready        zset id -> when it is due (queued items)
    {p}inflight     zset id -> when its lease ends (delivering items; reclaimed after that)
    {p}dlq          zset id -> when it failed
    {p}drain        the single-flight drain lock (one drainer per kind at a time)

Every state change is one Lua script, so a crash between two commands cannot lose an item. A
worker that dies mid-batch leaves its items in ``inflight``; once their lease ends the next
claim moves them back to ``queued`` and they are delivered again. Leases (and the drain lock)
are short and follow the worker: a heartbeat thread of the worker renews them every third of a
lease while it lives (``_Heartbeat``), so a dead worker's batch moves within one lease, and a
slow but live one keeps it. That is why a
:class:`Deliverer` must be idempotent against the org (applications re-run their dedupe query
before any create), and why every settle is *fenced* by the lease token: a worker that lost its
lease cannot overwrite the outcome of the worker that took over.

:func:`drain` runs one drainer: take the lock, claim micro-batches, hand them to a
:class:`Deliverer`, settle each item with its :class:`Outcome`, and say when to come back.
Nothing here knows about applications; feedback delivery reuses it with its own deliverer.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from ats_gateway.salesforce.budget import api_purpose

log = logging.getLogger(__name__)

QUEUED, DELIVERING, DELIVERED, FAILED, DUPLICATE = (
    "queued",
    "delivering",
    "delivered",
    "failed",
    "duplicate",
)
STATUSES = (QUEUED, DELIVERING, DELIVERED, FAILED, DUPLICATE)

KEY_PREFIX = "ats-gateway:outbox:"

# ---------------------------------------------------------------------------------- Lua

# KEYS: item, ready, [idem], [unique...]; ARGV: id, now, payload, n_att, att names/values...,
# has idem, idem fingerprint, idem ttl, unique ttl, n_fields, field names/values... (more
# hash fields stored with an accepted item: who sent it, the receipt's text)
# Returns {"accepted", id} | {"replay", id} | {"idempotency_conflict", id} | {"duplicate", id}
_PUT = """
local item, ready = KEYS[1], KEYS[2]
local id, now, payload = ARGV[1], ARGV[2], ARGV[3]
local n_att = tonumber(ARGV[4])
local pos = 5 + 2 * n_att
local has_idem = ARGV[pos] == '1'
local fingerprint, idem_ttl = ARGV[pos + 1], tonumber(ARGV[pos + 2])
local unique_ttl = tonumber(ARGV[pos + 3])
local first_unique = 3
if has_idem then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local sep = string.find(seen, '|', 1, true)
    local seen_fp, seen_id = string.sub(seen, 1, sep - 1), string.sub(seen, sep + 1)
    if seen_fp == fingerprint then return {'replay', seen_id} end
    return {'idempotency_conflict', seen_id}
  end
  first_unique = 4
end
for i = first_unique, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder then return {'duplicate', holder} end
end
redis.call('HSET', item, 'id', id, 'status', 'queued', 'created_at', now, 'updated_at', now,
  'attempts', 0, 'next_attempt_at', now, 'payload', payload)
for i = 0, n_att - 1 do
  redis.call('HSET', item, 'att:' .. ARGV[5 + 2 * i], ARGV[6 + 2 * i])
end
local uniques = {}
for i = first_unique, #KEYS do
  redis.call('SET', KEYS[i], id, 'EX', unique_ttl)
  table.insert(uniques, KEYS[i])
end
if #uniques > 0 then redis.call('HSET', item, 'unique_keys', cjson.encode(uniques)) end
if has_idem then redis.call('SET', KEYS[3], fingerprint .. '|' .. id, 'EX', idem_ttl) end
redis.call('ZADD', ready, now, id)
local n_extra = tonumber(ARGV[pos + 4] or '0')
for i = 0, n_extra - 1 do
  redis.call('HSET', item, ARGV[pos + 5 + 2 * i], ARGV[pos + 6 + 2 * i])
end
return {'accepted', id}
"""

# The same for a whole batch, in one script: a script is refused (OOM) before its first write
# or runs to the end, so a batch is stored all or nothing, even when Redis fills up meanwhile.
# KEYS: every item's keys, in order; ARGV: n items, then per item: n keys, n args, args...
# Returns one {outcome, id} per item.
_PUT_MANY = """
local function put(k, a)
  local item, ready = k[1], k[2]
  local id, now, payload = a[1], a[2], a[3]
  local n_att = tonumber(a[4])
  local pos = 5 + 2 * n_att
  local has_idem = a[pos] == '1'
  local fingerprint, idem_ttl = a[pos + 1], tonumber(a[pos + 2])
  local unique_ttl = tonumber(a[pos + 3])
  local first_unique = 3
  if has_idem then
    local seen = redis.call('GET', k[3])
    if seen then
      local sep = string.find(seen, '|', 1, true)
      local seen_fp, seen_id = string.sub(seen, 1, sep - 1), string.sub(seen, sep + 1)
      if seen_fp == fingerprint then return {'replay', seen_id} end
      return {'idempotency_conflict', seen_id}
    end
    first_unique = 4
  end
  for i = first_unique, #k do
    local holder = redis.call('GET', k[i])
    if holder then return {'duplicate', holder} end
  end
  redis.call('HSET', item, 'id', id, 'status', 'queued', 'created_at', now, 'updated_at', now,
    'attempts', 0, 'next_attempt_at', now, 'payload', payload)
  for i = 0, n_att - 1 do
    redis.call('HSET', item, 'att:' .. a[5 + 2 * i], a[6 + 2 * i])
  end
  local uniques = {}
  for i = first_unique, #k do
    redis.call('SET', k[i], id, 'EX', unique_ttl)
    table.insert(uniques, k[i])
  end
  if #uniques > 0 then redis.call('HSET', item, 'unique_keys', cjson.encode(uniques)) end
  if has_idem then redis.call('SET', k[3], fingerprint .. '|' .. id, 'EX', idem_ttl) end
  redis.call('ZADD', ready, now, id)
  local n_extra = tonumber(a[pos + 4] or '0')
  for i = 0, n_extra - 1 do
    redis.call('HSET', item, a[pos + 5 + 2 * i], a[pos + 6 + 2 * i])
  end
  return {'accepted', id}
end
local results, kpos, apos = {}, 1, 2
for _ = 1, tonumber(ARGV[1]) do
  local nk, na = tonumber(ARGV[apos]), tonumber(ARGV[apos + 1])
  local k, a = {}, {}
  for i = 1, nk do k[i] = KEYS[kpos + i - 1] end
  for i = 1, na do a[i] = ARGV[apos + 1 + i] end
  table.insert(results, put(k, a))
  kpos, apos = kpos + nk, apos + 2 + na
end
return results
"""

# KEYS: ready, inflight; ARGV: prefix, now, limit, lease_until, token
_CLAIM = """
local ready, inflight = KEYS[1], KEYS[2]
local prefix, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease_until, token = ARGV[4], ARGV[5]
-- Leases that ended belong to workers that died or stalled: their items are due again.
local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', inflight, id)
  redis.call('ZADD', ready, now, id)
  redis.call('HSET', prefix .. 'item:' .. id, 'status', 'queued', 'updated_at', now)
  redis.call('HDEL', prefix .. 'item:' .. id, 'lease')
end
local ids = redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, limit)
local claimed = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', ready, id)
  local item = prefix .. 'item:' .. id
  if redis.call('EXISTS', item) == 1 then
    redis.call('ZADD', inflight, lease_until, id)
    redis.call('HSET', item, 'status', 'delivering', 'lease', token, 'updated_at', now)
    local data = redis.call('HMGET', item, 'payload', 'attempts', 'progress', 'created_at')
    local atts = {}  -- names and sizes only: the bytes are read when a deliverer needs them
    for _, f in ipairs(redis.call('HKEYS', item)) do
      if string.sub(f, 1, 4) == 'att:' then
        table.insert(atts, string.sub(f, 5))
        table.insert(atts, redis.call('HSTRLEN', item, f))
      end
    end
    table.insert(claimed, {id, data[1], data[2], data[3], data[4], atts})
  end
end
return claimed
"""

# KEYS: item, ready, inflight, dlq; ARGV: id, token, outcome, now, result/error JSON,
# due (retry/defer), status_ttl, progress JSON ('' = unchanged)
_SETTLE = """
local item, ready, inflight, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, token, outcome, now, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local due, status_ttl, progress = ARGV[6], tonumber(ARGV[7]), ARGV[8]
if redis.call('HGET', item, 'lease') ~= token then return 0 end
redis.call('ZREM', inflight, id)
redis.call('HDEL', item, 'lease')
if progress ~= '' then redis.call('HSET', item, 'progress', progress) end
if outcome == 'delivered' or outcome == 'duplicate' then
  local fields = redis.call('HKEYS', item)
  for _, f in ipairs(fields) do
    if f == 'payload' or string.sub(f, 1, 4) == 'att:' then redis.call('HDEL', item, f) end
  end
  redis.call('HSET', item, 'status', outcome, 'result', body, 'updated_at', now)
  redis.call('HDEL', item, 'error')
  redis.call('EXPIRE', item, status_ttl)
  -- Unique keys live as long as the status: "already in the org" for status_ttl.
  local uniques = redis.call('HGET', item, 'unique_keys')
  if uniques then
    for _, key in ipairs(cjson.decode(uniques)) do redis.call('EXPIRE', key, status_ttl) end
  end
elseif outcome == 'retry' then
  redis.call('HINCRBY', item, 'attempts', 1)
  redis.call('HSET', item, 'status', 'queued', 'error', body, 'next_attempt_at', due,
    'updated_at', now)
  redis.call('ZADD', ready, due, id)
elseif outcome == 'defer' then
  redis.call('HSET', item, 'status', 'queued', 'next_attempt_at', due, 'updated_at', now)
  if body ~= '' then redis.call('HSET', item, 'deferred', body) end
  redis.call('ZADD', ready, due, id)
elseif outcome == 'failed' then
  redis.call('HINCRBY', item, 'attempts', 1)
  redis.call('HSET', item, 'status', 'failed', 'error', body, 'updated_at', now)
  redis.call('ZADD', dlq, now, id)
  redis.call('EXPIRE', item, status_ttl)  -- a dead letter's data is not kept for ever
  -- A failed item frees its unique keys, so the candidate may send corrected data.
  local uniques = redis.call('HGET', item, 'unique_keys')
  if uniques then
    for _, key in ipairs(cjson.decode(uniques)) do
      if redis.call('GET', key) == id then redis.call('DEL', key) end
    end
  end
end
return 1
"""

# KEYS: item, ready, inflight, dlq; ARGV: id, now
_REPLAY = """
if redis.call('HGET', KEYS[1], 'status') ~= 'failed' then return 0 end
if redis.call('HEXISTS', KEYS[1], 'payload') == 0 then return -1 end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'next_attempt_at', ARGV[2],
  'updated_at', ARGV[2], 'replayed_at', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: item, dlq; ARGV: id, now, status_ttl
_DROP = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if f == 'payload' or string.sub(f, 1, 4) == 'att:' then redis.call('HDEL', KEYS[1], f) end
end
redis.call('HSET', KEYS[1], 'dropped_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS: inflight, item...; ARGV: lease_until, token
_EXTEND = """
local n = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'lease') == ARGV[2] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], redis.call('HGET', KEYS[i], 'id'))
    n = n + 1
  end
end
return n
"""

# KEYS: item; ARGV: token, progress JSON
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
"""


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


class _Progress:
    def __init__(self, outbox: Outbox, token: str, lock: Any = None) -> None:
        self.outbox = outbox
        self.token = token
        self.lock = lock

    def __call__(self, item: Item, **changes: Any) -> bool:
        return self.outbox.record_progress(item, self.token, **changes)

    def many(self, changes: Sequence[tuple[Item, dict[str, Any]]]) -> list[bool]:
        return self.outbox.record_progress_many(changes, self.token)

    def keepalive(self, items: Sequence[Item]) -> None:
        """Renew the batch's lease (and the drain lock) during a long delivery."""
        self.outbox.extend(items, self.token)
        if self.lock is not None:
            self.lock.reacquire()


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


class Outbox:
    """The items of one kind (``applications``, ``feedback``) in Redis."""

    @classmethod
    def from_settings(cls, redis_client: redis.Redis, kind: str, settings: Any) -> Outbox:
        """The outbox of `kind` with the gateway's delivery settings (shared by every kind)."""
        return cls(
            redis_client,
            kind,
            status_ttl=settings.application_status_ttl_days * 86400,
            lease_seconds=settings.delivery_lease_seconds,
            retry_base_seconds=settings.retry_base_delay_seconds,
            retry_max_seconds=settings.retry_max_delay_seconds,
            fsync=settings.intake_fsync,
            heartbeat=getattr(settings, "delivery_heartbeat", True),
        )

    def __init__(
        self,
        redis_client: redis.Redis,
        kind: str,
        *,
        status_ttl: int = 30 * 86400,
        lease_seconds: float = 300.0,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 600.0,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
        heartbeat: bool = True,
    ) -> None:
        self.redis = redis_client
        self.kind = kind
        self.prefix = f"{KEY_PREFIX}{kind}:"
        self.status_ttl = int(status_ttl)
        self.lease_seconds = float(lease_seconds)
        self.retry_base_seconds = float(retry_base_seconds)
        self.retry_max_seconds = float(retry_max_seconds)
        self.fsync = fsync
        self.clock = clock
        self.ready_key = self.prefix + "ready"
        self.inflight_key = self.prefix + "inflight"
        self.dlq_key = self.prefix + "dlq"
        self._put = redis_client.register_script(_PUT)
        self._put_many = redis_client.register_script(_PUT_MANY)
        self._claim = redis_client.register_script(_CLAIM)
        self._settle = redis_client.register_script(_SETTLE)
        self._replay = redis_client.register_script(_REPLAY)
        self._drop = redis_client.register_script(_DROP)
        self._extend = redis_client.register_script(_EXTEND)
        self._progress = redis_client.register_script(_PROGRESS)
        self._waitaof_supported: bool | None = None
        # Leases are short and follow the worker: renewed every third of a lease while held.
        self.heartbeat = _Heartbeat(self, max(0.2, self.lease_seconds / 3)) if heartbeat else None

    def __repr__(self) -> str:
        return f"Outbox(kind={self.kind!r})"

    def item_key(self, item_id: str) -> str:
        return f"{self.prefix}item:{item_id}"

    def unique_key(self, name: str) -> str:
        return f"{self.prefix}unique:{name}"

    def idempotency_key(self, name: str) -> str:
        return f"{self.prefix}idem:{name}"

    def org_id_key(self, org_id: str) -> str:
        """org record id (15 chars) -> item id of what the gateway delivered as that record."""
        return f"{self.prefix}org-id:{org_id[:15]}"

    def index_org_ids(
        self, items: Sequence[Item], outcomes: Sequence[Outcome], settled: Sequence[bool]
    ) -> None:
        """Remember which item became which org record (for the org's change events)."""
        pipe = self.redis.pipeline(transaction=False)
        for item, outcome, ok in zip(items, outcomes, settled, strict=True):
            org_id = outcome.body.get("salesforce_id") if ok else None
            if org_id and outcome.kind in (DELIVERED, DUPLICATE):
                pipe.set(self.org_id_key(str(org_id)), item.id, ex=self.status_ttl)
        pipe.execute()

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    # ------------------------------------------------------------------ accept

    def put(
        self,
        payload: Mapping[str, Any],
        *,
        item_id: str | None = None,
        attachments: Mapping[str, bytes] | None = None,
        idempotency: tuple[str, str] | None = None,
        idempotency_ttl: int = 86400,
        unique: Iterable[str] = (),
        wait: bool = True,
        fields: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Store an item durably and queue it, atomically with its guards.

        ``idempotency`` = (key, fingerprint of the request): a key seen before answers
        ``replay`` (same fingerprint) or ``idempotency_conflict``. ``unique`` names (e.g. the
        normalized email + job) answer ``duplicate`` with the holder's id while that item's
        status lives. Returns only once Redis has the item (and, where the server supports
        ``WAITAOF``, once it is fsynced to the append-only file; ``wait=False`` leaves that to
        one :meth:`wait_durable` after a whole batch). ``fields``: more hash fields stored with
        an accepted item, in the same script.
        """
        keys, args = self._put_args(
            payload,
            item_id=item_id,
            attachments=attachments,
            idempotency=idempotency,
            idempotency_ttl=idempotency_ttl,
            unique=unique,
            fields=fields,
        )
        outcome, found = self._put(keys=keys, args=args)
        result = PutResult(_text(outcome), _text(found))
        if result.accepted and wait:
            self.wait_durable()
        return result

    def _put_args(
        self,
        payload: Mapping[str, Any],
        *,
        item_id: str | None = None,
        attachments: Mapping[str, bytes] | None = None,
        idempotency: tuple[str, str] | None = None,
        idempotency_ttl: int = 86400,
        unique: Iterable[str] = (),
        fields: Mapping[str, str] | None = None,
    ) -> tuple[list[str], list[Any]]:
        item_id = item_id or self.new_id()
        keys = [self.item_key(item_id), self.ready_key]
        if idempotency:
            keys.append(self.idempotency_key(idempotency[0]))
        keys.extend(self.unique_key(u) for u in unique)
        args: list[Any] = [item_id, repr(self.clock()), _dumps(payload)]
        attachments = dict(attachments or {})
        args.append(len(attachments))
        for name, data in attachments.items():
            args.extend([name, data])
        args.extend(
            [
                "1" if idempotency else "0",
                idempotency[1] if idempotency else "",
                int(idempotency_ttl),
                self.status_ttl,
            ]
        )
        extra = dict(fields or {})
        args.append(len(extra))
        for name, value in extra.items():
            args.extend([name, value])
        return keys, args

    def put_many(
        self, entries: Sequence[Mapping[str, Any]], *, wait: bool = True
    ) -> list[PutResult]:
        """:meth:`put` for many items (each entry: ``put``'s keyword arguments with
        ``payload``) in one Lua script: all stored, or (Redis full, unreachable) none."""
        if not entries:
            return []
        keys: list[str] = []
        args: list[Any] = [len(entries)]
        for entry in entries:
            entry_keys, entry_args = self._put_args(**entry)
            keys.extend(entry_keys)
            args.extend([len(entry_keys), len(entry_args), *entry_args])
        rows = self._put_many(keys=keys, args=args)
        results = [PutResult(_text(outcome), _text(found)) for outcome, found in rows]
        if wait and any(r.accepted for r in results):
            self.wait_durable()
        return results

    def wait_durable(self) -> None:
        """Block until the append-only file holds what we wrote (Redis >= 7.2 ``WAITAOF``)."""
        if not self.fsync or self._waitaof_supported is False:
            return
        try:
            self.redis.execute_command("WAITAOF", 1, 0, 1000)
            self._waitaof_supported = True
        except redis.ResponseError:
            # Older server, or AOF off (dev without persistence): everysec fsync is the bound.
            self._waitaof_supported = False

    # ------------------------------------------------------------------ read

    def get(self, item_id: str) -> dict[str, Any] | None:
        """The item's status record (never the payload or attachments), or None."""
        raw = self.redis.hgetall(self.item_key(item_id))
        if not raw:
            return None
        data = {_text(k): v for k, v in raw.items() if not _text(k).startswith("att:")}
        record: dict[str, Any] = {
            "id": _text(data.get("id", item_id)),
            "status": _text(data.get("status", "")),
            "created_at": float(data.get("created_at", 0)),
            "updated_at": float(data.get("updated_at", 0)),
            "attempts": int(data.get("attempts", 0)),
        }
        if record["status"] == QUEUED and "next_attempt_at" in data:
            record["next_attempt_at"] = float(data["next_attempt_at"])
        for name in ("result", "error", "progress", "deferred"):
            if name in data:
                record[name] = json.loads(data[name])
        if "dropped_at" in data:
            record["dropped_at"] = float(data["dropped_at"])
        if "org_status" in data:  # what the org made of it since (its change events)
            record["org_status"] = _text(data["org_status"])
            record["org_status_at"] = float(data.get("org_status_at") or 0)
        if "replays" in data:
            record["replays"] = int(data["replays"])
        record["has_payload"] = "payload" in data
        return record

    def payload(self, item_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.item_key(item_id), "payload")
        return None if raw is None else json.loads(raw)

    def unique_holder(self, name: str) -> str | None:
        holder = self.redis.get(self.unique_key(name))
        return None if holder is None else _text(holder)

    def counts(self) -> dict[str, int]:
        pipe = self.redis.pipeline()
        pipe.zcard(self.ready_key)
        pipe.zcard(self.inflight_key)
        pipe.zcard(self.dlq_key)
        ready, inflight, dlq = pipe.execute()
        return {"queued": ready, "delivering": inflight, "dead_letter": dlq}

    def next_due(self) -> float | None:
        """When the next item becomes claimable (a queued item's due time, or a lease's end)."""
        times = []
        for key in (self.ready_key, self.inflight_key):
            first = self.redis.zrange(key, 0, 0, withscores=True)
            if first:
                times.append(first[0][1])
        return min(times) if times else None

    # ------------------------------------------------------------------ deliver

    def claim(self, limit: int, token: str | None = None) -> tuple[str, list[Item]]:
        """Claim up to ``limit`` due items under a new lease; returns (lease token, items)."""
        token = token or secrets.token_hex(8)
        now = self.clock()
        rows = self._claim(
            keys=[self.ready_key, self.inflight_key],
            args=[self.prefix, repr(now), int(limit), repr(now + self.lease_seconds), token],
        )
        items = []
        for raw_id, payload, attempts, progress, created_at, atts in rows:
            item_id = _text(raw_id)
            sizes = {_text(atts[n]): int(atts[n + 1]) for n in range(0, len(atts), 2)}
            items.append(
                Item(
                    id=item_id,
                    payload=json.loads(payload or b"{}"),
                    attachments=Attachments(self.redis, self.item_key(item_id), sizes),
                    attempts=int(attempts or 0),
                    progress=json.loads(progress) if progress else {},
                    created_at=float(created_at or 0),
                )
            )
        if items and self.heartbeat is not None:
            self.heartbeat.hold(token, items)
        return token, items

    def extend(self, items: Sequence[Item], token: str) -> int:
        """Renew the lease of items still held by ``token``; returns how many were renewed."""
        if not items:
            return 0
        keys = [self.inflight_key] + [self.item_key(i.id) for i in items]
        until = self.clock() + self.lease_seconds
        return int(self._extend(keys=keys, args=[repr(until), token]))

    def record_progress(self, item: Item, token: str, **changes: Any) -> bool:
        """Merge ``changes`` into the item's progress (only while ``token`` holds its lease)."""
        item.progress.update(changes)
        ok = self._progress(keys=[self.item_key(item.id)], args=[token, _dumps(item.progress)])
        return bool(ok)

    def record_progress_many(
        self, changes: Sequence[tuple[Item, dict[str, Any]]], token: str
    ) -> list[bool]:
        """:meth:`record_progress` for many items in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for item, change in changes:
            item.progress.update(change)
            self._progress(
                keys=[self.item_key(item.id)], args=[token, _dumps(item.progress)], client=pipe
            )
        return [bool(ok) for ok in pipe.execute()] if changes else []

    def settle(self, item: Item, token: str, outcome: Outcome) -> bool:
        """Apply an outcome; False when the lease was lost (another worker owns the item now)."""
        return self.settle_many([item], token, [outcome])[0]

    def settle_many(
        self, items: Sequence[Item], token: str, outcomes: Sequence[Outcome]
    ) -> list[bool]:
        """:meth:`settle` for a whole batch in one round trip; one flag per item."""
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        for item, outcome in zip(items, outcomes, strict=True):
            due = ""
            body = outcome.body
            if outcome.kind == "retry":
                delay = backoff_delay(
                    item.attempts, base=self.retry_base_seconds, cap=self.retry_max_seconds
                )
                due = repr(now + delay)
                body = {**body, "attempt": item.attempts + 1, "retry_in_seconds": round(delay, 3)}
            elif outcome.kind == "defer":
                due = repr(now + (outcome.delay or self.retry_base_seconds))
            self._settle(
                keys=[self.item_key(item.id), self.ready_key, self.inflight_key, self.dlq_key],
                args=[
                    item.id,
                    token,
                    outcome.kind,
                    repr(now),
                    _dumps(body) if body or outcome.kind != "defer" else "",
                    due,
                    self.status_ttl,
                    _dumps(item.progress) if item.progress else "",
                ],
                client=pipe,
            )
        if self.heartbeat is not None:
            self.heartbeat.drop(token, items)
        return [bool(ok) for ok in pipe.execute()] if items else []

    # ------------------------------------------------------------------ dead letters

    def dead_letters(self, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        ids = [_text(i) for i in self.redis.zrange(self.dlq_key, offset, offset + limit - 1)]
        records = [self.get(i) for i in ids]
        expired = [i for i, r in zip(ids, records, strict=True) if r is None]
        if expired:  # their retention ran out
            self.redis.zrem(self.dlq_key, *expired)
        return [r for r in records if r is not None]

    def replay(self, item_id: str) -> bool:
        """Queue a failed item again (after the org was fixed); False if it is not replayable."""
        ok = self._replay(
            keys=[self.item_key(item_id), self.ready_key, self.inflight_key, self.dlq_key],
            args=[item_id, repr(self.clock())],
        )
        if int(ok) == 1:
            raw = self.redis.hget(self.item_key(item_id), "unique_keys")
            for key in json.loads(raw) if raw else []:
                self.redis.set(key, item_id, nx=True, ex=self.status_ttl)
            return True
        return False

    def replay_all(self) -> int:
        return sum(self.replay(_text(i)) for i in self.redis.zrange(self.dlq_key, 0, -1))

    def drop(self, item_id: str) -> bool:
        """Forget a dead letter's data for good (its failed status stays until it expires)."""
        ok = self._drop(
            keys=[self.item_key(item_id), self.dlq_key],
            args=[item_id, repr(self.clock()), self.status_ttl],
        )
        return bool(ok)

    # ------------------------------------------------------------------ single flight

    def drain_lock(self) -> Any:
        """The lock one drainer holds while it delivers: as short as a lease, renewed by the
        heartbeat while held, so a dead drainer's lock ends within one lease."""
        lock = self.redis.lock(
            self.prefix + "drain", timeout=self.lease_seconds, blocking=False, thread_local=False
        )
        return lock if self.heartbeat is None else _HeldLock(lock, self.heartbeat)


class _HeldLock:
    """A drain lock the heartbeat renews between ``acquire`` and ``release``."""

    def __init__(self, lock: Any, heartbeat: _Heartbeat) -> None:
        self.lock = lock
        self.heartbeat = heartbeat

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        ok = bool(self.lock.acquire(*args, **kwargs))
        if ok:
            self.heartbeat.hold_lock(self.lock)
        return ok

    def reacquire(self) -> Any:
        return self.lock.reacquire()

    def owned(self) -> bool:
        return bool(self.lock.owned())

    def release(self) -> None:
        # The drain is over: whatever batch it still held (an exception between claim and
        # settle) is no longer renewed, so its lease ends and another worker takes it.
        self.heartbeat.release_all(self.lock)
        self.lock.release()


class _Heartbeat:
    """Renews, every ``interval`` seconds from a daemon thread, the leases this process
    holds: drain locks and claimed batches, until they are released or settled.

    A worker that dies (SIGKILL, OOM) stops renewing, so its batch is claimable again within
    one lease; a worker that is merely slow keeps its batch. A batch whose renewal finds it
    taken over (fencing: the token no longer matches) is dropped; its worker's settle and
    progress writes are refused by the same token check in Lua.
    """

    MAX_HOLD_SECONDS = 3600.0  # a batch never settled (a bug) stops being renewed after this

    def __init__(self, outbox: Outbox, interval: float) -> None:
        self.outbox = outbox
        self.interval = interval
        self._locks: list[Any] = []
        self._batches: dict[str, tuple[float, dict[str, Item]]] = {}
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def _ensure_running(self) -> None:
        # Started lazily, in the process that claims (a Celery pool child, after the fork).
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-heartbeat-{self.outbox.kind}", daemon=True
        )
        self._thread.start()

    def hold_lock(self, lock: Any) -> None:
        with self._mutex:
            self._locks.append(lock)
        self._ensure_running()

    def release_all(self, lock: Any) -> None:
        with self._mutex:
            self._locks = [held for held in self._locks if held is not lock]
            self._batches.clear()

    def hold(self, token: str, items: Sequence[Item]) -> None:
        with self._mutex:
            self._batches[token] = (time.monotonic(), {item.id: item for item in items})
        self._ensure_running()

    def drop(self, token: str, items: Sequence[Item]) -> None:
        with self._mutex:
            held = self._batches.get(token)
            if held is None:
                return
            for item in items:
                held[1].pop(item.id, None)
            if not held[1]:
                del self._batches[token]

    def held(self) -> dict[str, int]:
        """token -> number of items still renewed (tests, diagnostics)."""
        with self._mutex:
            return {token: len(items) for token, (_, items) in self._batches.items()}

    def beat(self) -> None:
        """One renewal round (the thread calls it every ``interval``)."""
        with self._mutex:
            locks = list(self._locks)
            batches = [
                (t, since, list(items.values())) for t, (since, items) in self._batches.items()
            ]
        for lock in locks:
            try:
                lock.reacquire()
            except redis.exceptions.LockError:
                log.warning("the %s drain lock was lost (taken over)", self.outbox.kind)
                with self._mutex:
                    self._locks = [held for held in self._locks if held is not lock]
            except redis.RedisError as exc:  # Redis restarting: try again next beat
                log.warning("could not renew the %s drain lock: %s", self.outbox.kind, exc)
        for token, since, items in batches:
            if time.monotonic() - since > self.MAX_HOLD_SECONDS:
                self.drop(token, items)
                continue
            try:
                renewed = self.outbox.extend(items, token)
            except redis.RedisError as exc:
                log.warning("could not renew a %s lease: %s", self.outbox.kind, exc)
                continue
            if renewed == 0:  # every item was taken over, or settled by now
                self.drop(token, items)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.beat()
            except Exception:  # the heartbeat must outlive any one failure
                log.exception("lease heartbeat of %s failed", self.outbox.kind)


# ---------------------------------------------------------------------------------- drain


@dataclass
class DrainReport:
    """What one :func:`drain` run did, and when the next one should run (None: nothing left).

    ``pace``: the pacer's last decision (why a batch went, or why the queue waits); ``calls``:
    org calls the batches cost (counted by purpose in the API budget)."""

    ran: bool = False
    batches: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    lost_leases: int = 0
    next_run_in: float | None = None
    pace: dict[str, Any] | None = None
    calls: int = 0


class Pacer(Protocol):
    """What :func:`drain` needs of :class:`~ats_gateway.services.pacing.Pacer`."""

    def decide(self, outbox: Outbox) -> Any: ...

    def sent(self, calls: int) -> None: ...

    def delivery_calls(self) -> int: ...


def drain(
    outbox: Outbox,
    deliverer: Deliverer,
    *,
    batch_size: int = 1000,
    max_batches: int = 20,
    max_seconds: float = 60.0,
    pacer: Pacer | None = None,
    purpose: str = "delivery",
) -> DrainReport:
    """Deliver due items in micro-batches while holding the single-flight drain lock.

    With a ``pacer`` each batch goes only when the pacer says so (full, the API allowance
    accrued since the last send, the latency bound; see ``services/pacing.py``); otherwise the
    queue waits and ``next_run_in`` says for how long. Org calls made by the deliverer are
    labelled ``purpose`` in the API budget.

    Returns after the queue has nothing due (or must wait), ``max_batches`` or ``max_seconds``
    (so one task never runs for ever), with ``next_run_in`` telling the caller when to schedule
    the next run. A drainer that finds the lock taken returns at once; the holder reschedules
    itself.
    """
    report = DrainReport()
    lock = outbox.drain_lock()
    if not lock.acquire():
        due = outbox.next_due()
        if due is not None:
            report.next_run_in = max(0.0, due - outbox.clock())
        return report
    report.ran = True
    started = time.monotonic()
    pace_wait: float | None = None
    try:
        while report.batches < max_batches and time.monotonic() - started < max_seconds:
            calls_before = 0
            if pacer is not None:
                decision = pacer.decide(outbox)
                report.pace = decision.as_dict()
                if not decision.send:
                    pace_wait = decision.wait
                    break
                calls_before = pacer.delivery_calls()
            token, items = outbox.claim(batch_size)
            if not items:
                break
            report.batches += 1
            lock.reacquire()

            progress = _Progress(outbox, token, lock)
            try:
                with api_purpose(purpose):
                    outcomes = deliverer.deliver(items, progress)
            except Exception as exc:  # a bug or an unexpected answer must not lose the batch
                log.exception("delivery of %d %s failed unexpectedly", len(items), outbox.kind)
                outcomes = [
                    Outcome.retry(code="INTERNAL_ERROR", message=type(exc).__name__) for _ in items
                ]
            if pacer is not None:
                calls = pacer.delivery_calls() - calls_before
                report.calls += calls
                pacer.sent(calls)
                log.info(
                    "%s batch of %d sent (%s): %d org call(s)",
                    outbox.kind,
                    len(items),
                    (report.pace or {}).get("reason"),
                    calls,
                )
            if len(outcomes) != len(items):
                raise RuntimeError("a deliverer must return one outcome per item")
            settled = outbox.settle_many(items, token, outcomes)
            outbox.index_org_ids(items, outcomes, settled)
            for outcome, ok in zip(outcomes, settled, strict=True):
                if ok:
                    report.outcomes[outcome.kind] = report.outcomes.get(outcome.kind, 0) + 1
                else:
                    report.lost_leases += 1
            if len(items) < batch_size and pacer is None:
                # The backlog is gone; what arrived meanwhile waits for the caller's next run
                # (after the micro-batch window) instead of leaving in batches of a handful,
                # each costing as many org calls as a full one. (A pacer asks itself.)
                break
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            log.warning("the %s drain lock expired while delivering", outbox.kind)
    due = outbox.next_due()
    if due is not None:
        report.next_run_in = max(0.0, due - outbox.clock())
        if pace_wait is not None:
            report.next_run_in = max(report.next_run_in, pace_wait)
    return report


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
