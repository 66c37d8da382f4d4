"""What the subscriber is doing, for /readyz, the beat task and the jobs service.

A Redis hash (``ats-gateway:events:state``) written by the subscriber that holds the lease::

    mode              stream | polling | starting
    heartbeat_at      epoch seconds of the last heartbeat (every few seconds)
    confirmed_at      the snapshot was known to be current then (last batch, keepalive, poll)
    last_event_at     when the last change event was applied
    last_reconcile_at when the last full reconciliation finished
    reconciliations   how many ran (counter), with the reason of the last one
    reason            why the mode is what it is (e.g. the stream's error)
    <channel>_mode    each channel's own (jobs, applications): stream | polling | starting;
    <channel>_reason  one channel can poll while the other streams (CDC off for one object)

``live()`` is true while a subscriber heartbeats: the snapshot is then kept current by events
(or delta polling), so the periodic full reload and the staleness refresh stand down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

KEY_PREFIX = "ats-gateway:events:"
STREAM, POLLING, STARTING = "stream", "polling", "starting"


class EventsState:
    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        heartbeat_seconds: float = 5.0,
        key_prefix: str = KEY_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client
        self.prefix = key_prefix
        self.key = key_prefix + "state"
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self._live_cache: tuple[float, bool] = (0.0, False)

    def read(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(self.key).items()}

    def write(self, **values: Any) -> None:
        self.redis.hset(self.key, mapping={k: str(v) for k, v in values.items()})

    def heartbeat(self, mode: str, **values: Any) -> None:
        self.write(mode=mode, heartbeat_at=repr(self.clock()), **values)

    def count_reconciliation(self, reason: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hincrby(self.key, "reconciliations", 1)
        pipe.hset(
            self.key,
            mapping={"last_reconcile_at": repr(self.clock()), "last_reconcile_reason": reason},
        )
        pipe.execute()

    def stopped(self) -> None:
        self.redis.hset(self.key, mapping={"mode": "stopped", "heartbeat_at": "0"})

    def live(self) -> bool:
        """A subscriber (stream or polling) heartbeats: cached for one second per process."""
        now = time.monotonic()
        at, value = self._live_cache
        if now - at < 1.0:
            return value
        state = self.redis.hmget(self.key, "mode", "heartbeat_at")
        mode = (state[0] or b"").decode()
        beat = float(state[1] or 0)
        value = mode in (STREAM, POLLING) and self.clock() - beat < 3 * self.heartbeat_seconds + 1
        self._live_cache = (now, value)
        return value

    def readiness(self) -> tuple[str, dict[str, Any]]:
        """/readyz: the mode (stream / polling / off) and how fresh the snapshot is known to be."""
        state = self.read()
        now = self.clock()
        self._live_cache = (0.0, False)
        if not self.live():
            return "ok", {
                "mode": "off",
                "detail": "no `ats-gateway events` subscriber running: the beat task reloads "
                "the job snapshot on its schedule",
            }
        details: dict[str, Any] = {"mode": state.get("mode")}
        for name in ("confirmed_at", "last_event_at", "last_reconcile_at"):
            if state.get(name):
                details[name.replace("_at", "_age_seconds")] = round(now - float(state[name]), 1)
        details["reconciliations"] = int(state.get("reconciliations") or 0)
        if state.get("reason"):
            details["reason"] = state["reason"]
        channels = {
            name[: -len("_mode")]: {"mode": mode}
            for name, mode in sorted(state.items())
            if name.endswith("_mode")
        }
        for name, channel in channels.items():
            if state.get(f"{name}_reason"):
                channel["reason"] = state[f"{name}_reason"]
        if channels:
            details["channels"] = channels
        return ("ok" if state.get("mode") == STREAM else "degraded"), details
