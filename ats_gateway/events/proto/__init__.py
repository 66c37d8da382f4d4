"""Stubs generated from Salesforce's ``pubsub_api.proto`` (github.com/forcedotcom/pub-sub-api at
0ba4701, copied here unchanged) -- do not edit; regenerate with::

    python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. pubsub_api.proto

(from this folder, with grpcio-tools), then make the ``_grpc`` module's import relative
(``from . import pubsub_api_pb2 as pubsub__api__pb2``).
"""
