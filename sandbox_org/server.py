"""Serving the sandbox org: ``serve()`` for the CLI, ``start_in_thread()`` for tests.

Both use werkzeug's threaded server. ``tls=True`` serves https with a self-signed
certificate for ``localhost`` / ``127.0.0.1`` generated with ``cryptography`` at start-up
(many Salesforce clients refuse plain http).

``pubsub_port`` (0: a free port; None: off) also serves the Pub/Sub API (gRPC, Change Data
Capture) on its own port, with the same certificate when ``tls`` is on, plain text otherwise.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox_org.app import create_app


def self_signed_context(directory: Path | None = None) -> tuple[ssl.SSLContext, Path]:
    """An SSL server context with a fresh self-signed certificate; returns (ctx, cert path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = directory or Path(tempfile.mkdtemp(prefix="ats-sandbox-tls-"))
    cert_path = directory / "sandbox-cert.pem"
    key_path = directory / "sandbox-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert_path


class QuietHandler(WSGIRequestHandler):
    """No access log line per request (tests and benchmarks)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _banner(url: str, app: Any) -> None:
    """What ``ats-gateway sandbox`` prints once it listens: URL, timing, demo logins."""
    sb = app.extensions["sandbox"]
    jobs = sb.store.count("bpats__Job__c")
    print(f"sandbox org listening on {url} ({jobs} jobs, ready in {sb.startup_seconds:.2f}s)")
    if sb.cert_path:
        print(f"self-signed certificate: {sb.cert_path}")
    for user in sb.users.values():
        print(
            f"  {user.key}: username={user.username} password={user.password} "
            f"security_token={user.security_token} client_id={user.client_id} "
            f"client_secret={user.client_secret}"
        )
    print(f"  token endpoint: {url}/services/oauth2/token", flush=True)
    if getattr(sb, "pubsub_port", None):
        host = url.split("://", 1)[1].rsplit(":", 1)[0]
        print(f"  pub/sub api: {host}:{sb.pubsub_port} (grpc)", flush=True)


@dataclass
class ServerHandle:
    """A sandbox served on a background thread."""

    server: BaseWSGIServer
    thread: threading.Thread
    url: str
    port: int
    app: Any
    cert_path: Path | None = None
    pubsub: Any = None  # sandbox_org.pubsub.service.PubSubServer when pubsub_port was given

    @property
    def pubsub_port(self) -> int | None:
        return self.pubsub.port if self.pubsub else None

    @property
    def pubsub_target(self) -> str | None:
        """``host:port`` of the Pub/Sub API (for ``grpc.insecure_channel``)."""
        return self.pubsub.target if self.pubsub else None

    def stop(self) -> None:
        if self.pubsub:
            self.pubsub.stop()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    app: Any = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: bool = False,
    quiet: bool = True,
    pubsub_port: int | None = None,
    pubsub_keepalive: float = 270.0,
) -> ServerHandle:
    """Serve ``app`` (default: a fresh in-memory sandbox) on a free port, threaded.

    ``pubsub_port=0`` also serves the Pub/Sub API on a free port (``handle.pubsub_port``);
    ``pubsub_keepalive``: seconds between empty keepalive FetchResponses (Salesforce: 270).
    """
    app = app if app is not None else create_app()
    ssl_ctx, cert_path = self_signed_context() if tls else (None, None)
    pubsub = _start_pubsub(app, host, pubsub_port, cert_path, pubsub_keepalive)
    handler = QuietHandler if quiet else None
    server = make_server(
        host, port, app, threaded=True, ssl_context=ssl_ctx, request_handler=handler
    )
    real_port = server.socket.getsockname()[1]
    scheme = "https" if tls else "http"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ats-sandbox", daemon=True
    )
    thread.start()
    return ServerHandle(
        server, thread, f"{scheme}://{host}:{real_port}", real_port, app, cert_path, pubsub
    )


def _start_pubsub(
    app: Any, host: str, port: int | None, cert_path: Path | None, keepalive: float
) -> Any:
    if port is None:
        return None
    from sandbox_org.pubsub.service import start_pubsub

    tls = None
    if cert_path is not None:
        tls = ((cert_path.parent / "sandbox-key.pem").read_bytes(), cert_path.read_bytes())
    return start_pubsub(app.extensions["sandbox"], host, port, tls=tls, keepalive_seconds=keepalive)


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    db: str = ":memory:",
    seed: str | None = None,
    jobs: int = 500,
    tls: bool = False,
    *,
    faults: bool = False,
    daily_api_limit: int = 100_000,
    token_ttl: float = 7200.0,
    users_file: str | None = None,
    ready: Any = None,
    quiet: bool = False,
    pubsub_port: int | None = None,
) -> None:
    """Run the sandbox org in the foreground until interrupted (``ats-gateway sandbox``).

    ``ready(url, app)`` is called once the socket listens (the CLI prints credentials there).
    ``pubsub_port``: also serve the Pub/Sub API there (0: a free port; None: off); the bound
    port is ``app.extensions["sandbox"].pubsub_port`` by the time ``ready`` runs.
    """
    started = time.monotonic()
    app = create_app(
        {
            "db": db,
            "seed": seed,
            "seed_jobs": jobs,
            "faults_enabled": faults,
            "daily_api_limit": daily_api_limit,
            "token_ttl": token_ttl,
            "users_file": users_file,
        }
    )
    ssl_ctx, cert_path = self_signed_context() if tls else (None, None)
    handler = QuietHandler if quiet else None
    server = make_server(
        host, port, app, threaded=True, ssl_context=ssl_ctx, request_handler=handler
    )
    real_port = server.socket.getsockname()[1]
    url = f"{'https' if tls else 'http'}://{host}:{real_port}"
    app.extensions["sandbox"].startup_seconds = time.monotonic() - started
    app.extensions["sandbox"].cert_path = cert_path
    pubsub = _start_pubsub(app, host, pubsub_port, cert_path, 270.0)
    app.extensions["sandbox"].pubsub_port = pubsub.port if pubsub else None
    (ready or _banner)(url, app)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        if pubsub:
            pubsub.stop()
        server.server_close()
