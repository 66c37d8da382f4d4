"""[18] Hot keys kept in the process and invalidated by Redis (CLIENT TRACKING, BCAST), on a
private real Redis (valkey) so it can be flushed and restarted: never a stale value, reads
served without a round trip once tracking is up, and a restart or flush empties the cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from stack import wait_for

from ats_gateway.config import Settings
from ats_gateway.embedded import EmbeddedRedis
from ats_gateway.redis_clients import build_redis, tracking_connection
from ats_gateway.redis_tracking import TrackedKeys
from ats_gateway.security.keys import KeyStore

GEN, CUR = "t:keys:generation", "t:jobs:current"


@pytest.fixture()
def server(tmp_path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path) as node:
        yield node


@pytest.fixture()
def tracked(server) -> Iterator[TrackedKeys]:
    settings = Settings.from_env({"ATS_GATEWAY_REDIS_URL": server.url})
    keys = TrackedKeys(build_redis(settings), tracking_connection(settings), [GEN, CUR])
    keys.get(GEN)  # the first use starts the tracking connection
    wait_for(lambda: keys.tracking, 10, what="the tracking connection")
    yield keys
    keys.close()


def test_a_write_elsewhere_is_seen_once_its_invalidation_arrived(server, tracked):
    """Redis sends the invalidation just after the writer's reply: a read that follows the
    reply may come a few microseconds early, never later than the message."""
    writer = redis.Redis.from_url(server.url)
    for i in range(300):
        writer.set(GEN, i)
        wait_for(lambda i=i: tracked.get(GEN) == str(i).encode(), 2, 0.001, f"write {i}")
        assert tracked.get(GEN) == str(i).encode()  # and it stays seen
    assert tracked.hits >= 300


def test_a_write_by_this_process_is_seen_at_once(server, tracked):
    """The process's own writes (a key revoked, a catalogue version appended) forget what it
    held before the write returns: no window at all."""
    store = KeyStore(redis.Redis.from_url(server.url), hot=tracked)
    for i in range(100):
        generation = store.generation()
        key, _ = store.create(kind="secret", name=f"key {i}", scopes=["jobs:read"])
        assert store.generation() == generation + 1
        store.revoke(key.id)
        assert store.generation() == generation + 2


def test_reads_stay_in_the_process_while_nothing_changes(server, tracked):
    writer = redis.Redis.from_url(server.url)
    writer.set(CUR, b"7|1.0")
    assert tracked.get(CUR) == b"7|1.0"
    misses = tracked.misses
    writer.set("t:other", 1)  # a key nobody tracks: no invalidation
    writer.set(CUR + "-not", 1)  # (exact names are tracked as prefixes: this one matches)
    assert tracked.get(CUR) == b"7|1.0"
    for _ in range(100):
        assert tracked.get(CUR) == b"7|1.0"
    assert tracked.misses - misses <= 1


def test_a_flush_or_a_lost_connection_empties_what_the_process_holds(server, tracked):
    writer = redis.Redis.from_url(server.url)
    writer.set(GEN, 1)
    assert tracked.get(GEN) == b"1"
    writer.flushdb()
    wait_for(lambda: tracked.get(GEN) is None, 2, 0.001, "the flush")
    writer.set(GEN, 2)
    wait_for(lambda: tracked.get(GEN) == b"2", 2, 0.001, "the write after the flush")

    # The tracking connection is lost (killed by the server: as in a restart or a Sentinel
    # reconfiguration; a restart on the same port races other runners for the port).
    assert writer.client_kill_filter(_type="pubsub") == 1
    writer.set(GEN, 3)  # no invalidation can reach the process now
    assert tracked.get(GEN) == b"3"
    wait_for(lambda: tracked.tracking, 15, what="the tracking connection again")
    writer.set(GEN, 4)
    wait_for(lambda: tracked.get(GEN) == b"4", 2, 0.001, "a write after the reconnection")
    hits = tracked.hits
    assert tracked.get(GEN) == b"4"
    assert tracked.hits == hits + 1


def test_without_tracking_every_read_goes_to_redis(tmp_path):
    with EmbeddedRedis(tmp_path) as node:
        settings = Settings.from_env({"ATS_GATEWAY_REDIS_URL": node.url})
        # a connection that can never open: the process serves nothing from its cache
        keys = TrackedKeys(build_redis(settings), lambda: _refused(settings), [GEN])
        writer = redis.Redis.from_url(node.url)
        for i in range(20):
            writer.set(GEN, i)
            assert keys.get(GEN) == str(i).encode()
        assert keys.hits == 0 and not keys.tracking
        keys.close()


def _refused(settings: Settings):
    raise redis.ConnectionError("no tracking here")


def test_a_key_nobody_tracks_is_always_read_from_redis(server, tracked):
    writer = redis.Redis.from_url(server.url)
    for i in range(20):
        writer.set("t:untracked", i)
        assert tracked.get("t:untracked") == str(i).encode()
    assert tracked.hits == 0
