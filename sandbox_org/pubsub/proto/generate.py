"""Regenerate ``pubsub_api_pb2.py`` / ``pubsub_api_pb2_grpc.py`` from the vendored proto.

Run ``python -m sandbox_org.pubsub.proto.generate`` (needs grpcio-tools, the dev extra). The
proto is compiled under its own name, ``pubsub_api.proto``, as Salesforce's samples and the
PyPI clients do, so our descriptors and a third-party client's can live in one process; the
generated service module's absolute ``import pubsub_api_pb2`` is rewritten to a package import.
"""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent


def main() -> int:
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{HERE}",
            f"--python_out={HERE}",
            f"--grpc_python_out={HERE}",
            "pubsub_api.proto",
        ]
    )
    if rc:
        return rc
    grpc_module = HERE / "pubsub_api_pb2_grpc.py"
    text = grpc_module.read_text()
    text = text.replace(
        "import pubsub_api_pb2 as", "from sandbox_org.pubsub.proto import pubsub_api_pb2 as"
    )
    grpc_module.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
