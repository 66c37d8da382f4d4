"""`python -m sandbox_org`: serve the sandbox org (a local Salesforce REST API, bpats__ objects).

The gateway's dev stack starts it by this name as its own process; it never imports it.
``--credentials-out`` writes the demo integration users' credentials as JSON (owner-only), so
a launcher can configure its connections without importing this package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sandbox_org.seed import DEMO_CREDENTIALS
from sandbox_org.server import serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandbox_org",
        description="Serve the sandbox org: OAuth, describe, SOQL, CRUD and composite "
        "endpoints over SQLite, with the Asymbl ATS objects.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    p.add_argument("--seed", choices=["demo", "none"], default="none")
    p.add_argument("--jobs", type=int, default=500, help="jobs to seed with --seed demo")
    p.add_argument("--tls", action="store_true", help="serve https (self-signed)")
    p.add_argument("--faults", action="store_true", help="enable /__sandbox__/faults")
    p.add_argument(
        "--pubsub-port",
        type=int,
        default=None,
        help="serve the Pub/Sub API (gRPC, Change Data Capture) on this port "
        "(default: --port + 1, or a free port with --port 0; 0: a free port)",
    )
    p.add_argument("--no-pubsub", action="store_true", help="do not serve the Pub/Sub API")
    p.add_argument(
        "--credentials-out",
        default=None,
        help="write the demo users' credentials (JSON, mode 0600) to this file",
    )
    return p


def write_credentials(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(DEMO_CREDENTIALS, handle, indent=2)


def pubsub_port(args: argparse.Namespace) -> int | None:
    if args.no_pubsub:
        return None
    if args.pubsub_port is not None:
        return args.pubsub_port
    return args.port + 1 if args.port else 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.credentials_out:
        write_credentials(args.credentials_out)
    serve(
        host=args.host,
        port=args.port,
        db=args.db,
        seed=None if args.seed == "none" else args.seed,
        jobs=args.jobs,
        tls=args.tls,
        faults=args.faults,
        pubsub_port=pubsub_port(args),
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
