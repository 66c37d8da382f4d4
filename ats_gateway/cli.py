"""`ats-gateway`: run the embedded stack, the sandbox org, and operate the gateway.

    ats-gateway dev                  Redis + sandbox org + worker + beat + gateway, Ctrl-C stops all
    ats-gateway sandbox              the sandbox org alone (a local Salesforce REST API)
    ats-gateway events               the change-event subscriber (Pub/Sub API; one is active)
    ats-gateway keys create|list|revoke          API keys (security/cli.py)
    ats-gateway schemas pull / doctor            describe snapshots, permission preflight
                                                 (metadata/cli.py)
    ats-gateway dlq list|show|replay|drop        dead-lettered deliveries (tasks/applications.py)
    ats-gateway feedback-link INTERVIEW_ID ...   interviewer links (here)
    ats-gateway budget [--json]                  API spend by purpose, ceiling, delivery forecast
                                                 (tasks/budget.py)

Every command but `dev` and `sandbox` reads the gateway's settings from `ATS_GATEWAY_*`
(`source .ats-gateway/gateway.env` points them at the `make run` stack).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

import requests

from ats_gateway.config import PROJECT_ROOT, ConnectionConfig, Settings
from ats_gateway.metadata import cli as metadata_cli
from ats_gateway.printable import escape_nonprintable
from ats_gateway.security import cli as security_cli
from ats_gateway.security import webhooks_cli
from ats_gateway.services.applications import report as report_cli
from ats_gateway.tasks import applications as dlq_cli
from ats_gateway.tasks import budget as budget_cli


class TerminalSafe(io.TextIOBase):
    """A text stream that writes every non-printable character as an escape (newline and tab
    kept): what the CLI prints comes partly from clients (a `source`, an endpoint URL, a
    dead letter's error) and must not move the cursor, retitle or clear the operator's
    terminal, or forge report lines ([21])."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(escape_nonprintable(text, keep="\n\t"))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def main(argv: list[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    sys.stdout = out if isinstance(out, TerminalSafe) else TerminalSafe(out)
    sys.stderr = err if isinstance(err, TerminalSafe) else TerminalSafe(err)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ats-gateway",
        description="ATS gateway: career sites, job boards and interviewers in front of an "
        "Asymbl ATS (Salesforce) org.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    dev = sub.add_parser(
        "dev",
        help="start the embedded stack (Redis, sandbox org, worker, beat, events, gateway)",
        description="Start Redis, the sandbox org seeded with demo data, a Celery worker and "
        "beat, and the gateway under gunicorn; print the URLs; Ctrl-C stops everything.",
    )
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8000, help="gateway port (default 8000)")
    dev.add_argument("--sandbox-port", type=int, default=8900, help="sandbox org port")
    dev.add_argument("--data-dir", default=".ats-gateway", help="Redis AOF, sandbox database, logs")
    dev.add_argument("--jobs", type=int, default=500, help="demo jobs to seed (default 500)")
    dev.set_defaults(handler=cmd_dev)

    sandbox = sub.add_parser(
        "sandbox",
        help="run the sandbox org (a local Salesforce REST API with the bpats__ objects)",
        description="Serve the sandbox org: OAuth, describe, SOQL, CRUD and composite "
        "resources of the Salesforce REST API over SQLite.",
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8900)
    sandbox.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    sandbox.add_argument("--seed", choices=["demo", "none"], default="none")
    sandbox.add_argument("--jobs", type=int, default=500, help="jobs to seed with --seed demo")
    sandbox.add_argument("--tls", action="store_true", help="serve https (self-signed)")
    sandbox.add_argument(
        "--faults", action="store_true", help="enable /__sandbox__/faults fault injection"
    )
    sandbox.set_defaults(handler=cmd_sandbox)
    events = sub.add_parser(
        "events",
        help="run the change-event subscriber (Change Data Capture over the Pub/Sub API)",
        description="Keep the job snapshot and application statuses current from the org's "
        "change events; several may run, one holds the Redis lease. Falls back to delta "
        "polling while the Pub/Sub API is unavailable. Reads ATS_GATEWAY_* settings.",
    )
    events.set_defaults(handler=cmd_events)
    security_cli.add_commands(sub)
    metadata_cli.add_commands(sub)
    dlq_cli.add_commands(sub)
    add_feedback_link_command(sub)
    webhooks_cli.add_commands(sub)
    report_cli.add_commands(sub)  # `report sources` ([16])
    budget_cli.add_commands(sub)
    return parser


# --------------------------------------------------------------------------- feedback-link


def add_feedback_link_command(sub: Any) -> None:
    """``ats-gateway feedback-link INTERVIEW_ID --interviewer EMAIL [--expires 7d]``."""
    cmd = sub.add_parser(
        "feedback-link",
        help="issue (or revoke) an interviewer's feedback link",
        description="Print a signed, expiring feedback URL for one interviewer of one "
        "interview; with --revoke, withdraw every link issued for that pair.",
    )
    cmd.add_argument("interview_id", metavar="INTERVIEW_ID")
    cmd.add_argument("--interviewer", required=True, metavar="EMAIL")
    cmd.add_argument("--expires", default=None, help="lifetime, e.g. 7d (default), 12h, 2w")
    cmd.add_argument("--job-title", default=None, help="job title to show the interviewer")
    cmd.add_argument("--revoke", action="store_true", help="revoke this interviewer's links")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(handler=cmd_feedback_link)


def cmd_feedback_link(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Issue a link through the same service as the HTTP API (services().link_issuer)."""
    from ats_gateway.composition import build_services
    from ats_gateway.services.feedback import FeedbackError

    issuer = build_services(settings or Settings.from_env()).link_issuer
    if args.revoke:
        try:
            count = issuer.revoke_for(args.interview_id, args.interviewer)
        except ValueError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
        text = f"revoked {count} link(s)"
        sys.stdout.write((json.dumps({"revoked": count}) if args.json else text) + "\n")
        return 0 if count else 1
    body = {"interviewer_email": args.interviewer, "expires_in": args.expires}
    if args.job_title is not None:
        body["job_title"] = args.job_title
    try:
        result = issuer.issue(args.interview_id, body, issued_by="cli")
    except FeedbackError as exc:
        errors = getattr(exc, "errors", None) or []
        reasons = "; ".join(e["message"] for e in errors) or exc.detail
        sys.stderr.write(f"error: {reasons}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(f"{result['url']}\n(expires {result['expires_at']})\n")
    return 0


# --------------------------------------------------------------------------- sandbox


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Run the sandbox org by name (`python -m sandbox_org`); the gateway never imports it."""
    argv = [sys.executable, "-m", "sandbox_org", *sandbox_args(args)]
    os.execv(sys.executable, argv)  # noqa: S606 (argv is ours, no shell)
    return 0  # pragma: no cover (execv does not return)


def sandbox_args(args: argparse.Namespace) -> list[str]:
    out = ["--host", args.host, "--port", str(args.port), "--db", args.db, "--seed", args.seed]
    out += ["--jobs", str(args.jobs)]
    return out + (["--tls"] if args.tls else []) + (["--faults"] if args.faults else [])


# --------------------------------------------------------------------------- events


def cmd_events(args: argparse.Namespace) -> int:
    """The subscriber in the foreground; SIGINT/SIGTERM stop it cleanly (lease released)."""
    from ats_gateway.composition import build_services
    from ats_gateway.events import build_subscriber, run_subscriber
    from ats_gateway.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    return run_subscriber(build_subscriber(build_services(settings)), stopping)


# --------------------------------------------------------------------------- dev


def _secret(data_dir: Path) -> str:
    """A signing secret kept across dev restarts, so issued links keep working."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def sandbox_connections(
    sandbox_url: str, credentials: dict[str, dict[str, str]]
) -> dict[str, ConnectionConfig]:
    """Connection settings for the sandbox org's demo integration users, from the credentials
    file the sandbox process wrote (`python -m sandbox_org --credentials-out`)."""
    connections = {}
    for name in ("job_portal", "interview_feedback"):
        user = credentials[name]
        connections[name] = ConnectionConfig(
            name=name,
            login_url=sandbox_url,
            auth_flow="password",
            client_id=user["client_id"],
            client_secret=user["client_secret"],
            username=user["username"],
            password=user["password"],
            security_token=user["security_token"],
        )
    return connections


def _demo_interviewer_link(settings: Settings) -> str | None:
    """A feedback link for the first upcoming demo interview, so the page can be tried."""
    from ats_gateway.composition import build_services

    services = build_services(settings)
    client = services.connections.client("interview_feedback")
    try:
        interview = next(
            iter(
                client.query(
                    "SELECT Id FROM bpats__Interview__c WHERE bpats__Status__c = 'Scheduled' "
                    "ORDER BY bpats__Start_Date_Time__c LIMIT 1"
                )
            ),
            None,
        )
        interviewer = next(
            iter(
                client.query(
                    "SELECT Email FROM Contact WHERE Email LIKE '%@interviewers.example.com' "
                    "ORDER BY Email LIMIT 1"
                )
            ),
            None,
        )
        if not interview or not interviewer:
            return None
        issued = services.link_issuer.issue(
            interview["Id"], {"interviewer_email": interviewer["Email"]}, issued_by="dev"
        )
        return issued["url"]
    except Exception as exc:  # the demo link is a convenience; the stack runs without it
        print(f"  (no interviewer link: {type(exc).__name__}: {exc})", flush=True)
        return None


def _write_settings_env(settings: Settings, path: Path) -> None:
    """The dev stack's settings as a shell file, so CLI commands (doctor, keys, dlq,
    feedback-link) can be pointed at it with `source`. Contains secrets: owner-only."""
    import shlex

    lines = ["# written by `ats-gateway dev`: the running stack's settings"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(settings.to_env().items())]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def _taken_ports(host: str, ports: dict[int, str]) -> list[str]:
    """A sentence for each of `ports` (port -> what needs it) another process holds on `host`.
    Without this check a second `ats-gateway dev` found the first one's sandbox answering and
    died on its missing credentials file (FileNotFoundError), saying nothing of the port."""
    import socket

    out = []
    for port, what in ports.items():
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the servers bind (SO_REUSEADDR): a stopped stack's TIME_WAIT is not "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                out.append(f"port {port} on {host}, for the {what}, is in use ({exc.strerror}).")
    return out


def cmd_dev(args: argparse.Namespace) -> int:
    from ats_gateway.embedded import EmbeddedRedis, ManagedProcess
    from ats_gateway.embedded.stack import beat_argv, child_env, class_workers, gunicorn_argv

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    # A plain flag: a signal handler must not take locks (threading.Event.set does, and a
    # second Ctrl-C arriving while the main thread waits on it deadlocks).
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))

    taken = _taken_ports(
        args.host,
        {
            args.port: "gateway (--port)",
            args.sandbox_port: "sandbox org (--sandbox-port)",
            args.sandbox_port + 1: "sandbox Pub/Sub API (--sandbox-port + 1)",
        },
    )
    if taken:
        for line in taken:
            print(line, file=sys.stderr)
        print(
            "Another `ats-gateway dev` may be running: stop it, or choose free ports.",
            file=sys.stderr,
        )
        return 1
    redis_server = EmbeddedRedis(data_dir=data_dir / "redis")
    children: list[ManagedProcess] = []
    try:
        redis_server.start()
        print(f"redis        {redis_server.url}  (AOF in {redis_server.data_dir})", flush=True)
        sandbox_url = f"http://{args.host}:{args.sandbox_port}"
        credentials_path = data_dir / "sandbox-credentials.json"
        credentials_path.unlink(missing_ok=True)  # only this run's sandbox writes it
        sandbox = ManagedProcess(
            "sandbox org",
            [
                sys.executable,
                "-m",
                "sandbox_org",
                "--credentials-out",
                str(credentials_path),
                "--host",
                args.host,
                "--port",
                str(args.sandbox_port),
                "--db",
                str(data_dir / "sandbox.db"),
                "--seed",
                "demo",
                "--jobs",
                str(args.jobs),
            ],
            cwd=PROJECT_ROOT,
            ready=lambda: requests.get(sandbox_url + "/services/data/", timeout=1).ok,
            log_path=logs / "sandbox.log",
        )
        children.append(sandbox.start(timeout=120))
        print(f"sandbox org  {sandbox_url}", flush=True)

        settings = Settings.from_env(
            env="dev",
            redis_url=redis_server.url,
            secret_key=_secret(data_dir),
            public_url=f"http://{args.host}:{args.port}",
            log_format="text",
            # The sandbox serves the Pub/Sub API on the next port (plain gRPC on 127.0.0.1).
            pubsub_endpoint=f"{args.host}:{args.sandbox_port + 1}",
            pubsub_tls=False,
            operator_networks="127.0.0.1/32,::1/128",  # readiness detail for the developer
            connections=sandbox_connections(
                sandbox_url, json.loads(credentials_path.read_text(encoding="utf-8"))
            ),
        )
        # The board feeds on, with demo tokens, so a newcomer sees them ([22]).
        from ats_gateway.api.demo import demo_feed_settings

        settings = settings.replace(**demo_feed_settings(settings, os.environ))
        env = child_env(settings)
        gateway_url = f"http://{args.host}:{args.port}"
        for process in (
            # [19] A pool per work class (tasks/queues.py): a slow party fills only its own.
            *class_workers(env, logs),
            ManagedProcess(
                "beat",
                beat_argv(str(data_dir / "celerybeat-schedule")),
                env=env,
                cwd=PROJECT_ROOT,
                log_path=logs / "beat.log",
            ),
            ManagedProcess(
                "events",
                [sys.executable, "-m", "ats_gateway.cli", "events"],
                env=env,
                cwd=PROJECT_ROOT,
                log_path=logs / "events.log",
            ),
            ManagedProcess(
                "gateway",
                gunicorn_argv(args.host, args.port),
                env=env,
                cwd=PROJECT_ROOT,
                ready=lambda: requests.get(gateway_url + "/healthz", timeout=1).ok,
                log_path=logs / "gateway.log",
            ),
        ):
            children.append(process.start(timeout=60))
        print(f"gateway      {gateway_url}", flush=True)
        print(f"  health     {gateway_url}/healthz   ready: {gateway_url}/readyz", flush=True)
        from ats_gateway.api.demo import announce_demo

        feedback_url = _demo_interviewer_link(settings)
        for line in announce_demo(settings, data_dir, feedback_url=feedback_url):
            print(line, flush=True)
        _write_settings_env(settings, data_dir / "gateway.env")
        print(
            f"  cli        source {data_dir / 'gateway.env'}   (then e.g. ats-gateway doctor)",
            flush=True,
        )
        print(f"  logs       {logs}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            time.sleep(0.5)
            # Supervise as systemd (Restart=always) would: a Celery worker exits when its
            # broker restarts (kombu), and delivery must resume without anyone. A starting
            # worker drains at once.
            for child in children:
                restartable = child.name == "beat" or child.name.startswith("worker")
                if restartable and not child.alive() and not stopping:
                    print(f"{child.name} exited; restarting it (see {logs})", file=sys.stderr)
                    child.stop()
                    child.start(timeout=60)
            dead = [c.name for c in children if not c.alive()]
            if dead:
                print(f"stopping: {', '.join(dead)} exited (see {logs})", file=sys.stderr)
                return 1
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        redis_server.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":  # `python -m ats_gateway.cli`
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
