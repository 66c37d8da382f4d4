"""Job lifecycle events: which public jobs opened, changed their public fields, or closed.

Every path that changes the jobs snapshot ends in :meth:`JobLifecycle.observe`, under the
snapshot lock, right after the new version is published:

* :meth:`~ats_gateway.services.jobs.changes.SnapshotChanges.apply`: change events, delta
  polling and expiry pruning (both go through ``apply``);
* the full reload (``JobsService.refresh``: the reconciliation and the beat refresh), through
  the service's ``left`` hook, wired in the composition root.

``observe`` compares each job's *digest* (a hash of its public fields, as the snapshot holds
them) with the one it recorded last, in one Lua script (atomic: two paths, or a path seen
twice, never emit one version twice), and appends one entry per real change to a Redis
stream, the durable source consumers read from their own cursor::

    XREAD STREAMS ats:events:jobs <last id>
    -> {job_id, event: opened|changed|closed, digest (empty when closed), at (epoch ms), source}

    ats-gateway:jobs:lifecycle:digests    hash id15 -> digest of the job's public fields
    ats-gateway:jobs:lifecycle:baseline   set once the first full reload recorded every job
    ats-gateway:jobs:lifecycle:cursor:<consumer>   each consumer's last entry read

A change to a field that is not public leaves the digest alone, so it emits nothing. The
first full reload records every public job silently (a baseline: the sitemap tells search
engines about jobs that were open before the gateway started); before it, a job seen for the
first time counts as ``opened``. The stream is capped (``MAXLEN ~ 100000``): a consumer more
than that many changes behind resumes from the oldest entry kept.

Consumers: ``tasks/job_events.py`` (``job.closed`` webhooks) and ``tasks/indexing.py``
(search-engine notifications).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

STREAM_KEY = "ats:events:jobs"
DIGESTS_KEY = "ats-gateway:jobs:lifecycle:digests"
BASELINE_KEY = "ats-gateway:jobs:lifecycle:baseline"
CURSOR_PREFIX = "ats-gateway:jobs:lifecycle:cursor:"  # + consumer name
STREAM_MAXLEN = 100_000
CHUNK_JOBS = 500  # jobs per script call
OPENED, CHANGED, CLOSED = "opened", "changed", "closed"

# KEYS: digests, stream, baseline. ARGV: at_ms, source, maxlen, full (0: a partial path; 1: a
# full reload, or its last chunk; 2: an earlier chunk of a full reload), then triples
# (id15, id, digest); an empty digest means the job left the public set (the callers know that
# from the snapshot itself, so a close is always told, even of a job opened before the baseline).
_OBSERVE = """
local digests, stream, baseline = KEYS[1], KEYS[2], KEYS[3]
local at, source, maxlen, full = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local has_baseline = redis.call('EXISTS', baseline) == 1
local emitted = 0
for i = 5, #ARGV, 3 do
  local key, id, digest = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local prev = redis.call('HGET', digests, key)
  local event = false
  if digest == '' then
    redis.call('HDEL', digests, key)
    event = 'closed'
  elseif prev ~= digest then
    redis.call('HSET', digests, key, digest)
    if prev then
      event = 'changed'
    elseif has_baseline or full == '0' then
      event = 'opened'
    end
  end
  if event then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
      'job_id', id, 'event', event, 'digest', digest, 'at', at, 'source', source)
    emitted = emitted + 1
  end
end
if full == '1' then
  redis.call('SET', baseline, at)
end
return emitted
"""


@dataclass(frozen=True)
class LifecycleEvent:
    """One entry of the lifecycle stream, as consumers read it."""

    entry_id: str
    job_id: str
    event: str  # opened | changed | closed
    digest: str
    at: float  # epoch seconds
    source: str

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> LifecycleEvent:
        values = {k.decode(): v.decode() for k, v in fields.items()}
        return cls(
            entry_id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            job_id=values.get("job_id", ""),
            event=values.get("event", ""),
            digest=values.get("digest", ""),
            at=int(values.get("at") or 0) / 1000,
            source=values.get("source", ""),
        )


def digest(record: Mapping[str, Any]) -> str:
    """The version of a job's public fields: the same fields, the same digest."""
    raw = json.dumps(record, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:20]


class JobLifecycle:
    """Records public jobs' digests and appends their lifecycle events to the stream."""

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        stream_key: str = STREAM_KEY,
        maxlen: int = STREAM_MAXLEN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client
        self.stream_key = stream_key
        self.maxlen = maxlen
        self.clock = clock
        self._script = redis_client.register_script(_OBSERVE)

    def observe(
        self,
        records: Iterable[Mapping[str, Any]],
        left: Iterable[str],
        *,
        id_field: str,
        source: str,
        full: bool = False,
    ) -> int:
        """``records``: public jobs that came or may have changed (public names, as in the
        snapshot); ``left``: ids of jobs that were public and are not any more. ``full``: the
        records are the whole public set (a full reload). Returns how many events were
        appended."""
        args: list[str] = []
        for record in records:
            ident = str(record[id_field])
            args += [ident[:15], ident, digest(record)]
        for ident in left:
            args += [str(ident)[:15], str(ident), ""]
        if not args and not full:
            return 0
        at_ms = str(int(self.clock() * 1000))
        keys = [DIGESTS_KEY, self.stream_key, BASELINE_KEY]
        emitted = 0
        # A full reload of tens of thousands of jobs goes in chunks, so Redis is never held by
        # one long script; each job is still compared and recorded atomically, and the
        # baseline is set with the last chunk (earlier chunks of a first reload stay silent).
        step = 3 * CHUNK_JOBS
        for start in range(0, max(len(args), 1), step):
            last = start + step >= len(args)
            mode = "0" if not full else ("1" if last else "2")
            head = [at_ms, source, str(self.maxlen), mode]
            emitted += int(self._script(keys=keys, args=head + args[start : start + step]))
        return emitted

    def read(self, cursor: bytes | str, *, count: int = 500) -> list[LifecycleEvent]:
        """Entries after ``cursor`` (``"0-0"``: from the oldest kept), oldest first."""
        found = self.redis.xread({self.stream_key: cursor}, count=count) or []
        return [LifecycleEvent.from_entry(i, f) for _, rows in found for i, f in rows]

    def consume(
        self,
        consumer: str,
        handle: Callable[[list[LifecycleEvent]], Any],
        *,
        count: int = 500,
        from_now: bool = False,
    ) -> int:
        """Hand the entries after ``consumer``'s cursor to ``handle`` (one batch), then move
        the cursor past them; one run at a time per consumer. ``handle`` must be idempotent:
        a crash between it and the cursor's move hands the same entries again. ``from_now``:
        a consumer without a cursor starts at the newest entry instead of the oldest kept.
        Returns how many entries were handled."""
        cursor_key = CURSOR_PREFIX + consumer
        lock = self.redis.lock(
            cursor_key + ":lock", timeout=120, blocking=False, thread_local=False
        )
        if not lock.acquire():
            return 0
        try:
            cursor = self.redis.get(cursor_key)
            if cursor is None and from_now:
                newest = self.redis.xrevrange(self.stream_key, count=1)
                cursor = newest[0][0] if newest else b"0-0"
                self.redis.set(cursor_key, cursor)
            events = self.read(cursor or b"0-0", count=count)
            if events:
                handle(events)
                self.redis.set(cursor_key, events[-1].entry_id)
            return len(events)
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()


__all__ = [
    "CHANGED",
    "CLOSED",
    "OPENED",
    "STREAM_KEY",
    "JobLifecycle",
    "LifecycleEvent",
    "digest",
]
