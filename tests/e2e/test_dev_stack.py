"""`ats-gateway dev` started as a user would, used over HTTP, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from lxml import etree

from ats_gateway.config import PROJECT_ROOT
from ats_gateway.embedded import free_port
from ats_gateway.tasks.queues import QUEUE_NAMES

pytestmark = pytest.mark.slow


def _processes_with_marker(marker: str) -> list[int]:
    """Pids of live processes whose environment carries the marker (children inherit it)."""
    found = []
    needle = f"ATS_GATEWAY_E2E_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_dev_starts_serves_and_stops_cleanly(tmp_path):
    marker = uuid.uuid4().hex
    port, sandbox_port = free_port(), _free_pair()
    env = {**os.environ, "ATS_GATEWAY_E2E_MARKER": marker, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ats_gateway.cli",
            "dev",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
            "--data-dir",
            str(tmp_path / "data"),
            "--jobs",
            "60",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a shell job in a terminal
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(output)
        assert "Ctrl-C stops everything" in text, text
        assert f"http://127.0.0.1:{port}" in text
        assert re.search(r"redis\s+redis://127\.0\.0\.1:\d+/0", text)

        base = f"http://127.0.0.1:{port}"
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
        ready = requests.get(base + "/readyz", timeout=10).json()
        assert ready["checks"]["redis"]["status"] == "ok"
        assert len(_processes_with_marker(marker)) >= 5  # dev, redis, sandbox, worker, gunicorn
        # [19] a worker per work class, each reading its own queue
        assert set(QUEUE_NAMES) <= set(ready["checks"]["work_queues"])
        logs = tmp_path / "data" / "logs"
        for queue in QUEUE_NAMES:
            log = logs / f"worker-{queue}.log"
            until = time.monotonic() + 60
            while f".> {queue} " not in _read(log) and time.monotonic() < until:
                time.sleep(0.5)
            assert f".> {queue} " in _read(log), queue  # the banner's list of queues read
        assert "interviewer link  http" in text
        assert "publishable pk_" in text
        # [22] the board feeds are on, their working URLs printed next to the keys
        for board in ("indeed", "linkedin"):
            found = re.search(rf"{board}\s+(http://\S+/feeds/{board}\.xml\?token=\S+)", text)
            assert found, text
            feed = requests.get(found.group(1), timeout=30)
            assert feed.status_code == 200, feed.text[:300]
            assert etree.fromstring(feed.content).findall("job")
        assert re.search(r"sitemap\s+http://127\.0\.0\.1:\d+/sitemap\.xml", text)
        demo_env = (tmp_path / "data" / "demo.env").read_text()
        assert "ATS_INDEED_FEED_URL=" in demo_env
    finally:
        # Ctrl-C in a terminal signals the whole foreground group; an impatient user presses
        # it twice. Neither may leave a process behind or hang the shutdown.
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            rest = proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            rest = proc.communicate()[0]
    assert proc.returncode == 0, "".join(output) + rest
    deadline = time.monotonic() + 10
    while _processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with_marker(marker) == []


def test_dev_says_which_port_is_taken(tmp_path):
    """[22] A second `ats-gateway dev` on a taken sandbox port used to find the first one's
    sandbox answering and die on a FileNotFoundError about sandbox-credentials.json."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ats_gateway.cli",
                "dev",
                "--port",
                str(free_port()),
                "--sandbox-port",
                str(taken),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert f"port {taken} on 127.0.0.1, for the sandbox org (--sandbox-port), is in use" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "data" / "redis").exists()  # nothing was started


def _free_pair() -> int:
    """A port free together with the next one (`dev` puts the Pub/Sub API on sandbox + 1):
    two free_port() picks could land the second on another runner's listener."""
    import socket

    for _ in range(50):
        first = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise AssertionError("no two consecutive free ports")


def _read(path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
