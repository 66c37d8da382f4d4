"""`Outbox`: put, claim, settle, replay; leases renewed by a heartbeat, fenced by a token."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import redis

from ats_gateway.services.delivery.model import (
    DELIVERED,
    DUPLICATE,
    KEY_PREFIX,
    QUEUED,
    Attachments,
    Item,
    NotDurable,
    Outcome,
    PutResult,
    _dumps,
    _text,
    backoff_delay,
)
from ats_gateway.services.delivery.scripts import (
    _CLAIM,
    _DROP,
    _EXTEND,
    _PROGRESS,
    _PUT,
    _PUT_MANY,
    _REPLAY,
    _SETTLE,
)

log = logging.getLogger(__name__)


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
            replicas=settings.durable_replicas,
            durable_timeout_ms=settings.intake_durable_timeout_ms,
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
        replicas: int = 0,
        durable_timeout_ms: int = 2000,
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
        self.replicas = max(0, int(replicas))
        self.durable_timeout_ms = max(1, int(durable_timeout_ms))
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
        status lives. ``fields``: more hash fields stored with an accepted item, in the same
        script.

        Returns once the item is in the primary's append-only file and in that of
        ``replicas`` replicas (``WAITAOF``, on the same connection as the store), else raises
        :class:`NotDurable` (stored all the same: a retry with the same idempotency key
        returns this item). ``wait=False``: only stored.
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
        replies = self._durably(lambda pipe: self._put(keys=keys, args=args, client=pipe), wait)
        outcome, found = replies[0]
        result = PutResult(_text(outcome), _text(found))
        self._check_durable(replies, [result])
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
        replies = self._durably(
            lambda pipe: self._put_many(keys=keys, args=args, client=pipe), wait
        )
        results = [PutResult(_text(outcome), _text(found)) for outcome, found in replies[0]]
        self._check_durable(replies, results)
        return results

    def confirm_durable(self) -> None:
        """Raise :class:`NotDurable` unless everything written before now is as durable as a
        fresh store (a replayed answer whose first attempt got no confirmation): one small
        write (a marker that expires), so that ``WAITAOF`` on this connection covers what the
        primary had before it (replication is in order)."""
        replies = self._durably(
            lambda pipe: pipe.set(self.prefix + "durable-mark", b"1", px=60000), True
        )
        self._check_durable(replies, [])

    def _durably(self, store: Callable[[Any], Any], wait: bool) -> list[Any]:
        """Run `store` and then ``WAITAOF`` in one non-transactional pipeline: the same
        connection, since ``WAITAOF`` waits only for the writes of the connection it is sent on
        (https://redis.io/docs/latest/commands/waitaof/), and not ``MULTI`` or a script, where
        it does not block. Returns [store's reply, WAITAOF's reply or error (if sent)]."""
        pipe = self.redis.pipeline(transaction=False)
        store(pipe)
        if wait and self.fsync:
            pipe.execute_command("WAITAOF", 1, self.replicas, self.durable_timeout_ms)
        replies = pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]  # not stored (Redis full, a script error): nothing to confirm
        return replies

    def _check_durable(self, replies: list[Any], results: list[PutResult]) -> None:
        if len(replies) < 2:
            return
        if results and not any(r.outcome in ("accepted", "replay") for r in results):
            return  # nothing this request will answer 202 for
        answer = replies[1]
        if isinstance(answer, Exception):
            # No AOF on this server, or a server without WAITAOF: the durability the 202
            # promises cannot be had (readiness says so too; `intake_fsync=false` waives it).
            log.warning("WAITAOF refused: %s", str(answer)[:200])
            raise NotDurable(results, 0, 0, self.replicas)
        local, replicas = (int(n) for n in answer)
        if local < 1 or replicas < self.replicas:
            raise NotDurable(results, local, replicas, self.replicas)

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
                if outcome.delay is not None:  # the other side asked (Retry-After): not sooner,
                    delay = max(delay, min(outcome.delay, self.retry_max_seconds))  # nor past cap
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
