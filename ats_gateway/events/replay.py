"""The replay id of each subscribed channel, kept in Redis after each applied batch.

Replay ids are opaque bytes (Pub/Sub API: "do not compute from them"); they are stored
unchanged, hex-encoded, like Salesforce's Python sample does.
"""

from __future__ import annotations

import redis


class ReplayStore:
    def __init__(self, redis_client: redis.Redis, key: str) -> None:
        self.redis = redis_client
        self.key = key  # a hash: topic -> hex replay id

    def get(self, topic: str) -> bytes | None:
        raw = self.redis.hget(self.key, topic)
        return bytes.fromhex(raw.decode()) if raw else None

    def set(self, topic: str, replay_id: bytes) -> None:
        if replay_id:
            self.redis.hset(self.key, topic, replay_id.hex())

    def forget(self, topic: str) -> None:
        self.redis.hdel(self.key, topic)

    def all(self) -> dict[str, bytes]:
        return {
            k.decode(): bytes.fromhex(v.decode()) for k, v in self.redis.hgetall(self.key).items()
        }
