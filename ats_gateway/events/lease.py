"""One active subscriber among several: a Redis lease renewed by heartbeat.

``SET key token NX PX ttl`` takes the lease; the holder renews it every heartbeat with a
compare-and-PEXPIRE script (only while it still holds it), and releases it on a clean stop. A
holder that dies (SIGKILL) simply stops renewing: a standby takes over within one ``ttl``.
"""

from __future__ import annotations

import uuid

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    def __init__(self, redis_client: redis.Redis, key: str, ttl_seconds: float) -> None:
        self.redis = redis_client
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        self.token = uuid.uuid4().hex
        self._renew = redis_client.register_script(_RENEW)
        self._release = redis_client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Take the lease if nobody holds it (or renew it if we do)."""
        if self.renew():
            return True
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extend our lease; False when it was lost (expired and maybe taken by another)."""
        return bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])

    def holder(self) -> str | None:
        raw = self.redis.get(self.key)
        return raw.decode() if raw else None
